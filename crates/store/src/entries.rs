//! Pure edits of `index.json`'s entry list: no I/O, so every rule about entries (which entry a
//! tag names, what an untagged entry keeps, how a subject annotation is recorded) is here once
//! and tested without a layout. Callers run them inside an `edit_index` transaction.

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::model::{Descriptor, annotations};
use crate::referrers::keys;

/// Ensures an untagged top-level entry for `referrer` annotated with its subject; `pos` is that
/// entry's position when it exists. Returns `Some(true)` when added, `Some(false)` when an
/// existing entry was annotated, `None` when it was already right.
pub(crate) fn upsert_annotation_entry(
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
