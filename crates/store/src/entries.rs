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

/// Records `referrer` as a referrer of `subject` by a subject annotation, finding its untagged
/// entry by a scan (see [`upsert_subject_annotation`] for many at once).
pub(crate) fn annotate_subject(
    entries: &mut Vec<Descriptor>,
    referrer: &Descriptor,
    subject: &Digest,
) -> Option<bool> {
    let pos = entries
        .iter()
        .position(|e| e.digest() == referrer.digest() && e.ref_name().is_none());
    upsert_subject_annotation(entries, pos, referrer, subject)
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
        e.set_annotation(keys::CONTAINERD_SUBJECT, subject.as_str());
        if e.artifact_type().is_none()
            && let Some(at) = referrer.artifact_type()
        {
            e.set_artifact_type(at);
        }
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
            annotate_subject(&mut entries, &referrer, subject.digest()),
            Some(true)
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].annotation(keys::CONTAINERD_SUBJECT),
            Some(subject.digest().as_str())
        );
        assert_eq!(entries[1].artifact_type(), Some("application/vnd.example"));
        assert_eq!(
            annotate_subject(&mut entries, &referrer, subject.digest()),
            None
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
}
