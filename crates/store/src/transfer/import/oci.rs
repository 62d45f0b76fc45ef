//! Validation of an OCI layout archive: everything its index.json reaches, and its referrers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self};

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layout::{Layout, MAX_MANIFEST_SIZE};
use crate::model::{Descriptor, ImageIndex, Manifest, media};
use crate::referrers::{EntryKind, classify};
use crate::transfer::{Relation, dedup_relations};

use super::staging::Staged;
use super::{ArchiveFormat, Incoming, corrupt};

pub(super) fn check_oci_layout(bytes: &[u8], name: &str) -> Result<()> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(name, format!("oci-layout is not valid JSON: {e}")))?;
    match value.get("imageLayoutVersion") {
        Some(Value::String(v)) if v == "1.0.0" => Ok(()),
        other => Err(corrupt(
            name,
            format!(
                "oci-layout has imageLayoutVersion {}, not \"1.0.0\"",
                other.map_or_else(|| "missing".into(), std::string::ToString::to_string)
            ),
        )),
    }
}

/// Where a reachable blob is: staged from the archive, or in the destination already.
enum Source<'a> {
    Staged(&'a Staged),
    Dir(&'a Layout),
}

pub(super) fn validate_oci(
    index_bytes: &[u8],
    blobs: BTreeMap<Digest, Staged>,
    existing: Option<&Layout>,
    name: &str,
) -> Result<Incoming> {
    let index = ImageIndex::parse(index_bytes)
        .map_err(|r| corrupt(name, format!("index.json: {r}; nothing was imported")))?;
    let mut tags: HashMap<&str, &Digest> = HashMap::new();
    for e in index.manifests() {
        if let Some(t) = e.ref_name()
            && let Some(prev) = tags.insert(t, e.digest())
            && prev != e.digest()
        {
            return Err(corrupt(
                name,
                format!(
                    "index.json gives tag {t:?} to two digests ({prev} and {}); nothing was imported",
                    e.digest()
                ),
            ));
        }
    }
    // Walk everything index.json reaches (iteratively: nesting depth is the archive's choice).
    let mut stack: Vec<(Descriptor, Option<Digest>, bool)> = index
        .manifests()
        .iter()
        .rev()
        .map(|e| {
            (
                e.clone(),
                None,
                matches!(
                    classify(e),
                    EntryKind::Response { .. } | EntryKind::Fallback { .. }
                ),
            )
        })
        .collect();
    let mut recorded: HashSet<Digest> = index
        .manifests()
        .iter()
        .map(|e| e.digest().clone())
        .collect();
    let mut visited: HashSet<Digest> = HashSet::new();
    let mut relations: Vec<Relation> = Vec::new();
    while let Some((desc, parent, is_record)) = stack.pop() {
        let digest = desc.digest().clone();
        if !visited.insert(digest.clone()) {
            continue;
        }
        let named_by = match &parent {
            Some(p) => format!("manifest {p}"),
            None => "index.json".to_string(),
        };
        let source = if let Some(s) = blobs.get(&digest) {
            if s.size != desc.size() {
                return Err(Error::SizeMismatch {
                    what: format!(
                        "{name}: entry {:?} (declared by {named_by}; the archive was refused)",
                        s.entry
                    ),
                    expected: desc.size(),
                    actual: s.size,
                });
            }
            Source::Staged(s)
        } else if let Some(l) = existing
            && let Some(size) = l.blob_size(&digest)?
        {
            if size != desc.size() {
                return Err(Error::SizeMismatch {
                    what: format!("blob {digest} already in {}", l.root().display()),
                    expected: desc.size(),
                    actual: size,
                });
            }
            Source::Dir(l)
        } else if !desc.urls().is_empty() {
            continue;
        } else {
            return Err(Error::NotFound {
                what: format!("blob {digest} named by {named_by} in {name}"),
                hint:
                    " (it is neither in the archive nor in the destination; nothing was imported)"
                        .into(),
            });
        };
        let mt = desc.media_type();
        let maybe = media::is_manifest(mt)
            || ((mt.is_empty() || mt == "application/octet-stream") && desc.size() <= 4 << 20);
        if !maybe {
            continue;
        }
        let bytes = match source {
            Source::Staged(s) => {
                if s.size > MAX_MANIFEST_SIZE {
                    return Err(corrupt(
                        name,
                        format!(
                            "manifest {digest} is {} bytes, too large for a manifest",
                            s.size
                        ),
                    ));
                }
                fs::read(&s.path).at(&s.path)?
            }
            Source::Dir(l) => l.read_blob(&digest)?,
        };
        let effective = if media::is_manifest(mt) {
            mt.to_string()
        } else {
            match Manifest::sniff_media_type(&bytes) {
                Some(m) if media::is_manifest(&m) => m,
                _ => continue,
            }
        };
        let manifest = Manifest::parse(&effective, &bytes).map_err(|r| {
            corrupt(
                name,
                format!("blob {digest} (named by {named_by}) is not a valid {effective}: {r}; nothing was imported"),
            )
        })?;
        if let Some(subject) = manifest.subject() {
            let mut d = Descriptor::new(&effective, digest.clone(), desc.size());
            if let Some(a) = manifest.annotations() {
                d.set_annotations(a.clone());
            }
            if let Some(at) = manifest.effective_artifact_type() {
                d.set_artifact_type(at);
            }
            relations.push(Relation {
                referrer: d,
                subject: subject.digest().clone(),
            });
        }
        let children: Vec<Descriptor> = manifest.children().into_iter().cloned().collect();
        for child in children.into_iter().rev() {
            if is_record {
                recorded.insert(child.digest().clone());
            }
            stack.push((child, Some(digest.clone()), false));
        }
    }
    dedup_relations(&mut relations);
    let all_relations = relations.len();
    relations.retain(|r| recorded.contains(r.referrer.digest()));
    // Only what index.json reaches is imported; the caller decides about the rest.
    let mut blobs = blobs;
    blobs.retain(|d, _| visited.contains(d));
    Ok(Incoming {
        format: ArchiveFormat::OciLayout,
        entries: index.manifests().to_vec(),
        blobs,
        relations,
        all_relations,
    })
}
