//! Moving graphs between layouts and tarballs: [`copy`](fn@copy) from one layout into another,
//! [`export`](fn@export) as a tarball that is itself a layout, and [`import`](fn@import) of such tarballs (and of
//! `docker save` archives) into a layout.
//!
//! All three share one walk ([`Plan`]): from a root manifest through its children (config,
//! layers, child manifests) and, when asked, through the referrers of every node, recursively.
//! Every manifest on the way is read and verified; every other blob is checked for presence and
//! size before anything is written, so an incomplete source fails before the destination changes.
//!
//! Integrity rules kept by every transfer:
//! - a blob becomes visible in a destination layout only after its digest was verified, whether
//!   it was copied, hard-linked or unpacked from an archive;
//! - an archive is validated completely (every entry, every digest, every descriptor) before
//!   anything is written into the destination layout;
//! - exported tarballs are verified while they are streamed: a blob whose content does not match
//!   its digest aborts the export (the output is then incomplete and must be discarded; the
//!   file-writing entry point [`export::export_to_path`] never leaves it behind).

mod compression;
pub mod copy;
pub mod export;
pub mod import;
pub(crate) mod tar_reader;

use std::collections::{HashMap, HashSet};

pub use copy::{CopyOptions, CopyReport, copy};
pub use export::{Compression, ExportOptions, ExportReport, ExportRoot, export, export_to_path};
pub use import::{ArchiveFormat, ImportOptions, ImportReport, import, import_seekable};

use crate::digest::Digest;
use crate::error::{Error, Result, Subject};
use crate::layout::Layout;
use crate::model::{Descriptor, Manifest, media};
use crate::referrers::Graph;
use crate::walk::{Content, Visitor, Walker};

/// A referrer relation to carry over: the referrer as a referrers response lists it
/// (media type, digest, size, artifactType, its manifest's annotations) and its subject.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Relation {
    /// The referrer as a referrers response lists it.
    pub referrer: Descriptor,
    /// Its subject.
    pub subject: Digest,
}

/// Everything a root reaches in a layout, in dependency order (a manifest after the blobs it
/// names), each digest once.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Plan {
    /// Blobs present in the source, children before parents.
    pub blobs: Vec<Descriptor>,
    /// Referrer relations met on the way (only when referrers were followed).
    pub relations: Vec<Relation>,
    /// Non-distributable blobs (descriptors with `urls`) that are absent and were skipped.
    pub foreign: Vec<Descriptor>,
}

impl Plan {
    /// Total size of the blobs to transfer.
    pub fn total_size(&self) -> u64 {
        self.blobs.iter().map(Descriptor::size).sum()
    }
}

/// Builds [`Plan`]s over one source layout. Several roots can be added to one plan: what they
/// share is listed once.
pub struct Planner<'a> {
    walker: Walker<'a>,
    state: PlanVisitor<'a>,
}

/// The planner's visitor of the one walk.
struct PlanVisitor<'a> {
    layout: &'a Layout,
    graph: Option<&'a Graph>,
    /// The children of the root to walk (a platform selection), for the root being added.
    only: Option<HashSet<Digest>>,
    /// Absent non-distributable blobs: not listed in the plan.
    skipped: HashSet<Digest>,
    relations_seen: HashSet<Digest>,
    /// Manifests whose descriptor did not say so (no media type, `application/octet-stream`):
    /// the media type the walk read them as, so the plan lists them as the manifests they are.
    sniffed: HashMap<Digest, String>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    /// A planner over `layout`; with `graph`, referrers of every node are followed too.
    pub fn new(layout: &'a Layout, graph: Option<&'a Graph>) -> Self {
        Planner {
            walker: Walker::new(layout),
            state: PlanVisitor {
                layout,
                graph,
                only: None,
                skipped: HashSet::new(),
                relations_seen: HashSet::new(),
                sniffed: HashMap::new(),
                plan: Plan::default(),
            },
        }
    }

    /// Adds `root` and everything it reaches. With `only_children`, an index root walks only
    /// those of its children (a platform selection); the index blob itself is kept as it is.
    pub fn add(&mut self, root: &Descriptor, only_children: Option<HashSet<Digest>>) -> Result<()> {
        self.state.only = only_children;
        self.walker.walk(root, &mut self.state)
    }

    /// The plan built so far.
    pub fn finish(self) -> Plan {
        self.state.plan
    }
}

impl Visitor for PlanVisitor<'_> {
    fn enter(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        let digest = desc.digest();
        let size = match content {
            Content::Absent if !desc.urls().is_empty() => {
                self.plan.foreign.push(desc.clone());
                self.skipped.insert(digest.clone());
                return Ok(Vec::new());
            }
            Content::Absent => {
                return Err(Error::NotFound {
                    what: Subject::BlobIn {
                        digest: digest.clone(),
                        layout: self.layout.root().to_path_buf(),
                    },
                    hint: " (the source layout is incomplete; a descriptor without urls must have its blob)"
                        .into(),
                });
            }
            Content::Invalid { error, .. } => return Err(error),
            Content::Blob { size } | Content::Manifest { size, .. } => size,
        };
        if size != desc.size() {
            return Err(Error::SizeMismatch {
                what: Subject::BlobIn {
                    digest: digest.clone(),
                    layout: self.layout.root().to_path_buf(),
                }
                .into(),
                expected: desc.size(),
                actual: size,
            });
        }
        if let Content::Manifest { media_type, .. } = &content
            && !media::is_manifest(desc.media_type())
        {
            self.sniffed.insert(digest.clone(), media_type.clone());
        }
        let only = if parent.is_none() {
            self.only.take()
        } else {
            None
        };
        Ok(content
            .children()
            .into_iter()
            .filter(|c| only.as_ref().is_none_or(|o| o.contains(c.digest())))
            .collect())
    }

    fn leave(&mut self, desc: &Descriptor) -> Result<Vec<Descriptor>> {
        if self.skipped.contains(desc.digest()) {
            return Ok(Vec::new());
        }
        // A registry push decides manifest or blob by the listed media type.
        self.plan
            .blobs
            .push(match self.sniffed.remove(desc.digest()) {
                Some(media_type) => {
                    Descriptor::new(&media_type, desc.digest().clone(), desc.size())
                }
                None => desc.clone(),
            });
        let Some(graph) = self.graph else {
            return Ok(Vec::new());
        };
        let mut next = Vec::new();
        for r in graph.referrers_of(desc.digest()) {
            if self.relations_seen.insert(r.digest().clone()) {
                self.plan.relations.push(Relation {
                    referrer: r.descriptor.clone(),
                    subject: desc.digest().clone(),
                });
            }
            next.push(r.descriptor.clone());
        }
        Ok(next)
    }
}

/// The child digests of an index that match any of `platforms`; each platform must match one.
pub(crate) fn platform_children(
    layout: &Layout,
    index: &Descriptor,
    platforms: &[crate::model::Platform],
) -> Result<Option<Vec<Descriptor>>> {
    let (_, manifest) = layout.read_manifest(index)?;
    let Manifest::Index(idx) = manifest else {
        return Ok(None);
    };
    let mut out: Vec<Descriptor> = Vec::new();
    for p in platforms {
        let hits: Vec<&Descriptor> = idx
            .manifests()
            .iter()
            .filter(|d| d.platform().is_some_and(|dp| p.matches(&dp)))
            .collect();
        if hits.is_empty() {
            let found: Vec<String> = idx
                .manifests()
                .iter()
                .filter_map(|d| d.platform().map(|p| p.to_string()))
                .collect();
            return Err(Error::NotFound {
                what: Subject::Platform {
                    platform: p.to_string(),
                    index: index.digest().clone(),
                },
                hint: if found.is_empty() {
                    " (the index lists no platforms)".into()
                } else {
                    format!(" (available platforms: {})", found.join(", "))
                },
            });
        }
        for h in hits {
            if !out.iter().any(|o| o.digest() == h.digest()) {
                out.push(h.clone());
            }
        }
    }
    Ok(Some(out))
}

/// Deduplicates relations by referrer digest, keeping the first.
pub(crate) fn dedup_relations(relations: &mut Vec<Relation>) {
    let mut seen: HashSet<Digest> = HashSet::new();
    relations.retain(|r| seen.insert(r.referrer.digest().clone()));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::artifact::{self, FileSpec, PushRequest};
    use crate::layout::NoProgress;
    use crate::reference::Target;

    fn pushed(dir: &Path, work: &Path) -> (Layout, Descriptor) {
        let layout = Layout::init(dir).unwrap();
        let file = work.join("hello.txt");
        std::fs::write(&file, "hello\n").unwrap();
        let req = PushRequest::new(vec![
            FileSpec::new(file).media_type(Some("text/plain".into())),
        ])
        .artifact_type(Some("application/vnd.example".into()));
        let p = artifact::push(&layout, &req, &artifact::no_progress).unwrap();
        layout.add_entry(&p.descriptor, &["v1".into()]).unwrap();
        let desc = layout.resolve(&Target::Tag("v1".into())).unwrap();
        (layout, desc)
    }

    #[test]
    fn export_is_deterministic_and_imports_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, desc) = pushed(&tmp.path().join("src"), tmp.path());
        let roots = [ExportRoot::tagged(&src, &desc, "v1")];
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let options = ExportOptions {
                compression,
                ..Default::default()
            };
            let mut a = Vec::new();
            let mut b = Vec::new();
            export(&roots, &options, &mut a, &artifact::no_progress).unwrap();
            export(&roots, &options, &mut b, &artifact::no_progress).unwrap();
            assert_eq!(a, b);
            let dst = tmp.path().join(format!("dst-{compression:?}"));
            let report = import(&mut &a[..], &dst, &ImportOptions::default(), &NoProgress).unwrap();
            assert!(report.created);
            assert_eq!(report.tags, ["v1"]);
            let back = Layout::open(&dst).unwrap();
            assert_eq!(
                back.resolve(&Target::Tag("v1".into())).unwrap().digest(),
                desc.digest()
            );
        }
    }

    #[test]
    fn import_refuses_escaping_paths_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut archive = h.as_bytes().to_vec();
        archive.extend([b'x']);
        archive.extend([0u8; 511 + 1024]);
        let dst = tmp.path().join("dst");
        let err = import(
            &mut &archive[..],
            &dst,
            &ImportOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains("../escape"), "{err}");
        assert!(!dst.exists());
        assert!(!tmp.path().join("escape").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn copy_skips_blobs_already_present() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, desc) = pushed(&tmp.path().join("src"), tmp.path());
        let dst = Layout::init(tmp.path().join("dst")).unwrap();
        let plan = copy::plan_copy(&src, &desc, false, &[]).unwrap();
        let first = copy(
            &src,
            &plan,
            &dst,
            &CopyOptions::default(),
            &artifact::no_progress,
        )
        .unwrap();
        assert_eq!(first.present, 0);
        assert_eq!(first.linked + first.copied, plan.plan.blobs.len());
        let again = copy(
            &src,
            &plan,
            &dst,
            &CopyOptions::default(),
            &artifact::no_progress,
        )
        .unwrap();
        assert_eq!(again.present, plan.plan.blobs.len());
    }
}
