//! The one confinement for writes outside a layout: a handle on an output directory through
//! which every directory, file and symlink is created, with the kernel refusing any path that
//! leaves the directory or passes through a symbolic link (`openat2` with `RESOLVE_BENEATH` and
//! `RESOLVE_NO_SYMLINKS`).
//!
//! Names handed to `mkdirat`, `symlinkat`, `renameat` and `unlinkat` are single components,
//! always relative to a directory handle opened that way, so no string can redirect a write.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::error::{Error, InputProblem, IoContext, Result};

/// What a path inside the output directory is on disk now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDisk {
    Absent,
    Dir,
    Symlink,
    /// A regular file, or anything else that is neither a directory nor a symlink.
    Other,
}

/// A handle on the output directory.
pub(crate) struct OutDir {
    fd: OwnedFd,
    root: PathBuf,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

impl OutDir {
    /// Creates `root` (and its parents: the caller named it) and opens it.
    pub(crate) fn create(root: &Path) -> Result<OutDir> {
        std::fs::create_dir_all(root).at(root)?;
        let fd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
        .at(root)?;
        Ok(OutDir {
            fd,
            root: root.to_path_buf(),
        })
    }

    /// The output directory's path, for messages and results.
    pub(crate) fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// What `rel` is now, without following a symlink at its end; a symlink or a non-directory
    /// among its parents is reported as that parent's state through `Err`.
    pub(crate) fn inspect(&self, rel: &Path) -> Result<std::result::Result<OnDisk, PathBuf>> {
        let mut prefix = PathBuf::new();
        let parts: Vec<&std::ffi::OsStr> = normal_components(rel)?;
        for (i, part) in parts.iter().enumerate() {
            prefix.push(part);
            let state = match rustix::fs::statat(&self.fd, &prefix, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => OnDisk::Dir,
                    FileType::Symlink => OnDisk::Symlink,
                    _ => OnDisk::Other,
                },
                Err(rustix::io::Errno::NOENT) => return Ok(Ok(OnDisk::Absent)),
                Err(e) => return Err(io::Error::from(e)).at(self.path(&prefix)),
            };
            if i + 1 == parts.len() {
                return Ok(Ok(state));
            }
            if state != OnDisk::Dir {
                return Ok(Err(prefix));
            }
        }
        Ok(Ok(OnDisk::Dir))
    }

    /// Opens `rel` for reading when it is a regular file (not through a symlink, without
    /// blocking on a FIFO); `None` when it is absent or anything else.
    pub(crate) fn open_existing_file(&self, rel: &Path) -> Result<Option<File>> {
        let fd = match rustix::fs::openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Ok(None);
            }
            Err(e) => return Err(io::Error::from(e)).at(self.path(rel)),
        };
        let st = rustix::fs::fstat(&fd)
            .map_err(io::Error::from)
            .at(self.path(rel))?;
        Ok((FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| File::from(fd)))
    }

    /// Opens directory `rel` (empty: the output directory), creating what is missing.
    pub(crate) fn ensure_dir(&self, rel: &Path) -> Result<OwnedFd> {
        let mut fd = self.reopen_root()?;
        let mut prefix = PathBuf::new();
        for part in normal_components(rel)? {
            prefix.push(part);
            fd = match open_dir(&fd, part) {
                Ok(next) => next,
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(io::Error::from(e)).at(self.path(&prefix)),
                    }
                    open_dir(&fd, part)
                        .map_err(io::Error::from)
                        .at(self.path(&prefix))?
                }
                Err(e) => return Err(io::Error::from(e)).at(self.path(&prefix)),
            };
        }
        Ok(fd)
    }

    fn reopen_root(&self) -> Result<OwnedFd> {
        open_dir(&self.fd, Path::new("."))
            .map_err(io::Error::from)
            .at(&self.root)
    }

    /// Creates a new file `name` in directory `dir` (which must not exist yet).
    pub(crate) fn create_file(dir: &OwnedFd, name: &str, mode: u32) -> io::Result<File> {
        let fd = rustix::fs::openat2(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode & 0o777),
            RESOLVE,
        )?;
        Ok(File::from(fd))
    }

    /// Creates symlink `name -> target` in directory `dir` (which must not exist yet).
    pub(crate) fn symlink(dir: &OwnedFd, target: &Path, name: &str) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(target, dir, name)?)
    }

    /// Renames `from` in `from_dir` to `to` in `to_dir`, replacing a file or symlink there.
    pub(crate) fn rename(
        from_dir: &OwnedFd,
        from: &str,
        to_dir: &OwnedFd,
        to: &str,
    ) -> io::Result<()> {
        Ok(rustix::fs::renameat(from_dir, from, to_dir, to)?)
    }

    /// Removes file or symlink `name` from directory `dir`; an absent one is fine.
    pub(crate) fn remove(dir: &OwnedFd, name: &str) {
        // Best effort: this only cleans up a temporary name after another error.
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
}

fn open_dir<P: rustix::path::Arg>(at: &OwnedFd, path: P) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        at,
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        RESOLVE,
    )
}

/// The plain components of a relative path; anything else is refused (the callers checked
/// already, this keeps the handle safe on its own).
fn normal_components(rel: &Path) -> Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(p) => Ok(p),
            _ => Err(Error::InvalidInput(InputProblem::NotPlainRelativePath {
                path: rel.to_path_buf(),
            })),
        })
        .collect()
}
