//! Recording referrers in ocistow's three modes, converting between them, and removing a
//! referrer's records when it is deleted. Every change is one `edit_index` transaction; blobs are
//! never rewritten, only new record indexes written beside the old ones (old ones are left for gc).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use serde_json::{Map, Value};

use super::{EntryKind, Graph, ScanOptions, classify};
use super::{fallback_tag, keys};
use crate::digest::Digest;
use crate::entries::{self, upsert_subject_annotation};
use crate::error::{Corruption, Error, InputProblem, Result};
use crate::layout::Layout;
use crate::model::{Descriptor, ImageIndex, Manifest, annotations, media};

/// How a write records a referrer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A top-level entry per referrer annotated `io.containerd.manifest.subject` (D + A).
    Annotation,
    /// A referrers-response index per subject (C).
    Response,
    /// A fallback-tag index per subject (B).
    Tag,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Annotation => "annotation",
            Mode::Response => "response",
            Mode::Tag => "tag",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        one_of(
            "referrers mode",
            s,
            &[Mode::Annotation, Mode::Response, Mode::Tag],
            Mode::as_str,
        )
    }
}

/// The value among `values` whose name is `s`, else an error listing the names.
fn one_of<T: Copy>(
    what: &'static str,
    s: &str,
    values: &[T],
    name: fn(T) -> &'static str,
) -> Result<T> {
    values
        .iter()
        .copied()
        .find(|v| name(*v) == s)
        .ok_or_else(|| {
            Error::InvalidInput(InputProblem::NotOneOf {
                what,
                given: s.to_string(),
                choices: values.iter().map(|v| name(*v)).collect(),
            })
        })
}

/// Which annotation key response records use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKey {
    /// `org.opencontainers.image.referrer.subject` (image-spec PR #1171).
    #[default]
    Oci,
    /// `org.olareg.referrer.subject`, which olareg reads.
    Olareg,
}

impl ResponseKey {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseKey::Oci => "oci",
            ResponseKey::Olareg => "olareg",
        }
    }

    /// The annotation that names a response record's subject.
    pub fn subject_key(self) -> &'static str {
        match self {
            ResponseKey::Oci => keys::OCI_RESPONSE_SUBJECT,
            ResponseKey::Olareg => keys::OLAREG_RESPONSE_SUBJECT,
        }
    }

    /// The annotation on `index.json` that flags responses as the layout's records.
    pub fn convert_key(self) -> &'static str {
        match self {
            ResponseKey::Oci => keys::OCI_RESPONSE_CONVERT,
            ResponseKey::Olareg => keys::OLAREG_RESPONSE_CONVERT,
        }
    }

    fn of_entry(entry: &Descriptor) -> Option<ResponseKey> {
        if entry.annotation(keys::OCI_RESPONSE_SUBJECT).is_some() {
            Some(ResponseKey::Oci)
        } else if entry.annotation(keys::OLAREG_RESPONSE_SUBJECT).is_some() {
            Some(ResponseKey::Olareg)
        } else {
            None
        }
    }
}

impl FromStr for ResponseKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        one_of(
            "response key",
            s,
            &[ResponseKey::Oci, ResponseKey::Olareg],
            ResponseKey::as_str,
        )
    }
}

/// The result of an attach.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttachOutcome {
    /// The referrer as recorded.
    pub descriptor: Descriptor,
    /// The mode it was recorded in.
    pub mode: Mode,
}

/// What a convert did (or would do, for a dry run). Serialized with camelCase keys, the one
/// JSON style of the CLI (`normalize --format json` prints it whole).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConvertReport {
    /// The mode converted to.
    pub mode: Mode,
    /// Referrers the layout holds.
    pub referrers: usize,
    /// Records added.
    pub added: usize,
    /// Records updated.
    pub updated: usize,
    /// Records removed.
    pub removed: usize,
    /// True when `index.json` changed (or would).
    pub changed: bool,
    /// True when nothing was written.
    pub dry_run: bool,
}

/// The record that lists a subject's referrers in the response and tag modes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RecordKind {
    Response(ResponseKey),
    Fallback,
}

impl RecordKind {
    /// True when `entry` is this kind's record for `subject`.
    fn is_record_for(self, entry: &Descriptor, subject: &Digest) -> bool {
        match self {
            RecordKind::Response(key) => {
                entry.annotation(key.subject_key()) == Some(subject.as_str())
            }
            RecordKind::Fallback => {
                entry.ref_name() == Some(fallback_tag(subject).as_str())
                    && media::is_index(entry.media_type())
            }
        }
    }

    fn new_entry(self, subject: &Digest, digest: Digest, size: u64) -> Descriptor {
        let mut e = Descriptor::new(media::IMAGE_INDEX, digest, size);
        match self {
            RecordKind::Response(key) => e.set_annotation(key.subject_key(), subject.as_str()),
            RecordKind::Fallback => e.set_annotation(annotations::REF_NAME, &fallback_tag(subject)),
        }
        e
    }
}

/// The bytes of a response or fallback index listing `referrers`, sorted by digest.
pub(crate) fn record_index_bytes(referrers: &[Descriptor]) -> Vec<u8> {
    let mut sorted: Vec<&Descriptor> = referrers.iter().collect();
    sorted.sort_by(|a, b| a.digest().cmp(b.digest()));
    sorted.dedup_by(|a, b| a.digest() == b.digest());
    let mut m = Map::new();
    m.insert("schemaVersion".into(), Value::from(2));
    m.insert("mediaType".into(), Value::from(media::IMAGE_INDEX));
    m.insert(
        "manifests".into(),
        Value::Array(
            sorted
                .iter()
                .map(|d| Value::Object(d.fields().clone()))
                .collect(),
        ),
    );
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

impl Layout {
    /// The mode `index.json` already uses consistently, judged from its entries alone (no blob is
    /// read): only response records, only fallback tags, or only subject annotations.
    pub fn referrers_mode_in_use(&self) -> Result<Option<(Mode, ResponseKey)>> {
        Ok(mode_in_index(&self.read_index()?))
    }

    /// Records a referrer like [`Layout::record_referrer`], choosing what is not given inside
    /// the same transaction: the mode the layout uses consistently, else annotation; the
    /// response key the layout uses, else `oci`. Returns the mode and key used.
    pub fn record_referrer_auto(
        &self,
        referrer: &Descriptor,
        subject: &Digest,
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        self.edit_index(|index| {
            let (mode, key) = decided(index, mode, key);
            self.record_in(index, referrer, subject, mode, key)?;
            Ok((mode, key))
        })
    }

    /// Records that `referrer` (its referrers-response descriptor) refers to `subject`, in `mode`.
    /// Costs one `index.json` rewrite, plus one record index blob in the response and tag modes.
    pub fn record_referrer(
        &self,
        referrer: &Descriptor,
        subject: &Digest,
        mode: Mode,
        key: ResponseKey,
    ) -> Result<()> {
        self.edit_index(|index| self.record_in(index, referrer, subject, mode, key))
    }

    /// Records many referrers `(referrer, subject)` in one `index.json` transaction, and with
    /// `root` lists a manifest first (as [`Layout::add_entry`] does), in the same transaction:
    /// what copy and import do, so a kill leaves all of it or none. Mode and key as in
    /// [`Layout::record_referrer_auto`]. Linear in the number of referrers: each subject's
    /// record is written once.
    pub fn record_referrers(
        &self,
        root: Option<(&Descriptor, &[String])>,
        referrers: &[(Descriptor, Digest)],
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        self.record_referrers_from(None, root, referrers, mode, key)
    }

    /// [`Layout::record_referrers`] in a transaction that starts from `read` when index.json
    /// still holds it (see [`Layout::edit_index_from`]).
    pub(crate) fn record_referrers_from(
        &self,
        read: Option<ImageIndex>,
        root: Option<(&Descriptor, &[String])>,
        referrers: &[(Descriptor, Digest)],
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        if let Some((desc, tags)) = root {
            crate::tags::check_entry(self, desc, tags)?;
        }
        self.edit_index_from(read, |index| {
            if let Some((desc, tags)) = root {
                crate::tags::add_entry_in(self, index, desc, tags)?;
            }
            let (mode, key) = decided(index, mode, key);
            self.record_all_in(index, referrers, mode, key)?;
            Ok((mode, key))
        })
    }

    fn record_in(
        &self,
        index: &mut ImageIndex,
        referrer: &Descriptor,
        subject: &Digest,
        mode: Mode,
        key: ResponseKey,
    ) -> Result<()> {
        let one = [(referrer.clone(), subject.clone())];
        self.record_all_in(index, &one, mode, key)
    }

    /// Records `referrers` in `mode` inside an `index.json` transaction the caller holds (import
    /// records its merge and every convention's referrers in one).
    pub(crate) fn record_all_in(
        &self,
        index: &mut ImageIndex,
        referrers: &[(Descriptor, Digest)],
        mode: Mode,
        key: ResponseKey,
    ) -> Result<()> {
        if mode == Mode::Annotation {
            entries::annotate_subjects(
                index.manifests_mut(),
                referrers.iter().map(|(r, s)| (r, s)),
            );
        }
        let target = match mode {
            Mode::Annotation => None,
            Mode::Response => Some(RecordKind::Response(key)),
            Mode::Tag => Some(RecordKind::Fallback),
        };
        let mut by_subject: Vec<(&Digest, Vec<Descriptor>)> = Vec::new();
        let mut slot: HashMap<&Digest, usize> = HashMap::new();
        for (referrer, subject) in referrers {
            let i = *slot.entry(subject).or_insert_with(|| {
                by_subject.push((subject, Vec::new()));
                by_subject.len() - 1
            });
            by_subject[i].1.push(referrer.clone());
        }
        for (subject, mut all) in by_subject {
            // Every record of the subject (the one written, and those other tools or other modes
            // keep) lists every referrer of it, however the others were recorded.
            let mut kinds: Vec<RecordKind> = [
                RecordKind::Response(ResponseKey::Oci),
                RecordKind::Response(ResponseKey::Olareg),
                RecordKind::Fallback,
            ]
            .into_iter()
            .filter(|k| {
                index
                    .manifests()
                    .iter()
                    .any(|e| k.is_record_for(e, subject))
            })
            .collect();
            // A user's index tagged exactly `sha256-<hex>` that is not a record of that subject
            // is never a record to rewrite: left alone, and refused as the place to record in.
            if kinds.contains(&RecordKind::Fallback) && !self.fallback_is_record(index, subject)? {
                kinds.retain(|k| *k != RecordKind::Fallback);
                if target == Some(RecordKind::Fallback) {
                    return Err(Error::TagIsNotARecord {
                        tag: fallback_tag(subject),
                        subject: subject.clone(),
                    });
                }
            }
            if let Some(t) = target
                && !kinds.contains(&t)
            {
                kinds.push(t);
            }
            if kinds.is_empty() {
                continue;
            }
            all.extend(self.recorded_elsewhere(index, subject)?);
            for kind in kinds {
                let pos = index
                    .manifests()
                    .iter()
                    .position(|e| kind.is_record_for(e, subject));
                self.upsert_record(
                    index.manifests_mut(),
                    pos,
                    kind,
                    subject,
                    &all,
                    false,
                    false,
                )?;
            }
        }
        if mode == Mode::Response && index.annotation(key.convert_key()) != Some("true") {
            index.set_annotation(key.convert_key(), "true");
        }
        Ok(())
    }

    /// True when the index tagged with `subject`'s fallback tag is a record of it, as the scan
    /// classifies one: what it lists is not empty and every entry is a manifest whose subject
    /// is `subject`.
    fn fallback_is_record(&self, index: &ImageIndex, subject: &Digest) -> Result<bool> {
        let Some(entry) = index
            .manifests()
            .iter()
            .find(|e| RecordKind::Fallback.is_record_for(e, subject))
        else {
            return Ok(false);
        };
        let listed = self.record_listing(entry)?;
        Ok(!listed.is_empty()
            && listed.iter().all(|r| {
                self.read_manifest(r)
                    .is_ok_and(|(_, m)| m.subject().is_some_and(|s| s.digest() == subject))
            }))
    }

    /// The referrers of `subject` that `index` records: subject annotations (their
    /// descriptors as a referrers response lists them, from their blobs) and the listings of
    /// its response and fallback records.
    fn recorded_elsewhere(&self, index: &ImageIndex, subject: &Digest) -> Result<Vec<Descriptor>> {
        let mut out = Vec::new();
        for e in index.manifests() {
            match classify(e) {
                EntryKind::SubjectAnnotation { subject: s } if s == subject.as_str() => {
                    if let Ok((_, m)) = self.read_manifest(e) {
                        out.push(response_descriptor(e, &m));
                    }
                }
                EntryKind::Response { subject: s } if s == subject.as_str() => {
                    out.extend(self.record_listing(e)?);
                }
                EntryKind::Fallback { tag } if tag == fallback_tag(subject) => {
                    out.extend(self.record_listing(e)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Ensures the record of `kind` for `subject` lists `referrers` (added to what it lists, or,
    /// with `exact`, exactly them). A record that already lists them is left untouched.
    /// Returns `Some(true)` when an entry was added, `Some(false)` when one was updated.
    /// `pos` is the position of the existing record in `entries`, if any (callers with many
    /// subjects look it up in a map rather than scanning). With `dry_run` the new record's digest
    /// is computed but nothing is stored.
    #[allow(clippy::too_many_arguments)]
    fn upsert_record(
        &self,
        entries: &mut Vec<Descriptor>,
        pos: Option<usize>,
        kind: RecordKind,
        subject: &Digest,
        referrers: &[Descriptor],
        exact: bool,
        dry_run: bool,
    ) -> Result<Option<bool>> {
        let listed: Vec<Descriptor> = match pos {
            Some(i) => self.record_listing(&entries[i])?,
            None => Vec::new(),
        };
        let listed_set: BTreeSet<&Digest> = listed.iter().map(Descriptor::digest).collect();
        let wanted: Vec<Descriptor> = if exact {
            referrers.to_vec()
        } else {
            let mut all = listed.clone();
            all.extend(
                referrers
                    .iter()
                    .filter(|r| !listed_set.contains(r.digest()))
                    .cloned(),
            );
            all
        };
        let wanted_set: BTreeSet<&Digest> = wanted.iter().map(Descriptor::digest).collect();
        if pos.is_some() && wanted_set == listed_set {
            return Ok(None);
        }
        let bytes = record_index_bytes(&wanted);
        if bytes.len() as u64 > crate::layout::MAX_MANIFEST_SIZE {
            return Err(Error::InvalidInput(InputProblem::RecordTooLarge {
                subject: subject.clone(),
                referrers: wanted.len(),
                bytes: bytes.len(),
                limit: crate::layout::MAX_MANIFEST_SIZE,
            }));
        }
        let (digest, size) = if dry_run {
            (
                Digest::of_bytes(crate::digest::Algorithm::Sha256, &bytes),
                bytes.len() as u64,
            )
        } else {
            let stored = self.write_blob_bytes(&bytes)?;
            (stored.digest().clone(), stored.size())
        };
        let record = kind.new_entry(subject, digest, size);
        Ok(Some(entries::upsert_record(entries, pos, record)))
    }

    /// What a response or fallback record lists. An absent record blob lists nothing; one that
    /// cannot be read is an error, never an empty list (rebuilding on an empty list would drop
    /// every referrer it recorded).
    pub(crate) fn record_listing(&self, entry: &Descriptor) -> Result<Vec<Descriptor>> {
        match self.read_manifest(entry) {
            Ok((_, Manifest::Index(i))) => Ok(i.manifests().to_vec()),
            Ok((_, Manifest::Image(_))) => Err(Error::Corrupt {
                path: self.blob_path(entry.digest()),
                reason: Corruption::RecordNotAnIndex,
            }),
            Err(Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Records every known referrer in `to` and, unless `keep`, removes the records of the
    /// other conventions. Blobs are never rewritten; entries that are not referrer records keep
    /// their place and fields. With `dry_run` nothing is written.
    pub fn convert_referrers(
        &self,
        to: Mode,
        key: ResponseKey,
        keep: bool,
        dry_run: bool,
    ) -> Result<ConvertReport> {
        if dry_run {
            // Computed on a copy without the lock: a dry run writes nothing, not even a lock file.
            let index = self.read_index()?;
            // Nor the facts cache.
            let graph =
                self.scan_referrers_in(&index, ScanOptions::default().facts_cache(false))?;
            let mut work = index.clone();
            let report = self.convert_in(&mut work, &graph, to, key, keep, true)?;
            return Ok(ConvertReport {
                changed: work != index,
                dry_run,
                ..report
            });
        }
        self.edit_index(|index| {
            // The transaction's index is the one on disk: scanning it parses index.json once.
            let graph = self.scan_referrers_in(index, ScanOptions::default())?;
            // `changed` is from the edit's own counts: a copy of 100,000 entries only to
            // compare them with was a quarter of the peak memory.
            let report = self.convert_in(index, &graph, to, key, keep, false)?;
            Ok(ConvertReport { dry_run, ..report })
        })
    }

    /// The edit of a convert on `index` (normalize runs it as its first step).
    pub(crate) fn convert_in(
        &self,
        index: &mut ImageIndex,
        graph: &Graph,
        to: Mode,
        key: ResponseKey,
        keep: bool,
        dry_run: bool,
    ) -> Result<ConvertReport> {
        let referrer_digests: HashSet<&Digest> = graph
            .referrers()
            .iter()
            .map(super::graph::Referrer::digest)
            .collect();
        let mut report = ConvertReport {
            mode: to,
            referrers: graph.referrers().len(),
            added: 0,
            updated: 0,
            removed: 0,
            changed: false,
            dry_run: false,
        };
        let subjects_with_referrers: HashSet<&Digest> = graph.subjects().iter().collect();
        let live_fallback_tags: HashSet<String> =
            graph.subjects().iter().map(fallback_tag).collect();
        let mut stale: HashSet<usize> = HashSet::new();
        let mut seen_records: HashSet<String> = HashSet::new();
        for (i, e) in index.manifests().iter().enumerate() {
            let target_kind = match classify(e) {
                EntryKind::Response { subject } => {
                    let ours = to == Mode::Response && ResponseKey::of_entry(e) == Some(key);
                    // A target record for a subject without referrers, or a second one, is stale.
                    let live = Digest::parse(&subject)
                        .is_ok_and(|d| subjects_with_referrers.contains(&d))
                        && seen_records.insert(format!("r:{subject}"));
                    Some(ours && live)
                }
                // A tag that only looks like a record is the user's: kept as it is.
                EntryKind::Fallback { .. } if !graph.is_fallback_record(e) => None,
                EntryKind::Fallback { tag } => {
                    let live = live_fallback_tags.contains(&tag)
                        && seen_records.insert(format!("t:{tag}"));
                    Some(to == Mode::Tag && live)
                }
                EntryKind::SubjectAnnotation { .. } => {
                    Some(to == Mode::Annotation || e.ref_name().is_some())
                }
                EntryKind::Other => {
                    let is_plain_record =
                        e.ref_name().is_none() && referrer_digests.contains(e.digest());
                    if is_plain_record {
                        Some(to == Mode::Annotation)
                    } else {
                        None
                    }
                }
            };
            if target_kind == Some(false) && !keep {
                stale.insert(i);
            }
        }
        report.removed = entries::remove_positions(index.manifests_mut(), &stale).len();
        let out = index.manifests_mut();
        match to {
            Mode::Annotation => {
                // Positions of untagged entries by digest: one lookup per referrer, not a scan.
                let mut positions = entries::untagged_positions(out);
                for r in graph.referrers() {
                    let pos = positions.get(r.digest()).copied();
                    match upsert_subject_annotation(out, pos, &r.descriptor, r.subject.digest()) {
                        Some(true) => {
                            positions.insert(r.digest().clone(), out.len() - 1);
                            report.added += 1;
                        }
                        Some(false) => report.updated += 1,
                        None => {}
                    }
                }
            }
            Mode::Response | Mode::Tag => {
                let kind = if to == Mode::Response {
                    RecordKind::Response(key)
                } else {
                    RecordKind::Fallback
                };
                let mut positions: HashMap<Digest, usize> = HashMap::new();
                let by_tag: HashMap<String, &Digest> = graph
                    .subjects()
                    .iter()
                    .map(|s| (fallback_tag(s), s))
                    .collect();
                for (i, e) in out.iter().enumerate() {
                    let subject = match (kind, classify(e)) {
                        (RecordKind::Response(k), EntryKind::Response { subject })
                            if ResponseKey::of_entry(e) == Some(k) =>
                        {
                            Digest::parse(&subject).ok()
                        }
                        (RecordKind::Fallback, EntryKind::Fallback { tag })
                            if graph.is_fallback_record(e) =>
                        {
                            by_tag.get(&tag).map(|d| (*d).clone())
                        }
                        _ => None,
                    };
                    if let Some(s) = subject {
                        positions.entry(s).or_insert(i);
                    }
                }
                for subject in graph.subjects() {
                    let list: Vec<Descriptor> = graph
                        .referrers_of(subject)
                        .iter()
                        .map(|r| r.descriptor.clone())
                        .collect();
                    let pos = positions.get(subject).copied();
                    match self.upsert_record(out, pos, kind, subject, &list, true, dry_run)? {
                        Some(true) => report.added += 1,
                        Some(false) => report.updated += 1,
                        None => {}
                    }
                }
            }
        }
        // The convert flag tells readers (olareg) that responses are the layout's referrer records.
        let mut flag_changed = false;
        for k in [ResponseKey::Oci, ResponseKey::Olareg] {
            let ours = to == Mode::Response && k == key;
            if ours && !graph.subjects().is_empty() {
                if index.annotation(k.convert_key()) != Some("true") {
                    index.set_annotation(k.convert_key(), "true");
                    flag_changed = true;
                }
            } else if !ours && !keep && index.annotation(k.convert_key()).is_some() {
                index.remove_annotation(k.convert_key());
                flag_changed = true;
            }
        }
        // Every count is of an entry that changed: an upsert that would change nothing
        // returns `None` and is not counted.
        report.changed = flag_changed || report.added + report.updated + report.removed > 0;
        Ok(report)
    }
}

/// The mode and key to record in: the caller's, else the ones `index` uses, else annotations
/// and the default key. Every entry is walked only for what the caller left undecided.
fn decided(
    index: &ImageIndex,
    mode: Option<Mode>,
    key: Option<ResponseKey>,
) -> (Mode, ResponseKey) {
    let in_use = match (mode, key) {
        (Some(_), Some(_)) => None,
        _ => mode_in_index(index),
    };
    let mode = mode.or(in_use.map(|(m, _)| m)).unwrap_or(Mode::Annotation);
    let key = key.or(in_use.map(|(_, k)| k)).unwrap_or_default();
    (mode, key)
}

/// The mode an index uses consistently, judged from its entries alone (no blob is read):
/// only response records, only fallback tags, or only subject annotations.
pub fn mode_in_index(index: &ImageIndex) -> Option<(Mode, ResponseKey)> {
    let mut seen = HashSet::new();
    for e in index.manifests() {
        match classify(e) {
            EntryKind::Response { .. } => {
                seen.insert((Mode::Response, ResponseKey::of_entry(e).unwrap_or_default()));
            }
            EntryKind::Fallback { .. } => {
                seen.insert((Mode::Tag, ResponseKey::Oci));
            }
            EntryKind::SubjectAnnotation { .. } => {
                seen.insert((Mode::Annotation, ResponseKey::Oci));
            }
            EntryKind::Other => {}
        }
    }
    if seen.len() == 1 {
        seen.into_iter().next()
    } else {
        None
    }
}

/// A referrer's descriptor as a referrers response lists it: media type, digest and size of
/// its entry, with the artifactType and annotations of its manifest.
fn response_descriptor(entry: &Descriptor, manifest: &Manifest) -> Descriptor {
    let mut d = Descriptor::new(entry.media_type(), entry.digest().clone(), entry.size());
    if let Some(a) = manifest.annotations() {
        d.set_annotations(a.clone());
    }
    if let Some(at) = manifest.effective_artifact_type() {
        d.set_artifact_type(at);
    }
    d
}
