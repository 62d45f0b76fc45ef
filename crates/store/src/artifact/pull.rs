//! `pull`: the titled layers of a manifest written back as files, directories unpacked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use super::ProgressFactory;
use super::confined::{OnDisk, OutDir};
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{
    Conflict, Corruption, Error, InputProblem, IoContext, PathProblem, Refusal, Result, Subject,
};
use crate::layout::Layout;
use crate::model::{Descriptor, Manifest, annotations};
use crate::transfer::tar_reader::{Head, Kind, TarError, TarReader};

/// How a pull treats files already in the output directory.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PullOptions {
    /// Refuse to replace an existing file whose content differs (oras's `-k/--keep-old-files`);
    /// the pull then writes nothing. Without it such files are replaced and reported in
    /// [`Pulled::replaced`].
    pub keep_old_files: bool,
}

impl PullOptions {
    /// The options with `keep_old_files` set as given.
    #[must_use]
    pub fn keep_old_files(mut self, keep: bool) -> Self {
        self.keep_old_files = keep;
        self
    }
}

/// What a pull wrote.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Pulled {
    /// Every path written (a directory layer's top directory for an unpacked layer).
    pub written: Vec<PathBuf>,
    /// Files that existed with other content and were replaced (relative to the output
    /// directory).
    pub replaced: Vec<PathBuf>,
}

/// Writes each titled layer of an image manifest to `outdir/<title>`, verifying every byte.
/// Titles that would land outside `outdir` are refused before anything is written.
/// Returns the paths written. Existing files are replaced; see [`pull_with`].
pub fn pull(
    layout: &Layout,
    desc: &Descriptor,
    outdir: &Path,
    progress: ProgressFactory<'_>,
) -> Result<Vec<PathBuf>> {
    Ok(pull_with(layout, desc, outdir, &PullOptions::default(), progress)?.written)
}

/// [`pull`], with what to do about files already in `outdir`: every existing file the pull
/// would write is compared with the content it would get, before anything is written.
pub fn pull_with(
    layout: &Layout,
    desc: &Descriptor,
    outdir: &Path,
    options: &PullOptions,
    progress: ProgressFactory<'_>,
) -> Result<Pulled> {
    let (_, manifest) = layout.read_manifest(desc)?;
    let manifest = match manifest {
        Manifest::Image(m) => m,
        Manifest::Index(i) => {
            let platforms: Vec<String> = i
                .manifests()
                .iter()
                .filter_map(|d| d.platform().map(|p| p.to_string()))
                .collect();
            return Err(Error::InvalidInput(InputProblem::IndexNeedsPlatform {
                index: desc.digest().clone(),
                platforms,
            }));
        }
    };
    let mut plan = Vec::new();
    let mut seen = BTreeSet::new();
    for layer in &manifest.layers {
        let Some(title) = layer.annotation(annotations::TITLE) else {
            continue;
        };
        let rel = safe_relative_path(title).map_err(|reason| Error::RefusedEntry {
            layer: layer.digest().clone(),
            entry: title.into(),
            reason: Refusal::Title(reason),
        })?;
        if !seen.insert(rel.clone()) {
            return Err(Error::InvalidInput(InputProblem::TitledTwice {
                title: title.to_string(),
            }));
        }
        let unpack = layer.annotation(annotations::ORAS_UNPACK) == Some("true");
        plan.push((layer.clone(), rel, unpack));
    }
    if plan.is_empty() {
        return Err(Error::InvalidInput(InputProblem::NothingToPull {
            manifest: desc.digest().clone(),
        }));
    }

    // Everything is checked before the first byte is written: each blob is a regular file of
    // its declared size, every entry of every layer is read (and each layer verified), and
    // nothing planned passes through a symlink or replaces a directory on disk.
    let mut claims = Claims::default();
    let mut unpacked: Vec<Vec<Entry>> = Vec::new();
    // The content each file gets, to compare with a file already there.
    let mut contents: Vec<(PathBuf, Digest)> = Vec::new();
    for (layer, rel, unpack) in &plan {
        match layout.blob_size(layer.digest())? {
            Some(size) if size == layer.size() => {}
            Some(size) => {
                return Err(Error::SizeMismatch {
                    what: Subject::Layer(layer.digest().clone()).into(),
                    expected: layer.size(),
                    actual: size,
                });
            }
            None => return Err(Error::not_found(Subject::Layer(layer.digest().clone()))),
        }
        let refuse = |entry: &Path, reason: Refusal| Error::RefusedEntry {
            layer: layer.digest().clone(),
            entry: entry.to_path_buf(),
            reason,
        };
        if *unpack {
            let mut entries = Vec::new();
            read_layer(layout, layer, |entry, data| {
                claims
                    .claim(&entry.path, entry.kind.claim())
                    .map_err(|r| refuse(&entry.path, r))?;
                if matches!(entry.kind, EntryKind::File { .. }) {
                    let mut hashing = HashingReader::new(data, Algorithm::Sha256);
                    io::copy(&mut hashing, &mut io::sink()).at(layout.blob_path(layer.digest()))?;
                    contents.push((entry.path.clone(), hashing.finish().0));
                }
                entries.push(entry);
                Ok(())
            })?;
            unpacked.push(entries);
        } else {
            claims.claim(rel, Claim::File).map_err(|r| refuse(rel, r))?;
            contents.push((rel.clone(), layer.digest().clone()));
        }
    }
    let out = OutDir::create(outdir)?;
    claims.check_disk(&out, &plan)?;
    let mut replaced = Vec::new();
    for (rel, digest) in &contents {
        if differs(&out, rel, digest)? {
            replaced.push(rel.clone());
        }
    }
    if options.keep_old_files && !replaced.is_empty() {
        return Err(Error::Conflict(Conflict::ExistingFiles {
            paths: replaced.iter().map(|p| out.path(p)).collect(),
        }));
    }

    let root = outdir.canonicalize().at(outdir)?;
    let root_fd = out.ensure_dir(Path::new(""))?;
    let mut temps = Temps {
        dir: &root_fd,
        names: Vec::new(),
    };
    // Plain files land in temporary files first, so a blob that fails verification leaves no
    // file behind; they are renamed into place last.
    for (layer, rel, unpack) in &plan {
        if *unpack {
            continue;
        }
        let name = temps.next_name();
        let file = OutDir::create_file(&root_fd, &name, 0o644).at(out.path(Path::new(&name)))?;
        temps.names.push((name, rel.clone()));
        let bar = progress(&rel.display().to_string(), layer.size());
        let mut sink = io::BufWriter::new(Limited {
            inner: file,
            left: layer.size(),
        });
        layout.copy_blob_to(layer.digest(), Some(layer.size()), &mut sink, bar.as_ref())?;
        sink.flush().at(out.path(rel))?;
    }
    let mut written = Vec::new();
    let mut planned = unpacked.into_iter();
    for (layer, rel, unpack) in &plan {
        if !*unpack {
            continue;
        }
        let entries = planned.next().unwrap_or_default();
        let mut next = entries.iter();
        read_layer(layout, layer, |entry, data| {
            if next.next() != Some(&entry) {
                return Err(Error::Corrupt {
                    path: layout.blob_path(layer.digest()),
                    reason: Corruption::LayerChanged,
                });
            }
            write_entry(&out, &entry, data)
        })?;
        written.push(root.join(rel));
    }
    for (name, rel) in std::mem::take(&mut temps.names) {
        let (parent, file) = split(&rel);
        let dir = out.ensure_dir(parent)?;
        OutDir::rename(&root_fd, &name, &dir, file).at(out.path(&rel))?;
        written.push(root.join(&rel));
    }
    Ok(Pulled { written, replaced })
}

/// True when `rel` is a file in the output directory whose content does not hash to `digest`
/// (a symlink or a special file there differs too; an absent one does not). Reads at most one
/// byte more than the file's size at open.
fn differs(out: &OutDir, rel: &Path, digest: &Digest) -> Result<bool> {
    match out.inspect(rel)? {
        Ok(OnDisk::Absent | OnDisk::Dir) | Err(_) => return Ok(false),
        Ok(OnDisk::Symlink) => return Ok(true),
        Ok(OnDisk::Other) => {}
    }
    let Some(file) = out.open_existing_file(rel)? else {
        return Ok(true);
    };
    let Ok(algorithm) = digest.known_algorithm() else {
        return Ok(true);
    };
    let size = file.metadata().at(out.path(rel))?.len();
    let mut hashing = HashingReader::new(io::BufReader::new(file).take(size + 1), algorithm);
    io::copy(&mut hashing, &mut io::sink()).at(out.path(rel))?;
    Ok(&hashing.finish().0 != digest)
}

/// Temporary files in the output directory, removed unless renamed into place.
struct Temps<'a> {
    dir: &'a OwnedFd,
    names: Vec<(String, PathBuf)>,
}

impl Temps<'_> {
    fn next_name(&self) -> String {
        format!(".ocistow-pull-{}-{}", std::process::id(), self.names.len())
    }
}

impl Drop for Temps<'_> {
    fn drop(&mut self) {
        for (name, _) in &self.names {
            OutDir::remove(self.dir, name);
        }
    }
}

/// A writer that fails once more than the declared size arrives, so a blob that grows (or is
/// not what it claims) cannot fill the disk.
struct Limited<W> {
    inner: W,
    left: u64,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the blob is larger than its descriptor declares",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One entry of a layer pull unpacks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File { executable: bool },
    Symlink(PathBuf),
}

impl EntryKind {
    fn claim(&self) -> Claim {
        match self {
            EntryKind::Dir => Claim::Dir,
            EntryKind::File { .. } => Claim::File,
            EntryKind::Symlink(_) => Claim::Symlink,
        }
    }
}

/// What a pull will create at each path, so that no entry lands under a file or a symlink
/// another entry creates, and no path is written twice.
#[derive(Default)]
struct Claims {
    paths: BTreeMap<PathBuf, Claim>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    Dir,
    File,
    Symlink,
}

impl Claim {
    fn name(self) -> &'static str {
        match self {
            Claim::Dir => "directory",
            Claim::File => "file",
            Claim::Symlink => "symbolic link",
        }
    }
}

impl Claims {
    fn claim(&mut self, path: &Path, what: Claim) -> std::result::Result<(), Refusal> {
        for parent in path.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            match self.paths.get(parent) {
                Some(Claim::Dir) => {}
                Some(other) => {
                    return Err(Refusal::UnderNonDirectory {
                        parent: parent.to_path_buf(),
                        creates: other.name(),
                    });
                }
                None => {
                    self.paths.insert(parent.to_path_buf(), Claim::Dir);
                }
            }
        }
        match self.paths.get(path) {
            None => {
                self.paths.insert(path.to_path_buf(), what);
                Ok(())
            }
            Some(Claim::Dir) if what == Claim::Dir => Ok(()),
            Some(prev) => Err(Refusal::WrittenTwice {
                first: prev.name(),
                second: what.name(),
            }),
        }
    }

    /// Refuses paths whose parents on disk are symlinks or files, and directories that would
    /// replace a file or files that would replace a directory.
    fn check_disk(&self, out: &OutDir, plan: &[(Descriptor, PathBuf, bool)]) -> Result<()> {
        // The layer a path comes from, for the message: the one whose title is its first part.
        let layer_of = |path: &Path| {
            plan.iter()
                .find(|(_, rel, _)| path.starts_with(rel))
                .or(plan.first())
                .map(|(l, _, _)| l.digest().clone())
        };
        for (path, claim) in &self.paths {
            let reason = match out.inspect(path)? {
                Err(parent) => Some(Refusal::ParentNotADirectory { parent }),
                Ok(OnDisk::Dir) if *claim == Claim::Dir => None,
                Ok(OnDisk::Dir) => Some(Refusal::WouldReplaceDirectory { with: claim.name() }),
                Ok(OnDisk::Symlink | OnDisk::Other) if *claim == Claim::Dir => {
                    Some(Refusal::NotADirectoryOnDisk)
                }
                Ok(OnDisk::Absent | _) => None,
            };
            if let (Some(reason), Some(layer)) = (reason, layer_of(path)) {
                return Err(Error::RefusedEntry {
                    layer,
                    entry: path.clone(),
                    reason,
                });
            }
        }
        Ok(())
    }
}

/// Reads every entry of an unpackable layer, verifying the blob against its descriptor (read
/// at most one byte past its declared size), and hands each to `visit` with its data.
fn read_layer(
    layout: &Layout,
    layer: &Descriptor,
    mut visit: impl FnMut(Entry, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let digest = layer.digest();
    let path = layout.blob_path(digest);
    let algorithm = digest.known_algorithm()?;
    let file = layout.open_blob(digest)?;
    let mut hashing = HashingReader::new(
        io::BufReader::new(file).take(layer.size().saturating_add(1)),
        algorithm,
    );
    {
        let gzip = layer.media_type().ends_with("+gzip") || layer.media_type().ends_with(".gzip");
        let mut reader: Box<dyn Read + '_> = if gzip {
            Box::new(flate2::read::GzDecoder::new(&mut hashing))
        } else {
            Box::new(&mut hashing)
        };
        let mut tar = TarReader::new(&mut reader);
        loop {
            let head = match tar.next() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(TarError::Io(e)) => return Err(Error::Io { path, source: e }),
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        reason: Corruption::Tar(e.into_problem()),
                    });
                }
            };
            let entry = classify(&head).map_err(|(entry, reason)| Error::RefusedEntry {
                layer: digest.clone(),
                entry,
                reason,
            })?;
            visit(entry, &mut tar.data())?;
        }
        // The compressed stream's end (and its integrity trailer) belongs to the layer too.
        io::copy(&mut reader, &mut io::sink()).at(&path)?;
    }
    io::copy(&mut hashing, &mut io::sink()).at(&path)?;
    let (actual, count) = hashing.finish();
    if count != layer.size() {
        return Err(Error::SizeMismatch {
            what: Subject::Layer(digest.clone()).into(),
            expected: layer.size(),
            actual: count,
        });
    }
    if &actual != digest {
        return Err(Error::DigestMismatch {
            what: Subject::Layer(digest.clone()).into(),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// What pull would create for a tar member; links that could lead outside, hard links,
/// devices and fifos are refused.
fn classify(head: &Head) -> std::result::Result<Entry, (PathBuf, Refusal)> {
    let shown = PathBuf::from(String::from_utf8_lossy(&head.name).into_owned());
    let name =
        std::str::from_utf8(&head.name).map_err(|_| (shown.clone(), Refusal::NameNotUtf8))?;
    let path = match safe_relative_path(name) {
        Ok(p) => p,
        Err(r) => return Err((shown, Refusal::Name(r))),
    };
    let kind = match &head.kind {
        Kind::Dir => EntryKind::Dir,
        Kind::File => EntryKind::File {
            executable: head.mode & 0o111 != 0,
        },
        Kind::Symlink(target) => {
            let target = PathBuf::from(String::from_utf8_lossy(target).into_owned());
            let base = path.parent().unwrap_or(Path::new(""));
            if !stays_inside(base, &target) {
                return Err((path, Refusal::SymlinkOutside { target }));
            }
            EntryKind::Symlink(target)
        }
        other => {
            return Err((
                path,
                Refusal::NotCreated {
                    kind: other.describe(),
                },
            ));
        }
    };
    Ok(Entry { path, kind })
}

fn write_entry(out: &OutDir, entry: &Entry, data: &mut dyn Read) -> Result<()> {
    if entry.kind == EntryKind::Dir {
        out.ensure_dir(&entry.path)?;
        return Ok(());
    }
    let (parent, name) = split(&entry.path);
    let dir = out.ensure_dir(parent)?;
    let temps = Temps {
        dir: &dir,
        names: vec![(
            format!(".ocistow-pull-{}-entry", std::process::id()),
            entry.path.clone(),
        )],
    };
    let temp = temps.names[0].0.as_str();
    let at = out.path(&entry.path);
    match &entry.kind {
        EntryKind::File { executable } => {
            let mode = if *executable { 0o755 } else { 0o644 };
            let mut file = OutDir::create_file(&dir, temp, mode).at(&at)?;
            io::copy(data, &mut file).at(&at)?;
        }
        EntryKind::Symlink(target) => OutDir::symlink(&dir, target, temp).at(&at)?,
        EntryKind::Dir => {}
    }
    // Once renamed, the temporary name is gone and the guard's removal finds nothing.
    OutDir::rename(&dir, temp, &dir, name).at(&at)?;
    Ok(())
}

/// A planned path's parent and file name (plain components, checked by the caller).
fn split(rel: &Path) -> (&Path, &str) {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or(".");
    (parent, name)
}

/// Accepts only a relative path of plain components.
pub fn safe_relative_path(name: &str) -> std::result::Result<PathBuf, PathProblem> {
    if name.is_empty() {
        return Err(PathProblem::Empty);
    }
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathProblem::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(PathProblem::Absolute),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(PathProblem::NamesNoFile);
    }
    Ok(out)
}

/// True when `link`, resolved from directory `base` (relative to the root, and free of
/// symlinks: the claims and the disk check make sure of that), stays in the root. `..` may
/// only lead the target: after a name it could climb out of a directory that is itself a
/// symlink (`a -> .` then `b -> a/..`), which no lexical check can see.
fn stays_inside(base: &Path, link: &Path) -> bool {
    let mut depth = base
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let mut descended = false;
    for c in link.components() {
        match c {
            Component::Normal(_) => descended = true,
            Component::ParentDir if !descended => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert!(safe_relative_path("a/b.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".", "./"] {
            assert!(safe_relative_path(bad).is_err(), "{bad}");
        }
        assert!(stays_inside(Path::new("d"), Path::new("../x")));
        assert!(!stays_inside(Path::new("d"), Path::new("../../x")));
        assert!(!stays_inside(Path::new(""), Path::new("/etc")));
        assert!(stays_inside(Path::new("d/e"), Path::new("../../x/y")));
        assert!(!stays_inside(Path::new("d"), Path::new("a/../x")));
    }
}
