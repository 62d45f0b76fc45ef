//! Importing a tarball into a layout: OCI layouts (as `export` writes them, or regctl, skopeo,
//! containerd, `docker save` >= 25) and classic `docker save` archives (`manifest.json`,
//! `repositories`, `<id>/layer.tar`, `<hex>.json`), plain or compressed with gzip or zstd
//! (recognized by their magic bytes, not by a file name).
//!
//! The archive is untrusted. It is read once, as a stream, and everything is checked before
//! anything is written into the destination:
//! - every member must be a regular file or a directory with a relative path of plain components
//!   (no `..`, no absolute path); links, devices and fifos are refused, and so is any path given
//!   twice; the one exception is the symlink classic `docker save` writes for a layer it saved
//!   already (`<id>/layer.tar -> ../<other id>/layer.tar`), which is followed in memory and never
//!   created;
//! - under `blobs/` only `blobs/<alg>/<encoded>` files are allowed, named by a valid digest of an
//!   algorithm ocistow can verify; each is hashed while it is unpacked and must match its name;
//! - `oci-layout`, `index.json` and `manifest.json` must be valid, every descriptor reachable from
//!   `index.json` (or built from `manifest.json`) must name a blob that is in the archive (or
//!   already in the destination) with exactly its declared size, unless it is non-distributable
//!   (`urls`), and every manifest on the way must parse;
//! - other files in the root or in other directories are ignored and never written.
//!
//! Blobs are unpacked into a staging directory created beside the destination (in its parent),
//! so a refused archive leaves the destination exactly as it was, and a destination that did not
//! exist still does not. Only after the whole archive was validated are the staged blobs renamed
//! into `blobs/` (they were verified and fsynced already), under the destination's gc pin, and the
//! entries merged into `index.json` in one transaction: entries are added, none is dropped, and a
//! tag that already names another digest is a conflict unless `force`. A new destination is built
//! completely in the staging directory and renamed into place at the end.
//!
//! Referrer records (subject annotations, fallback tags, referrers responses) arriving with the
//! archive are re-recorded in the destination's convention when it uses one consistently, so the
//! destination stays consistent; otherwise they are added as they are (records for the same
//! subject are merged, never replaced).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::export::{Compression, DOCKER_CONFIG, record_annotation};
use super::tar_reader::{Kind, TarError, TarReader};
use super::{Relation, dedup_relations};
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, IoContext, Result};
use crate::layout::{Expected, Layout, MAX_MANIFEST_SIZE, OCI_LAYOUT_FILE, Progress, sync_dir};
use crate::model::{Descriptor, ImageIndex, Manifest, annotations, media};
use crate::reference::validate_ref_name;
use crate::referrers::{Mode, ResponseKey, fallback_tag, keys, looks_like_fallback_tag};

/// Docker's layer media types, for manifests built from classic `docker save` archives.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Small files read into memory: `oci-layout` and the like.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// How an import treats the destination.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Let tags from the archive replace tags in the destination that name another digest.
    pub force: bool,
    /// The input's name for messages (a file name, or `stdin`).
    pub name: String,
}

/// What the archive turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    /// An OCI image layout (`oci-layout`, `index.json`, `blobs/`).
    OciLayout,
    /// A classic `docker save` archive (`manifest.json` and layer tarballs).
    DockerArchive,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub format: ArchiveFormat,
    pub compression: Compression,
    /// The destination did not exist and was created.
    pub created: bool,
    /// Blobs moved into the destination, and their total size.
    pub blobs_added: usize,
    pub bytes_added: u64,
    /// Blobs the destination had already.
    pub blobs_present: usize,
    /// `index.json` entries added.
    pub entries_added: usize,
    /// Tags the archive carries.
    pub tags: Vec<String>,
    /// Tags that named another digest and were replaced (only with `force`).
    pub replaced: Vec<String>,
    /// Referrer relations in the archive.
    pub referrers: usize,
    /// The convention they were re-recorded in, when the destination uses one consistently.
    pub mode: Option<Mode>,
}

/// Imports the archive read from `input` into the layout at `dir` (created when missing).
/// Nothing is written into `dir` unless the whole archive is valid.
pub fn import(
    input: &mut dyn Read,
    dir: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let name = if options.name.is_empty() {
        "archive".to_string()
    } else {
        options.name.clone()
    };
    let target = Destination::inspect(dir)?;
    let staging = Staging::create(dir, &target)?;
    let mut counted = Counting {
        inner: input,
        progress,
    };
    let (compression, reader) = decompress(&mut counted, &name)?;
    let collected = collect(reader, &staging, &name)?;
    let incoming = validate(collected, &target, &staging, &name)?;
    let mode_in_use = match &target {
        Destination::Existing(l) => l.referrers_mode_in_use()?,
        _ => None,
    };
    // Conflicts are found before anything is written.
    if let Destination::Existing(l) = &target {
        let mut index = l.read_index()?;
        merge(&mut index, &incoming, mode_in_use, options.force)?;
    }
    commit(
        dir,
        target,
        &staging,
        incoming,
        mode_in_use,
        options,
        compression,
    )
}

// ---- destination and staging -----------------------------------------------------------------

enum Destination {
    Existing(Layout),
    /// An empty directory: made a layout when the import succeeds.
    Empty,
    Missing,
}

impl Destination {
    fn inspect(dir: &Path) -> Result<Self> {
        match fs::metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Destination::Missing),
            Err(e) => Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            }),
            Ok(m) if !m.is_dir() => Err(Error::NotALayout {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
            }),
            Ok(_) => {
                if dir.join(OCI_LAYOUT_FILE).exists() {
                    return Ok(Destination::Existing(Layout::open(dir)?));
                }
                if fs::read_dir(dir).at(dir)?.next().is_none() {
                    Ok(Destination::Empty)
                } else {
                    Err(Error::Conflict(format!(
                        "{}: directory is not empty and has no oci-layout file; refusing to import into it",
                        dir.display()
                    )))
                }
            }
        }
    }
}

/// A private directory beside the destination, removed when dropped.
struct Staging {
    dir: Option<tempfile::TempDir>,
    /// `DIR/ingest` when we had to create it for a fallback staging area.
    created_ingest: Option<PathBuf>,
}

impl Staging {
    fn create(dir: &Path, target: &Destination) -> Result<Staging> {
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

    fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("."))
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
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

// ---- reading the archive ---------------------------------------------------------------------

struct Counting<'a> {
    inner: &'a mut dyn Read,
    progress: &'a dyn Progress,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

fn corrupt(name: &str, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: PathBuf::from(name),
        reason: reason.into(),
    }
}

/// Recognizes gzip and zstd by their magic bytes; anything else is read as a plain tar.
fn decompress<'a>(
    input: &'a mut dyn Read,
    name: &str,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Io {
                    path: name.into(),
                    source: e,
                });
            }
        }
    }
    let head = head[..got].to_vec();
    if head.is_empty() {
        return Err(corrupt(name, "the input is empty"));
    }
    let buffered = BufReader::with_capacity(1 << 20, io::Cursor::new(head.clone()).chain(input));
    if head.starts_with(&[0x1f, 0x8b]) {
        let dec = flate2::bufread::MultiGzDecoder::new(buffered);
        return Ok((
            Compression::Gzip,
            Box::new(Labelled {
                inner: dec,
                label: "gzip",
            }),
        ));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = zstd::stream::read::Decoder::with_buffer(buffered).at(name)?;
        return Ok((
            Compression::Zstd,
            Box::new(Labelled {
                inner: dec,
                label: "zstd",
            }),
        ));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(corrupt(
            name,
            "xz-compressed archives are not supported (use tar, tar+gzip or tar+zstd)",
        ));
    }
    if head.starts_with(b"BZh") {
        return Err(corrupt(
            name,
            "bzip2-compressed archives are not supported (use tar, tar+gzip or tar+zstd)",
        ));
    }
    Ok((Compression::None, Box::new(buffered)))
}

/// Says which decompressor failed in its errors (a truncated stream stays `UnexpectedEof`).
struct Labelled<R> {
    inner: R,
    label: &'static str,
}

impl<R: Read> Read for Labelled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("invalid {} stream: {e}", self.label)))
    }
}

/// A file unpacked into the staging area, hashed.
#[derive(Debug, Clone)]
struct Staged {
    path: PathBuf,
    digest: Digest,
    size: u64,
    /// Where it was in the archive, for messages.
    entry: String,
}

#[derive(Default)]
struct Collected {
    oci_layout: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    docker_manifest: Option<Vec<u8>>,
    /// Verified `blobs/<alg>/<encoded>` members.
    blobs: BTreeMap<Digest, Staged>,
    /// Every staged file by its path in the archive (blobs and docker layer/config files).
    files: HashMap<String, Staged>,
    /// classic `docker save` layer symlinks: path -> target path.
    aliases: HashMap<String, String>,
}

/// Reads every member once, staging blobs and the files a docker archive may need.
fn collect(reader: Box<dyn Read + '_>, staging: &Staging, name: &str) -> Result<Collected> {
    // The counter lives in the staging area; interior mutability is not needed: one pass.
    let mut staging_files = StagingFiles {
        staging,
        counter: 0,
    };
    let mut tar = TarReader::new(reader);
    let mut seen: HashSet<String> = HashSet::new();
    let mut c = Collected::default();
    loop {
        let head = match tar.next() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(TarError::Io(e)) => return Err(read_error(name, None, e)),
            Err(e) => return Err(corrupt(name, e.to_string())),
        };
        let shown = String::from_utf8_lossy(&head.name).into_owned();
        let bad = |reason: String| {
            corrupt(
                name,
                format!(
                    "entry {shown:?} {reason}; the archive was refused and nothing was imported"
                ),
            )
        };
        let path = match normalize(&head.name) {
            Ok(Some(p)) => p,
            Ok(None) if head.kind == Kind::Dir => continue,
            Ok(None) => return Err(bad("names no file".into())),
            Err(reason) => return Err(bad(reason)),
        };
        if !seen.insert(path.clone()) {
            return Err(bad("appears twice in the archive".into()));
        }
        let parts: Vec<&str> = path.split('/').collect();
        match &head.kind {
            Kind::File => {}
            Kind::Dir => {
                if parts[0] == "blobs" && parts.len() > 2 {
                    return Err(bad(
                        "is a directory where blobs/<algorithm>/ may only hold blob files".into(),
                    ));
                }
                continue;
            }
            Kind::Symlink(target) => match legacy_alias(&parts, target) {
                Some(to) => {
                    c.aliases.insert(path, to);
                    continue;
                }
                None => {
                    return Err(bad(format!(
                        "is a symbolic link (to {:?}); links are not allowed",
                        String::from_utf8_lossy(target)
                    )));
                }
            },
            Kind::HardLink(target) => {
                return Err(bad(format!(
                    "is a hard link (to {:?}); links are not allowed",
                    String::from_utf8_lossy(target)
                )));
            }
            other => {
                return Err(bad(format!(
                    "is a {}; only regular files and directories are allowed",
                    other.describe()
                )));
            }
        }
        let size = head.size;
        match parts.as_slice() {
            ["oci-layout"] => {
                c.oci_layout = Some(read_small(&mut tar, size, MAX_SMALL_FILE, name, &path)?)
            }
            ["index.json"] => {
                c.index = Some(read_small(&mut tar, size, MAX_MANIFEST_SIZE, name, &path)?)
            }
            ["manifest.json"] => {
                c.docker_manifest =
                    Some(read_small(&mut tar, size, MAX_MANIFEST_SIZE, name, &path)?)
            }
            ["blobs", alg, enc] => {
                let digest = Digest::parse(&format!("{alg}:{enc}"))
                    .map_err(|e| bad(format!("is not named by a valid digest ({e})")))?;
                let algorithm = digest.known_algorithm().map_err(|_| {
                    bad(format!(
                        "uses the digest algorithm {alg:?}, which ocistow cannot verify"
                    ))
                })?;
                let dest = staging.blob_path(&digest);
                let (actual, written) = stage(&mut tar, &dest, algorithm, name, &path)?;
                if actual != digest {
                    return Err(Error::DigestMismatch {
                        what: format!("{name}: entry {path:?} (the archive was refused)"),
                        expected: digest,
                        actual,
                    });
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
                return Err(bad(
                    "is not a blob file: under blobs/ only blobs/<algorithm>/<encoded> is allowed"
                        .into(),
                ));
            }
            [_, "layer.tar"] => {
                let dest = staging_files.next()?;
                let (digest, written) = stage(&mut tar, &dest, Algorithm::Sha256, name, &path)?;
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
            [file] if file.ends_with(".json") => {
                let dest = staging_files.next()?;
                let (digest, written) = stage(&mut tar, &dest, Algorithm::Sha256, name, &path)?;
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
    Ok(c)
}

struct StagingFiles<'a> {
    staging: &'a Staging,
    counter: u64,
}

impl StagingFiles<'_> {
    fn next(&mut self) -> Result<PathBuf> {
        let dir = self.staging.path().join("files");
        fs::create_dir_all(&dir).at(&dir)?;
        self.counter += 1;
        Ok(dir.join(self.counter.to_string()))
    }
}

fn read_error(name: &str, entry: Option<&str>, e: io::Error) -> Error {
    let at = entry.map(|p| format!("entry {p:?}: ")).unwrap_or_default();
    match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(
            name,
            format!("{at}the archive is truncated; nothing was imported"),
        ),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => corrupt(
            name,
            format!("{at}cannot be read ({e}); nothing was imported"),
        ),
        _ => Error::Io {
            path: name.into(),
            source: e,
        },
    }
}

fn read_small<R: Read>(
    tar: &mut TarReader<R>,
    size: u64,
    cap: u64,
    name: &str,
    path: &str,
) -> Result<Vec<u8>> {
    if size > cap {
        return Err(corrupt(
            name,
            format!(
                "entry {path:?} is {size} bytes, more than the {cap} accepted; nothing was imported"
            ),
        ));
    }
    let mut buf = Vec::with_capacity(size as usize);
    tar.data()
        .read_to_end(&mut buf)
        .map_err(|e| read_error(name, Some(path), e))?;
    Ok(buf)
}

/// Unpacks the current member into `dest`, hashing it; the file is fsynced.
fn stage<R: Read>(
    tar: &mut TarReader<R>,
    dest: &Path,
    algorithm: Algorithm,
    name: &str,
    path: &str,
) -> Result<(Digest, u64)> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    let file = File::create(dest).at(dest)?;
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .at(dest)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = algorithm.hasher();
    let mut count = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut data = tar.data();
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(name, Some(path), e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).at(dest)?;
        count += n as u64;
    }
    let file = out.into_inner().map_err(|e| Error::Io {
        path: dest.to_path_buf(),
        source: e.into_error(),
    })?;
    file.sync_all().at(dest)?;
    Ok((hasher.finish(), count))
}

/// A member path as plain relative components joined by `/`; `None` for the root itself.
fn normalize(name: &[u8]) -> std::result::Result<Option<String>, String> {
    let s = std::str::from_utf8(name).map_err(|_| "has a name that is not UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err("has an absolute path".into());
    }
    if s.contains('\0') || s.contains('\\') {
        return Err("has a name with a NUL byte or a backslash".into());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a path with '..', which could leave the layout".into()),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The target of a classic `docker save` layer symlink (`<id>/layer.tar -> ../<id2>/layer.tar`,
/// or `-> ../blobs/<alg>/<hex>`), resolved inside the archive; `None` for any other link.
fn legacy_alias(parts: &[&str], target: &[u8]) -> Option<String> {
    if parts.len() != 2 || parts[1] != "layer.tar" {
        return None;
    }
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') {
        return None;
    }
    let mut resolved: Vec<&str> = vec![parts[0]];
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                resolved.pop()?;
            }
            p => resolved.push(p),
        }
    }
    let ok = match resolved.as_slice() {
        [id, "layer.tar"] => *id != parts[0],
        ["blobs", _, _] => true,
        _ => false,
    };
    ok.then(|| resolved.join("/"))
}

// ---- validation ------------------------------------------------------------------------------

/// What the archive adds, validated.
struct Incoming {
    format: ArchiveFormat,
    entries: Vec<Descriptor>,
    blobs: BTreeMap<Digest, Staged>,
    /// Relations recorded in the archive (by an entry or a record), to carry over.
    relations: Vec<Relation>,
    all_relations: usize,
}

fn validate(c: Collected, target: &Destination, staging: &Staging, name: &str) -> Result<Incoming> {
    let existing = match target {
        Destination::Existing(l) => Some(l),
        _ => None,
    };
    if let Some(bytes) = &c.oci_layout {
        check_oci_layout(bytes, name)?;
        let Some(index) = &c.index else {
            return Err(corrupt(
                name,
                "the archive has oci-layout but no index.json; nothing was imported",
            ));
        };
        return validate_oci(index, c.blobs, existing, name);
    }
    if let Some(manifest) = &c.docker_manifest {
        return validate_docker(manifest, &c, staging, name);
    }
    if c.index.is_some() {
        return Err(corrupt(
            name,
            "the archive has index.json but no oci-layout file; nothing was imported",
        ));
    }
    Err(corrupt(
        name,
        "neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json); nothing was imported",
    ))
}

fn check_oci_layout(bytes: &[u8], name: &str) -> Result<()> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(name, format!("oci-layout is not valid JSON: {e}")))?;
    match value.get("imageLayoutVersion") {
        Some(Value::String(v)) if v == "1.0.0" => Ok(()),
        other => Err(corrupt(
            name,
            format!(
                "oci-layout has imageLayoutVersion {}, not \"1.0.0\"",
                other
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "missing".into())
            ),
        )),
    }
}

/// The kind of a record entry, as far as merging goes.
enum Record {
    Response(ResponseKey, String),
    Fallback(String),
    Subject,
    Other,
}

fn record_kind(e: &Descriptor) -> Record {
    for (key, k) in [
        (keys::OCI_RESPONSE_SUBJECT, ResponseKey::Oci),
        (keys::OLAREG_RESPONSE_SUBJECT, ResponseKey::Olareg),
    ] {
        if let Some(s) = e.annotation(key) {
            return Record::Response(k, s.to_string());
        }
    }
    if let Some(tag) = e.ref_name()
        && looks_like_fallback_tag(tag)
        && media::is_index(e.media_type())
    {
        return Record::Fallback(tag.to_string());
    }
    if e.annotation(keys::CONTAINERD_SUBJECT).is_some() && e.ref_name().is_none() {
        return Record::Subject;
    }
    Record::Other
}

fn validate_oci(
    index_bytes: &[u8],
    blobs: BTreeMap<Digest, Staged>,
    existing: Option<&Layout>,
    name: &str,
) -> Result<Incoming> {
    let index = ImageIndex::parse(index_bytes)
        .map_err(|r| corrupt(name, format!("index.json: {r}; nothing was imported")))?;
    let mut tags: HashMap<&str, &Digest> = HashMap::new();
    for e in index.manifests() {
        if let Some(t) = e.ref_name()
            && let Some(prev) = tags.insert(t, e.digest())
            && prev != e.digest()
        {
            return Err(corrupt(
                name,
                format!(
                    "index.json gives tag {t:?} to two digests ({prev} and {}); nothing was imported",
                    e.digest()
                ),
            ));
        }
    }
    // Walk everything index.json reaches (iteratively: nesting depth is the archive's choice).
    let mut stack: Vec<(Descriptor, Option<Digest>, bool)> = index
        .manifests()
        .iter()
        .rev()
        .map(|e| {
            (
                e.clone(),
                None,
                matches!(record_kind(e), Record::Response(..) | Record::Fallback(_)),
            )
        })
        .collect();
    let mut recorded: HashSet<Digest> = index
        .manifests()
        .iter()
        .map(|e| e.digest().clone())
        .collect();
    let mut visited: HashSet<Digest> = HashSet::new();
    let mut relations: Vec<Relation> = Vec::new();
    while let Some((desc, parent, is_record)) = stack.pop() {
        let digest = desc.digest().clone();
        if !visited.insert(digest.clone()) {
            continue;
        }
        let named_by = match &parent {
            Some(p) => format!("manifest {p}"),
            None => "index.json".to_string(),
        };
        enum Source<'a> {
            Staged(&'a Staged),
            Dir(&'a Layout),
        }
        let source = if let Some(s) = blobs.get(&digest) {
            if s.size != desc.size() {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "{name}: entry {:?} (declared by {named_by}; the archive was refused)",
                        s.entry
                    ),
                    expected: desc.size(),
                    actual: s.size,
                });
            }
            Source::Staged(s)
        } else if let Some(l) = existing
            && let Some(size) = l.blob_size(&digest)?
        {
            if size != desc.size() {
                return Err(Error::SizeMismatch {
                    what: format!("blob {digest} already in {}", l.root().display()),
                    expected: desc.size(),
                    actual: size,
                });
            }
            Source::Dir(l)
        } else if !desc.urls().is_empty() {
            continue;
        } else {
            return Err(Error::NotFound {
                what: format!("blob {digest} named by {named_by} in {name}"),
                hint:
                    " (it is neither in the archive nor in the destination; nothing was imported)"
                        .into(),
            });
        };
        let mt = desc.media_type();
        let maybe = media::is_manifest(mt)
            || ((mt.is_empty() || mt == "application/octet-stream") && desc.size() <= 4 << 20);
        if !maybe {
            continue;
        }
        let bytes = match source {
            Source::Staged(s) => {
                if s.size > MAX_MANIFEST_SIZE {
                    return Err(corrupt(
                        name,
                        format!(
                            "manifest {digest} is {} bytes, too large for a manifest",
                            s.size
                        ),
                    ));
                }
                fs::read(&s.path).at(&s.path)?
            }
            Source::Dir(l) => l.read_blob(&digest)?,
        };
        let effective = if media::is_manifest(mt) {
            mt.to_string()
        } else {
            match Manifest::sniff_media_type(&bytes) {
                Some(m) if media::is_manifest(&m) => m,
                _ => continue,
            }
        };
        let manifest = Manifest::parse(&effective, &bytes).map_err(|r| {
            corrupt(
                name,
                format!("blob {digest} (named by {named_by}) is not a valid {effective}: {r}; nothing was imported"),
            )
        })?;
        if let Some(subject) = manifest.subject() {
            let mut d = Descriptor::new(&effective, digest.clone(), desc.size());
            if let Some(a) = manifest.annotations() {
                d.set_annotations(a.clone());
            }
            if let Some(at) = manifest.effective_artifact_type() {
                d.set_artifact_type(at);
            }
            relations.push(Relation {
                referrer: d,
                subject: subject.digest().clone(),
            });
        }
        let children: Vec<Descriptor> = manifest.children().into_iter().cloned().collect();
        for child in children.into_iter().rev() {
            if is_record {
                recorded.insert(child.digest().clone());
            }
            stack.push((child, Some(digest.clone()), false));
        }
    }
    dedup_relations(&mut relations);
    let all_relations = relations.len();
    relations.retain(|r| recorded.contains(r.referrer.digest()));
    Ok(Incoming {
        format: ArchiveFormat::OciLayout,
        entries: index.manifests().to_vec(),
        blobs,
        relations,
        all_relations,
    })
}

fn validate_docker(
    manifest_json: &[u8],
    c: &Collected,
    staging: &Staging,
    name: &str,
) -> Result<Incoming> {
    let bad = |reason: String| {
        corrupt(
            name,
            format!("manifest.json: {reason}; nothing was imported"),
        )
    };
    let doc: Value =
        serde_json::from_slice(manifest_json).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let Value::Array(images) = doc else {
        return Err(bad("not a list of images".into()));
    };
    if images.is_empty() {
        return Err(bad("lists no image".into()));
    }
    let resolve = |p: &str| -> Result<&Staged> {
        let norm = normalize(p.as_bytes())
            .ok()
            .flatten()
            .ok_or_else(|| bad(format!("{p:?} is not a path inside the archive")))?;
        let norm = c.aliases.get(&norm).cloned().unwrap_or(norm);
        c.files
            .get(&norm)
            .ok_or_else(|| bad(format!("names {p:?}, which is not a file in the archive")))
    };
    let mut blobs: BTreeMap<Digest, Staged> = c.blobs.clone();
    let mut entries: Vec<Descriptor> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let Value::Object(obj) = image else {
            return Err(bad(format!("image {i} is not an object")));
        };
        let config_path = obj
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("image {i} has no \"Config\" path")))?;
        let config = resolve(config_path)?;
        if config.size > MAX_MANIFEST_SIZE {
            return Err(bad(format!("config {config_path:?} is too large")));
        }
        let config_bytes = fs::read(&config.path).at(&config.path)?;
        if !matches!(
            serde_json::from_slice::<Value>(&config_bytes),
            Ok(Value::Object(_))
        ) {
            return Err(bad(format!("config {config_path:?} is not a JSON object")));
        }
        blobs
            .entry(config.digest.clone())
            .or_insert_with(|| config.clone());
        let sources = obj.get("LayerSources").and_then(Value::as_object);
        let layer_paths = match obj.get("Layers") {
            Some(Value::Array(a)) => a,
            _ => return Err(bad(format!("image {i} has no \"Layers\" list"))),
        };
        let mut layers: Vec<Value> = Vec::new();
        for lp in layer_paths {
            let lp = lp
                .as_str()
                .ok_or_else(|| bad(format!("image {i}: a layer path is not a string")))?;
            let staged = resolve(lp)?;
            if let Some(src) = sources.and_then(|s| s.get(staged.digest.as_str())) {
                let desc = Descriptor::from_value(src.clone())
                    .map_err(|e| bad(format!("LayerSources of {lp:?}: {e}")))?;
                if desc.digest() == &staged.digest {
                    if desc.size() != staged.size {
                        return Err(Error::SizeMismatch {
                            what: format!(
                                "{name}: entry {:?} (the archive was refused)",
                                staged.entry
                            ),
                            expected: desc.size(),
                            actual: staged.size,
                        });
                    }
                    blobs
                        .entry(staged.digest.clone())
                        .or_insert_with(|| staged.clone());
                } else if desc.urls().is_empty() {
                    return Err(bad(format!(
                        "LayerSources gives {lp:?} the digest {}, which has no file and no urls",
                        desc.digest()
                    )));
                }
                layers.push(Value::Object(desc.fields().clone()));
                continue;
            }
            let mt = if starts_with_gzip(&staged.path)? {
                DOCKER_LAYER_GZIP
            } else {
                DOCKER_LAYER
            };
            blobs
                .entry(staged.digest.clone())
                .or_insert_with(|| staged.clone());
            layers.push(
                json!({"mediaType": mt, "size": staged.size, "digest": staged.digest.as_str()}),
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest.as_str()},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
        let path = staging.blob_path(&digest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        let mut f = File::create(&path).at(&path)?;
        f.write_all(&bytes).at(&path)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .at(&path)?;
        f.sync_all().at(&path)?;
        blobs.insert(
            digest.clone(),
            Staged {
                path,
                digest: digest.clone(),
                size: bytes.len() as u64,
                entry: format!("manifest.json image {i}"),
            },
        );
        let base = Descriptor::new(media::DOCKER_MANIFEST, digest, bytes.len() as u64);
        let repo_tags: Vec<&str> = match obj.get("RepoTags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or_else(|| bad(format!("image {i}: a RepoTag is not a string")))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(bad(format!("image {i}: RepoTags is not a list"))),
        };
        if repo_tags.is_empty() {
            entries.push(base.clone());
        }
        for tag in repo_tags {
            validate_ref_name(tag).map_err(|r| {
                bad(format!(
                    "image {i}: tag {tag:?} is not a valid reference name: {r}"
                ))
            })?;
            let mut e = base.clone();
            e.set_annotation(annotations::REF_NAME, tag);
            entries.push(e);
        }
    }
    Ok(Incoming {
        format: ArchiveFormat::DockerArchive,
        entries,
        blobs,
        relations: Vec::new(),
        all_relations: 0,
    })
}

fn starts_with_gzip(path: &Path) -> Result<bool> {
    let mut head = [0u8; 2];
    let mut f = File::open(path).at(path)?;
    let n = f.read(&mut head).at(path)?;
    Ok(n == 2 && head == [0x1f, 0x8b])
}

// ---- merging and committing ------------------------------------------------------------------

#[derive(Default)]
struct Merged {
    added: usize,
    replaced: Vec<String>,
    /// Record indexes that differ from the destination's for the same subject: their relations
    /// are recorded again (merged) after the index transaction.
    rerecord: Vec<(Mode, ResponseKey, Digest)>,
}

/// Adds the incoming entries to `index`; a pure function of its inputs, so it can be tried on a
/// copy first (to find conflicts before writing) and then applied under the lock.
fn merge(
    index: &mut ImageIndex,
    incoming: &Incoming,
    mode_in_use: Option<(Mode, ResponseKey)>,
    force: bool,
) -> Result<Merged> {
    let mut out = Merged::default();
    let mut conflicts: Vec<String> = Vec::new();
    // Response records are read (by olareg) only with the layout's convert flag.
    let mut convert_flags: BTreeSet<&str> = BTreeSet::new();
    let keeps = |m: Mode, k: Option<ResponseKey>| match mode_in_use {
        None => true,
        Some((um, uk)) => um == m && k.is_none_or(|k| k == uk),
    };
    let subject_of_tag = |tag: &str| {
        incoming
            .relations
            .iter()
            .find(|r| fallback_tag(&r.subject) == tag)
            .map(|r| r.subject.clone())
    };
    for e in &incoming.entries {
        let entries = index.manifests_mut();
        match record_kind(e) {
            Record::Response(key, subject) => {
                if !keeps(Mode::Response, Some(key)) {
                    continue;
                }
                match entries
                    .iter()
                    .position(|x| x.annotation(key.subject_key()) == Some(subject.as_str()))
                {
                    Some(i) if entries[i].digest() == e.digest() => {}
                    Some(_) => {
                        if let Ok(d) = Digest::parse(&subject) {
                            out.rerecord.push((Mode::Response, key, d));
                        }
                    }
                    None => {
                        entries.push(e.clone());
                        out.added += 1;
                        convert_flags.insert(key.convert_key());
                    }
                }
                continue;
            }
            Record::Fallback(tag) => {
                if !keeps(Mode::Tag, None) {
                    continue;
                }
                match entries
                    .iter()
                    .position(|x| x.ref_name() == Some(tag.as_str()))
                {
                    Some(i) if entries[i].digest() == e.digest() => {}
                    Some(_) => {
                        if let Some(d) = subject_of_tag(&tag) {
                            out.rerecord.push((Mode::Tag, ResponseKey::Oci, d));
                        }
                    }
                    None => {
                        entries.push(e.clone());
                        out.added += 1;
                    }
                }
                continue;
            }
            Record::Subject if !keeps(Mode::Annotation, None) => continue,
            Record::Subject | Record::Other => {}
        }
        match e.ref_name() {
            Some(tag) => {
                let holders: Vec<&Digest> = entries
                    .iter()
                    .filter(|x| x.ref_name() == Some(tag))
                    .map(Descriptor::digest)
                    .collect();
                if holders.is_empty() {
                    entries.push(e.clone());
                    out.added += 1;
                } else if holders.iter().all(|d| *d == e.digest()) {
                    // Already there.
                } else if force {
                    entries.retain(|x| x.ref_name() != Some(tag));
                    entries.push(e.clone());
                    out.added += 1;
                    out.replaced.push(tag.to_string());
                } else {
                    let other = holders
                        .iter()
                        .find(|d| **d != e.digest())
                        .map(|d| d.to_string())
                        .unwrap_or_default();
                    conflicts.push(format!(
                        "{tag:?} is {other} in the destination but {} in the archive",
                        e.digest()
                    ));
                }
            }
            None => {
                match entries
                    .iter_mut()
                    .find(|x| x.ref_name().is_none() && x.digest() == e.digest())
                {
                    Some(x) => {
                        if let Some(s) = e.annotation(keys::CONTAINERD_SUBJECT)
                            && x.annotation(keys::CONTAINERD_SUBJECT).is_none()
                        {
                            x.set_annotation(keys::CONTAINERD_SUBJECT, s);
                            if x.artifact_type().is_none()
                                && let Some(at) = e.artifact_type()
                            {
                                x.set_artifact_type(at);
                            }
                        }
                    }
                    None => {
                        entries.push(e.clone());
                        out.added += 1;
                    }
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflict(format!(
            "tags conflict: {}; nothing was imported (use --force to let the archive's tags replace them)",
            conflicts.join("; ")
        )));
    }
    for flag in convert_flags {
        if index.annotation(flag) != Some("true") {
            index.set_annotation(flag, "true");
        }
    }
    if let Some((Mode::Annotation, _)) = mode_in_use {
        let before = index.manifests().len();
        for rel in &incoming.relations {
            record_annotation(index.manifests_mut(), &rel.referrer, &rel.subject);
        }
        out.added += index.manifests().len() - before;
    }
    Ok(out)
}

fn commit(
    dir: &Path,
    target: Destination,
    staging: &Staging,
    incoming: Incoming,
    mode_in_use: Option<(Mode, ResponseKey)>,
    options: &ImportOptions,
    compression: Compression,
) -> Result<ImportReport> {
    let (layout, new_root) = match target {
        Destination::Existing(l) => (l, None),
        Destination::Empty => (Layout::init(dir)?, None),
        Destination::Missing => {
            let root = staging.path().join("layout");
            (Layout::init(&root)?, Some(root))
        }
    };
    let mut report = ImportReport {
        format: incoming.format,
        compression,
        created: new_root.is_some(),
        blobs_added: 0,
        bytes_added: 0,
        blobs_present: 0,
        entries_added: 0,
        tags: incoming
            .entries
            .iter()
            .filter_map(|e| e.ref_name().map(String::from))
            .collect(),
        replaced: Vec::new(),
        referrers: incoming.all_relations,
        mode: mode_in_use.map(|(m, _)| m),
    };
    {
        let _pin = layout.pin()?;
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for staged in incoming.blobs.values() {
            if place(&layout, staged, &mut dirs)? {
                report.blobs_added += 1;
                report.bytes_added += staged.size;
            } else {
                report.blobs_present += 1;
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        let merged =
            layout.edit_index(|index| merge(index, &incoming, mode_in_use, options.force))?;
        report.entries_added = merged.added;
        report.replaced = merged.replaced;
        for (mode, key, subject) in &merged.rerecord {
            for rel in incoming.relations.iter().filter(|r| &r.subject == subject) {
                layout.record_referrer(&rel.referrer, subject, *mode, *key)?;
            }
        }
        if let Some((mode @ (Mode::Tag | Mode::Response), key)) = mode_in_use {
            for rel in &incoming.relations {
                layout.record_referrer(&rel.referrer, &rel.subject, mode, key)?;
            }
        }
    }
    if let Some(root) = new_root {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).at(&parent)?;
        if dir.exists() {
            return Err(Error::Conflict(format!(
                "{} appeared while the archive was imported; nothing was imported",
                dir.display()
            )));
        }
        fs::rename(&root, dir).at(dir)?;
        sync_dir(&parent)?;
    }
    Ok(report)
}

/// Moves a staged, verified blob into the layout; false when the layout had it already.
fn place(layout: &Layout, staged: &Staged, dirs: &mut BTreeSet<PathBuf>) -> Result<bool> {
    let digest = &staged.digest;
    match layout.blob_size(digest)? {
        Some(size) if size == staged.size => return Ok(false),
        Some(size) => {
            return Err(Error::Corrupt {
                path: layout.blob_path(digest),
                reason: format!(
                    "the layout already has this blob with {size} bytes, but its verified content has {} (run fsck)",
                    staged.size
                ),
            });
        }
        None => {}
    }
    let target = layout.blob_path(digest);
    let parent = target.parent().unwrap_or(layout.root()).to_path_buf();
    if !parent.is_dir() {
        fs::create_dir_all(&parent).at(&parent)?;
        dirs.insert(layout.root().join(crate::layout::BLOBS_DIR));
    }
    match fs::rename(&staged.path, &target) {
        Ok(()) => {
            dirs.insert(parent);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let mut f = File::open(&staged.path).at(&staged.path)?;
            layout.write_blob(
                &mut f,
                Expected {
                    digest: Some(digest.clone()),
                    size: Some(staged.size),
                },
            )?;
            Ok(true)
        }
        Err(e) => Err(Error::Io {
            path: target,
            source: e,
        }),
    }
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

    #[test]
    fn docker_layer_aliases_stay_inside() {
        assert_eq!(
            legacy_alias(&["b", "layer.tar"], b"../a/layer.tar").as_deref(),
            Some("a/layer.tar")
        );
        assert_eq!(
            legacy_alias(&["b", "layer.tar"], b"../blobs/sha256/abc").as_deref(),
            Some("blobs/sha256/abc")
        );
        assert!(legacy_alias(&["b", "layer.tar"], b"../../etc/passwd").is_none());
        assert!(legacy_alias(&["b", "layer.tar"], b"/etc/passwd").is_none());
        assert!(legacy_alias(&["b", "other"], b"../a/layer.tar").is_none());
        assert!(legacy_alias(&["b", "layer.tar"], b"layer.tar").is_none());
    }
}
