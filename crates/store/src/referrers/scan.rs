//! One pass over a layout that understands conventions A-E and yields the graph
//! subject → referrers, with where each relation is recorded and every inconsistency found.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::facts::{Facts, Record};
use super::{
    Convention, EntryKind, Graph, Issue, classify, fallback_tag, keys, looks_like_fallback_tag,
};
use crate::digest::{Digest, DigestMap};
use crate::error::{Error, Result};
use crate::layout::{BLOBS_DIR, Layout, MAX_MANIFEST_SIZE};
use crate::model::{Descriptor, ImageIndex, Manifest, media};
use crate::walk::{
    BlobSource, Candidate, Content, Visitor, Walker, candidate, on_every_core, read_content,
    starts_like_json_object,
};

/// What to scan.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ScanOptions {
    /// Also read every blob under `blobs/`, so referrers reachable from nothing are found.
    pub deep: bool,
    /// Use and update the layout's facts cache (`.ocistow.facts`: what each image manifest
    /// blob says, by digest), so a scan reads only the manifests no scan read before. On by
    /// default; off, every manifest is read and the cache is left as it is.
    pub facts_cache: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            deep: false,
            facts_cache: true,
        }
    }
}

/// What a record (response or fallback index) claims.
struct Claim {
    convention: Convention,
    /// The subject digest (responses) or the fallback tag (fallback indexes), shared by every
    /// claim of one record.
    subject: Rc<str>,
    referrer: Digest,
}

/// What the scan keeps of a manifest blob, read once (or known from the facts cache).
struct Loaded {
    /// The media type it was read as: one of the common ones shared, not a copy per blob.
    media_type: Cow<'static, str>,
    /// This and the next two are taken when the referrer is added to the graph (once per
    /// digest); the graph is where they are read from afterwards.
    subject: Option<Descriptor>,
    /// `artifactType`, else (image manifests) the config's media type.
    artifact_type: Option<String>,
    annotations: Option<Map<String, Value>>,
    /// An index's entries; `None` for an image manifest.
    entries: Option<Vec<Descriptor>>,
}

impl Loaded {
    fn of(media_type: String, manifest: Manifest) -> Self {
        let media_type = interned(media_type);
        match manifest {
            Manifest::Image(m) => Loaded {
                media_type,
                artifact_type: Some(m.effective_artifact_type().to_string()),
                subject: m.subject,
                annotations: m.annotations,
                entries: None,
            },
            Manifest::Index(mut i) => Loaded {
                media_type,
                subject: i.subject(),
                artifact_type: i.artifact_type().map(str::to_string),
                annotations: i.annotations().cloned(),
                entries: Some(std::mem::take(i.manifests_mut())),
            },
        }
    }
}

/// `media_type` without a copy when it is one of the manifest types nearly every blob has.
fn interned(media_type: impl AsRef<str> + Into<String>) -> Cow<'static, str> {
    match media::MANIFESTS.iter().find(|m| **m == media_type.as_ref()) {
        Some(m) => Cow::Borrowed(m),
        None => Cow::Owned(media_type.into()),
    }
}

/// How many descriptors are read ahead at a time: enough to keep every core busy, few enough
/// that the bytes read ahead stay a small part of what the scan keeps anyway.
const READ_AHEAD: usize = 2048;

/// The blobs the walk will read next, read and verified beforehand on every core; anything
/// else (and anything that failed to read ahead: the walk reads it again and reports it) comes
/// from the layout. Each blob read ahead is handed out once, which is all the scan asks.
struct ReadAhead<'a> {
    layout: &'a Layout,
    /// Blobs the facts cache knows are not read ahead (most likely they are not read at all).
    facts: &'a Facts,
    ready: RefCell<DigestMap<Vec<u8>>>,
    threads: usize,
}

impl<'a> ReadAhead<'a> {
    fn new(layout: &'a Layout, facts: &'a Facts) -> Self {
        ReadAhead {
            layout,
            facts,
            ready: RefCell::new(DigestMap::default()),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// Reads ahead the blobs of `descs` the walk would read as manifests.
    fn fill(&self, descs: &[Descriptor]) {
        let wanted: Vec<&Digest> = {
            let ready = self.ready.borrow();
            let mut seen = HashSet::new();
            descs
                .iter()
                .filter(|d| candidate(d.media_type()) != Candidate::No)
                .map(Descriptor::digest)
                .filter(|d| {
                    d.known_algorithm().is_ok()
                        && self.facts.get(d).is_none()
                        && !ready.contains_key(*d)
                        && seen.insert(*d)
                })
                .collect()
        };
        if wanted.len() < 2 * self.threads || self.threads < 2 {
            return;
        }
        let layout = self.layout;
        let read = on_every_core(&wanted, self.threads, |d| {
            let bytes = layout.read_blob_limited(d, MAX_MANIFEST_SIZE).ok()?;
            Some(((*d).clone(), bytes))
        });
        self.ready.borrow_mut().extend(read);
    }
}

impl BlobSource for ReadAhead<'_> {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        if let Some(bytes) = self.ready.borrow().get(digest) {
            return Ok(Some(bytes.len() as u64));
        }
        self.layout.blob_size(digest)
    }

    fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let ahead = self.ready.borrow_mut().remove(digest);
        match ahead {
            Some(bytes) if bytes.len() as u64 <= limit => Ok(bytes),
            _ => self.layout.read_blob_limited(digest, limit),
        }
    }
}

struct Scanner<'a> {
    layout: &'a Layout,
    source: &'a ReadAhead<'a>,
    facts: &'a Facts,
    /// Records of the manifests read in this scan, for the cache.
    learned: Vec<(Digest, Record)>,
    /// What each manifest met holds (`None`: not a manifest). Boxed: the table has a slot for
    /// every digest met, and most of what a `Loaded` holds is taken once it is read.
    loaded: DigestMap<Option<Box<Loaded>>>,
    /// The one walk, shared by every entry so each manifest is entered once.
    walker: Walker<'a>,
    /// The convention of the entry being walked.
    root_via: Convention,
    graph: Graph,
    claims: Vec<Claim>,
    /// (convention, subject or tag) of every record index found.
    recorded_subjects: HashSet<(Convention, String)>,
    /// Positions in index.json of the entries annotated with a subject (their annotation is
    /// read again when checked, rather than copied for each).
    annotations: Vec<usize>,
    /// The subject [`Scanner::subject_of`] built last.
    last_subject: Option<Descriptor>,
}

/// A subject as a facts record holds it: media type, digest text, size.
type SubjectFacts<'a> = (&'a str, &'a str, u64);

impl Layout {
    /// Reads every referrer record and every reachable manifest into a [`Graph`].
    pub fn scan_referrers(&self, options: ScanOptions) -> Result<Graph> {
        self.scan_referrers_in(&self.read_index()?, options)
    }

    /// [`Layout::scan_referrers`] with `index`, this layout's `index.json` as the caller
    /// already read it: a command that also resolves a reference parses it once.
    pub fn scan_referrers_in(&self, index: &ImageIndex, options: ScanOptions) -> Result<Graph> {
        let mut facts = Facts::load(self.root(), options.facts_cache);
        let ahead = ReadAhead::new(self, &facts);
        let mut s = Scanner {
            layout: self,
            source: &ahead,
            facts: &facts,
            learned: Vec::new(),
            loaded: DigestMap::default(),
            walker: Walker::new(&ahead),
            root_via: Convention::Plain,
            graph: Graph::default(),
            claims: Vec::new(),
            recorded_subjects: HashSet::new(),
            annotations: Vec::new(),
            last_subject: None,
        };
        s.ambiguous_tags(index.manifests());
        for (c, chunk) in index.manifests().chunks(READ_AHEAD).enumerate() {
            ahead.fill(chunk);
            for (i, entry) in chunk.iter().enumerate() {
                s.entry(c * READ_AHEAD + i, entry)?;
            }
        }
        if options.deep {
            s.deep_scan()?;
        }
        s.check_claims(index.manifests());
        s.check_subjects()?;
        let Scanner {
            mut graph,
            learned,
            loaded,
            ..
        } = s;
        drop(ahead);
        for (digest, record) in learned {
            facts.learn(&digest, record);
        }
        // Records of blobs this scan did not meet are dropped when the file is rewritten: most
        // are of deleted blobs.
        if facts.dirty() {
            let met: HashSet<&str> = loaded.keys().map(Digest::as_str).collect();
            facts.save(self.root(), |d| met.contains(d));
        }
        graph.issues.sort();
        graph.issues.dedup();
        Ok(graph)
    }
}

impl Scanner<'_> {
    fn entry(&mut self, position: usize, entry: &Descriptor) -> Result<()> {
        match classify(entry) {
            EntryKind::Response { subject } => {
                if !media::is_index(entry.media_type()) {
                    self.graph.issues.push(Issue::ResponseNotIndex {
                        entry: entry.digest().clone(),
                        media_type: entry.media_type().into(),
                    });
                    return self.walk(entry, Convention::Plain);
                }
                match Digest::parse(&subject) {
                    Ok(d) => {
                        self.record_index(entry, Convention::Response, d.as_str())?;
                    }
                    Err(_) => self.graph.issues.push(Issue::ResponseBadSubject {
                        entry: entry.digest().clone(),
                        value: subject,
                    }),
                }
                Ok(())
            }
            EntryKind::Fallback { tag } => self.record_index(entry, Convention::FallbackTag, &tag),
            EntryKind::SubjectAnnotation { .. } => {
                self.annotations.push(position);
                self.walk(entry, Convention::SubjectAnnotation)
            }
            EntryKind::Other => {
                if let Some(tag) = entry.ref_name()
                    && looks_like_fallback_tag(tag)
                {
                    self.graph.issues.push(Issue::FallbackNotIndex {
                        tag: tag.into(),
                        entry: entry.digest().clone(),
                        media_type: entry.media_type().into(),
                    });
                }
                self.walk(entry, Convention::Plain)
            }
        }
    }

    /// A response or fallback index: each child is a claimed referrer of `subject`.
    fn record_index(
        &mut self,
        entry: &Descriptor,
        convention: Convention,
        subject: &str,
    ) -> Result<()> {
        let subject_key = subject;
        *self.graph.records.entry(convention).or_default() += 1;
        self.recorded_subjects
            .insert((convention, subject.to_string()));
        let children: Vec<Descriptor> = match self.load(entry)? {
            Some(Loaded {
                entries: Some(entries),
                ..
            }) => entries.clone(),
            Some(_) => {
                self.graph.issues.push(Issue::ResponseNotIndex {
                    entry: entry.digest().clone(),
                    media_type: entry.media_type().into(),
                });
                return Ok(());
            }
            None => return Ok(()),
        };
        let shared: Rc<str> = subject.into();
        let mut exact = !children.is_empty();
        for (i, child) in children.iter().enumerate() {
            if i % READ_AHEAD == 0 {
                let end = children.len().min(i + READ_AHEAD);
                self.source.fill(&children[i..end]);
            }
            self.claims.push(Claim {
                convention,
                subject: Rc::clone(&shared),
                referrer: child.digest().clone(),
            });
            if self.source.blob_size(child.digest())?.is_none() {
                self.graph.issues.push(Issue::ReferrerBlobMissing {
                    referrer: child.digest().clone(),
                    via: convention,
                });
                exact = false;
                continue;
            }
            self.walk(child, convention)?;
            // Walked just above: a child with a subject is in the graph now.
            let subject = self.graph.get(child.digest()).map(|r| &r.subject);
            exact &= subject.is_some_and(|s| fallback_tag(s.digest()) == subject_key);
        }
        if convention == Convention::FallbackTag && exact {
            self.graph.fallback_records.insert(entry.digest().clone());
        }
        Ok(())
    }

    /// Walks from a manifest reached as `via` (see [`Visitor`] below): records every manifest
    /// on the way whose blob has a subject, through an index's children (attestations and
    /// other nested referrers).
    fn walk(&mut self, desc: &Descriptor, via: Convention) -> Result<()> {
        self.root_via = via;
        let mut walker = std::mem::replace(&mut self.walker, Walker::new(self.source));
        let result = walker.walk(desc, self);
        self.walker = walker;
        result
    }

    /// The convention a descriptor is reached by: the root's, or that of an index child.
    fn via(&self, desc: &Descriptor, parent: Option<&Descriptor>) -> Convention {
        if parent.is_none() {
            self.root_via
        } else if desc.annotation(keys::DOCKER_REFERENCE_TYPE) == Some(keys::ATTESTATION_MANIFEST) {
            Convention::Attestation
        } else {
            Convention::Nested
        }
    }

    fn add_if_referrer(&mut self, desc: &Descriptor, via: Convention) -> Result<()> {
        // Met again: only the convention is new, the descriptor was built the first time.
        if self.graph.add_via(desc.digest(), via) {
            return Ok(());
        }
        if let Some((d, s)) = self.referrer_of(desc)? {
            self.graph.add(d, s, via);
        }
        Ok(())
    }

    /// The referrer descriptor and subject of a manifest, when it has a usable subject. Built
    /// once per digest (the graph keeps them): it takes what it needs from what was loaded
    /// rather than copy it.
    fn referrer_of(&mut self, desc: &Descriptor) -> Result<Option<(Descriptor, Descriptor)>> {
        if self.load(desc)?.is_none() {
            return Ok(None);
        }
        let Some(Some(loaded)) = self.loaded.get_mut(desc.digest()) else {
            return Ok(None);
        };
        let Some(subject) = loaded.subject.take() else {
            return Ok(None);
        };
        let mut d = Descriptor::new(&loaded.media_type, desc.digest().clone(), desc.size());
        if let Some(a) = loaded.annotations.take() {
            d.set_annotations(a);
        }
        if let Some(at) = loaded.artifact_type.take() {
            d.set_artifact_type(&at);
        }
        Ok(Some((d, subject)))
    }

    /// Reads and parses a manifest blob once (or takes what the facts cache knows of it).
    /// Absent blobs and non-manifests give `None`; unreadable manifests are reported.
    fn load(&mut self, desc: &Descriptor) -> Result<Option<&Loaded>> {
        if !self.loaded.contains_key(desc.digest()) {
            let value = match self.cached(desc) {
                Some(loaded) => Some(loaded),
                None => self.read(desc)?,
            };
            self.loaded
                .insert(desc.digest().clone(), value.map(Box::new));
        }
        Ok(self.loaded.get(desc.digest()).and_then(Option::as_deref))
    }

    /// What the facts cache knows of an image manifest: only for a blob that exists, as a
    /// regular file of the recorded size (asked of the file system, never of the cache).
    fn cached(&mut self, desc: &Descriptor) -> Option<Loaded> {
        if !media::is_image_manifest(desc.media_type()) {
            return None;
        }
        let facts = self.facts;
        let record = facts.get(desc.digest())?;
        match self.source.blob_size(desc.digest()) {
            Ok(Some(size)) if size == record.size => {}
            _ => return None,
        }
        let subject = match record.subject {
            None => None,
            // A subject digest that does not parse makes the record unusable: read the blob.
            Some(s) => Some(self.subject_of(s)?),
        };
        Some(Loaded {
            media_type: interned(desc.media_type()),
            subject,
            artifact_type: Some(record.artifact_type.to_string()),
            annotations: record.annotations(),
            entries: None,
        })
    }

    /// The subject a record names, as a descriptor. Referrers of one subject come in runs, so
    /// the last one built is reused rather than parsed and built again.
    fn subject_of(&mut self, (media_type, digest, size): SubjectFacts<'_>) -> Option<Descriptor> {
        if let Some(last) = &self.last_subject
            && last.size() == size
            && last.digest().as_str() == digest
            && last.media_type() == media_type
        {
            return Some(last.clone());
        }
        let d = Descriptor::new(media_type, Digest::parse(digest).ok()?, size);
        self.last_subject = Some(d.clone());
        Some(d)
    }

    fn read(&mut self, desc: &Descriptor) -> Result<Option<Loaded>> {
        let content = read_content(self.source, desc);
        self.loaded_from(desc, content)
    }

    /// What a walk read, as the scan keeps it; unreadable manifests become issues, and a
    /// blob that cannot be read at all (I/O, not a regular file) stops the scan.
    fn loaded_from(&mut self, desc: &Descriptor, content: Content) -> Result<Option<Loaded>> {
        match content {
            Content::Absent | Content::Blob { .. } => Ok(None),
            // Parsing it checked its `subject` already (a bad one is `Content::Invalid`).
            Content::Manifest {
                media_type,
                manifest,
                size,
                ..
            } => {
                let loaded = Loaded::of(media_type, manifest);
                // Only what was read under an image manifest type: what a sniffed blob is
                // taken for depends on how it is reached, not on its content alone.
                if loaded.entries.is_none()
                    && media::is_image_manifest(desc.media_type())
                    && let Some(record) = Record::of(
                        size,
                        loaded.subject.as_ref(),
                        loaded.artifact_type.as_deref().unwrap_or(""),
                        loaded.annotations.as_ref(),
                    )
                {
                    self.learned.push((desc.digest().clone(), record));
                }
                Ok(Some(loaded))
            }
            Content::Invalid {
                error: error @ (Error::Io { .. } | Error::NotRegularFile { .. }),
                ..
            } => Err(error),
            Content::Invalid { error, bytes, .. } => {
                // A bad `subject` makes the whole manifest fail to parse; say so precisely.
                match bytes.and_then(|b| subject_is_usable(&b).err()) {
                    Some(reason) => self.graph.issues.push(Issue::BadSubject {
                        manifest: desc.digest().clone(),
                        reason,
                    }),
                    None => self.graph.issues.push(Issue::UnreadableManifest {
                        digest: desc.digest().clone(),
                        reason: error.to_string(),
                    }),
                }
                Ok(None)
            }
        }
    }

    fn deep_scan(&mut self) -> Result<()> {
        let blobs = self.layout.root().join(BLOBS_DIR);
        let Ok(algs) = fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut found: Vec<(Digest, u64)> = Vec::new();
        for alg in algs.flatten() {
            let Ok(files) = fs::read_dir(alg.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                let Ok(digest) = Digest::parse(&name) else {
                    continue;
                };
                let Ok(meta) = f.metadata() else { continue };
                if !meta.is_file()
                    || meta.len() > MAX_MANIFEST_SIZE
                    || self.loaded.contains_key(&digest)
                {
                    continue;
                }
                found.push((digest, meta.len()));
            }
        }
        // Deterministic order whatever the directory order is.
        found.sort();
        for (digest, size) in found {
            // Found by digest alone: the content decides (the one rule, through `load`). A
            // first byte other than `{` rules a blob out without reading it all.
            if !starts_like_json_object(&self.layout.blob_path(&digest)) {
                continue;
            }
            let desc = Descriptor::new("application/octet-stream", digest.clone(), size);
            if self.graph.get(&digest).is_none()
                && let Some((d, s)) = self.referrer_of(&desc)?
            {
                self.graph.add(d, s, Convention::DeepScan);
            }
        }
        Ok(())
    }

    fn check_claims(&mut self, entries: &[Descriptor]) {
        for claim in &self.claims {
            let actual = self
                .graph
                .get(&claim.referrer)
                .map(|r| r.subject.digest().clone());
            let matches = match (&actual, claim.convention) {
                (Some(a), Convention::FallbackTag) => fallback_tag(a) == *claim.subject,
                (Some(a), _) => a.as_str() == &*claim.subject,
                (None, _) => false,
            };
            // A record listing an absent blob was reported as ReferrerBlobMissing already. Asked
            // only of a claim that disagrees: a referrer the graph holds was stat'ed when read.
            if !matches && self.layout.blob_exists(&claim.referrer).unwrap_or(false) {
                self.graph.issues.push(Issue::RecordWrong {
                    convention: claim.convention,
                    subject: claim.subject.to_string(),
                    referrer: claim.referrer.clone(),
                    actual,
                });
            }
        }
        for entry in self.annotations.iter().filter_map(|&i| entries.get(i)) {
            let EntryKind::SubjectAnnotation { subject: annotated } = classify(entry) else {
                continue;
            };
            let referrer = entry.digest();
            let actual = self.graph.get(referrer).map(|r| r.subject.digest());
            if actual.map(Digest::as_str) != Some(annotated.as_str()) {
                self.graph.issues.push(Issue::AnnotationDisagrees {
                    referrer: referrer.clone(),
                    annotated,
                    actual: actual.cloned(),
                });
            }
        }
        // Records that should list a referrer and do not.
        // Borrowed from the claims: 100,000 referrers of one subject would copy its text each.
        let listed: HashSet<(Convention, &str, &Digest)> = self
            .claims
            .iter()
            .map(|c| (c.convention, &*c.subject, &c.referrer))
            .collect();
        for convention in [Convention::Response, Convention::FallbackTag] {
            if self.graph.record_count(convention) == 0 {
                continue;
            }
            for r in &self.graph.referrers {
                let key = match convention {
                    Convention::FallbackTag => fallback_tag(r.subject.digest()),
                    _ => r.subject.digest().to_string(),
                };
                if listed.contains(&(convention, key.as_str(), r.digest())) {
                    continue;
                }
                let issue = if self.recorded_subjects.contains(&(convention, key)) {
                    Issue::RecordMissing {
                        convention,
                        subject: r.subject.digest().clone(),
                        referrer: r.digest().clone(),
                    }
                } else {
                    Issue::Unrecorded {
                        convention,
                        subject: r.subject.digest().clone(),
                        referrer: r.digest().clone(),
                    }
                };
                self.graph.issues.push(issue);
            }
        }
    }

    fn check_subjects(&mut self) -> Result<()> {
        // Read through borrows (no referrer is copied), the issues added at the end.
        let mut issues = Vec::new();
        for subject in &self.graph.subject_order {
            let referrers = self.graph.referrers_of(subject);
            match self.layout.blob_size(subject)? {
                None => issues.push(Issue::SubjectMissing {
                    subject: subject.clone(),
                    referrers: referrers.iter().map(|r| r.digest().clone()).collect(),
                }),
                Some(size) => {
                    let actual_mt = self
                        .loaded
                        .get(subject)
                        .and_then(Option::as_ref)
                        .map(|l| l.media_type.to_string())
                        .or_else(|| {
                            self.layout
                                .read_blob(subject)
                                .ok()
                                .and_then(|b| Manifest::sniff_media_type(&b))
                        });
                    for r in &referrers {
                        if r.subject.size() != size {
                            issues.push(Issue::SubjectMismatch {
                                referrer: r.digest().clone(),
                                subject: subject.clone(),
                                field: "size",
                                written: r.subject.size().to_string(),
                                actual: size.to_string(),
                            });
                        }
                        if let Some(mt) = &actual_mt
                            && r.subject.media_type() != mt
                        {
                            issues.push(Issue::SubjectMismatch {
                                referrer: r.digest().clone(),
                                subject: subject.clone(),
                                field: "mediaType",
                                written: format!("{:?}", r.subject.media_type()),
                                actual: format!("{mt:?}"),
                            });
                        }
                    }
                }
            }
            for r in &referrers {
                if r.recorded.len() == 1 && r.recorded.contains(&Convention::DeepScan) {
                    issues.push(Issue::OnlyDeepScan {
                        referrer: r.digest().clone(),
                        subject: subject.clone(),
                    });
                }
            }
        }
        self.graph.issues.extend(issues);
        Ok(())
    }

    fn ambiguous_tags(&mut self, entries: &[Descriptor]) {
        let mut by_tag: HashMap<&str, Vec<Digest>> = HashMap::new();
        for e in entries {
            if let Some(t) = e.ref_name() {
                let list = by_tag.entry(t).or_default();
                if !list.contains(e.digest()) {
                    list.push(e.digest().clone());
                }
            }
        }
        for (tag, digests) in by_tag {
            if digests.len() > 1 {
                self.graph.issues.push(Issue::AmbiguousTag {
                    tag: tag.into(),
                    digests,
                });
            }
        }
    }
}

impl Visitor for Scanner<'_> {
    fn known(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
    ) -> Result<Option<Vec<Descriptor>>> {
        if self.loaded.contains_key(desc.digest()) {
            return Ok(None);
        }
        let Some(loaded) = self.cached(desc) else {
            return Ok(None);
        };
        self.loaded
            .insert(desc.digest().clone(), Some(Box::new(loaded)));
        let via = self.via(desc, parent);
        self.add_if_referrer(desc, via)?;
        // An image manifest: nothing below it that the scan follows.
        Ok(Some(Vec::new()))
    }

    fn enter(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        if !self.loaded.contains_key(desc.digest()) {
            let loaded = self.loaded_from(desc, content)?;
            self.loaded
                .insert(desc.digest().clone(), loaded.map(Box::new));
        }
        let via = self.via(desc, parent);
        self.add_if_referrer(desc, via)?;
        Ok(
            match self.loaded.get(desc.digest()).and_then(Option::as_deref) {
                Some(Loaded {
                    entries: Some(entries),
                    ..
                }) => entries.clone(),
                _ => Vec::new(),
            },
        )
    }

    fn again(&mut self, desc: &Descriptor, parent: Option<&Descriptor>, _: bool) -> Result<()> {
        let via = self.via(desc, parent);
        self.add_if_referrer(desc, via)
    }
}

/// Checks the `subject` of manifest JSON without trusting the rest of it.
fn subject_is_usable(bytes: &[u8]) -> std::result::Result<(), String> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(());
    };
    match m.get("subject") {
        None | Some(Value::Null) => Ok(()),
        Some(v) => Descriptor::from_value(v.clone())
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

setters!(ScanOptions {
    deep: bool,
    facts_cache: bool,
});
