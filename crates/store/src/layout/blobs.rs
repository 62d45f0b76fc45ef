//! Reading, verifying and deleting blobs under `blobs/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::ingest::copy_verified;
use super::{Expected, Layout, Progress, sync_dir};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result, Subject};

/// What a file type is, for an error that names it.
fn kind_of(t: fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The one way the library opens a file it reads (a blob, `index.json`, `oci-layout`): without
/// blocking (a FIFO would block the open and every read), following symlinks, and only when it
/// is a regular file. Returns the file and its size, or `None` when the path does not exist.
pub(crate) fn open_regular(path: &Path) -> Result<Option<(File, u64)>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // What open(2) says for a socket.
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Error::NotRegularFile {
                path: path.to_path_buf(),
                kind: "a socket",
            });
        }
        Err(e) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let meta = file.metadata().at(path)?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    Ok(Some((file, meta.len())))
}

/// Reads all of a regular file, at most `limit` bytes: a larger file (or one that grows while
/// read) is [`Error::TooLarge`].
pub(crate) fn read_limited(
    path: &Path,
    limit: u64,
    why: &'static str,
) -> Result<Option<(Vec<u8>, File)>> {
    let Some((file, size)) = open_regular(path)? else {
        return Ok(None);
    };
    let too_large = || Error::TooLarge {
        path: path.to_path_buf(),
        limit,
        why,
    };
    if size > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    (&file).take(limit + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(Some((bytes, file)))
}

impl Layout {
    /// The size of a blob on disk, or `None` when it is absent. A blob path that is not a
    /// regular file is [`Error::NotRegularFile`].
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(m) => Err(Error::NotRegularFile {
                path,
                kind: kind_of(m.file_type()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// True when the blob is present (an error when its path is not a regular file).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_size(digest)?.is_some())
    }

    /// Opens a blob for reading (unverified; see [`Layout::verify_blob`]). Only a regular file
    /// opens; the open never blocks.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        Ok(self.open_blob_sized(digest)?.0)
    }

    /// [`Layout::open_blob`] with the size of what was opened.
    pub fn open_blob_sized(&self, digest: &Digest) -> Result<(File, u64)> {
        open_regular(&self.blob_path(digest))?
            .ok_or_else(|| Error::not_found(Subject::Blob(digest.clone())))
    }

    /// Opens a blob to read at most `size` bytes: reading more is an error (a blob cannot
    /// outgrow its descriptor), and so is a blob whose file is larger.
    pub fn open_blob_limited(&self, digest: &Digest, size: u64) -> Result<impl Read + use<>> {
        let (file, actual) = self.open_blob_sized(digest)?;
        let path = self.blob_path(digest);
        if actual > size {
            return Err(Error::TooLarge {
                path,
                limit: size,
                why: " (its descriptor's size)",
            });
        }
        Ok(Limited {
            inner: file.take(size + 1),
            left: size,
        })
    }

    /// Reads a whole blob and verifies it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.read_blob_limited(digest, u64::MAX - 1)
    }

    /// Reads a whole blob of at most `limit` bytes and verifies it against its digest.
    pub fn read_blob_limited(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let (bytes, _) = read_limited(&path, limit, "")?
            .ok_or_else(|| Error::not_found(Subject::Blob(digest.clone())))?;
        digest.verify_bytes(&bytes, Subject::Path(path))?;
        Ok(bytes)
    }

    /// Streams a blob through its hash and checks digest and, if given, size (reading no more
    /// than that size and one byte).
    pub fn verify_blob(&self, digest: &Digest, size: Option<u64>) -> Result<()> {
        self.copy_blob_to(digest, size, &mut io::sink(), &super::NoProgress)
            .map(|_| ())
    }

    /// Copies a blob to `out`, verifying its digest and size as it goes. The caller must discard
    /// what was written if this fails.
    pub fn copy_blob_to(
        &self,
        digest: &Digest,
        size: Option<u64>,
        out: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let path = self.blob_path(digest);
        let (mut file, _) = self.open_blob_sized(digest)?;
        let (_, count) = copy_verified(
            &mut file,
            out,
            &Expected {
                digest: Some(digest.clone()),
                size,
                input: Some(Subject::Path(path)),
            },
            &Subject::Input {
                name: "the copy's output".into(),
            },
            progress,
        )?;
        Ok(count)
    }

    /// Deletes a blob. Deleting an absent blob is `NotFound`.
    pub fn delete_blob(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::not_found(Subject::Blob(digest.clone())))
            }
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }
}

/// A reader that fails once more than its limit arrives.
struct Limited<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(
                "the blob is larger than its descriptor says",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
