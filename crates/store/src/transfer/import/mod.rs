//! Importing a tarball into a layout: OCI layouts (as `export` writes them, or regctl, skopeo,
//! containerd, `docker save` >= 25) and classic `docker save` archives (`manifest.json`,
//! `repositories`, `<id>/layer.tar`, `<hex>.json`), plain or compressed with gzip or zstd
//! (recognized by their magic bytes, not by a file name).
//!
//! The archive is untrusted. It is read as a stream, and everything is checked before anything
//! is written into the destination. From a file ([`import_seekable`]) it is read twice: first
//! for what its descriptors declare, so that only declared members are staged, each at exactly
//! its declared size; from a stream ([`import`]) a member is held to
//! what the members before it declare, and the members nothing declared yet are staged within
//! [`ImportOptions::undeclared_limit`] bytes in total. Then:
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

mod docker;
mod merge;
mod oci;
mod plan;
mod staging;

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{ArchiveProblem, Corruption, Error, IoContext, Result};
use crate::layout::{Progress, read_full};
use crate::model::Descriptor;
use crate::referrers::Mode;
use crate::transfer::Relation;
use crate::transfer::export::Compression;

use docker::validate_docker;
use merge::{commit, merge};
use oci::{check_oci_layout, validate_oci};
use plan::{Plan, scan};
use staging::{Collected, Destination, Staged, Staging, collect};

/// Docker's layer media type, for manifests built from classic `docker save` archives.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's media type for a gzip-compressed layer of a classic `docker save` archive.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Small files read into memory: `oci-layout` and the like.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// The default of [`ImportOptions::undeclared_limit`]: 512 MiB.
pub const DEFAULT_UNDECLARED_LIMIT: u64 = 512 << 20;

/// How an import treats the destination.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Let tags from the archive replace tags in the destination that name another digest.
    pub force: bool,
    /// The input's name for messages (a file name, or `stdin`).
    pub name: String,
    /// Leave out blobs and layer files that nothing in the archive references, instead of
    /// refusing the archive.
    pub skip_unreferenced: bool,
    /// From a stream ([`import`]), the most bytes staged of members that nothing before them
    /// declares (blobs before `index.json`, as `docker save` writes them; layers before
    /// `manifest.json`); a member that would go past it refuses the archive with
    /// [`Error::UndeclaredTooLarge`] before a byte of it is staged. [`import_seekable`] reads
    /// the archive's declarations first and never stages an undeclared member.
    pub undeclared_limit: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            force: false,
            name: String::new(),
            skip_unreferenced: false,
            undeclared_limit: DEFAULT_UNDECLARED_LIMIT,
        }
    }
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
#[non_exhaustive]
pub struct ImportReport {
    /// What the archive was.
    pub format: ArchiveFormat,
    /// How it was compressed (recognized by its magic bytes).
    pub compression: Compression,
    /// The destination did not exist and was created.
    pub created: bool,
    /// Blobs moved into the destination.
    pub blobs_added: usize,
    /// Their total size in bytes.
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
    /// Archive members nothing referenced, left out (only with `skip_unreferenced`).
    pub skipped: Vec<String>,
}

/// Imports the archive read from `input`, a stream, into the layout at `dir` (created when
/// missing). Nothing is written into `dir` unless the whole archive is valid. Members nothing
/// before them declares are staged within [`ImportOptions::undeclared_limit`]; an archive in a
/// file is better given to [`import_seekable`].
pub fn import(
    input: &mut dyn Read,
    dir: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let target = Destination::inspect(dir)?;
    import_planned(input, dir, target, Plan::streaming(), options, progress)
}

/// Imports an archive that can be read twice (a file) into the layout at `dir`, as [`import`]
/// does, but reads it first for what its descriptors declare: only the members they declare
/// are staged, each at exactly its declared size, in whatever order the archive has them.
/// Reads from the input's current position; progress is told of the second reading only.
pub fn import_seekable<R: Read + Seek>(
    input: &mut R,
    dir: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let name = input_name(options);
    let target = Destination::inspect(dir)?;
    let start = input.stream_position().at(&name)?;
    let plan = {
        let existing = match &target {
            Destination::Existing(l) => Some(l),
            _ => None,
        };
        match decompress(input, &name) {
            Ok((_, reader)) => scan(reader, existing),
            // The second reading says what is wrong.
            Err(_) => Plan::streaming(),
        }
    };
    input.seek(SeekFrom::Start(start)).at(&name)?;
    import_planned(input, dir, target, plan, options, progress)
}

fn input_name(options: &ImportOptions) -> String {
    if options.name.is_empty() {
        "archive".to_string()
    } else {
        options.name.clone()
    }
}

fn import_planned(
    input: &mut dyn Read,
    dir: &Path,
    target: Destination,
    plan: Plan,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let name = input_name(options);
    let staging = Staging::create(dir, &target)?;
    let mut counted = Counting {
        inner: input,
        progress,
    };
    let (compression, reader) = decompress(&mut counted, &name)?;
    let collected = collect(reader, &staging, &name, plan, options.undeclared_limit)?;
    let (incoming, skipped) = validate(collected, &target, &staging, options, &name)?;
    let mode_in_use = match &target {
        Destination::Existing(l) => l.referrers_mode_in_use()?,
        _ => None,
    };
    // Conflicts are found before anything is written.
    if let Destination::Existing(l) = &target {
        let mut index = l.read_index()?;
        merge(&mut index, &incoming, mode_in_use, options.force)?;
    }
    let mut report = commit(
        dir,
        target,
        &staging,
        &incoming,
        mode_in_use,
        options,
        compression,
    )?;
    report.skipped = skipped;
    Ok(report)
}

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

/// The archive `name` is refused (nothing was imported).
fn corrupt(name: &str, problem: ArchiveProblem) -> Error {
    Error::Corrupt {
        path: PathBuf::from(name),
        reason: Corruption::Archive(Box::new(problem)),
    }
}

/// Recognizes gzip and zstd by their magic bytes; anything else is read as a plain tar.
fn decompress<'a>(
    input: &'a mut dyn Read,
    name: &str,
) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let got = read_full(input, &mut head).map_err(|source| Error::Io {
        path: name.into(),
        source,
    })?;
    let head = head[..got].to_vec();
    if head.is_empty() {
        return Err(corrupt(name, ArchiveProblem::Empty));
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
        return Err(corrupt(name, ArchiveProblem::Xz));
    }
    if head.starts_with(b"BZh") {
        return Err(corrupt(name, ArchiveProblem::Bzip2));
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

/// What the archive adds, validated.
struct Incoming {
    format: ArchiveFormat,
    entries: Vec<Descriptor>,
    blobs: BTreeMap<Digest, Staged>,
    /// Relations recorded in the archive (by an entry or a record), to carry over.
    relations: Vec<Relation>,
    all_relations: usize,
}

/// Validates the archive; members that nothing references refuse it (or, with
/// `skip_unreferenced`, are returned by name and left out).
fn validate(
    c: Collected,
    target: &Destination,
    staging: &Staging,
    options: &ImportOptions,
    name: &str,
) -> Result<(Incoming, Vec<String>)> {
    let mut members: Vec<(Digest, String)> = c
        .blobs
        .values()
        .chain(
            c.files
                .iter()
                .filter(|(p, _)| p.ends_with("/layer.tar"))
                .map(|(_, s)| s),
        )
        .map(|s| (s.digest.clone(), s.entry.clone()))
        .collect();
    let unstaged = c.unstaged.clone();
    let incoming = validate_members(c, target, staging, name)?;
    members.retain(|(d, _)| !incoming.blobs.contains_key(d));
    let mut unreferenced: Vec<String> = members.into_iter().map(|(_, e)| e).collect();
    unreferenced.extend(unstaged);
    unreferenced.sort();
    unreferenced.dedup();
    if !unreferenced.is_empty() && !options.skip_unreferenced {
        return Err(corrupt(
            name,
            ArchiveProblem::Unreferenced {
                members: unreferenced,
            },
        ));
    }
    Ok((incoming, unreferenced))
}

fn validate_members(
    c: Collected,
    target: &Destination,
    staging: &Staging,
    name: &str,
) -> Result<Incoming> {
    let existing = match target {
        Destination::Existing(l) => Some(l),
        _ => None,
    };
    if let Some(bytes) = &c.oci_layout {
        check_oci_layout(bytes, name)?;
        let Some(index) = &c.index else {
            return Err(corrupt(name, ArchiveProblem::NoIndex));
        };
        return validate_oci(index, c.blobs, existing, name);
    }
    if let Some(manifest) = &c.docker_manifest {
        return validate_docker(manifest, &c, staging, name);
    }
    if c.index.is_some() {
        return Err(corrupt(name, ArchiveProblem::NoOciLayout));
    }
    Err(corrupt(name, ArchiveProblem::Unrecognized))
}

setters!(ImportOptions {
    force: bool,
    name: String,
    skip_unreferenced: bool,
    undeclared_limit: u64,
});
