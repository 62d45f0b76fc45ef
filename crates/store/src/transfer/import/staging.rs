//! The destination as found, the private staging area beside it, and the pass over the
//! archive that stages its members (after [`plan`](super::plan) when it is read from a file).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest};
use crate::error::{
    ArchiveProblem, Conflict, Corruption, EntryProblem, Error, IoContext, LayoutProblem, Result,
    Subject,
};
use crate::layout::{
    Layout, MAX_MANIFEST_SIZE, NoProgress, OCI_LAYOUT_FILE, Writeback, copy_hashed,
};
use crate::model::{Descriptor, ImageIndex, Manifest};
use crate::transfer::tar_reader::{Kind, TarError, TarReader};
use crate::walk::{Candidate, candidate, manifest_media_type};

use super::docker::legacy_alias;
use super::plan::{Plan, docker_paths};
use super::{MAX_SMALL_FILE, corrupt};

pub(super) enum Destination {
    Existing(Layout),
    /// An empty directory: made a layout when the import succeeds.
    Empty,
    Missing,
}

impl Destination {
    pub(super) fn inspect(dir: &Path) -> Result<Self> {
        match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Destination::Missing),
            Err(e) => Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            }),
            Ok(m) if !m.is_dir() => Err(Error::NotALayout {
                path: dir.to_path_buf(),
                reason: LayoutProblem::NotADirectory,
            }),
            Ok(_) => {
                if dir.join(OCI_LAYOUT_FILE).exists() {
                    return Ok(Destination::Existing(Layout::open(dir)?));
                }
                if fs::read_dir(dir).at(dir)?.next().is_none() {
                    Ok(Destination::Empty)
                } else {
                    Err(Error::Conflict(Conflict::NotEmpty {
                        dir: dir.to_path_buf(),
                        import: true,
                    }))
                }
            }
        }
    }
}

/// A private directory beside the destination, removed when dropped.
pub(super) struct Staging {
    pub(super) dir: Option<tempfile::TempDir>,
    /// `DIR/ingest` when we had to create it for a fallback staging area.
    pub(super) created_ingest: Option<PathBuf>,
}

impl Staging {
    pub(super) fn create(dir: &Path, target: &Destination) -> Result<Staging> {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // The nearest existing ancestor (the destination's parents are created at the end).
        let mut base = parent.clone();
        while !base.exists() {
            base = match base.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
        }
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix(".ocistow-import-");
            b
        };
        match builder.tempdir_in(&base) {
            Ok(t) => Ok(Staging {
                dir: Some(t),
                created_ingest: None,
            }),
            // A destination whose parent we may not write to: stage in its ingest/ area.
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    && matches!(target, Destination::Existing(_)) =>
            {
                let ingest = dir.join(crate::layout::INGEST_DIR);
                let created = !ingest.exists();
                fs::create_dir_all(&ingest).at(&ingest)?;
                let t = builder.tempdir_in(&ingest).at(&ingest)?;
                Ok(Staging {
                    dir: Some(t),
                    created_ingest: created.then_some(ingest),
                })
            }
            Err(e) => Err(Error::Io {
                path: base,
                source: e,
            }),
        }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("."), tempfile::TempDir::path)
    }

    pub(super) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.path().join(digest.blob_path())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
        if let Some(ingest) = self.created_ingest.take() {
            // Only if empty: another writer may have started using it meanwhile.
            let _ = fs::remove_dir(ingest);
        }
    }
}
/// A file unpacked into the staging area, hashed.
#[derive(Debug, Clone)]
pub(super) struct Staged {
    pub(super) path: PathBuf,
    pub(super) digest: Digest,
    pub(super) size: u64,
    /// Where it was in the archive, for messages.
    pub(super) entry: String,
}

#[derive(Default)]
pub(super) struct Collected {
    pub(super) oci_layout: Option<Vec<u8>>,
    pub(super) index: Option<Vec<u8>>,
    pub(super) docker_manifest: Option<Vec<u8>>,
    /// Verified `blobs/<alg>/<encoded>` members.
    pub(super) blobs: BTreeMap<Digest, Staged>,
    /// Every staged file by its path in the archive (blobs and docker layer/config files).
    pub(super) files: HashMap<String, Staged>,
    /// classic `docker save` layer symlinks: path -> target path.
    pub(super) aliases: HashMap<String, String>,
    /// Members not staged because the plan, complete, says nothing references them.
    pub(super) unstaged: Vec<String>,
}

/// Reads every member once, staging the blobs and the docker archive files the plan (or, as
/// far as it goes, the stream itself) declares, each at its declared size, and the members not
/// declared yet within `undeclared_limit` bytes in total.
pub(super) fn collect(
    reader: Box<dyn Read + '_>,
    staging: &Staging,
    name: &str,
    plan: Plan,
    undeclared_limit: u64,
) -> Result<Collected> {
    // The counter lives in the staging area; interior mutability is not needed: one pass.
    let mut staging_files = StagingFiles {
        staging,
        counter: 0,
    };
    let mut tar = TarReader::new(reader);
    let mut seen: HashSet<String> = HashSet::new();
    let mut c = Collected::default();
    let complete = plan.complete;
    let mut declared = Declared {
        sizes: plan.blobs,
        paths: plan.paths,
    };
    let mut undeclared = Undeclared {
        archive: name,
        limit: undeclared_limit,
        staged: 0,
    };
    loop {
        let head = match tar.next() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(TarError::Io(e)) => return Err(read_error(name, None, e)),
            Err(e) => {
                return Err(Error::Corrupt {
                    path: name.into(),
                    reason: Corruption::Tar(e.into_problem()),
                });
            }
        };
        let shown = String::from_utf8_lossy(&head.name).into_owned();
        let bad = |problem| {
            corrupt(
                name,
                ArchiveProblem::Entry {
                    entry: shown.clone(),
                    problem,
                },
            )
        };
        let path = match normalize(&head.name) {
            Ok(Some(p)) => p,
            Ok(None) if head.kind == Kind::Dir => continue,
            Ok(None) => return Err(bad(EntryProblem::NamesNoFile)),
            Err(reason) => return Err(bad(reason)),
        };
        if !seen.insert(path.clone()) {
            return Err(bad(EntryProblem::Twice));
        }
        let parts: Vec<&str> = path.split('/').collect();
        match &head.kind {
            Kind::File => {}
            Kind::Dir => {
                if parts[0] == "blobs" && parts.len() > 2 {
                    return Err(bad(EntryProblem::DirectoryInBlobs));
                }
                continue;
            }
            Kind::Symlink(target) => match legacy_alias(&parts, target) {
                Some(to) => {
                    c.aliases.insert(path, to);
                    continue;
                }
                None => {
                    return Err(bad(EntryProblem::Symlink {
                        target: String::from_utf8_lossy(target).into_owned(),
                    }));
                }
            },
            Kind::HardLink(target) => {
                return Err(bad(EntryProblem::HardLink {
                    target: String::from_utf8_lossy(target).into_owned(),
                }));
            }
            other @ Kind::Other(_) => {
                return Err(bad(EntryProblem::Kind {
                    kind: other.describe(),
                }));
            }
        }
        let size = head.size;
        match parts.as_slice() {
            ["oci-layout"] => {
                c.oci_layout = Some(read_small(&mut tar, size, MAX_SMALL_FILE, name, &path)?);
            }
            ["index.json"] => {
                let bytes = read_small(&mut tar, size, MAX_MANIFEST_SIZE, name, &path)?;
                if let Ok(index) = ImageIndex::parse(&bytes) {
                    declared.add(index.manifests());
                }
                c.index = Some(bytes);
            }
            ["manifest.json"] => {
                let bytes = read_small(&mut tar, size, MAX_MANIFEST_SIZE, name, &path)?;
                if let Some(paths) = docker_paths(&bytes, &c.aliases) {
                    declared.paths.extend(paths);
                }
                c.docker_manifest = Some(bytes);
            }
            ["blobs", alg, enc] => {
                let digest = Digest::parse(&format!("{alg}:{enc}"))
                    .map_err(|e| bad(EntryProblem::BadDigest(Box::new(e))))?;
                let algorithm = digest.known_algorithm().map_err(|_| {
                    bad(EntryProblem::UnverifiableAlgorithm {
                        algorithm: alg.to_string(),
                    })
                })?;
                // A member the archive's own descriptors declare is staged only at that size,
                // so a small compressed archive cannot unpack into a huge blob.
                let media_type = match declared.sizes.get(&digest) {
                    Some((expected, _)) if *expected != size => {
                        return Err(Error::SizeMismatch {
                            what: Subject::ArchiveEntry {
                                archive: name.to_string(),
                                entry: path.clone().into(),
                            }
                            .into(),
                            expected: *expected,
                            actual: size,
                        });
                    }
                    Some((_, mt)) => Some(mt.clone()),
                    None if declared.paths.contains(&path) => None,
                    None if complete => {
                        c.unstaged.push(path);
                        continue;
                    }
                    None => {
                        undeclared.take(size, &path)?;
                        None
                    }
                };
                let dest = staging.blob_path(&digest);
                let (actual, written) = stage(&mut tar, &dest, algorithm, (name, &path), size)?;
                if actual != digest {
                    return Err(Error::DigestMismatch {
                        what: Subject::ArchiveEntry {
                            archive: name.to_string(),
                            entry: path.clone().into(),
                        }
                        .into(),
                        expected: digest,
                        actual,
                    });
                }
                // What a manifest declares bounds the members after it (the one rule decides
                // what is read as a manifest).
                if let Some(declared_type) = media_type.filter(|mt| candidate(mt) != Candidate::No)
                    && written <= MAX_MANIFEST_SIZE
                {
                    let bytes = fs::read(&dest).at(&dest)?;
                    if let Some(mt) = manifest_media_type(&declared_type, &bytes)
                        && let Ok(m) = Manifest::parse(&mt, &bytes)
                    {
                        declared.add(m.children());
                    }
                }
                let staged = Staged {
                    path: dest,
                    digest: digest.clone(),
                    size: written,
                    entry: path.clone(),
                };
                c.files.insert(path, staged.clone());
                c.blobs.insert(digest, staged);
            }
            ["blobs", ..] => {
                return Err(bad(EntryProblem::NotABlobFile));
            }
            // A classic docker save archive's layers and configs (`<id>/layer.tar`,
            // `<hex>.json`): staged until manifest.json says which are used.
            [_, "layer.tar"] | [_] if path.ends_with("/layer.tar") || path.ends_with(".json") => {
                if !declared.paths.contains(&path) {
                    if complete {
                        // Unused configs were always ignored; unused layers refuse the archive.
                        if path.ends_with("/layer.tar") {
                            c.unstaged.push(path);
                        }
                        continue;
                    }
                    undeclared.take(size, &path)?;
                }
                let dest = staging_files.next()?;
                let (digest, written) =
                    stage(&mut tar, &dest, Algorithm::Sha256, (name, &path), size)?;
                c.files.insert(
                    path.clone(),
                    Staged {
                        path: dest,
                        digest,
                        size: written,
                        entry: path,
                    },
                );
            }
            // Anything else (docker's <id>/json and VERSION, `repositories`, unknown files)
            // is skipped, never written.
            _ => {}
        }
    }
    check_end(tar.into_inner(), name)?;
    Ok(c)
}

/// What follows the end-of-archive marker may only be the zero padding of the last record;
/// reading it to the end also makes the decompressor check its integrity trailers (gzip's
/// CRC-32 and size, zstd's checksum), so a truncated or corrupted trailer refuses the archive.
fn check_end(mut rest: impl Read, name: &str) -> Result<()> {
    const MAX_PADDING: u64 = 1 << 20;
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(name, None, e)),
        };
        total += n as u64;
        if total > MAX_PADDING || buf[..n].iter().any(|&b| b != 0) {
            return Err(corrupt(name, ArchiveProblem::TrailingData));
        }
    }
}

/// Sizes and media types the archive's descriptors declare, as far as they were read, and the
/// docker archive files its manifest.json names.
struct Declared {
    sizes: HashMap<Digest, (u64, String)>,
    paths: HashSet<String>,
}

impl Declared {
    fn add<'a>(&mut self, descriptors: impl IntoIterator<Item = &'a Descriptor>) {
        for d in descriptors {
            self.sizes
                .entry(d.digest().clone())
                .or_insert_with(|| (d.size(), d.media_type().to_string()));
        }
    }
}

/// The members staged before anything declared them, against their limit.
struct Undeclared<'a> {
    archive: &'a str,
    limit: u64,
    staged: u64,
}

impl Undeclared<'_> {
    /// Counts a member of `size` bytes about to be staged, or refuses it, before a byte of it
    /// is written, when it would take the total over the limit.
    fn take(&mut self, size: u64, entry: &str) -> Result<()> {
        let total = self.staged.saturating_add(size);
        if total > self.limit {
            return Err(Error::UndeclaredTooLarge {
                member: Subject::ArchiveEntry {
                    archive: self.archive.to_string(),
                    entry: entry.into(),
                },
                size,
                limit: self.limit,
            });
        }
        self.staged = total;
        Ok(())
    }
}

pub(super) struct StagingFiles<'a> {
    pub(super) staging: &'a Staging,
    pub(super) counter: u64,
}

impl StagingFiles<'_> {
    pub(super) fn next(&mut self) -> Result<PathBuf> {
        let dir = self.staging.path().join("files");
        fs::create_dir_all(&dir).at(&dir)?;
        self.counter += 1;
        Ok(dir.join(self.counter.to_string()))
    }
}

pub(super) fn read_error(name: &str, entry: Option<&str>, e: io::Error) -> Error {
    let entry = entry.map(str::to_string);
    match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(name, ArchiveProblem::Truncated { entry }),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
            corrupt(name, ArchiveProblem::Unreadable { entry, source: e })
        }
        _ => Error::Io {
            path: name.into(),
            source: e,
        },
    }
}

pub(super) fn read_small<R: Read>(
    tar: &mut TarReader<R>,
    size: u64,
    cap: u64,
    name: &str,
    path: &str,
) -> Result<Vec<u8>> {
    if size > cap {
        return Err(corrupt(
            name,
            ArchiveProblem::EntryTooLarge {
                entry: path.to_string(),
                size,
                cap,
            },
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    tar.data()
        .read_to_end(&mut buf)
        .map_err(|e| read_error(name, Some(path), e))?;
    Ok(buf)
}

/// Unpacks the current member, `size` bytes by its header, into `dest`, hashing it; the file
/// is fsynced.
pub(super) fn stage<R: Read>(
    tar: &mut TarReader<R>,
    dest: &Path,
    algorithm: Algorithm,
    (name, path): (&str, &str),
    size: u64,
) -> Result<(Digest, u64)> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    let file = File::create(dest).at(dest)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .at(dest)?;
    let member = Subject::ArchiveEntry {
        archive: name.to_string(),
        entry: path.into(),
    };
    let (hasher, count) = copy_hashed(
        &mut tar.data(),
        &mut Writeback::new(&file, 0),
        algorithm.hasher(),
        Some((size, &member)),
        &|e| read_error(name, Some(path), e),
        &|source| Error::Io {
            path: dest.to_path_buf(),
            source,
        },
        &NoProgress,
    )?;
    file.sync_all().at(dest)?;
    Ok((hasher.finish(), count))
}

/// A member path as plain relative components joined by `/`; `None` for the root itself.
pub(super) fn normalize(name: &[u8]) -> std::result::Result<Option<String>, EntryProblem> {
    let s = std::str::from_utf8(name).map_err(|_| EntryProblem::NameNotUtf8)?;
    if s.starts_with('/') {
        return Err(EntryProblem::Absolute);
    }
    if s.contains('\0') || s.contains('\\') {
        return Err(EntryProblem::NulOrBackslash);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(EntryProblem::ParentDir),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_member_paths() {
        assert_eq!(
            normalize(b"./blobs//sha256/").unwrap().as_deref(),
            Some("blobs/sha256")
        );
        assert_eq!(normalize(b"./").unwrap(), None);
        assert!(normalize(b"../x").is_err());
        assert!(normalize(b"blobs/../index.json").is_err());
        assert!(normalize(b"/etc/passwd").is_err());
        assert!(normalize(b"a\\b").is_err());
    }
}
