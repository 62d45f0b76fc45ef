//! Garbage collection ([`Layout::gc`]): deletes the blobs nothing live reaches.
//!
//! **gc** deletes the blobs nothing live reaches. The roots are the `index.json` entries that are
//! not referrer records (tagged entries always are roots); everything a root reaches through
//! configs, layers and index children is live; a referrer is live when its subject is and a record
//! lists it (a referrer that no record lists, found by the deep scan, is what a killed attach or
//! `copy -r` left: it lives only for the grace period), and so are the response and fallback-tag
//! indexes that record the referrers of a live subject. Records of dead subjects are removed from
//! `index.json` in the same run. gc holds [`Layout::exclusive_pin`] for the whole run, so it never
//! deletes a blob that a writer (which holds [`Layout::stage`] from its first blob to its
//! `index.json` update) is about to list; and it marks and sweeps under the `index.json` lock.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Digest, DigestHashBuilder, DigestMap, DigestSet};
use crate::entries;
use crate::error::{Conflict, Corruption, Error, IoContext, Result};
use crate::fsck::hash::{hashing_threads, subject_suspects};
use crate::inventory::BlobFile;
use crate::layout::{INGEST_DIR, Layout, TEMP_PREFIX, sync_dir};
use crate::model::{Descriptor, ImageIndex, media};
use crate::referrers::{
    Convention, EntryKind, Graph, Referrer, ScanOptions, classify, fallback_tag,
};
use crate::walk::{Content, Visitor, Walker, on_every_core, read_content};

/// How many times gc re-marks when `index.json` changed between removing dead records and
/// sweeping (another process edited it in the short window between the two locked steps).
const GC_ATTEMPTS: usize = 8;

/// What [`Layout::gc`] should do.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GcOptions {
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Keep every referrer (and its records), even when its subject is gone.
    pub keep_orphan_referrers: bool,
    /// Work files (`ingest/.ocistow-*.ingest`, `.ocistow-*.tmp`) and referrers that no record
    /// lists (found only by the deep scan: a killed attach or `copy -r` left them) younger
    /// than this are kept.
    pub grace: Duration,
}

/// A blob gc removed (or would remove).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RemovedBlob {
    /// The blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A work file gc removed (or would remove), relative to the layout root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RemovedFile {
    /// The file, relative to the layout root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a gc removed, or with `dry_run` would remove. Serialized with camelCase keys, the one
/// JSON style of the CLI.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GcReport {
    /// True when nothing was removed (a dry run).
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
    /// that hold a [`Layout::stage`], and fails with [`Error::Locked`] rather than delete under them.
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
                entries::remove_positions(index.manifests_mut(), &doomed);
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
        Err(Error::Conflict(Conflict::IndexKeptChanging {
            layout: self.root().to_path_buf(),
            attempts: GC_ATTEMPTS,
        }))
    }

    /// Marks from the roots of `index` and lists what is dead. Call under the index lock.
    fn gc_plan(&self, index: &ImageIndex, options: &GcOptions) -> Result<GcPlan> {
        // Listed first: blobs that appear later (after the lock is gone) are never candidates.
        let inventory = self.inventory(false)?;
        let (graph, unlisted) = self.gc_graph(index, &inventory.blobs)?;
        let entries = index.manifests();
        let prefetch = Prefetch::new(self);
        let mut marker = Marker {
            layout: self,
            prefetch: &prefetch,
            graph: &graph,
            unlisted: &unlisted,
            entries,
            live: DigestSet::default(),
            live_tags: HashSet::new(),
            roots: Vec::new(),
            by_subject: DigestMap::default(),
            by_tag: HashMap::new(),
            unlisted_grace: options.grace,
            now: SystemTime::now(),
        };
        let roles: Vec<Role> = entries.iter().map(|e| self.role(e, &graph)).collect();
        for (i, role) in roles.iter().enumerate() {
            match role {
                Role::Root => marker.roots.push(entries[i].clone()),
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
                    marker.roots.push(entries[i].clone());
                }
            }
            for r in graph.referrers() {
                marker.roots.push(r.descriptor.clone());
            }
            marker.roots.extend(unlisted.values().flatten().cloned());
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

    /// The referrers graph gc marks with (the shallow scan of `index`), and the referrers that
    /// only a deep scan would add: blobs no record lists and nothing reaches as a referrer,
    /// whose content names a subject (a killed attach or `copy -r` left them), by subject.
    ///
    /// Only blobs the shallow scan does not know as referrers and that might be referrers are
    /// read (see [`subject_suspects`]); each is read once, as the deep scan reads a blob found
    /// by digest alone, rather than scanning the whole layout a second time: with 100,000
    /// referrers the second scan was a third of gc.
    fn gc_graph(&self, index: &ImageIndex, blobs: &[BlobFile]) -> Result<(Graph, Unlisted)> {
        let shallow = self.scan_referrers_in(index, ScanOptions::default())?;
        let unknown: Vec<BlobFile> = blobs
            .iter()
            .filter(|b| shallow.get(&b.digest).is_none())
            .cloned()
            .collect();
        let mut suspects: Vec<Digest> = subject_suspects(&unknown, hashing_threads(None))
            .into_iter()
            .collect();
        // Deterministic order whatever the directory order is.
        suspects.sort();
        let mut unlisted = Unlisted::default();
        for digest in suspects {
            // The size is the file's (read_content asks); a descriptor needs one.
            let desc = Descriptor::new("application/octet-stream", digest, 0);
            match read_content(self, &desc) {
                Content::Manifest {
                    media_type,
                    manifest,
                    size,
                    ..
                } => {
                    if let Some(subject) = manifest.subject() {
                        let referrer = Descriptor::new(&media_type, desc.digest().clone(), size);
                        unlisted
                            .entry(subject.digest().clone())
                            .or_default()
                            .push(referrer);
                    }
                }
                // What cannot be read at all stops gc, as it stops the deep scan.
                Content::Invalid {
                    error: error @ (Error::Io { .. } | Error::NotRegularFile { .. }),
                    ..
                } => return Err(error),
                Content::Absent | Content::Blob { .. } | Content::Invalid { .. } => {}
            }
        }
        Ok((shallow, unlisted))
    }

    /// Root or record? Records are response and fallback-tag indexes, and untagged entries
    /// whose blob has a subject (conventions A and D). Tagged entries are always roots.
    fn role(&self, entry: &Descriptor, graph: &Graph) -> Role {
        let is_index = media::is_index(entry.media_type());
        // Tagged entries are roots, except fallback tags, which are records; untagged ones are
        // read as the referrers scan reads them.
        if let Some(tag) = entry.ref_name() {
            return if is_index && graph.is_fallback_record(entry) {
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

/// Referrers that no record lists and no walk reaches, by subject digest.
type Unlisted = DigestMap<Vec<Descriptor>>;

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

/// The mark phase, a visitor of the one walk: every digest that becomes live brings its
/// children, its referrers and the records that list its referrers.
struct Marker<'a> {
    layout: &'a Layout,
    /// What the walk will enter next, read ahead.
    prefetch: &'a Prefetch<'a>,
    graph: &'a Graph,
    /// Referrers no record lists, by subject (what a deep scan adds to `graph`).
    unlisted: &'a Unlisted,
    entries: &'a [Descriptor],
    live: DigestSet,
    live_tags: HashSet<String>,
    roots: Vec<Descriptor>,
    by_subject: DigestMap<Vec<usize>>,
    by_tag: HashMap<String, Vec<usize>>,
    /// How long a referrer that no record lists (a killed attach or `copy -r` left it) lives.
    unlisted_grace: Duration,
    now: SystemTime,
}

impl Marker<'_> {
    /// A referrer of a live subject lives when a record lists it; one found only by the deep
    /// scan lives only while its blob is younger than the grace (and when its age cannot be
    /// told), so what an interrupted write left is removed once nobody can still be finishing it.
    fn keeps(&self, referrer: &Referrer) -> bool {
        let unlisted = referrer.recorded.iter().all(|c| *c == Convention::DeepScan);
        !unlisted || self.young(referrer.digest())
    }

    /// True while a blob is younger than the grace for unlisted referrers (and when its age
    /// cannot be told).
    fn young(&self, digest: &Digest) -> bool {
        let path = self.layout.blob_path(digest);
        match fs::symlink_metadata(&path).and_then(|m| m.modified()) {
            Ok(modified) => self
                .now
                .duration_since(modified)
                .map_or(true, |age| age < self.unlisted_grace),
            Err(_) => true,
        }
    }

    fn run(&mut self) -> Result<()> {
        let prefetch = self.prefetch;
        let mut walker = Walker::new(self.layout);
        let roots = std::mem::take(&mut self.roots);
        prefetch.want(&roots);
        for root in &roots {
            prefetch.top_up(&self.live);
            walker.walk(root, self)?;
        }
        Ok(())
    }
}

impl Visitor for Marker<'_> {
    fn known(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
    ) -> Result<Option<Vec<Descriptor>>> {
        self.prefetch.top_up(&self.live);
        match self.prefetch.take(desc) {
            Some(content) => self.enter(desc, parent, content).map(Some),
            None => Ok(None),
        }
    }

    fn enter(
        &mut self,
        desc: &Descriptor,
        _: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        let digest = desc.digest();
        self.live.insert(digest.clone());
        let mut next = match content {
            Content::Manifest { manifest, .. } => {
                manifest.children().into_iter().cloned().collect()
            }
            Content::Absent | Content::Blob { .. } => Vec::new(),
            // A blob its descriptor calls a manifest but that cannot be read or parsed: gc
            // cannot know what it keeps alive. An I/O error (a FIFO, a device) stops gc too.
            Content::Invalid {
                declared, error, ..
            } => {
                if declared || matches!(error, Error::Io { .. } | Error::NotRegularFile { .. }) {
                    return Err(Error::Corrupt {
                        path: self.layout.blob_path(digest),
                        reason: Corruption::GcCannotRead(Box::new(error)),
                    });
                }
                Vec::new()
            }
        };
        let referrers: Vec<&Referrer> = self
            .graph
            .referrers_of(digest)
            .into_iter()
            .filter(|r| self.keeps(r))
            .collect();
        // The walk needs a referrer's media type, digest and size, not its annotations.
        next.extend(referrers.iter().map(|r| r.descriptor.plain()));
        if let Some(list) = self.unlisted.get(digest) {
            next.extend(list.iter().filter(|r| self.young(r.digest())).cloned());
        }
        if let Some(list) = self.by_subject.get(digest) {
            // A record of a referrer queued just above would only be met again (which the
            // mark ignores): with 100,000 referrers, not copying those records counts.
            let queued: HashSet<&Digest, DigestHashBuilder> =
                referrers.iter().map(|r| r.digest()).collect();
            next.extend(
                list.iter()
                    .map(|&i| &self.entries[i])
                    .filter(|e| !queued.contains(e.digest()))
                    .cloned(),
            );
        }
        if !self.by_tag.is_empty() {
            let tag = fallback_tag(digest);
            if let Some(list) = self.by_tag.get(&tag) {
                next.extend(list.iter().map(|&i| self.entries[i].clone()));
                self.live_tags.insert(tag);
            }
        }
        self.prefetch.want(&next);
        Ok(next)
    }
}

/// Read ahead when fewer nodes than this are waiting.
const PREFETCH_LOW: usize = 512;
/// How many nodes one read-ahead round reads: enough to keep every core busy, few enough that
/// what waits stays small.
const PREFETCH_CHUNK: usize = 2048;

/// What the mark will enter next, read (through the walk's one rule, [`read_content`]) and
/// parsed on every core beforehand, in about the order the walk meets it. The walk asks
/// [`Visitor::known`] before it reads a node: what is ready here is entered from here; anything
/// else the walk reads itself. Each node read ahead is handed out once (the walk enters a digest
/// once).
struct Prefetch<'a> {
    layout: &'a Layout,
    threads: usize,
    /// Read ahead, not yet handed out: by digest, with the media type it was read under (the
    /// rule depends on it, so a node reached under another one is read again).
    ready: RefCell<DigestMap<(String, Content)>>,
    /// To read ahead, in the order the walk should meet them.
    pending: RefCell<VecDeque<Descriptor>>,
}

impl<'a> Prefetch<'a> {
    fn new(layout: &'a Layout) -> Self {
        Prefetch {
            layout,
            threads: hashing_threads(None),
            ready: RefCell::new(DigestMap::default()),
            pending: RefCell::new(VecDeque::new()),
        }
    }

    /// Queues `descs` ahead of what was queued before: the walk is depth first, so it enters
    /// these next.
    fn want(&self, descs: &[Descriptor]) {
        if self.threads < 2 {
            return;
        }
        let mut pending = self.pending.borrow_mut();
        for d in descs.iter().rev() {
            pending.push_front(d.plain());
        }
    }

    /// Reads the next round of queued nodes when few are waiting; `live` (entered already)
    /// are not read again.
    fn top_up(&self, live: &DigestSet) {
        if self.ready.borrow().len() >= PREFETCH_LOW {
            return;
        }
        let wanted: Vec<Descriptor> = {
            let ready = self.ready.borrow();
            let mut pending = self.pending.borrow_mut();
            let mut seen = DigestSet::default();
            let mut wanted = Vec::new();
            while wanted.len() < PREFETCH_CHUNK
                && let Some(d) = pending.pop_front()
            {
                if !live.contains(d.digest())
                    && !ready.contains_key(d.digest())
                    && seen.insert(d.digest().clone())
                {
                    wanted.push(d);
                }
            }
            wanted
        };
        if wanted.len() < 2 * self.threads {
            // Not worth the threads: the walk reads these itself.
            return;
        }
        let layout = self.layout;
        let read = on_every_core(&wanted, self.threads, |d| {
            let content = read_content(layout, d);
            Some((d.digest().clone(), (d.media_type().to_string(), content)))
        });
        self.ready.borrow_mut().extend(read);
    }

    /// What was read ahead for `desc`, when it was read under `desc`'s media type.
    fn take(&self, desc: &Descriptor) -> Option<Content> {
        let (media_type, content) = self.ready.borrow_mut().remove(desc.digest())?;
        (media_type == desc.media_type()).then_some(content)
    }
}

setters!(GcOptions {
    dry_run: bool,
    keep_orphan_referrers: bool,
    grace: Duration,
});
