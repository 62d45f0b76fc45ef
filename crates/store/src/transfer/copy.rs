//! Copying a manifest or index, and everything it reaches, from one layout into another.
//!
//! Blobs already in the destination are not copied again. On one file system a blob is
//! hard-linked into the destination's `ingest/` area, hashed there, and only renamed into
//! `blobs/` when its digest matched, so a corrupt source blob is never linked in. Hard links are
//! used only where they cannot hurt: the source file is ours (same owner as the files we create),
//! readable by all and writable by nobody else, so sharing its inode gives no one a way to change
//! the destination's blob. Otherwise the blob is copied through the verified ingest path.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;

use super::{Plan, Planner, platform_children};
use crate::artifact::ProgressFactory;
use crate::digest::Digest;
use crate::error::{Corruption, Error, InputProblem, IoContext, Result, Subject};
use crate::layout::{Expected, Layout, Placement, Progress, copy_verified};
use crate::model::{Descriptor, Platform};
use crate::reference::validate_ref_name;
use crate::referrers::{Mode, ResponseKey, ScanOptions};

/// What a copy will transfer: the root to record in the destination and the walk from it.
#[derive(Debug)]
#[non_exhaustive]
pub struct CopyPlan {
    /// The root as it will be listed in the destination (a platform's manifest when one
    /// platform of an index was asked for).
    pub root: Descriptor,
    /// The blobs and referrer relations to copy.
    pub plan: Plan,
}

/// How the destination records what was copied.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Tags for the root in the destination; empty for an untagged entry.
    pub tags: Vec<String>,
    /// How referrers are recorded in the destination.
    pub mode: Mode,
    /// The annotation key of response records.
    pub response_key: ResponseKey,
    /// Allow hard links on one file system (verified before they become visible).
    pub hard_links: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            tags: Vec::new(),
            mode: Mode::Annotation,
            response_key: ResponseKey::Oci,
            hard_links: true,
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CopyReport {
    /// The root entry written into the destination.
    pub root: Descriptor,
    /// Blobs the walk reached.
    pub blobs: usize,
    /// Of those, how many were hard-linked, copied, or already present.
    pub linked: usize,
    /// Blobs copied byte by byte (no hard link possible).
    pub copied: usize,
    /// Blobs the destination already had.
    pub present: usize,
    /// Bytes hashed while linking or copying.
    pub bytes: u64,
    /// Referrer relations recorded in the destination.
    pub referrers: usize,
    /// Absent non-distributable blobs (with `urls`) that were skipped.
    pub foreign: usize,
}

/// Walks the source from `root`, verifying every manifest and checking every other blob's
/// presence and size. With `referrers`, the referrers of the root and of every node it reaches
/// are included, recursively. With one platform and an index root, the matching child becomes
/// the root; with several, the index is kept and only the matching children are walked.
pub fn plan_copy(
    src: &Layout,
    root: &Descriptor,
    referrers: bool,
    platforms: &[Platform],
) -> Result<CopyPlan> {
    let graph = if referrers {
        Some(src.scan_referrers(ScanOptions::default())?)
    } else {
        None
    };
    let mut root = root.clone();
    let mut only: Option<HashSet<Digest>> = None;
    if !platforms.is_empty() {
        match platform_children(src, &root, platforms)? {
            None => {
                return Err(Error::InvalidInput(InputProblem::PlatformOfNonIndex {
                    manifest: root.digest().clone(),
                }));
            }
            Some(children) if platforms.len() == 1 => {
                root = children[0].clone();
            }
            Some(children) => {
                only = Some(children.iter().map(|c| c.digest().clone()).collect());
            }
        }
    }
    let mut planner = Planner::new(src, graph.as_ref());
    planner.add(&root, only)?;
    Ok(CopyPlan {
        root,
        plan: planner.finish(),
    })
}

/// Copies what `plan` lists from `src` into `dst`, then lists the root in `dst` (with
/// `options.tags`) and records the referrer relations in `options.mode`. The destination is
/// pinned against garbage collection from the first blob to the last index update.
pub fn copy(
    src: &Layout,
    plan: &CopyPlan,
    dst: &Layout,
    options: &CopyOptions,
    progress: ProgressFactory<'_>,
) -> Result<CopyReport> {
    for t in &options.tags {
        validate_ref_name(t).map_err(|problem| Error::InvalidReference {
            input: t.clone(),
            problem,
        })?;
    }
    // A corrupt destination index.json would fail the final update: find out first.
    dst.read_index()?;
    let staged = dst.stage()?;
    let bar = progress("copy", plan.plan.total_size());
    let mut copier = Copier {
        src,
        dst,
        hard_links: options.hard_links,
    };
    let mut report = CopyReport {
        root: plan.root.clone(),
        blobs: plan.plan.blobs.len(),
        linked: 0,
        copied: 0,
        present: 0,
        bytes: 0,
        referrers: 0,
        foreign: plan.plan.foreign.len(),
    };
    for desc in &plan.plan.blobs {
        match copier.blob(desc, bar.as_ref())? {
            How::Present => report.present += 1,
            How::Linked => {
                report.linked += 1;
                report.bytes += desc.size();
            }
            How::Copied => {
                report.copied += 1;
                report.bytes += desc.size();
            }
        }
    }
    // The root and every referrer in one transaction: a kill leaves all of them or none.
    let relations: Vec<(Descriptor, Digest)> = plan
        .plan
        .relations
        .iter()
        .map(|r| (r.referrer.clone(), r.subject.clone()))
        .collect();
    staged.commit_batch(
        Some((&plan.root, &options.tags)),
        &relations,
        Some(options.mode),
        Some(options.response_key),
    )?;
    report.referrers = relations.len();
    Ok(report)
}

enum How {
    Present,
    Linked,
    Copied,
}

struct Copier<'a> {
    src: &'a Layout,
    dst: &'a Layout,
    hard_links: bool,
}

impl Copier<'_> {
    fn blob(&mut self, desc: &Descriptor, progress: &dyn Progress) -> Result<How> {
        let digest = desc.digest();
        match self.dst.blob_size(digest)? {
            Some(size) if size == desc.size() => {
                progress.advance(size);
                return Ok(How::Present);
            }
            Some(size) => {
                return Err(Error::Corrupt {
                    path: self.dst.blob_path(digest),
                    reason: Corruption::DestinationBlobSize {
                        found: size,
                        expected: desc.size(),
                    },
                });
            }
            None => {}
        }
        if self.hard_links && self.link_is_safe(desc)? && self.link(desc, progress)? {
            return Ok(How::Linked);
        }
        let src_path = self.src.blob_path(digest);
        let mut file = self.src.open_blob(digest)?;
        self.dst.write_blob_with_progress(
            &mut file,
            Expected {
                digest: Some(digest.clone()),
                size: Some(desc.size()),
                input: Some(Subject::Path(src_path)),
            },
            progress,
        )?;
        Ok(How::Copied)
    }

    /// A hard link shares the inode: only when nobody but us can change the source file.
    fn link_is_safe(&mut self, desc: &Descriptor) -> Result<bool> {
        let path = self.src.blob_path(desc.digest());
        let meta = fs::symlink_metadata(&path).at(&path)?;
        if !meta.is_file() {
            return Ok(false);
        }
        let mode = meta.mode();
        if mode & 0o022 != 0 || mode & 0o444 != 0o444 {
            return Ok(false);
        }
        Ok(meta.uid() == rustix::process::geteuid().as_raw())
    }

    /// Hard-links the source blob into `ingest/`, verifies it, and places it into `blobs/`.
    /// `Ok(false)` when a link cannot be made (another file system, say): copy instead.
    fn link(&self, desc: &Descriptor, progress: &dyn Progress) -> Result<bool> {
        let digest = desc.digest();
        let src_path = self.src.blob_path(digest);
        let Some((temp, file)) = self.dst.link_into_ingest(&src_path)? else {
            return Ok(false);
        };
        copy_verified(
            &mut &file,
            &mut io::sink(),
            &Expected {
                digest: Some(digest.clone()),
                size: Some(desc.size()),
                input: Some(Subject::Path(src_path.clone())),
            },
            &Subject::Path(temp.to_path_buf()),
            progress,
        )?;
        self.dst.place_blob(
            Placement::Ingest {
                path: temp,
                file: &file,
            },
            digest,
            None,
        )?;
        Ok(true)
    }
}

impl CopyOptions {
    /// Records referrers in `mode` (response key `oci`), with no tags and no hard links.
    pub fn new(mode: Mode) -> Self {
        CopyOptions {
            tags: Vec::new(),
            mode,
            response_key: ResponseKey::default(),
            hard_links: false,
        }
    }
}

setters!(CopyOptions {
    tags: Vec<String>,
    response_key: ResponseKey,
    hard_links: bool,
});
