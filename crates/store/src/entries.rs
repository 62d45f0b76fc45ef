//! Pure edits of `index.json`'s entry list: no I/O, so every rule about entries (which entry a
//! tag names, what an untagged entry keeps, how a subject annotation is recorded, what removing
//! entries leaves) is here once and tested without a layout. Callers run them inside an
//! `edit_index` transaction, after the checks that need the disk.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::model::{Descriptor, annotations};
use crate::referrers::keys;

/// Lists `desc` with each of `tags`, moving each tag off any other entry (an entry that already
/// is the only holder of the tag is left as it is). With no tags, lists it once untagged unless
/// its digest is listed already.
pub(crate) fn set_tags(entries: &mut Vec<Descriptor>, desc: &Descriptor, tags: &[String]) {
    if tags.is_empty() {
        add_untagged(entries, desc);
        return;
    }
    for tag in tags {
        let already = entries
            .iter()
            .filter(|e| e.ref_name() == Some(tag.as_str()))
            .map(|e| e.digest() == desc.digest())
            .collect::<Vec<_>>();
        if already == [true] {
            continue;
        }
        entries.retain(|e| e.ref_name() != Some(tag.as_str()));
        let mut entry = untagged(desc);
        entry.set_annotation(annotations::REF_NAME, tag);
        entries.push(entry);
    }
}

/// Lists `desc` untagged unless an entry (tagged or not) has its digest. Returns whether it
/// was added.
pub(crate) fn add_untagged(entries: &mut Vec<Descriptor>, desc: &Descriptor) -> bool {
    if entries.iter().any(|e| e.digest() == desc.digest()) {
        return false;
    }
    entries.push(untagged(desc));
    true
}

/// Lists `entry` as it is unless an identical entry is listed. A tag is listed for one digest
/// only: an entry whose tag an entry of another digest carries is refused with that digest.
pub(crate) fn add_once(entries: &mut Vec<Descriptor>, entry: &Descriptor) -> Result<(), Digest> {
    if let Some(tag) = entry.ref_name()
        && let Some(other) = entries
            .iter()
            .find(|e| e.ref_name() == Some(tag) && e.digest() != entry.digest())
    {
        return Err(other.digest().clone());
    }
    if !entries.contains(entry) {
        entries.push(entry.clone());
    }
    Ok(())
}

/// Removes the entries carrying `tag`; returns them, in index order.
pub(crate) fn untag(entries: &mut Vec<Descriptor>, tag: &str) -> Vec<Descriptor> {
    remove_where(entries, |e| e.ref_name() == Some(tag))
}

/// Removes every entry whose digest is in `digests`; returns how many.
pub(crate) fn remove_digests(entries: &mut Vec<Descriptor>, digests: &BTreeSet<Digest>) -> usize {
    remove_where(entries, |e| digests.contains(e.digest())).len()
}

/// Removes the entries at `positions` (indexes into `entries` as it is now); returns them.
pub(crate) fn remove_positions(
    entries: &mut Vec<Descriptor>,
    positions: &HashSet<usize>,
) -> Vec<Descriptor> {
    let mut i = 0;
    remove_where(entries, |_| {
        let doomed = positions.contains(&i);
        i += 1;
        doomed
    })
}

/// Removes the entries `doomed` picks (called once per entry, in order); returns them, keeping
/// the order of the rest.
pub(crate) fn remove_where(
    entries: &mut Vec<Descriptor>,
    mut doomed: impl FnMut(&Descriptor) -> bool,
) -> Vec<Descriptor> {
    let (removed, kept): (Vec<_>, Vec<_>) =
        std::mem::take(entries).into_iter().partition(|e| doomed(e));
    *entries = kept;
    removed
}

/// The position of the first untagged entry of each digest: what [`upsert_subject_annotation`]
/// takes as `pos`, so callers recording many referrers look each up once instead of scanning.
pub(crate) fn untagged_positions(entries: &[Descriptor]) -> HashMap<Digest, usize> {
    let mut positions = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.ref_name().is_none() {
            positions.entry(e.digest().clone()).or_insert(i);
        }
    }
    positions
}

/// Up to this many referrers are looked up by a scan each rather than through one map.
const FEW: usize = 4;

/// Records each `(referrer, subject)` by a subject annotation ([`upsert_subject_annotation`]),
/// finding each referrer's untagged entry in one map, so recording N referrers is linear, not N
/// scans of the index. Returns how many entries were added.
pub(crate) fn annotate_subjects<'a>(
    entries: &mut Vec<Descriptor>,
    pairs: impl IntoIterator<Item = (&'a Descriptor, &'a Digest)>,
) -> usize {
    let pairs: Vec<_> = pairs.into_iter().collect();
    let mut added = 0;
    // A few referrers (attach records one): a scan of the entries for each costs less than a
    // map of every entry of a large index.json.
    if pairs.len() <= FEW {
        for (referrer, subject) in pairs {
            let pos = entries
                .iter()
                .position(|e| e.digest() == referrer.digest() && e.ref_name().is_none());
            if upsert_subject_annotation(entries, pos, referrer, subject) == Some(true) {
                added += 1;
            }
        }
        return added;
    }
    let mut positions = untagged_positions(entries);
    for (referrer, subject) in pairs {
        let pos = positions.get(referrer.digest()).copied();
        if upsert_subject_annotation(entries, pos, referrer, subject) == Some(true) {
            positions.insert(referrer.digest().clone(), entries.len() - 1);
            added += 1;
        }
    }
    added
}

/// Ensures an untagged top-level entry for `referrer` annotated with its subject; `pos` is that
/// entry's position when it exists. Returns `Some(true)` when added, `Some(false)` when an
/// existing entry was annotated, `None` when it was already right.
pub(crate) fn upsert_subject_annotation(
    entries: &mut Vec<Descriptor>,
    pos: Option<usize>,
    referrer: &Descriptor,
    subject: &Digest,
) -> Option<bool> {
    if let Some(e) = pos.and_then(|i| entries.get_mut(i)) {
        if e.annotation(keys::CONTAINERD_SUBJECT) == Some(subject.as_str()) {
            return None;
        }
        set_subject(e, subject.as_str(), referrer);
        return Some(false);
    }
    let mut entry = Descriptor::new(
        referrer.media_type(),
        referrer.digest().clone(),
        referrer.size(),
    );
    let mut ann: Map<String, Value> = referrer.annotations().cloned().unwrap_or_default();
    ann.insert(
        keys::CONTAINERD_SUBJECT.into(),
        Value::from(subject.as_str()),
    );
    entry.set_annotations(ann);
    if let Some(at) = referrer.artifact_type() {
        entry.set_artifact_type(at);
    }
    entries.push(entry);
    Some(true)
}

/// Annotates `entry` with its subject, and gives it the referrer's artifact type if it has none.
fn set_subject(entry: &mut Descriptor, subject: &str, referrer: &Descriptor) {
    entry.set_annotation(keys::CONTAINERD_SUBJECT, subject);
    if entry.artifact_type().is_none()
        && let Some(at) = referrer.artifact_type()
    {
        entry.set_artifact_type(at);
    }
}

/// What [`add_unless_held`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// No entry held the place: the entry was added.
    Added,
    /// An entry of the same digest holds it.
    Same,
    /// An entry of another digest holds it.
    Other,
}

/// Lists `entry` unless an entry `holds` its place already (the record naming the same
/// subject, the entry with the same tag): records are never listed twice, and which of two
/// differing records is right is for the caller to settle.
pub(crate) fn add_unless_held(
    entries: &mut Vec<Descriptor>,
    entry: &Descriptor,
    holds: impl Fn(&Descriptor) -> bool,
) -> Held {
    match entries.iter().find(|x| holds(x)) {
        Some(x) if x.digest() == entry.digest() => Held::Same,
        Some(_) => Held::Other,
        None => {
            entries.push(entry.clone());
            Held::Added
        }
    }
}

/// What [`merge_tagged`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagMerge {
    /// The tag was free: the entry was added.
    Added,
    /// The tag already names the entry's digest (and only it).
    Present,
    /// The tag named another digest and `force` moved it.
    Replaced,
    /// The tag names this other digest; nothing was changed.
    Conflict(Digest),
}

/// Merges `entry`, tagged `tag`, as it is (its other annotations kept): added where the tag is
/// free, left where the tag names its digest already, and otherwise moved onto it only with
/// `force`.
pub(crate) fn merge_tagged(
    entries: &mut Vec<Descriptor>,
    entry: &Descriptor,
    tag: &str,
    force: bool,
) -> TagMerge {
    let other = entries
        .iter()
        .filter(|x| x.ref_name() == Some(tag))
        .map(Descriptor::digest)
        .find(|d| *d != entry.digest())
        .cloned();
    let held = entries.iter().any(|x| x.ref_name() == Some(tag));
    match other {
        None if held => TagMerge::Present,
        None => {
            entries.push(entry.clone());
            TagMerge::Added
        }
        Some(_) if force => {
            entries.retain(|x| x.ref_name() != Some(tag));
            entries.push(entry.clone());
            TagMerge::Replaced
        }
        Some(d) => TagMerge::Conflict(d),
    }
}

/// Merges an untagged `entry`: added unless an untagged entry has its digest, which then gains
/// the entry's subject annotation if it has none (a subject it has is kept). `positions` is
/// [`untagged_positions`] of `entries`, kept current here, so merging N entries is linear.
/// Returns whether it was added.
pub(crate) fn merge_untagged(
    entries: &mut Vec<Descriptor>,
    positions: &mut HashMap<Digest, usize>,
    entry: &Descriptor,
) -> bool {
    let Some(x) = positions
        .get(entry.digest())
        .and_then(|&i| entries.get_mut(i))
    else {
        positions.insert(entry.digest().clone(), entries.len());
        entries.push(entry.clone());
        return true;
    };
    if let Some(s) = entry.annotation(keys::CONTAINERD_SUBJECT)
        && x.annotation(keys::CONTAINERD_SUBJECT).is_none()
    {
        set_subject(x, s, entry);
    }
    false
}

/// Drops every entry identical (all fields) to an earlier one; returns how many. Compares only
/// entries of one digest, so a large `index.json` stays linear.
pub(crate) fn dedup_identical(entries: &mut Vec<Descriptor>) -> usize {
    let count = entries.len();
    let mut kept: Vec<Descriptor> = Vec::with_capacity(count);
    let mut by_digest: HashMap<Digest, Vec<usize>> = HashMap::new();
    for e in std::mem::take(entries) {
        let same = by_digest.entry(e.digest().clone()).or_default();
        if !same.iter().any(|&i| kept[i] == e) {
            same.push(kept.len());
            kept.push(e);
        }
    }
    *entries = kept;
    count - entries.len()
}

/// Gives each entry that `blob_of` knows the artifact type and the annotations of its blob's
/// descriptor that the entry lacks (a value the entry has is the entry's: which one is right is
/// not ours to guess). Returns how many entries gained something.
pub(crate) fn describe<'a>(
    entries: &mut [Descriptor],
    blob_of: impl Fn(&Digest) -> Option<&'a Descriptor>,
) -> usize {
    let mut described = 0;
    for e in entries {
        let Some(blob) = blob_of(e.digest()) else {
            continue;
        };
        let mut changed = false;
        if e.artifact_type().is_none()
            && let Some(at) = blob.artifact_type()
        {
            e.set_artifact_type(at);
            changed = true;
        }
        for (k, v) in blob.annotations().into_iter().flatten() {
            if e.annotation(k).is_none()
                && let Some(v) = v.as_str()
            {
                e.set_annotation(k, v);
                changed = true;
            }
        }
        described += usize::from(changed);
    }
    described
}

/// Points the record entry at `pos` at the rewritten record `record` (its other fields kept),
/// or lists `record` when there is none. Returns whether it was added.
pub(crate) fn upsert_record(
    entries: &mut Vec<Descriptor>,
    pos: Option<usize>,
    record: Descriptor,
) -> bool {
    if let Some(e) = pos.and_then(|i| entries.get_mut(i)) {
        e.set_digest_and_size(record.digest().clone(), record.size());
        false
    } else {
        entries.push(record);
        true
    }
}

/// A copy of `desc` for a new entry: all its fields, minus the annotations that name a tag.
pub(crate) fn untagged(desc: &Descriptor) -> Descriptor {
    let mut entry = desc.clone();
    entry.remove_annotation(annotations::REF_NAME);
    entry.remove_annotation(annotations::CONTAINERD_IMAGE_NAME);
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use crate::model::media;

    fn desc(content: &str) -> Descriptor {
        Descriptor::new(
            media::IMAGE_MANIFEST,
            Digest::of_bytes(Algorithm::Sha256, content.as_bytes()),
            content.len() as u64,
        )
    }

    fn tagged(content: &str, tag: &str) -> Descriptor {
        let mut d = desc(content);
        d.set_annotation(annotations::REF_NAME, tag);
        d
    }

    fn tags_of(entries: &[Descriptor]) -> Vec<(Option<&str>, &Digest)> {
        entries.iter().map(|e| (e.ref_name(), e.digest())).collect()
    }

    #[test]
    fn set_tags_moves_a_tag_and_keeps_a_right_one() {
        let (a, b) = (desc("a"), desc("b"));
        let mut entries = vec![tagged("a", "v1"), tagged("a", "keep")];
        set_tags(&mut entries, &b, &["v1".into()]);
        assert_eq!(
            tags_of(&entries),
            [(Some("keep"), a.digest()), (Some("v1"), b.digest())]
        );
        let before = entries.clone();
        set_tags(&mut entries, &b, &["v1".into()]);
        assert_eq!(entries, before, "an entry already right is not rewritten");
    }

    #[test]
    fn set_tags_drops_the_naming_annotations_of_the_descriptor_given() {
        let mut d = tagged("a", "old");
        d.set_annotation(annotations::CONTAINERD_IMAGE_NAME, "docker.io/x:old");
        d.set_annotation("org.example", "kept");
        let mut entries = Vec::new();
        set_tags(&mut entries, &d, &["new".into()]);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].ref_name(), Some("new"));
        assert_eq!(
            entries[0].annotation(annotations::CONTAINERD_IMAGE_NAME),
            None
        );
        assert_eq!(entries[0].annotation("org.example"), Some("kept"));
    }

    #[test]
    fn untagged_once_per_digest() {
        let mut entries = vec![tagged("a", "v1")];
        assert!(!add_untagged(&mut entries, &desc("a")));
        set_tags(&mut entries, &desc("b"), &[]);
        set_tags(&mut entries, &desc("b"), &[]);
        assert_eq!(
            tags_of(&entries),
            [(Some("v1"), desc("a").digest()), (None, desc("b").digest())]
        );
    }

    #[test]
    fn untag_and_remove_keep_the_order_of_the_rest() {
        let mut entries = vec![
            tagged("a", "v1"),
            desc("b"),
            tagged("c", "v1"),
            tagged("d", "v2"),
        ];
        let removed = untag(&mut entries, "v1");
        assert_eq!(
            tags_of(&removed),
            [
                (Some("v1"), desc("a").digest()),
                (Some("v1"), desc("c").digest())
            ]
        );
        assert_eq!(untag(&mut entries, "v9"), []);
        let gone = BTreeSet::from([desc("d").digest().clone()]);
        assert_eq!(remove_digests(&mut entries, &gone), 1);
        assert_eq!(tags_of(&entries), [(None, desc("b").digest())]);
        let mut entries = vec![desc("a"), desc("b"), desc("c")];
        let removed = remove_positions(&mut entries, &HashSet::from([0, 2]));
        assert_eq!(
            tags_of(&removed),
            [(None, desc("a").digest()), (None, desc("c").digest())]
        );
        assert_eq!(tags_of(&entries), [(None, desc("b").digest())]);
    }

    #[test]
    fn subject_annotation_added_completed_or_left() {
        let subject = desc("s");
        let mut referrer = desc("r");
        referrer.set_artifact_type("application/vnd.example");
        let mut entries = vec![tagged("r", "v1")];
        // A tagged entry of the referrer is the user's: the record is a new untagged entry.
        assert_eq!(
            annotate_subjects(&mut entries, [(&referrer, subject.digest())]),
            1
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].annotation(keys::CONTAINERD_SUBJECT),
            Some(subject.digest().as_str())
        );
        assert_eq!(entries[1].artifact_type(), Some("application/vnd.example"));
        assert_eq!(
            annotate_subjects(&mut entries, [(&referrer, subject.digest())]),
            0
        );
        let mut plain = vec![desc("r")];
        let pos = untagged_positions(&plain).get(referrer.digest()).copied();
        assert_eq!(pos, Some(0));
        assert_eq!(
            upsert_subject_annotation(&mut plain, pos, &referrer, subject.digest()),
            Some(false)
        );
        assert_eq!(plain.len(), 1);
        assert_eq!(
            plain[0].annotation(keys::CONTAINERD_SUBJECT),
            Some(subject.digest().as_str())
        );
        assert_eq!(plain[0].artifact_type(), Some("application/vnd.example"));
    }

    /// Recording referrers one by one (a scan each) and all at once (one map) gives the same
    /// entries: repeats, tagged copies and existing untagged entries alike.
    #[test]
    fn few_and_many_referrers_record_alike() {
        let subject = desc("s");
        let referrers: Vec<Descriptor> = ["a", "b", "a", "c", "d", "e", "b"]
            .iter()
            .map(|c| desc(c))
            .collect();
        let start = vec![tagged("a", "v1"), desc("c"), tagged("e", "v2"), desc("c")];
        let pairs: Vec<_> = referrers.iter().map(|r| (r, subject.digest())).collect();
        let mut batch = start.clone();
        let added_batch = annotate_subjects(&mut batch, pairs.iter().copied());
        let mut single = start;
        let added_single: usize = pairs
            .iter()
            .map(|p| annotate_subjects(&mut single, [*p]))
            .sum();
        assert!(pairs.len() > FEW);
        assert_eq!(added_batch, added_single);
        assert_eq!(batch, single);
        assert_eq!(added_batch, 4);
    }

    #[test]
    fn add_unless_held_lists_a_record_once() {
        let mut entries = vec![tagged("a", "r")];
        let holds = |x: &Descriptor| x.ref_name() == Some("r");
        assert_eq!(
            add_unless_held(&mut entries, &tagged("a", "r"), holds),
            Held::Same
        );
        assert_eq!(
            add_unless_held(&mut entries, &tagged("b", "r"), holds),
            Held::Other
        );
        assert_eq!(entries.len(), 1, "a held place is left to the caller");
        let held_by_none = |_: &Descriptor| false;
        assert_eq!(
            add_unless_held(&mut entries, &desc("c"), held_by_none),
            Held::Added
        );
        assert_eq!(tags_of(&entries)[1], (None, desc("c").digest()));
    }

    #[test]
    fn merge_tagged_adds_keeps_replaces_or_reports() {
        let mut incoming = tagged("b", "v1");
        incoming.set_annotation(annotations::CONTAINERD_IMAGE_NAME, "docker.io/x:v1");
        let mut entries = vec![tagged("a", "v1"), tagged("a", "v1")];
        assert_eq!(
            merge_tagged(&mut entries, &incoming, "v1", false),
            TagMerge::Conflict(desc("a").digest().clone())
        );
        assert_eq!(entries.len(), 2, "a conflict changes nothing");
        assert_eq!(
            merge_tagged(&mut entries, &tagged("a", "v1"), "v1", false),
            TagMerge::Present
        );
        assert_eq!(
            merge_tagged(&mut entries, &incoming, "v1", true),
            TagMerge::Replaced
        );
        assert_eq!(entries, [incoming.clone()], "the entry is merged as it is");
        assert_eq!(
            merge_tagged(&mut entries, &tagged("c", "v2"), "v2", false),
            TagMerge::Added
        );
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn merge_untagged_completes_a_subject_but_keeps_one() {
        let mut referrer = desc("r");
        referrer.set_annotation(keys::CONTAINERD_SUBJECT, "sha256:s1");
        referrer.set_artifact_type("application/vnd.example");
        let mut entries = vec![tagged("r", "v1")];
        let mut at = untagged_positions(&entries);
        assert!(
            merge_untagged(&mut entries, &mut at, &referrer),
            "a tagged entry is not its place"
        );
        assert_eq!(entries.len(), 2);
        let mut entries = vec![desc("r")];
        let mut at = untagged_positions(&entries);
        assert!(!merge_untagged(&mut entries, &mut at, &referrer));
        assert_eq!(
            entries[0].annotation(keys::CONTAINERD_SUBJECT),
            Some("sha256:s1")
        );
        assert_eq!(entries[0].artifact_type(), Some("application/vnd.example"));
        let mut other = referrer.clone();
        other.set_annotation(keys::CONTAINERD_SUBJECT, "sha256:s2");
        assert!(!merge_untagged(&mut entries, &mut at, &other));
        assert_eq!(
            entries[0].annotation(keys::CONTAINERD_SUBJECT),
            Some("sha256:s1"),
            "a subject the entry has is kept"
        );
    }

    #[test]
    fn dedup_identical_keeps_entries_that_differ() {
        let mut entries = vec![
            desc("a"),
            tagged("a", "v1"),
            desc("a"),
            desc("b"),
            tagged("a", "v1"),
        ];
        assert_eq!(dedup_identical(&mut entries), 2);
        assert_eq!(
            tags_of(&entries),
            [
                (None, desc("a").digest()),
                (Some("v1"), desc("a").digest()),
                (None, desc("b").digest())
            ]
        );
    }

    #[test]
    fn describe_fills_only_what_an_entry_lacks() {
        let mut blob = desc("a");
        blob.set_artifact_type("application/vnd.blob");
        blob.set_annotation("org.example.kept", "blob");
        blob.set_annotation("org.example.added", "blob");
        let mut entry = desc("a");
        entry.set_annotation("org.example.kept", "entry");
        let mut entries = vec![entry, desc("b")];
        let n = describe(&mut entries, |d| (d == blob.digest()).then_some(&blob));
        assert_eq!(n, 1);
        assert_eq!(entries[0].artifact_type(), Some("application/vnd.blob"));
        assert_eq!(entries[0].annotation("org.example.kept"), Some("entry"));
        assert_eq!(entries[0].annotation("org.example.added"), Some("blob"));
        assert_eq!(entries[1], desc("b"));
        assert_eq!(
            describe(&mut entries, |d| (d == blob.digest()).then_some(&blob)),
            0
        );
    }

    #[test]
    fn upsert_record_repoints_or_adds() {
        let mut record = tagged("old", "sha256-x");
        record.set_annotation("org.example", "kept");
        let mut entries = vec![desc("a"), record];
        let new = desc("new record");
        assert!(!upsert_record(&mut entries, Some(1), new.clone()));
        assert_eq!(entries[1].digest(), new.digest());
        assert_eq!(entries[1].size(), new.size());
        assert_eq!(entries[1].ref_name(), Some("sha256-x"));
        assert_eq!(entries[1].annotation("org.example"), Some("kept"));
        assert!(upsert_record(&mut entries, None, new.clone()));
        assert_eq!(entries[2], new);
    }

    #[test]
    fn add_once_lists_an_entry_once_and_a_tag_for_one_digest() {
        let mut entries = Vec::new();
        add_once(&mut entries, &tagged("a", "v1")).unwrap();
        add_once(&mut entries, &tagged("a", "v1")).unwrap();
        add_once(&mut entries, &desc("a")).unwrap();
        assert_eq!(
            tags_of(&entries),
            [(Some("v1"), desc("a").digest()), (None, desc("a").digest())]
        );
        assert_eq!(
            add_once(&mut entries, &tagged("b", "v1")),
            Err(desc("a").digest().clone())
        );
        assert_eq!(entries.len(), 2, "a refused entry is not listed");
    }
}
