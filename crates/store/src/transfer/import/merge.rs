//! Merging the validated archive into index.json and committing its blobs.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::entries::{self, Held, TagMerge};
use crate::error::{Conflict, Corruption, Error, IoContext, Result, TagConflict};
use crate::layout::{DirSyncs, Layout, Placement, sync_dir};
use crate::model::{Descriptor, ImageIndex};
use crate::referrers::{EntryKind, classify};
use crate::referrers::{Mode, ResponseKey, fallback_tag, keys};
use crate::transfer::Relation;
use crate::transfer::export::Compression;

use super::staging::{Destination, Staged, Staging};
use super::{ImportOptions, ImportReport, Incoming};

#[derive(Default)]
pub(super) struct Merged {
    pub(super) added: usize,
    pub(super) replaced: Vec<String>,
    /// Record indexes that differ from the destination's for the same subject: their relations
    /// are recorded again (merged) in the same transaction.
    pub(super) rerecord: Vec<(Mode, ResponseKey, Digest)>,
}

/// Adds the incoming entries to `index`; a pure function of its inputs, so it can be tried on a
/// copy first (to find conflicts before writing) and then applied under the lock.
pub(super) fn merge(
    index: &mut ImageIndex,
    incoming: &Incoming,
    mode_in_use: Option<(Mode, ResponseKey)>,
    force: bool,
) -> Result<Merged> {
    let mut out = Merged::default();
    let mut conflicts: Vec<TagConflict> = Vec::new();
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
    // Where each untagged entry is, so that merging N of them is not N scans of the index.
    let mut untagged = entries::untagged_positions(index.manifests());
    for e in &incoming.entries {
        let entries = index.manifests_mut();
        match classify(e) {
            EntryKind::Response { subject } => {
                let key = if e.annotation(keys::OCI_RESPONSE_SUBJECT).is_some() {
                    ResponseKey::Oci
                } else {
                    ResponseKey::Olareg
                };
                if !keeps(Mode::Response, Some(key)) {
                    continue;
                }
                match entries::add_unless_held(entries, e, |x| {
                    x.annotation(key.subject_key()) == Some(subject.as_str())
                }) {
                    Held::Same => {}
                    Held::Other => {
                        if let Ok(d) = Digest::parse(&subject) {
                            out.rerecord.push((Mode::Response, key, d));
                        }
                    }
                    Held::Added => {
                        if e.ref_name().is_none() {
                            untagged
                                .entry(e.digest().clone())
                                .or_insert(entries.len() - 1);
                        }
                        out.added += 1;
                        convert_flags.insert(key.convert_key());
                    }
                }
                continue;
            }
            // A tag of that shape is a record only when it is the fallback tag of a subject
            // the archive's referrers name; anything else is a user's tag, merged as one.
            EntryKind::Fallback { tag } if subject_of_tag(&tag).is_some() => {
                if !keeps(Mode::Tag, None) {
                    continue;
                }
                match entries::add_unless_held(entries, e, |x| x.ref_name() == Some(tag.as_str())) {
                    Held::Same => {}
                    Held::Other => {
                        if let Some(d) = subject_of_tag(&tag) {
                            out.rerecord.push((Mode::Tag, ResponseKey::Oci, d));
                        }
                    }
                    Held::Added => out.added += 1,
                }
                continue;
            }
            EntryKind::SubjectAnnotation { .. }
                if e.ref_name().is_none() && !keeps(Mode::Annotation, None) =>
            {
                continue;
            }
            _ => {}
        }
        match e.ref_name() {
            Some(tag) => match entries::merge_tagged(entries, e, tag, force) {
                TagMerge::Added => out.added += 1,
                TagMerge::Present => {}
                TagMerge::Replaced => {
                    // The tag's old entries were removed: positions moved.
                    untagged = entries::untagged_positions(entries);
                    out.added += 1;
                    out.replaced.push(tag.to_string());
                }
                TagMerge::Conflict(destination) => conflicts.push(TagConflict {
                    tag: tag.to_string(),
                    destination,
                    archive: e.digest().clone(),
                }),
            },
            None => out.added += usize::from(entries::merge_untagged(entries, &mut untagged, e)),
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflict(Conflict::Tags { tags: conflicts }));
    }
    for flag in convert_flags {
        if index.annotation(flag) != Some("true") {
            index.set_annotation(flag, "true");
        }
    }
    if let Some((Mode::Annotation, _)) = mode_in_use {
        out.added += entries::annotate_subjects(
            index.manifests_mut(),
            incoming.relations.iter().map(|r| (&r.referrer, &r.subject)),
        );
    }
    Ok(out)
}

/// Referrers `(referrer, subject)` to record in one convention.
type Batch = ((Mode, ResponseKey), Vec<(Descriptor, Digest)>);

/// What the merge leaves to record, per convention: the relations of record indexes that differ
/// from the destination's (merged again), and in a tag or response layout every relation.
fn batches(
    incoming: &Incoming,
    merged: &Merged,
    mode_in_use: Option<(Mode, ResponseKey)>,
) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut add = |mode: Mode, key: ResponseKey, rel: &Relation| {
        let i = if let Some(i) = batches.iter().position(|(k, _)| *k == (mode, key)) {
            i
        } else {
            batches.push(((mode, key), Vec::new()));
            batches.len() - 1
        };
        batches[i]
            .1
            .push((rel.referrer.clone(), rel.subject.clone()));
    };
    for (mode, key, subject) in &merged.rerecord {
        for rel in incoming.relations.iter().filter(|r| &r.subject == subject) {
            add(*mode, *key, rel);
        }
    }
    if let Some((mode @ (Mode::Tag | Mode::Response), key)) = mode_in_use {
        for rel in &incoming.relations {
            add(mode, key, rel);
        }
    }
    batches
}

pub(super) fn commit(
    dir: &Path,
    target: Destination,
    staging: &Staging,
    incoming: &Incoming,
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
        skipped: Vec::new(),
    };
    {
        let _pin = layout.pin()?;
        let mut dirs = DirSyncs::default();
        for staged in incoming.blobs.values() {
            if place(&layout, staged, &mut dirs)? {
                report.blobs_added += 1;
                report.bytes_added += staged.size;
            } else {
                report.blobs_present += 1;
            }
        }
        dirs.finish()?;
        // The merge and the referrers of every convention in one transaction: a kill (or a
        // failure while recording) leaves index.json as it was, or with all of it.
        let merged = layout.edit_index(|index| {
            let merged = merge(index, incoming, mode_in_use, options.force)?;
            for ((mode, key), referrers) in batches(incoming, &merged, mode_in_use) {
                layout.record_all_in(index, &referrers, mode, key)?;
            }
            Ok(merged)
        })?;
        report.entries_added = merged.added;
        report.replaced = merged.replaced;
    }
    if let Some(root) = new_root {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).at(&parent)?;
        if dir.exists() {
            return Err(Error::Conflict(Conflict::Appeared {
                dir: dir.to_path_buf(),
            }));
        }
        fs::rename(&root, dir).at(dir)?;
        sync_dir(&parent)?;
    }
    Ok(report)
}

/// Moves a staged, verified blob into the layout; false when the layout had it already.
pub(super) fn place(layout: &Layout, staged: &Staged, dirs: &mut DirSyncs) -> Result<bool> {
    let digest = &staged.digest;
    match layout.blob_size(digest)? {
        Some(size) if size == staged.size => return Ok(false),
        Some(size) => {
            return Err(Error::Corrupt {
                path: layout.blob_path(digest),
                reason: Corruption::ExistingBlobSize {
                    found: size,
                    expected: staged.size,
                },
            });
        }
        None => {}
    }
    layout.place_blob(
        Placement::Staged {
            path: &staged.path,
            size: staged.size,
        },
        digest,
        Some(dirs),
    )
}
