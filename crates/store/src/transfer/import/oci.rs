//! Validation of an OCI layout archive: everything its index.json reaches, and its referrers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{ArchiveProblem, Error, IoContext, Result, Subject};
use crate::layout::Layout;
use crate::model::{Descriptor, ImageIndex};
use crate::referrers::{EntryKind, classify};
use crate::transfer::{Relation, dedup_relations};
use crate::walk::{BlobSource, Content, Visitor, Walker};

use super::staging::Staged;
use super::{ArchiveFormat, Incoming, corrupt};

pub(super) fn check_oci_layout(bytes: &[u8], name: &str) -> Result<()> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(name, ArchiveProblem::OciLayoutNotJson(e)))?;
    match value.get("imageLayoutVersion") {
        Some(Value::String(v)) if v == "1.0.0" => Ok(()),
        other => Err(corrupt(
            name,
            ArchiveProblem::OciLayoutVersion {
                found: other.map(Value::to_string),
            },
        )),
    }
}

/// Where the walk of an archive reads blobs: staged from the archive, else the destination's.
struct ArchiveBlobs<'a> {
    staged: &'a BTreeMap<Digest, Staged>,
    existing: Option<&'a Layout>,
}

impl BlobSource for ArchiveBlobs<'_> {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match (self.staged.get(digest), self.existing) {
            (Some(s), _) => Ok(Some(s.size)),
            (None, Some(l)) => l.blob_size(digest),
            (None, None) => Ok(None),
        }
    }

    fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        match (self.staged.get(digest), self.existing) {
            // Hashed while it was staged, and named by that digest: verified already.
            (Some(s), _) => {
                let file = File::open(&s.path).at(&s.path)?;
                let mut bytes = Vec::new();
                file.take(limit.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .at(&s.path)?;
                if bytes.len() as u64 > limit {
                    return Err(Error::TooLarge {
                        path: s.path.clone(),
                        limit,
                        why: " (a staged member grew)",
                    });
                }
                Ok(bytes)
            }
            (None, Some(l)) => l.read_blob_limited(digest, limit),
            (None, None) => Err(Error::not_found(Subject::Blob(digest.clone()))),
        }
    }
}

/// Import validation, a visitor of the one walk: every reachable blob is in the archive or the
/// destination at its declared size, every manifest parses, and the referrers are collected.
struct Check<'a> {
    blobs: &'a ArchiveBlobs<'a>,
    name: &'a str,
    /// Index entries that are response or fallback records: what they list is recorded.
    record_entries: HashSet<Digest>,
    recorded: HashSet<Digest>,
    visited: HashSet<Digest>,
    relations: Vec<Relation>,
}

impl Visitor for Check<'_> {
    fn enter(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        let digest = desc.digest();
        let name = self.name;
        self.visited.insert(digest.clone());
        let named_by = match parent {
            Some(p) => format!("manifest {}", p.digest()),
            None => "index.json".to_string(),
        };
        let size = match &content {
            Content::Absent if !desc.urls().is_empty() => return Ok(Vec::new()),
            Content::Absent => {
                return Err(Error::NotFound {
                    what: Subject::Blob(digest.clone()),
                    hint: format!(
                        " (named by {named_by} in {name}: it is neither in the archive nor in the \
                         destination; nothing was imported)"
                    ),
                });
            }
            Content::Blob { size } | Content::Manifest { size, .. } => Some(*size),
            Content::Invalid { .. } => self.blobs.blob_size(digest)?,
        };
        if let Some(size) = size
            && size != desc.size()
        {
            return Err(Error::SizeMismatch {
                what: match (self.blobs.staged.get(digest), self.blobs.existing) {
                    (Some(s), _) => Subject::ArchiveEntry {
                        archive: name.to_string(),
                        entry: s.entry.clone().into(),
                    },
                    (None, Some(l)) => Subject::BlobIn {
                        digest: digest.clone(),
                        layout: l.root().to_path_buf(),
                    },
                    (None, None) => Subject::Blob(digest.clone()),
                }
                .into(),
                expected: desc.size(),
                actual: size,
            });
        }
        let (media_type, manifest) = match content {
            Content::Absent | Content::Blob { .. } => return Ok(Vec::new()),
            Content::Invalid { error, .. } => {
                return Err(match error {
                    Error::InvalidManifest { kind, reason, .. } => corrupt(
                        name,
                        ArchiveProblem::InvalidManifest {
                            digest: digest.clone(),
                            named_by: parent.map(|p| p.digest().clone()),
                            kind,
                            reason,
                        },
                    ),
                    Error::Corrupt { reason, .. } => corrupt(
                        name,
                        ArchiveProblem::CorruptManifest {
                            digest: digest.clone(),
                            named_by: parent.map(|p| p.digest().clone()),
                            reason: Box::new(reason),
                        },
                    ),
                    other => other,
                });
            }
            Content::Manifest {
                media_type,
                manifest,
                ..
            } => (media_type, manifest),
        };
        if let Some(subject) = manifest.subject() {
            let mut d = Descriptor::new(&media_type, digest.clone(), desc.size());
            if let Some(a) = manifest.annotations() {
                d.set_annotations(a.clone());
            }
            if let Some(at) = manifest.effective_artifact_type() {
                d.set_artifact_type(at);
            }
            self.relations.push(Relation {
                referrer: d,
                subject: subject.digest().clone(),
            });
        }
        let children: Vec<Descriptor> = manifest.children().into_iter().cloned().collect();
        if parent.is_none() && self.record_entries.contains(digest) {
            self.recorded
                .extend(children.iter().map(|c| c.digest().clone()));
        }
        Ok(children)
    }
}

pub(super) fn validate_oci(
    index_bytes: &[u8],
    blobs: BTreeMap<Digest, Staged>,
    existing: Option<&Layout>,
    name: &str,
) -> Result<Incoming> {
    let index =
        ImageIndex::parse(index_bytes).map_err(|e| corrupt(name, ArchiveProblem::Index(e)))?;
    let mut tags: HashMap<&str, &Digest> = HashMap::new();
    for e in index.manifests() {
        if let Some(t) = e.ref_name()
            && let Some(prev) = tags.insert(t, e.digest())
            && prev != e.digest()
        {
            return Err(corrupt(
                name,
                ArchiveProblem::TagForTwoDigests {
                    tag: t.to_string(),
                    first: prev.clone(),
                    second: e.digest().clone(),
                },
            ));
        }
    }
    // Everything index.json reaches, on the one walk (iterative: nesting depth is the
    // archive's choice).
    let source = ArchiveBlobs {
        staged: &blobs,
        existing,
    };
    let mut check = Check {
        blobs: &source,
        name,
        record_entries: index
            .manifests()
            .iter()
            .filter(|e| {
                matches!(
                    classify(e),
                    EntryKind::Response { .. } | EntryKind::Fallback { .. }
                )
            })
            .map(|e| e.digest().clone())
            .collect(),
        recorded: index
            .manifests()
            .iter()
            .map(|e| e.digest().clone())
            .collect(),
        visited: HashSet::new(),
        relations: Vec::new(),
    };
    let mut walker = Walker::new(&source);
    for e in index.manifests() {
        walker.walk(e, &mut check)?;
    }
    let Check {
        mut relations,
        recorded,
        visited,
        ..
    } = check;
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
