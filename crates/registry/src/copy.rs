//! Copies between a layout and a registry, with every referrer.
//!
//! Into a registry ([`push`]): the store's transfer plan (its one traversal, and its referrers
//! scan that reads all five conventions) gives the blobs children before parents. Blobs the
//! registry already has are skipped (`HEAD`), the others are uploaded several at once;
//! manifests follow one at a time in plan order, so the referrers of one subject are pushed one
//! after the other; then the root's tag, then the fallback-tag records of the referrers the
//! registry did not index itself. A failure stops the push before any tag it had not reached.
//!
//! Out of a registry ([`pull`]): the graph is walked and every manifest verified before the
//! layout changes; blobs stream through the layout's `ingest/` (verified, then placed) while
//! the layout is pinned against gc; `index.json` changes only at the end: the root's entry,
//! then each referrer in the layout's referrers mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use ocistow_store::artifact::ProgressFactory;
use ocistow_store::layout::INGEST_DIR;
use ocistow_store::model::media;
use ocistow_store::referrers::{Mode, ResponseKey};
use ocistow_store::transfer::copy::plan_copy;
use ocistow_store::{Descriptor, Digest, Expected, Layout, Manifest, Platform, Progress};

use crate::client::{Client, Counting, ManifestBytes};
use crate::error::{Error, ReferenceProblem, Result};
use crate::reference::{RegistryRef, RegistryTarget};

/// Blobs moved at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// What a copy takes along.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Carry the referrers of the root and of everything below it, recursively.
    pub referrers: bool,
    /// Keep only these platforms of an index root (one: that manifest becomes the root).
    pub platforms: Vec<Platform>,
    /// Blobs moved at once (at least 1).
    pub concurrency: usize,
    /// More tags for the root in the destination registry, besides the destination's own
    /// (`docker://HOST/REPO:T1,T2` gives `T2` here, see [`RegistryRef::parse_with_tags`]).
    pub also_tags: Vec<String>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            referrers: false,
            platforms: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            also_tags: Vec::new(),
        }
    }
}

ocistow_store::setters!(CopyOptions {
    referrers: bool,
    platforms: Vec<Platform>,
    concurrency: usize,
    also_tags: Vec<String>,
});

/// What a push did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushReport {
    /// The root as pushed.
    pub root: Descriptor,
    /// Blobs and manifests the graph holds.
    pub blobs: usize,
    /// Of those, how many were uploaded; the rest were in the registry already.
    pub uploaded: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Referrer relations carried.
    pub referrers: usize,
    /// Of those, how many the registry indexed through its referrers API.
    pub indexed_by_api: usize,
    /// Descriptors added to fallback tags (0 on a second push of the same graph).
    pub fallback_added: usize,
    /// Absent non-distributable layers (with `urls`) that were not uploaded.
    pub foreign: usize,
}

/// Pushes `root` of `layout`, and what it reaches, to `dest` (tagged when `dest` has a tag;
/// a `dest` digest must be the root's).
pub fn push(
    layout: &Layout,
    root: &Descriptor,
    client: &Client,
    dest: &RegistryRef,
    options: &CopyOptions,
    progress: ProgressFactory<'_>,
) -> Result<PushReport> {
    let plan = plan_copy(layout, root, options.referrers, &options.platforms)?;
    if let RegistryTarget::Digest(d) = &dest.target
        && d != plan.root.digest()
    {
        return Err(Error::InvalidReference {
            input: dest.to_string(),
            problem: ReferenceProblem::NotTheSourceDigest {
                root: plan.root.digest().clone(),
            },
        });
    }
    let repo = dest.repository.as_str();
    let (manifests, blobs): (Vec<&Descriptor>, Vec<&Descriptor>) = plan
        .plan
        .blobs
        .iter()
        .partition(|d| media::is_manifest(d.media_type()));
    let total: u64 = blobs.iter().map(|d| d.size()).sum();
    let bar = progress("push", total);
    let uploaded = parallel(&blobs, options.concurrency, bar.as_ref(), |desc, p| {
        if client.blob_exists(repo, desc)? {
            p.advance(desc.size());
            return Ok(false);
        }
        client.push_blob(repo, layout, desc, p)?;
        Ok(true)
    })?;
    let mut report = PushReport {
        root: plan.root.clone(),
        blobs: plan.plan.blobs.len(),
        uploaded: uploaded.iter().filter(|u| **u).count(),
        bytes: blobs
            .iter()
            .zip(&uploaded)
            .filter(|(_, u)| **u)
            .map(|(d, _)| d.size())
            .sum(),
        referrers: plan.plan.relations.len(),
        indexed_by_api: 0,
        fallback_added: 0,
        foreign: plan.plan.foreign.len(),
    };

    let manifests = manifests
        .into_iter()
        .map(|d| Ok((d.clone(), layout.read_manifest(d)?.0)))
        .collect::<Result<Vec<_>>>()?;
    let relations: Vec<(Descriptor, Digest)> = plan
        .plan
        .relations
        .iter()
        .map(|r| (r.referrer.clone(), r.subject.clone()))
        .collect();
    // The root as the plan lists it: with the media type it was read as, when its entry named
    // none (a manifest listed as `application/octet-stream` is still pushed as a manifest).
    let (root, root_bytes) = match manifests
        .iter()
        .find(|(d, _)| d.digest() == plan.root.digest())
    {
        Some((d, b)) => (d.clone(), b.clone()),
        None => (plan.root.clone(), layout.read_manifest(&plan.root)?.0),
    };
    let tail = Tail {
        client,
        dest,
        also_tags: &options.also_tags,
        root: &root,
        root_bytes: &root_bytes,
        manifests: &manifests,
        relations: &relations,
    };
    tail.finish(&mut report)?;
    Ok(report)
}

/// What every push ends with, whatever the source: manifests, the root's tag, fallback records.
struct Tail<'a> {
    client: &'a Client,
    dest: &'a RegistryRef,
    /// Tags the root gets besides `dest`'s.
    also_tags: &'a [String],
    root: &'a Descriptor,
    root_bytes: &'a [u8],
    /// Children before parents.
    manifests: &'a [(Descriptor, Vec<u8>)],
    /// Referrer (as a referrers response lists it) and subject.
    relations: &'a [(Descriptor, Digest)],
}

impl Tail<'_> {
    fn finish(&self, report: &mut PushReport) -> Result<()> {
        let (client, repo) = (self.client, self.dest.repository.as_str());
        // Manifests one at a time, in order: children first, and the referrers of one subject
        // one after the other (a registry may lose an update to two at once).
        let mut indexed: HashSet<Digest> = HashSet::new();
        let mut already_there: HashSet<Digest> = HashSet::new();
        for (desc, bytes) in self.manifests {
            if client
                .head_manifest(repo, desc.digest().as_str())?
                .is_some()
            {
                already_there.insert(desc.digest().clone());
                continue;
            }
            let put = client
                .put_manifest(repo, desc.digest().as_str(), desc.media_type(), bytes)
                .map_err(|e| explain_refusal(e, client, desc, bytes))?;
            report.uploaded += 1;
            report.bytes += desc.size();
            if put.subject_indexed {
                indexed.insert(desc.digest().clone());
            }
        }

        let dest_tag = match &self.dest.target {
            RegistryTarget::Tag(tag) => Some(tag),
            _ => None,
        };
        for tag in dest_tag.into_iter().chain(self.also_tags) {
            client.put_manifest(repo, tag, self.root.media_type(), self.root_bytes)?;
        }

        // A referrer pushed earlier was indexed then if the registry has the API.
        let needs_probe = self
            .relations
            .iter()
            .any(|(r, _)| already_there.contains(r.digest()));
        let api = needs_probe && has_referrers_api(client, repo, self.root.digest())?;
        let mut fallback: BTreeMap<usize, (Digest, Vec<Descriptor>)> = BTreeMap::new();
        let mut order: HashMap<Digest, usize> = HashMap::new();
        for (referrer, subject) in self.relations {
            let d = referrer.digest();
            if indexed.contains(d) || (api && already_there.contains(d)) {
                report.indexed_by_api += 1;
                continue;
            }
            let next = order.len();
            let slot = *order.entry(subject.clone()).or_insert(next);
            fallback
                .entry(slot)
                .or_insert_with(|| (subject.clone(), Vec::new()))
                .1
                .push(referrer.clone());
        }
        for (subject, referrers) in fallback.values() {
            report.fallback_added += client.record_fallback(repo, subject, referrers)?;
        }
        Ok(())
    }
}

/// Copies `src` (a tag or digest) and what it reaches from one registry to another, or within
/// one (blobs are then mounted across repositories instead of moved). Without a tag or digest
/// in `dest`, the source's tag is kept.
pub fn copy_between(
    src_client: &Client,
    src: &RegistryRef,
    dst_client: &Client,
    dest: &RegistryRef,
    options: &CopyOptions,
    progress: ProgressFactory<'_>,
) -> Result<PushReport> {
    let graph = walk(src_client, src, options)?;
    let dest = match (&dest.target, &src.target) {
        (RegistryTarget::Repository, RegistryTarget::Tag(_)) => {
            dest.with_target(src.target.clone())
        }
        _ => dest.clone(),
    };
    if let RegistryTarget::Digest(d) = &dest.target
        && d != graph.root.digest()
    {
        return Err(Error::InvalidReference {
            input: dest.to_string(),
            problem: ReferenceProblem::NotTheSourceDigest {
                root: graph.root.digest().clone(),
            },
        });
    }
    let same_registry = src_client.registry() == dst_client.registry();
    let (src_repo, dst_repo) = (src.repository.as_str(), dest.repository.as_str());
    let blobs: Vec<&Descriptor> = graph.blobs.iter().collect();
    let bar = progress("copy", blobs.iter().map(|d| d.size()).sum());
    let moved = parallel(&blobs, options.concurrency, bar.as_ref(), |desc, p| {
        if dst_client.blob_exists(dst_repo, desc)? {
            p.advance(desc.size());
            return Ok(false);
        }
        if same_registry && dst_client.mount_blob(dst_repo, src_repo, desc.digest())? {
            p.advance(desc.size());
            return Ok(true);
        }
        let reader = Counting {
            inner: src_client.open_blob(src_repo, desc)?,
            progress: p,
        };
        dst_client.push_blob_from(dst_repo, desc, Box::new(reader))?;
        Ok(true)
    })?;
    let mut report = PushReport {
        root: graph.root.clone(),
        blobs: graph.blobs.len() + graph.manifests.len(),
        uploaded: moved.iter().filter(|m| **m).count(),
        bytes: blobs
            .iter()
            .zip(&moved)
            .filter(|(_, m)| **m)
            .map(|(d, _)| d.size())
            .sum(),
        referrers: graph.relations.len(),
        indexed_by_api: 0,
        fallback_added: 0,
        foreign: 0,
    };
    let manifests: Vec<(Descriptor, Vec<u8>)> = graph
        .manifests
        .iter()
        .map(|m| (m.descriptor(), m.bytes.clone()))
        .collect();
    let root_bytes = graph
        .manifests
        .iter()
        .find(|m| m.digest == *graph.root.digest())
        .map(|m| m.bytes.clone())
        .unwrap_or_default();
    let tail = Tail {
        client: dst_client,
        dest: &dest,
        also_tags: &options.also_tags,
        root: &graph.root,
        root_bytes: &root_bytes,
        manifests: &manifests,
        relations: &graph.relations,
    };
    tail.finish(&mut report)?;
    Ok(report)
}

/// True when the registry answers the referrers API (a 404 there means it has none).
fn has_referrers_api(client: &Client, repo: &str, any: &Digest) -> Result<bool> {
    Ok(client.referrers(repo, any, None)?.from_api)
}

/// Turns a refused manifest PUT into what the user can act on.
fn explain_refusal(e: Error, client: &Client, desc: &Descriptor, bytes: &[u8]) -> Error {
    let Error::Status { status, code, .. } = &e else {
        return e;
    };
    let Ok(manifest) = Manifest::parse(desc.media_type(), bytes) else {
        return e;
    };
    let unsupported = |reason: String| Error::Unsupported {
        registry: client.registry().into(),
        digest: desc.digest().clone(),
        reason,
    };
    let foreign = manifest.children().iter().any(|c| !c.urls().is_empty());
    match code.as_deref() {
        Some("DIGEST_INVALID") if desc.digest().algorithm() != "sha256" => unsupported(format!(
            "the registry refuses {} manifests (distribution 2.8 accepts only sha256); nothing \
             was tagged",
            desc.digest().algorithm()
        )),
        Some("MANIFEST_BLOB_UNKNOWN" | "MANIFEST_INVALID") if foreign => unsupported(
            "it names layers with foreign urls, which the registry refuses (distribution allows \
             them with validation.manifests.urls.allow); nothing was tagged"
                .into(),
        ),
        _ if *status == 400 && foreign => unsupported(format!(
            "{e}; it names layers with foreign urls, which many registries refuse"
        )),
        _ => e,
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullReport {
    /// The root entry written into the layout.
    pub root: Descriptor,
    /// Blobs and manifests the graph holds.
    pub blobs: usize,
    /// Of those, how many were downloaded; the rest were in the layout already.
    pub downloaded: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Referrer relations recorded in the layout.
    pub referrers: usize,
    /// Non-distributable layers (with `urls`) the registry does not have, left out.
    pub foreign: usize,
}

/// How a pull records what it brought.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PullInto {
    /// Tags for the root in the layout; empty for an untagged entry.
    pub tags: Vec<String>,
    /// The referrers mode; `None`: the one the layout uses, else annotation.
    pub mode: Option<Mode>,
    /// The response key; `None`: the one the layout uses, else `oci`.
    pub response_key: Option<ResponseKey>,
}

ocistow_store::setters!(PullInto {
    tags: Vec<String>,
    mode: Option<Mode>,
    response_key: Option<ResponseKey>,
});

/// The registry graph from a root, read and verified before anything is written.
struct Graph {
    root: Descriptor,
    /// Manifests, children before parents.
    manifests: Vec<ManifestBytes>,
    /// Other blobs, each once.
    blobs: Vec<Descriptor>,
    /// Referrer descriptor (as the registry lists it) and subject.
    relations: Vec<(Descriptor, Digest)>,
}

/// One step of the iterative walk, as in the store's planner.
enum Step {
    Enter(Descriptor, Option<HashSet<Digest>>),
    Leave(ManifestBytes),
}

/// Pulls `src` (a tag or digest) and what it reaches into `layout`: [`plan_pull`], then
/// [`pull_planned`].
pub fn pull(
    client: &Client,
    src: &RegistryRef,
    layout: &Layout,
    options: &CopyOptions,
    into: &PullInto,
    progress: ProgressFactory<'_>,
) -> Result<PullReport> {
    let plan = plan_pull(client, src, options)?;
    pull_planned(client, &plan, layout, options, into, progress)
}

/// A registry graph whose manifests were all read and verified; nothing written yet.
pub struct PullPlan {
    src: RegistryRef,
    graph: Graph,
}

impl PullPlan {
    /// The root the pull will list in the layout.
    pub fn root(&self) -> &Descriptor {
        &self.graph.root
    }
}

/// Walks `src` and what it reaches (with `options.referrers`, every referrer, recursively),
/// verifying every manifest, before any layout is touched (or created).
pub fn plan_pull(client: &Client, src: &RegistryRef, options: &CopyOptions) -> Result<PullPlan> {
    Ok(PullPlan {
        src: src.clone(),
        graph: walk(client, src, options)?,
    })
}

/// Writes a planned pull into `layout`: blobs stream in verified while the layout is pinned,
/// `index.json` changes at the end. A refused pull leaves the layout as it was.
pub fn pull_planned(
    client: &Client,
    plan: &PullPlan,
    layout: &Layout,
    options: &CopyOptions,
    into: &PullInto,
    progress: ProgressFactory<'_>,
) -> Result<PullReport> {
    // A corrupt index.json would fail the final update: find out before downloading.
    layout.read_index()?;
    let ingest = layout.root().join(INGEST_DIR);
    let had_ingest = ingest.exists();
    let result = store(
        client,
        &plan.src,
        layout,
        &plan.graph,
        options,
        into,
        progress,
    );
    if result.is_err() && !had_ingest {
        // The verified writer's work area goes too when this pull created it and nothing else
        // is in it (remove_dir refuses otherwise).
        let _ = std::fs::remove_dir(&ingest);
    }
    result
}

/// Writes a walked graph into `layout`: blobs while pinned, then `index.json`.
fn store(
    client: &Client,
    src: &RegistryRef,
    layout: &Layout,
    graph: &Graph,
    options: &CopyOptions,
    into: &PullInto,
    progress: ProgressFactory<'_>,
) -> Result<PullReport> {
    let staged = layout.stage()?;
    let mut missing = Vec::new();
    let mut foreign = 0;
    for b in &graph.blobs {
        if layout.blob_size(b.digest())? == Some(b.size()) {
            continue;
        }
        if !b.urls().is_empty() && !client.blob_exists(&src.repository, b)? {
            foreign += 1;
            continue;
        }
        missing.push(b);
    }
    let bar = progress("pull", missing.iter().map(|d| d.size()).sum());
    parallel(&missing, options.concurrency, bar.as_ref(), |desc, p| {
        client.fetch_blob(&src.repository, desc, layout, p)
    })?;
    for m in &graph.manifests {
        let expected = Expected::default()
            .digest(Some(m.digest.clone()))
            .size(Some(m.bytes.len() as u64));
        layout.write_blob(&mut &m.bytes[..], expected)?;
    }
    staged.commit_batch(
        Some((&graph.root, &into.tags)),
        &graph.relations,
        into.mode,
        into.response_key,
    )?;
    Ok(PullReport {
        root: graph.root.clone(),
        blobs: graph.blobs.len() + graph.manifests.len(),
        downloaded: missing.len(),
        bytes: missing.iter().map(|d| d.size()).sum(),
        referrers: graph.relations.len(),
        foreign,
    })
}

/// Reads the manifests of the graph from `src`, verifying each, children before parents.
fn walk(client: &Client, src: &RegistryRef, options: &CopyOptions) -> Result<Graph> {
    let repo = src.repository.as_str();
    let reference = src
        .manifest_reference()
        .ok_or_else(|| Error::InvalidReference {
            input: src.to_string(),
            problem: ReferenceProblem::NoTagOrDigestToCopy,
        })?;
    let first = client.get_manifest(repo, &reference)?;
    let mut root = first.descriptor();
    let mut only = None;
    if !options.platforms.is_empty() {
        let mut picked = pick_platforms(src, &first, &options.platforms)?;
        if picked.len() == 1 {
            root = picked.swap_remove(0);
        } else {
            only = Some(picked.iter().map(|d| d.digest().clone()).collect());
        }
    }
    let mut graph = Graph {
        root: root.clone(),
        manifests: Vec::new(),
        blobs: Vec::new(),
        relations: Vec::new(),
    };
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut stack = vec![Step::Enter(root, only)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Leave(m) => {
                let subject = m.digest.clone();
                graph.manifests.push(m);
                if !options.referrers {
                    continue;
                }
                let listed = client.referrers(repo, &subject, None)?;
                for r in listed.descriptors.into_iter().rev() {
                    graph.relations.push((r.clone(), subject.clone()));
                    stack.push(Step::Enter(r, None));
                }
            }
            Step::Enter(desc, only) => {
                if !seen.insert(desc.digest().clone()) {
                    continue;
                }
                if !media::is_manifest(desc.media_type()) {
                    graph.blobs.push(desc);
                    continue;
                }
                let m = client.get_manifest(repo, desc.digest().as_str())?;
                if m.bytes.len() as u64 != desc.size() {
                    return Err(Error::BadResponse {
                        url: client.registry().into(),
                        reason: format!(
                            "manifest {} is {} bytes, its descriptor says {}",
                            desc.digest(),
                            m.bytes.len(),
                            desc.size()
                        ),
                    });
                }
                let parsed = Manifest::parse(&m.media_type, &m.bytes).map_err(|reason| {
                    Error::BadResponse {
                        url: client.registry().into(),
                        reason: format!("manifest {}: {reason}", desc.digest()),
                    }
                })?;
                let children: Vec<Descriptor> = parsed
                    .children()
                    .into_iter()
                    .filter(|c| {
                        only.as_ref()
                            .is_none_or(|o: &HashSet<Digest>| o.contains(c.digest()))
                    })
                    .cloned()
                    .collect();
                stack.push(Step::Leave(m));
                for c in children.into_iter().rev() {
                    stack.push(Step::Enter(c, None));
                }
            }
        }
    }
    // The relations were found parent first; record them in the order they were met.
    let mut relation_seen = HashSet::new();
    graph
        .relations
        .retain(|(r, _)| relation_seen.insert(r.digest().clone()));
    Ok(graph)
}

/// The children of the index `manifest` (fetched for `src`) that match `platforms`, one for
/// each platform in order.
pub(crate) fn pick_platforms(
    src: &RegistryRef,
    manifest: &ManifestBytes,
    platforms: &[Platform],
) -> Result<Vec<Descriptor>> {
    let Ok(Manifest::Index(index)) = Manifest::parse(&manifest.media_type, &manifest.bytes) else {
        return Err(Error::InvalidReference {
            input: src.to_string(),
            problem: ReferenceProblem::PlatformOfNonIndex,
        });
    };
    platforms
        .iter()
        .map(|p| {
            index
                .manifests()
                .iter()
                .find(|d| d.platform().is_some_and(|dp| p.matches(&dp)))
                .cloned()
                .ok_or_else(|| Error::InvalidReference {
                    input: src.to_string(),
                    problem: ReferenceProblem::NoSuchPlatform {
                        platform: p.to_string(),
                    },
                })
        })
        .collect()
}

/// Runs `job` over `items` on up to `concurrency` threads, all progress reaching `bar` from
/// this thread. The first error stops the others from taking new items and is returned.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    concurrency: usize,
    bar: &dyn Progress,
    job: impl Fn(&T, &dyn Progress) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::scope(|s| {
        for _ in 0..concurrency.clamp(1, items.len().max(1)) {
            let tx = tx.clone();
            let (next, stop, results, job) = (&next, &stop, &results, &job);
            s.spawn(move || {
                let p = Channel(tx);
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = {
                        let mut n = next
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { break };
                    let r = job(item, &p);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(r);
                }
            });
        }
        drop(tx);
        for n in rx {
            bar.advance(n);
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for r in results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            // Items are left untaken only after an error stopped the workers.
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Progress sent to the thread that owns the bar.
struct Channel(mpsc::Sender<u64>);

impl Progress for Channel {
    fn advance(&self, bytes: u64) {
        let _ = self.0.send(bytes);
    }
}
