//! Maintenance: garbage collection ([`Layout::gc`]) and integrity checks with repair
//! ([`Layout::fsck`]).
//!
//! **gc** deletes the blobs nothing live reaches. The roots are the `index.json` entries that are
//! not referrer records (tagged entries always are roots); everything a root reaches through
//! configs, layers and index children is live; a referrer is live when its subject is (found by a
//! deep scan, so a referrer that no record lists survives while its subject lives), and so are the
//! response and fallback-tag indexes that record the referrers of a live subject. Records of dead
//! subjects are removed from `index.json` in the same run. gc holds [`Layout::exclusive_pin`] for
//! the whole run, so it never deletes a blob that a writer (which holds [`Layout::pin`] from its
//! first blob to its `index.json` update) is about to list; and it marks and sweeps under the
//! `index.json` lock, so no entry can appear between the two.
//!
//! **fsck** hashes every blob (on all cores), resolves every descriptor reachable from
//! `index.json`, parses every reachable manifest, checks the referrer records against the blobs
//! (a deep [`Layout::scan_referrers`], run only when some blob could add to the shallow one) and
//! notes files other tools (or a killed ocistow) left behind. Notes are never deleted by fsck; `--repair` rebuilds referrer records and, when asked,
//! removes entries whose blobs are missing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::ser::SerializeStruct;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layout::{
    BLOBS_DIR, INGEST_DIR, Layout, MAX_MANIFEST_SIZE, Progress, TEMP_PREFIX, sync_dir,
};
use crate::model::{Descriptor, ImageIndex, Manifest, media};
use crate::referrers::{
    Convention, EntryKind, Graph, Issue, Mode, ResponseKey, ScanOptions, classify, fallback_tag,
    looks_like_fallback_tag,
};

/// How many times gc re-marks when `index.json` changed between removing dead records and
/// sweeping (another process edited it in the short window between the two locked steps).
const GC_ATTEMPTS: usize = 8;
/// Read buffer of each hashing thread.
const HASH_BUFFER: usize = 1 << 20;
/// Hashing threads report progress at least every this many bytes.
const PROGRESS_STEP: u64 = 4 << 20;
/// Blobs larger than this are not manifests for a deep referrers scan (as in `referrers::scan`).
const SUBJECT_SCAN_MAX: u64 = 4 << 20;

/// Parses a grace period: a whole number followed by `s`, `m`, `h` or `d` (a bare number is
/// seconds). Anything else is [`Error::InvalidInput`].
///
/// ```
/// use std::time::Duration;
/// use ocistow_store::maintenance::parse_duration;
/// assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
/// assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
/// assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(2 * 86_400));
/// assert!(parse_duration("5x").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration> {
    let bad = || {
        Error::InvalidInput(format!(
            "invalid duration {input:?}: use a whole number with s, m, h or d (e.g. 0, 30s, 10m, 1h, 2d)"
        ))
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

// ---- the blobs on disk ---------------------------------------------------------------------

/// A file under `blobs/<alg>/` whose name is a digest.
#[derive(Debug, Clone)]
struct BlobFile {
    digest: Digest,
    path: PathBuf,
    /// Known when the inventory was taken with sizes.
    size: Option<u64>,
}

/// Everything under `blobs/`: the blob files, and what is there but is not a blob.
#[derive(Debug, Default)]
struct Inventory {
    blobs: Vec<BlobFile>,
    /// Paths relative to the layout root of entries that are not `<alg>/<digest>` files.
    strays: Vec<String>,
}

impl Layout {
    /// Lists `blobs/`. File types come from the directory listing; `sizes` adds an `lstat`
    /// per blob (a large share of the cost with 100,000 blobs, so only when needed).
    fn inventory(&self, sizes: bool) -> Result<Inventory> {
        let root = self.root();
        let blobs_dir = root.join(BLOBS_DIR);
        let mut inv = Inventory::default();
        let algs = match fs::read_dir(&blobs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(inv),
            Err(e) => {
                return Err(Error::Io {
                    path: blobs_dir,
                    source: e,
                });
            }
        };
        for alg in algs {
            let alg = alg.at(&blobs_dir)?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            let kind = alg.file_type().at(alg.path())?;
            if !kind.is_dir() {
                inv.strays.push(format!("{BLOBS_DIR}/{alg_name}"));
                continue;
            }
            let dir = alg.path();
            for f in fs::read_dir(&dir).at(&dir)? {
                let f = f.at(&dir)?;
                let name = f.file_name().to_string_lossy().into_owned();
                let is_file = f.file_type().at(f.path())?.is_file();
                let digest = Digest::parse(&format!("{alg_name}:{name}")).ok();
                match digest {
                    // The name must map back to this very path (no odd spellings).
                    Some(d) if is_file && d.encoded() == name => {
                        let size = if sizes {
                            Some(f.metadata().at(f.path())?.len())
                        } else {
                            None
                        };
                        inv.blobs.push(BlobFile {
                            digest: d,
                            path: f.path(),
                            size,
                        });
                    }
                    _ => inv.strays.push(format!("{BLOBS_DIR}/{alg_name}/{name}")),
                }
            }
        }
        Ok(inv)
    }

    /// How many blob files `blobs/` holds and their total size, from one directory walk (what a
    /// progress bar for [`Layout::fsck`] needs up front).
    pub fn blob_usage(&self) -> Result<(usize, u64)> {
        let inv = self.inventory(true)?;
        Ok((
            inv.blobs.len(),
            inv.blobs.iter().filter_map(|b| b.size).sum(),
        ))
    }
}

// ---- gc ------------------------------------------------------------------------------------

/// What [`Layout::gc`] should do.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Keep every referrer (and its records), even when its subject is gone.
    pub keep_orphan_referrers: bool,
    /// Work files (`ingest/.ocistow-*.ingest`, `.ocistow-*.tmp`) younger than this are kept.
    pub grace: Duration,
}

/// A blob gc removed (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemovedBlob {
    pub digest: Digest,
    pub size: u64,
}

/// A work file gc removed (or would remove), relative to the layout root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemovedFile {
    pub path: String,
    pub size: u64,
}

/// What a gc removed, or with `dry_run` would remove.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Blobs kept (present and live).
    pub blobs_kept: usize,
    /// Blobs deleted, by digest.
    pub blobs_removed: Vec<RemovedBlob>,
    /// `index.json` entries removed: referrer records whose subject is gone.
    pub entries_removed: Vec<Descriptor>,
    /// Stale work files deleted.
    pub work_files_removed: Vec<RemovedFile>,
    /// Bytes of the removed blobs and work files.
    pub bytes_freed: u64,
}

/// Why an `index.json` entry is kept.
enum Role {
    /// Kept for its own sake: tagged, or not a referrer record.
    Root,
    /// A referrer record: kept while its subject (a digest, or a fallback tag) is live.
    Record(RecordKey),
}

enum RecordKey {
    Subject(Digest),
    FallbackTag(String),
}

/// The result of marking: what lives, which entries die, which files go.
struct GcPlan {
    dead_entries: Vec<usize>,
    dead_blobs: Vec<BlobFile>,
    kept: usize,
    grace: Duration,
}

impl Layout {
    /// Deletes blobs that nothing live reaches, the `index.json` records of referrers whose
    /// subject is gone, and stale work files (our own `ingest/.ocistow-*.ingest` files no live
    /// writer holds, and leftover `.ocistow-*.tmp` files in the root) older than `grace`.
    ///
    /// Holds [`Layout::exclusive_pin`] throughout: it waits (up to the lock timeout) for writers
    /// that hold a [`Layout::pin`], and fails with [`Error::Locked`] rather than delete under them.
    /// A reachable manifest that cannot be read stops gc with [`Error::Corrupt`] before anything
    /// is deleted: what it references cannot be known.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ocistow_store::{Layout, maintenance::GcOptions};
    /// let layout = Layout::init(dir.path()).unwrap();
    /// let loose = layout.write_blob_bytes(b"nobody references me").unwrap();
    /// let report = layout.gc(&GcOptions::default()).unwrap();
    /// assert_eq!(report.blobs_removed.len(), 1);
    /// assert!(!layout.blob_exists(loose.digest()).unwrap());
    /// ```
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        let _pin = self.exclusive_pin()?;
        let mut entries_removed: Vec<Descriptor> = Vec::new();
        for _ in 0..GC_ATTEMPTS {
            // Step 1, under the index lock: mark; drop the records of dead subjects. When no
            // entry has to go, sweep right here.
            let step = self.edit_index(|index| {
                let plan = self.gc_plan(index, options)?;
                let dead: Vec<Descriptor> = plan
                    .dead_entries
                    .iter()
                    .map(|&i| index.manifests()[i].clone())
                    .collect();
                if options.dry_run {
                    let work = self.stale_work_files(options.grace, false)?;
                    return Ok(GcStep::Done(report(plan, dead, work, true)));
                }
                if dead.is_empty() {
                    let work = self.sweep(&plan)?;
                    return Ok(GcStep::Done(report(plan, dead, work, false)));
                }
                let doomed: HashSet<usize> = plan.dead_entries.iter().copied().collect();
                let mut i = 0;
                index.manifests_mut().retain(|_| {
                    let keep = !doomed.contains(&i);
                    i += 1;
                    keep
                });
                Ok(GcStep::Sweep(plan, dead, index.clone()))
            })?;
            let (plan, dead, after) = match step {
                GcStep::Done(mut r) => {
                    entries_removed.append(&mut r.entries_removed);
                    r.entries_removed = entries_removed;
                    return Ok(r);
                }
                GcStep::Sweep(plan, dead, after) => (plan, dead, after),
            };
            entries_removed.extend(dead);
            // Step 2, under the index lock again: sweep, but only if nobody changed index.json
            // since step 1 wrote it (then the mark still holds; otherwise mark again).
            let swept = self.edit_index(|index| {
                if *index != after {
                    return Ok(None);
                }
                let work = self.sweep(&plan)?;
                Ok(Some(report(plan, Vec::new(), work, false)))
            })?;
            if let Some(mut r) = swept {
                r.entries_removed = entries_removed;
                return Ok(r);
            }
        }
        Err(Error::Conflict(format!(
            "{}: index.json kept changing while gc ran ({GC_ATTEMPTS} attempts); run gc again",
            self.root().display()
        )))
    }

    /// Marks from the roots of `index` and lists what is dead. Call under the index lock.
    fn gc_plan(&self, index: &ImageIndex, options: &GcOptions) -> Result<GcPlan> {
        // Listed first: blobs that appear later (after the lock is gone) are never candidates.
        let inventory = self.inventory(false)?;
        let suspects = subject_suspects(&inventory.blobs, hashing_threads(None));
        let graph = self.referrers_graph(&suspects)?;
        let entries = index.manifests();
        let mut marker = Marker {
            layout: self,
            graph: &graph,
            entries,
            live: HashSet::new(),
            live_tags: HashSet::new(),
            stack: Vec::new(),
            by_subject: HashMap::new(),
            by_tag: HashMap::new(),
        };
        let roles: Vec<Role> = entries.iter().map(|e| self.role(e, &graph)).collect();
        for (i, role) in roles.iter().enumerate() {
            match role {
                Role::Root => marker.stack.push(entries[i].clone()),
                Role::Record(RecordKey::Subject(d)) => {
                    marker.by_subject.entry(d.clone()).or_default().push(i);
                }
                Role::Record(RecordKey::FallbackTag(t)) => {
                    marker.by_tag.entry(t.clone()).or_default().push(i);
                }
            }
        }
        if options.keep_orphan_referrers {
            for (i, role) in roles.iter().enumerate() {
                if matches!(role, Role::Record(_)) {
                    marker.stack.push(entries[i].clone());
                }
            }
            for r in graph.referrers() {
                marker.stack.push(r.descriptor.clone());
            }
        }
        marker.run()?;
        let dead_entries: Vec<usize> = if options.keep_orphan_referrers {
            Vec::new()
        } else {
            roles
                .iter()
                .enumerate()
                .filter(|(_, role)| match role {
                    Role::Root => false,
                    Role::Record(RecordKey::Subject(d)) => !marker.live.contains(d),
                    Role::Record(RecordKey::FallbackTag(t)) => !marker.live_tags.contains(t),
                })
                .map(|(i, _)| i)
                .collect()
        };
        let (mut dead_blobs, live_blobs): (Vec<BlobFile>, Vec<BlobFile>) = inventory
            .blobs
            .into_iter()
            .partition(|b| !marker.live.contains(&b.digest));
        for b in &mut dead_blobs {
            b.size = Some(fs::symlink_metadata(&b.path).at(&b.path)?.len());
        }
        Ok(GcPlan {
            dead_entries,
            dead_blobs,
            kept: live_blobs.len(),
            grace: options.grace,
        })
    }

    /// Root or record? Records are response and fallback-tag indexes, and untagged entries
    /// whose blob has a subject (conventions A and D). Tagged entries are always roots.
    fn role(&self, entry: &Descriptor, graph: &Graph) -> Role {
        let is_index = media::is_index(entry.media_type());
        // Tagged entries are roots, except fallback tags, which are records; untagged ones are
        // read as the referrers scan reads them.
        if let Some(tag) = entry.ref_name() {
            return if looks_like_fallback_tag(tag) && is_index {
                Role::Record(RecordKey::FallbackTag(tag.to_string()))
            } else {
                Role::Root
            };
        }
        match classify(entry) {
            EntryKind::Response { subject } if is_index => match Digest::parse(&subject) {
                Ok(d) => Role::Record(RecordKey::Subject(d)),
                Err(_) => Role::Root,
            },
            EntryKind::SubjectAnnotation { subject } => {
                if let Some(r) = graph.get(entry.digest()) {
                    return Role::Record(RecordKey::Subject(r.subject.digest().clone()));
                }
                // The blob is absent (the record is all we know) or names no subject (then the
                // annotation is wrong and the entry is kept as the manifest it is).
                match (self.blob_exists(entry.digest()), Digest::parse(&subject)) {
                    (Ok(false), Ok(d)) => Role::Record(RecordKey::Subject(d)),
                    _ => Role::Root,
                }
            }
            _ => match graph.get(entry.digest()) {
                Some(r) => Role::Record(RecordKey::Subject(r.subject.digest().clone())),
                None => Role::Root,
            },
        }
    }

    /// Deletes the dead blobs and the stale work files. Call under the index lock.
    fn sweep(&self, plan: &GcPlan) -> Result<Vec<RemovedFile>> {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let result = (|| {
            for b in &plan.dead_blobs {
                match fs::remove_file(&b.path) {
                    Ok(()) => {
                        if let Some(d) = b.path.parent() {
                            dirs.insert(d.to_path_buf());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Io {
                            path: b.path.clone(),
                            source: e,
                        });
                    }
                }
            }
            Ok(())
        })();
        // One fsync per directory, not per blob; also after a failure, for what was removed.
        for d in &dirs {
            sync_dir(d)?;
        }
        result?;
        self.stale_work_files(plan.grace, true)
    }

    /// Our own stale work files: `ingest/.ocistow-*.ingest` older than `grace` whose lock can
    /// be taken (a live writer holds it), and `.ocistow-*.tmp` in the root older than `grace`.
    /// With `delete`, removes them (an ingest file while holding its lock).
    fn stale_work_files(&self, grace: Duration, delete: bool) -> Result<Vec<RemovedFile>> {
        let now = SystemTime::now();
        let old_enough = |meta: &fs::Metadata| {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(Duration::ZERO);
            age >= grace
        };
        let mut out = Vec::new();
        let mut remove = |path: &Path, rel: String, size: u64| -> Result<()> {
            if delete {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => {
                        return Err(Error::Io {
                            path: path.to_path_buf(),
                            source: e,
                        });
                    }
                }
            }
            out.push(RemovedFile { path: rel, size });
            Ok(())
        };
        let ingest = self.root().join(INGEST_DIR);
        if let Ok(rd) = fs::read_dir(&ingest) {
            for f in rd.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !(name.starts_with(TEMP_PREFIX) && name.ends_with(".ingest")) {
                    continue;
                }
                let Ok(meta) = f.metadata() else { continue };
                if !meta.is_file() || !old_enough(&meta) {
                    continue;
                }
                let Ok(file) = File::open(f.path()) else {
                    continue;
                };
                // A live writer holds an exclusive lock on its file: leave those alone.
                if file.try_lock().is_err() {
                    continue;
                }
                remove(&f.path(), format!("{INGEST_DIR}/{name}"), meta.len())?;
                drop(file);
            }
        }
        for f in fs::read_dir(self.root()).at(self.root())?.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !(name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp")) {
                continue;
            }
            let Ok(meta) = f.metadata() else { continue };
            if meta.is_file() && old_enough(&meta) {
                remove(&f.path(), name, meta.len())?;
            }
        }
        if delete && !out.is_empty() {
            sync_dir(self.root())?;
            if ingest.is_dir() {
                sync_dir(&ingest)?;
            }
        }
        Ok(out)
    }
}

enum GcStep {
    Done(GcReport),
    Sweep(GcPlan, Vec<Descriptor>, ImageIndex),
}

fn report(plan: GcPlan, dead: Vec<Descriptor>, work: Vec<RemovedFile>, dry_run: bool) -> GcReport {
    let blobs_removed: Vec<RemovedBlob> = plan
        .dead_blobs
        .into_iter()
        .map(|b| RemovedBlob {
            digest: b.digest,
            size: b.size.unwrap_or(0),
        })
        .collect();
    let bytes_freed = blobs_removed.iter().map(|b| b.size).sum::<u64>()
        + work.iter().map(|f| f.size).sum::<u64>();
    GcReport {
        dry_run,
        blobs_kept: plan.kept,
        blobs_removed,
        entries_removed: dead,
        work_files_removed: work,
        bytes_freed,
    }
}

/// The mark phase: a work list of descriptors; every digest that becomes live brings its
/// children, its referrers and the records that list its referrers.
struct Marker<'a> {
    layout: &'a Layout,
    graph: &'a Graph,
    entries: &'a [Descriptor],
    live: HashSet<Digest>,
    live_tags: HashSet<String>,
    stack: Vec<Descriptor>,
    by_subject: HashMap<Digest, Vec<usize>>,
    by_tag: HashMap<String, Vec<usize>>,
}

impl Marker<'_> {
    fn run(&mut self) -> Result<()> {
        while let Some(desc) = self.stack.pop() {
            if self.live.contains(desc.digest()) {
                continue;
            }
            self.live.insert(desc.digest().clone());
            let children = manifest_children(self.layout, &desc)?;
            self.stack.extend(children);
            let digest = desc.digest();
            for r in self.graph.referrers_of(digest) {
                self.stack.push(r.descriptor.clone());
            }
            if let Some(list) = self.by_subject.get(digest) {
                self.stack
                    .extend(list.iter().map(|&i| self.entries[i].clone()));
            }
            if !self.by_tag.is_empty() {
                let tag = fallback_tag(digest);
                if let Some(list) = self.by_tag.get(&tag) {
                    self.stack
                        .extend(list.iter().map(|&i| self.entries[i].clone()));
                    self.live_tags.insert(tag);
                }
            }
        }
        Ok(())
    }
}

/// The descriptors a manifest points to (not its subject). Absent blobs and non-manifests have
/// none. A blob that its descriptor calls a manifest but that cannot be read or parsed is an
/// error: gc cannot know what it keeps alive.
fn manifest_children(layout: &Layout, desc: &Descriptor) -> Result<Vec<Descriptor>> {
    let digest = desc.digest();
    let mt = desc.media_type();
    let declared = media::is_manifest(mt);
    let maybe = declared || mt.is_empty() || mt == "application/octet-stream";
    if !maybe || digest.known_algorithm().is_err() {
        return Ok(Vec::new());
    }
    let path = layout.blob_path(digest);
    let refuse = |reason: String| Error::Corrupt {
        path: path.clone(),
        reason: format!(
            "{reason}; gc stops because it cannot tell which blobs this manifest keeps (see `ocistow fsck`)"
        ),
    };
    let Some(size) = layout.blob_size(digest)? else {
        return Ok(Vec::new());
    };
    if size > MAX_MANIFEST_SIZE {
        return if declared {
            Err(refuse(format!("{size} bytes is too large for a manifest")))
        } else {
            Ok(Vec::new())
        };
    }
    let bytes = match layout.read_blob(digest) {
        Ok(b) => b,
        Err(Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e @ Error::Io { .. }) => return Err(e),
        Err(e) if declared => return Err(refuse(e.to_string())),
        Err(_) => return Ok(Vec::new()),
    };
    let mt = if declared {
        mt.to_string()
    } else {
        match Manifest::sniff_media_type(&bytes) {
            Some(m) if media::is_manifest(&m) => m,
            _ => return Ok(Vec::new()),
        }
    };
    match Manifest::parse(&mt, &bytes) {
        Ok(m) => Ok(m.children().into_iter().cloned().collect()),
        Err(reason) if declared => Err(refuse(format!("not a valid {mt}: {reason}"))),
        Err(_) => Ok(Vec::new()),
    }
}

// ---- fsck ----------------------------------------------------------------------------------

/// What [`Layout::fsck`] should do besides checking.
#[derive(Debug, Clone, Default)]
pub struct FsckOptions {
    /// Rebuild referrer records (in the mode the layout uses, else annotation).
    pub repair: bool,
    /// With `repair`: remove `index.json` entries whose blobs are missing.
    pub remove_missing: bool,
    /// Hashing threads (default: the available parallelism).
    pub threads: Option<NonZeroUsize>,
}

/// Something wrong with the layout: fsck exits non-zero for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob's content does not hash to the digest its file is named by.
    CorruptBlob {
        digest: Digest,
        actual: Digest,
        size: u64,
    },
    /// A blob could not be read.
    UnreadableBlob { digest: Digest, reason: String },
    /// A descriptor reachable from `index.json` names a blob that is absent (and has no `urls`).
    MissingBlob {
        digest: Digest,
        referenced_by: String,
    },
    /// A descriptor's `size` differs from its blob's.
    SizeMismatch {
        digest: Digest,
        referenced_by: String,
        declared: u64,
        actual: u64,
    },
    /// A manifest reachable from `index.json` does not parse as its media type.
    InvalidManifest {
        digest: Digest,
        referenced_by: String,
        reason: String,
    },
    /// A descriptor's `data` is not the base64 of content with its digest.
    BadData {
        digest: Digest,
        referenced_by: String,
        reason: String,
    },
    /// A referrer record disagrees with the blobs (from [`Layout::scan_referrers`]).
    Referrers(Issue),
}

impl Problem {
    /// A stable kebab-case name for JSON output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::CorruptBlob { .. } => "corrupt-blob",
            Problem::UnreadableBlob { .. } => "unreadable-blob",
            Problem::MissingBlob { .. } => "missing-blob",
            Problem::SizeMismatch { .. } => "size-mismatch",
            Problem::InvalidManifest { .. } => "invalid-manifest",
            Problem::BadData { .. } => "bad-data",
            Problem::Referrers(i) => i.kind(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob {
                digest,
                actual,
                size,
            } => write!(
                f,
                "blob {digest} is corrupt: its {size} bytes hash to {actual}"
            ),
            Problem::UnreadableBlob { digest, reason } => {
                write!(f, "blob {digest} cannot be read: {reason}")
            }
            Problem::MissingBlob {
                digest,
                referenced_by,
            } => write!(
                f,
                "blob {digest} is missing (referenced by {referenced_by})"
            ),
            Problem::SizeMismatch {
                digest,
                referenced_by,
                declared,
                actual,
            } => write!(
                f,
                "{referenced_by} describes {digest} as {declared} bytes, but the blob has {actual}"
            ),
            Problem::InvalidManifest {
                digest,
                referenced_by,
                reason,
            } => write!(
                f,
                "manifest {digest} (referenced by {referenced_by}) does not parse: {reason}"
            ),
            Problem::BadData {
                digest,
                referenced_by,
                reason,
            } => write!(
                f,
                "the data field of {digest} in {referenced_by} is wrong: {reason}"
            ),
            Problem::Referrers(i) => i.fmt(f),
        }
    }
}

/// Worth knowing, not wrong: fsck exits 0 when only notes are found, and never deletes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A work file another tool (or a killed ocistow) left, relative to the layout root.
    LeftoverFile { path: String, what: &'static str },
    /// A non-distributable blob (its descriptor has `urls`) is absent, by design.
    NonDistributable {
        digest: Digest,
        referenced_by: String,
    },
    /// A blob of an algorithm ocistow cannot compute: present, but not verified.
    Unverifiable { digest: Digest },
    /// A referrers finding that is not an error (a subject absent from the layout; an
    /// unreachable blob that looks like a manifest but does not parse).
    Referrers(Issue),
}

impl Note {
    /// A stable kebab-case name for JSON output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Note::LeftoverFile { .. } => "leftover-file",
            Note::NonDistributable { .. } => "non-distributable",
            Note::Unverifiable { .. } => "unverifiable",
            Note::Referrers(i) => i.kind(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::LeftoverFile { path, what } => write!(f, "{path}: {what}"),
            Note::NonDistributable {
                digest,
                referenced_by,
            } => write!(
                f,
                "non-distributable blob {digest} (referenced by {referenced_by}) is absent: it has urls"
            ),
            Note::Unverifiable { digest } => write!(
                f,
                "blob {digest} uses an algorithm ocistow cannot compute; not verified"
            ),
            Note::Referrers(i) => i.fmt(f),
        }
    }
}

macro_rules! kind_message_serialize {
    ($t:ty, $name:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut st = s.serialize_struct($name, 2)?;
                st.serialize_field("kind", self.kind())?;
                st.serialize_field("message", &self.to_string())?;
                st.end()
            }
        }
    };
}
kind_message_serialize!(Problem, "Problem");
kind_message_serialize!(Note, "Note");

/// What fsck found (after repair, when asked) and what it repaired.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FsckReport {
    /// Blob files hashed.
    pub blobs_checked: usize,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// What is wrong (what repair could not fix, when it ran).
    pub problems: Vec<Problem>,
    /// What is worth knowing but not wrong.
    pub notes: Vec<Note>,
    /// What repair did, one line per action.
    pub repaired: Vec<String>,
}

impl FsckReport {
    /// True when there is no problem (notes do not count).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The outcome of hashing one blob file.
#[derive(Debug, Clone)]
enum Hashed {
    Ok {
        actual: Digest,
        size: u64,
        /// A deep referrers scan might take it for a referrer (see [`SubjectSniffer`]).
        suspect: bool,
    },
    Failed(String),
}

/// What is known about a blob: absent, or present with its size and whether it verified.
#[derive(Debug, Clone, Copy)]
enum BlobState {
    Absent,
    Present { size: u64, intact: bool },
}

impl Layout {
    /// Checks the whole layout: every blob hashed (in parallel), every descriptor reachable
    /// from `index.json` resolved with the right size, every reachable manifest parsed, the
    /// referrer records checked against the blobs, and leftover work files noted. With
    /// `repair`, referrer records are rebuilt (and with `remove_missing`, entries whose blobs
    /// are missing removed), then the layout is checked again: the report's problems are what
    /// remains.
    ///
    /// `progress` advances by the bytes hashed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ocistow_store::{Layout, layout::NoProgress, maintenance::FsckOptions};
    /// let layout = Layout::init(dir.path()).unwrap();
    /// let blob = layout.write_blob_bytes(b"hello").unwrap();
    /// assert!(layout.fsck(&FsckOptions::default(), &NoProgress).unwrap().is_clean());
    /// std::fs::write(layout.blob_path(blob.digest()), b"hellO").unwrap();
    /// let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    /// assert_eq!(report.problems[0].kind(), "corrupt-blob");
    /// ```
    pub fn fsck(&self, options: &FsckOptions, progress: &dyn Progress) -> Result<FsckReport> {
        let inventory = self.inventory(false)?;
        let threads = hashing_threads(options.threads);
        let (known, unknown): (Vec<&BlobFile>, Vec<&BlobFile>) = inventory
            .blobs
            .iter()
            .partition(|b| b.digest.known_algorithm().is_ok());
        let hashed = hash_files(&known, threads, progress);

        let mut report = FsckReport {
            blobs_checked: known.len(),
            bytes_hashed: 0,
            ..FsckReport::default()
        };
        let mut states: HashMap<Digest, BlobState> = HashMap::with_capacity(inventory.blobs.len());
        let mut suspects = HashSet::new();
        let mut blob_problems = Vec::new();
        for (b, h) in known.iter().zip(hashed) {
            let (size, intact) = match h {
                Hashed::Ok {
                    actual,
                    size,
                    suspect,
                } => {
                    report.bytes_hashed += size;
                    if suspect {
                        suspects.insert(b.digest.clone());
                    }
                    if actual == b.digest {
                        (size, true)
                    } else {
                        blob_problems.push(Problem::CorruptBlob {
                            digest: b.digest.clone(),
                            actual,
                            size,
                        });
                        (size, false)
                    }
                }
                Hashed::Failed(reason) => {
                    blob_problems.push(Problem::UnreadableBlob {
                        digest: b.digest.clone(),
                        reason,
                    });
                    let size = fs::symlink_metadata(&b.path).map_or(0, |m| m.len());
                    (size, false)
                }
            };
            states.insert(b.digest.clone(), BlobState::Present { size, intact });
        }
        let mut blob_notes = Vec::new();
        for b in unknown {
            let size = fs::symlink_metadata(&b.path).at(&b.path)?.len();
            states.insert(b.digest.clone(), BlobState::Present { size, intact: true });
            blob_notes.push(Note::Unverifiable {
                digest: b.digest.clone(),
            });
        }
        blob_problems.sort_by_key(ToString::to_string);

        let (mut problems, mut notes) = self.check_structure(&mut states, &suspects)?;
        if options.repair && (options.remove_missing || problems.iter().any(repairable)) {
            report.repaired = self.repair(&problems, options)?;
            if !report.repaired.is_empty() {
                // What remains is what the report lists as problems.
                (problems, notes) = self.check_structure(&mut states, &suspects)?;
            }
        }
        report.problems = blob_problems;
        report.problems.extend(problems);
        report.notes = blob_notes;
        report.notes.extend(notes);
        report.notes.extend(self.leftover_notes(&inventory.strays)?);
        Ok(report)
    }

    /// Everything but the hashing: descriptors, manifests, referrer records.
    fn check_structure(
        &self,
        states: &mut HashMap<Digest, BlobState>,
        suspects: &HashSet<Digest>,
    ) -> Result<(Vec<Problem>, Vec<Note>)> {
        let index = self.read_index()?;
        let mut walk = Walk {
            layout: self,
            states,
            visited: HashSet::new(),
            missing: HashSet::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        for (i, entry) in index.manifests().iter().enumerate() {
            let via = match entry.ref_name() {
                Some(t) => format!("index.json entry {i} ({t:?})"),
                None => format!("index.json entry {i}"),
            };
            walk.descriptor(entry, &via)?;
        }
        let Walk {
            visited,
            mut problems,
            mut notes,
            ..
        } = walk;
        let graph = self.referrers_graph(suspects)?;
        for issue in graph.issues() {
            match issue {
                // Reachable ones were reported by the walk already, more precisely.
                Issue::ReferrerBlobMissing { .. } => {}
                Issue::UnreadableManifest { digest, .. } if visited.contains(digest) => {}
                Issue::UnreadableManifest { .. } | Issue::SubjectMissing { .. } => {
                    notes.push(Note::Referrers(issue.clone()));
                }
                _ => problems.push(Problem::Referrers(issue.clone())),
            }
        }
        Ok((problems, notes))
    }

    fn repair(&self, problems: &[Problem], options: &FsckOptions) -> Result<Vec<String>> {
        // Repair writes record blobs: keep gc away from them until index.json lists them.
        let _pin = self.pin()?;
        let mut done = Vec::new();
        if options.remove_missing {
            let removed = self.edit_index(|index| {
                let mut removed = Vec::new();
                let mut failure = None;
                index.manifests_mut().retain(|e| {
                    if !e.urls().is_empty() {
                        return true;
                    }
                    match self.blob_exists(e.digest()) {
                        Ok(true) => true,
                        Ok(false) => {
                            removed.push(e.clone());
                            false
                        }
                        Err(err) => {
                            failure.get_or_insert(err);
                            true
                        }
                    }
                });
                match failure {
                    Some(err) => Err(err),
                    None => Ok(removed),
                }
            })?;
            for e in removed {
                done.push(format!(
                    "removed the index.json entry {}{} whose blob is missing",
                    e.digest(),
                    e.ref_name()
                        .map(|t| format!(" ({t:?})"))
                        .unwrap_or_default()
                ));
            }
        }
        if problems.iter().any(repairable) {
            let (mode, key) = self
                .referrers_mode_in_use()?
                .unwrap_or((Mode::Annotation, ResponseKey::Oci));
            // Referrers only a deep scan finds: convert reads index.json, so record them first.
            let graph = self.scan_referrers(ScanOptions { deep: true })?;
            for r in graph.referrers() {
                let deep_only = r.recorded.len() == 1 && r.recorded.contains(&Convention::DeepScan);
                if deep_only && self.blob_exists(r.subject.digest())? {
                    self.record_referrer(&r.descriptor, r.subject.digest(), mode, key)?;
                    done.push(format!(
                        "recorded referrer {} of {} ({} mode)",
                        r.digest(),
                        r.subject.digest(),
                        mode.as_str()
                    ));
                }
            }
            let converted = self.convert_referrers(mode, key, false, false)?;
            if converted.changed {
                done.push(format!(
                    "rebuilt referrer records as {}: {} added, {} updated, {} removed",
                    mode.as_str(),
                    converted.added,
                    converted.updated,
                    converted.removed
                ));
            }
        }
        Ok(done)
    }

    /// Files other tools, or a killed ocistow, left in the layout. Only noted.
    fn leftover_notes(&self, strays: &[String]) -> Result<Vec<Note>> {
        let mut notes = Vec::new();
        let root = self.root();
        let mut names: Vec<(String, bool)> = Vec::new();
        for f in fs::read_dir(root).at(root)?.flatten() {
            let is_dir = f.file_type().is_ok_and(|t| t.is_dir());
            names.push((f.file_name().to_string_lossy().into_owned(), is_dir));
        }
        names.sort();
        for (name, is_dir) in names {
            let what = if name == "_uploads" {
                "upload area of another tool (may be in use)"
            } else if name == "index.json.lock" {
                "lock file of another tool (BuildKit)"
            } else if name.starts_with("index.json.") && name.ends_with(".tmp") {
                "temp file of another tool's index.json write"
            } else if name.starts_with("oci-put-blob") {
                "temp file of a blob write by skopeo / containers-image"
            } else if is_dir && name.starts_with(".umoci-") {
                "work directory of umoci"
            } else if !is_dir && name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") {
                "index.json replacement left by an interrupted ocistow (gc removes it after the grace period)"
            } else {
                continue;
            };
            notes.push(Note::LeftoverFile { path: name, what });
        }
        let ingest = root.join(INGEST_DIR);
        if let Ok(rd) = fs::read_dir(&ingest) {
            let mut files: Vec<(String, PathBuf)> = rd
                .flatten()
                .map(|f| (f.file_name().to_string_lossy().into_owned(), f.path()))
                .collect();
            files.sort();
            for (name, path) in files {
                let what = if name.starts_with(TEMP_PREFIX) && name.ends_with(".ingest") {
                    let held = File::open(&path).map(|f| f.try_lock().is_err());
                    if held.unwrap_or(false) {
                        "blob being written by a live ocistow process"
                    } else {
                        "blob write left by an interrupted ocistow (gc removes it after the grace period)"
                    }
                } else {
                    "work file of another tool in ingest/ (never removed by ocistow)"
                };
                notes.push(Note::LeftoverFile {
                    path: format!("{INGEST_DIR}/{name}"),
                    what,
                });
            }
        }
        for s in strays {
            notes.push(Note::LeftoverFile {
                path: s.clone(),
                what: "not a blob (its name is not a digest): a temp file of another tool?",
            });
        }
        Ok(notes)
    }
}

impl Layout {
    /// The referrers graph of a deep scan, without paying for one when it cannot add anything.
    /// A deep scan adds only blobs outside what `index.json` reaches that are JSON objects with
    /// a `subject`; `suspects` is a superset of those (every blob that is a JSON object and
    /// contains `"subject"`). When the shallow graph already has every suspect, it is what a
    /// deep scan would find (all a skipped deep scan can miss is the note about an unreachable
    /// blob that looks like a manifest, has no `subject`, and does not parse).
    fn referrers_graph(&self, suspects: &HashSet<Digest>) -> Result<Graph> {
        let shallow = self.scan_referrers(ScanOptions { deep: false })?;
        if suspects.iter().all(|d| shallow.get(d).is_some()) {
            return Ok(shallow);
        }
        self.scan_referrers(ScanOptions { deep: true })
    }
}

fn hashing_threads(requested: Option<NonZeroUsize>) -> usize {
    requested
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

/// Recognises content that a deep referrers scan could take for a referrer: a JSON object
/// (first non-blank byte `{`) of at most [`SUBJECT_SCAN_MAX`] bytes containing `"subject"`.
/// Fed chunk by chunk; a false positive only costs a deep scan.
#[derive(Default)]
struct SubjectSniffer {
    /// `None` until the first non-blank byte; then whether it was `{`.
    json: Option<bool>,
    found: bool,
    /// The end of the previous chunk, for a needle split across chunks.
    tail: Vec<u8>,
    seen: u64,
}

const SUBJECT_NEEDLE: &[u8] = b"\"subject\"";

impl SubjectSniffer {
    /// Feeds the next chunk; returns false once the answer is known (reading can stop).
    fn feed(&mut self, chunk: &[u8]) -> bool {
        self.seen += chunk.len() as u64;
        if self.json.is_none()
            && let Some(&b) = chunk.iter().find(|b| !b.is_ascii_whitespace())
        {
            self.json = Some(b == b'{');
        }
        if self.json == Some(false) || self.found || self.seen > SUBJECT_SCAN_MAX {
            return false;
        }
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        if window
            .windows(SUBJECT_NEEDLE.len())
            .any(|w| w == SUBJECT_NEEDLE)
        {
            self.found = true;
            return false;
        }
        let keep = window.len().min(SUBJECT_NEEDLE.len() - 1);
        self.tail = window.split_off(window.len() - keep);
        true
    }

    fn suspect(&self) -> bool {
        self.found && self.json == Some(true) && self.seen <= SUBJECT_SCAN_MAX
    }
}

/// The blobs a deep referrers scan might take for referrers (see [`SubjectSniffer`]), read in
/// parallel; binary blobs cost one small read. Unreadable files are left to the scan itself.
fn subject_suspects(files: &[BlobFile], threads: usize) -> HashSet<Digest> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, files.len().max(1));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let mut found = Vec::new();
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let Ok(mut file) = File::open(&f.path) else {
                            continue;
                        };
                        let mut sniffer = SubjectSniffer::default();
                        loop {
                            match file.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if !sniffer.feed(&buf[..n]) {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => break,
                            }
                        }
                        if sniffer.suspect() {
                            found.push(f.digest.clone());
                        }
                    }
                    found
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// Referrer problems that rebuilding the records fixes.
fn repairable(p: &Problem) -> bool {
    matches!(
        p,
        Problem::Referrers(
            Issue::RecordMissing { .. }
                | Issue::RecordWrong { .. }
                | Issue::Unrecorded { .. }
                | Issue::AnnotationDisagrees { .. }
                | Issue::OnlyDeepScan { .. }
                | Issue::ReferrerBlobMissing { .. }
        )
    )
}

/// The walk of everything reachable from `index.json`.
struct Walk<'a> {
    layout: &'a Layout,
    states: &'a mut HashMap<Digest, BlobState>,
    visited: HashSet<Digest>,
    missing: HashSet<Digest>,
    problems: Vec<Problem>,
    notes: Vec<Note>,
}

impl Walk<'_> {
    /// A blob's state: from the hashing pass, else (a blob written since, by repair) looked up
    /// and verified now.
    fn state(&mut self, digest: &Digest) -> Result<BlobState> {
        if let Some(s) = self.states.get(digest) {
            return Ok(*s);
        }
        let state = match self.layout.blob_size(digest)? {
            None => BlobState::Absent,
            Some(size) => BlobState::Present {
                size,
                intact: digest.known_algorithm().is_err()
                    || self.layout.verify_blob(digest, Some(size)).is_ok(),
            },
        };
        self.states.insert(digest.clone(), state);
        Ok(state)
    }

    fn descriptor(&mut self, desc: &Descriptor, via: &str) -> Result<()> {
        let mut stack = vec![(desc.clone(), via.to_string())];
        while let Some((desc, via)) = stack.pop() {
            let digest = desc.digest().clone();
            if let Some(data) = desc.data() {
                self.check_data(&desc, data, &via);
            }
            let (size, intact) = match self.state(&digest)? {
                BlobState::Absent => {
                    if !desc.urls().is_empty() {
                        self.notes.push(Note::NonDistributable {
                            digest,
                            referenced_by: via,
                        });
                    } else if self.missing.insert(digest.clone()) {
                        self.problems.push(Problem::MissingBlob {
                            digest,
                            referenced_by: via,
                        });
                    }
                    continue;
                }
                BlobState::Present { size, intact } => (size, intact),
            };
            if size != desc.size() {
                self.problems.push(Problem::SizeMismatch {
                    digest: digest.clone(),
                    referenced_by: via.clone(),
                    declared: desc.size(),
                    actual: size,
                });
            }
            let mt = desc.media_type();
            if !media::is_manifest(mt) || !intact || !self.visited.insert(digest.clone()) {
                continue;
            }
            if size > MAX_MANIFEST_SIZE {
                self.problems.push(Problem::InvalidManifest {
                    digest,
                    referenced_by: via,
                    reason: format!("{size} bytes is too large for a manifest"),
                });
                continue;
            }
            let path = self.layout.blob_path(&digest);
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.problems.push(Problem::UnreadableBlob {
                        digest,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            match Manifest::parse(mt, &bytes) {
                Ok(m) => {
                    let parent = format!("manifest {digest}");
                    for child in m.children().into_iter().rev() {
                        stack.push((child.clone(), parent.clone()));
                    }
                }
                Err(reason) => self.problems.push(Problem::InvalidManifest {
                    digest,
                    referenced_by: via,
                    reason,
                }),
            }
        }
        Ok(())
    }

    fn check_data(&mut self, desc: &Descriptor, data: &str, via: &str) {
        let reason = match base64::engine::general_purpose::STANDARD.decode(data) {
            Err(e) => Some(format!("not base64: {e}")),
            Ok(bytes) => match desc.digest().known_algorithm() {
                Err(_) => None,
                Ok(alg) => {
                    if bytes.len() as u64 != desc.size() {
                        Some(format!(
                            "{} bytes, but the descriptor says {}",
                            bytes.len(),
                            desc.size()
                        ))
                    } else if Digest::of_bytes(alg, &bytes) != *desc.digest() {
                        Some("its content does not hash to the digest".into())
                    } else {
                        None
                    }
                }
            },
        };
        if let Some(reason) = reason {
            self.problems.push(Problem::BadData {
                digest: desc.digest().clone(),
                referenced_by: via.to_string(),
                reason,
            });
        }
    }
}

/// Messages from hashing threads to the thread that owns the progress reporter.
enum Msg {
    Progress(u64),
    /// A file is done; the bytes read since its last progress message.
    Done(usize, Hashed, u64),
}

/// Hashes `files` on `threads` threads; results in the order of `files`.
fn hash_files(files: &[&BlobFile], threads: usize, progress: &dyn Progress) -> Vec<Hashed> {
    let threads = threads.clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Hashed>> = vec![None; files.len()];
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                let mut buf = vec![0u8; HASH_BUFFER];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let (outcome, unreported) = hash_file(file, &mut buf, &tx);
                    if tx.send(Msg::Done(i, outcome, unreported)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Msg::Progress(n) => progress.advance(n),
                Msg::Done(i, outcome, unreported) => {
                    if unreported > 0 {
                        progress.advance(unreported);
                    }
                    results[i] = Some(outcome);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Hashed::Failed("not hashed".into())))
        .collect()
}

/// Hashes one file, sending progress every [`PROGRESS_STEP`] bytes; returns the outcome and
/// the bytes read since the last progress message.
fn hash_file(file: &BlobFile, buf: &mut [u8], tx: &mpsc::Sender<Msg>) -> (Hashed, u64) {
    let alg = match file.digest.known_algorithm() {
        Ok(a) => a,
        Err(e) => return (Hashed::Failed(e.to_string()), 0),
    };
    let mut f = match File::open(&file.path) {
        Ok(f) => f,
        Err(e) => return (Hashed::Failed(e.to_string()), 0),
    };
    let mut hasher = alg.hasher();
    let mut sniffer = SubjectSniffer::default();
    let mut sniffing = true;
    let (mut size, mut unreported) = (0u64, 0u64);
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                if sniffing {
                    sniffing = sniffer.feed(&buf[..n]);
                }
                size += n as u64;
                unreported += n as u64;
                if unreported >= PROGRESS_STEP {
                    let _ = tx.send(Msg::Progress(unreported));
                    unreported = 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Hashed::Failed(e.to_string()), unreported),
        }
    }
    let outcome = Hashed::Ok {
        actual: hasher.finish(),
        size,
        suspect: sniffer.suspect(),
    };
    (outcome, unreported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::NoProgress;
    use crate::model::media;

    fn manifest_bytes(
        config: &Descriptor,
        layers: &[&Descriptor],
        subject: Option<&Descriptor>,
    ) -> Vec<u8> {
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::IMAGE_MANIFEST,
            "config": config,
            "layers": layers,
        });
        if let Some(s) = subject {
            m["subject"] = serde_json::to_value(s.plain()).unwrap();
        }
        serde_json::to_vec(&m).unwrap()
    }

    fn put(layout: &Layout, bytes: &[u8]) -> Descriptor {
        layout.put_manifest(bytes, None, false).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration(" 15 ").unwrap(), Duration::from_secs(15));
        for bad in [
            "",
            "s",
            "-1",
            "1.5h",
            "10 m",
            "1w",
            "99999999999999999999d",
            "1h30m",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn gc_keeps_referrers_of_live_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let layer = layout.write_blob_bytes(b"layer").unwrap();
        let subject = put(&layout, &manifest_bytes(&config, &[&layer], None));
        layout.add_entry(&subject, &["v1".into()]).unwrap();
        let sbom_layer = layout.write_blob_bytes(b"sbom").unwrap();
        let sbom = put(
            &layout,
            &manifest_bytes(&config, &[&sbom_layer], Some(&subject)),
        );
        // Recorded nowhere: only a deep scan finds it, and it must survive.
        let loose = layout.write_blob_bytes(b"garbage").unwrap();
        let report = layout.gc(&GcOptions::default()).unwrap();
        assert_eq!(
            report.blobs_removed,
            vec![RemovedBlob {
                digest: loose.digest().clone(),
                size: 7
            }]
        );
        for d in [&config, &layer, &subject, &sbom, &sbom_layer] {
            assert!(layout.blob_exists(d.digest()).unwrap());
        }
        // Untagged, the subject dies and takes its referrer along.
        layout.untag("v1").unwrap();
        let dry = layout
            .gc(&GcOptions {
                dry_run: true,
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(dry.blobs_removed.len(), 5);
        assert!(layout.blob_exists(sbom.digest()).unwrap());
        let kept = layout
            .gc(&GcOptions {
                keep_orphan_referrers: true,
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(kept.blobs_removed.len(), 2, "{kept:?}");
        assert!(layout.blob_exists(sbom.digest()).unwrap());
        let report = layout.gc(&GcOptions::default()).unwrap();
        assert_eq!(report.blobs_removed.len(), 3);
        assert!(!layout.blob_exists(sbom.digest()).unwrap());
    }

    #[test]
    fn gc_removes_records_of_dead_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let subject = put(&layout, &manifest_bytes(&config, &[], None));
        layout.add_entry(&subject, &["v1".into()]).unwrap();
        let sig = put(&layout, &manifest_bytes(&config, &[], Some(&subject)));
        let mut referrer = sig.clone();
        referrer.set_artifact_type(media::EMPTY);
        layout
            .record_referrer(
                &referrer,
                subject.digest(),
                Mode::Response,
                ResponseKey::Oci,
            )
            .unwrap();
        assert_eq!(layout.read_index().unwrap().manifests().len(), 2);
        assert!(
            layout
                .gc(&GcOptions::default())
                .unwrap()
                .blobs_removed
                .is_empty()
        );
        layout.untag("v1").unwrap();
        let report = layout.gc(&GcOptions::default()).unwrap();
        assert_eq!(report.entries_removed.len(), 1);
        assert!(layout.read_index().unwrap().manifests().is_empty());
        // subject, referrer, response index; the config too now.
        assert_eq!(report.blobs_removed.len(), 4);
    }

    #[test]
    fn gc_refuses_when_a_live_manifest_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let m = put(&layout, &manifest_bytes(&config, &[], None));
        layout.add_entry(&m, &["v1".into()]).unwrap();
        let loose = layout.write_blob_bytes(b"x").unwrap();
        let path = layout.blob_path(m.digest());
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] = b' ';
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            layout.gc(&GcOptions::default()),
            Err(Error::Corrupt { .. })
        ));
        assert!(layout.blob_exists(loose.digest()).unwrap());
    }

    #[test]
    fn fsck_finds_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let layer = layout.write_blob_bytes(b"layer").unwrap();
        let m = put(&layout, &manifest_bytes(&config, &[&layer], None));
        layout.add_entry(&m, &["v1".into()]).unwrap();
        let clean = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(clean.blobs_checked, 3);
        // A referrer nothing records is a problem that repair fixes.
        let sig = put(&layout, &manifest_bytes(&config, &[], Some(&m)));
        let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].kind(), "only-deep-scan");
        let options = FsckOptions {
            repair: true,
            ..FsckOptions::default()
        };
        let repaired = layout.fsck(&options, &NoProgress).unwrap();
        assert!(repaired.is_clean(), "{repaired:?}");
        assert!(!repaired.repaired.is_empty());
        assert!(
            layout
                .read_index()
                .unwrap()
                .manifests()
                .iter()
                .any(|e| e.digest() == sig.digest())
        );
        // Missing and truncated blobs.
        fs::remove_file(layout.blob_path(layer.digest())).unwrap();
        fs::write(layout.blob_path(config.digest()), b"{").unwrap();
        let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        let kinds: BTreeSet<&str> = report.problems.iter().map(Problem::kind).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["corrupt-blob", "missing-blob", "size-mismatch"])
        );
    }

    #[test]
    fn subject_sniffer() {
        let sniff = |chunks: &[&[u8]]| {
            let mut s = SubjectSniffer::default();
            for c in chunks {
                if !s.feed(c) {
                    break;
                }
            }
            s.suspect()
        };
        assert!(sniff(&[b"  {\"a\":1,\"subject\":{}}"]));
        assert!(sniff(&[b"{\"a\":1,\"sub", b"ject\":{}}"]));
        assert!(sniff(&[b"   ", b"", b"{\"s", b"u", b"bject\""]));
        assert!(!sniff(&[b"{\"a\":1}"]));
        assert!(!sniff(&[b"\x1f\x8b \"subject\""]));
        assert!(!sniff(&[b"[\"subject\"]"]));
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        for i in 0..50u32 {
            layout
                .write_blob_bytes(&i.to_le_bytes().repeat(i as usize))
                .unwrap();
        }
        let bad = layout.write_blob_bytes(b"bad").unwrap();
        fs::write(layout.blob_path(bad.digest()), b"bAd").unwrap();
        let run = |n: usize| {
            let r = layout
                .fsck(
                    &FsckOptions {
                        threads: NonZeroUsize::new(n),
                        ..FsckOptions::default()
                    },
                    &NoProgress,
                )
                .unwrap();
            (r.blobs_checked, r.bytes_hashed, r.problems)
        };
        assert_eq!(run(1), run(4));
        assert_eq!(run(1).2.len(), 1);
    }
}
