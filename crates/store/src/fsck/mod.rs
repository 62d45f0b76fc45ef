//! Integrity checks with repair ([`Layout::fsck`]).
//!
//! **fsck** hashes every blob (on all cores), resolves every descriptor reachable from
//! `index.json`, parses every reachable manifest, checks the referrer records against the blobs
//! (a deep [`Layout::scan_referrers`], run only when some blob could add to the shallow one) and
//! notes files other tools (or a killed ocistow) left behind. Notes are never deleted by fsck; `--repair` rebuilds referrer records and, when asked,
//! removes entries whose blobs are missing.

pub(crate) mod hash;
mod leftovers;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::num::NonZeroUsize;

use base64::Engine as _;
use serde::ser::SerializeStruct;

use self::hash::{Hashed, hash_files, hashing_threads};
use crate::digest::Digest;
use crate::entries;
use crate::error::{Error, IoContext, Result};
use crate::inventory::BlobFile;
use crate::layout::{Layout, Progress};
use crate::model::Descriptor;
use crate::referrers::{Convention, Graph, Issue, Mode, ResponseKey, ScanOptions};
use crate::walk::{Content, Visitor, Walker};

/// What [`Layout::fsck`] should do besides checking.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FsckOptions {
    /// Rebuild referrer records (in the mode the layout uses, else annotation).
    pub repair: bool,
    /// With `repair`: remove `index.json` entries whose blobs are missing.
    pub remove_missing: bool,
    /// With `repair`: also record referrers that no record lists (found only by a deep scan).
    /// Off by default: such a referrer is usually a write that was interrupted, and recording
    /// it would publish what the user stopped.
    pub record_unlisted: bool,
    /// Hashing threads (default: the available parallelism).
    pub threads: Option<NonZeroUsize>,
}

/// Something wrong with the layout: fsck exits non-zero for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob's content does not hash to the digest its file is named by.
    CorruptBlob {
        /// The blob concerned.
        digest: Digest,
        /// What its content hashes to.
        actual: Digest,
        /// Its size on disk.
        size: u64,
    },
    /// A blob could not be read.
    UnreadableBlob {
        /// The blob concerned.
        digest: Digest,
        /// Why, for people.
        reason: String,
    },
    /// A descriptor reachable from `index.json` names a blob that is absent (and has no `urls`).
    MissingBlob {
        /// The blob concerned.
        digest: Digest,
        /// Where the descriptor was found (an `index.json` entry, a manifest).
        referenced_by: String,
    },
    /// A descriptor's `size` differs from its blob's.
    SizeMismatch {
        /// The blob concerned.
        digest: Digest,
        /// Where the descriptor was found (an `index.json` entry, a manifest).
        referenced_by: String,
        /// The size the descriptor declares.
        declared: u64,
        /// What its content hashes to.
        actual: u64,
    },
    /// A manifest reachable from `index.json` does not parse as its media type.
    InvalidManifest {
        /// The blob concerned.
        digest: Digest,
        /// Where the descriptor was found (an `index.json` entry, a manifest).
        referenced_by: String,
        /// Why, for people.
        reason: String,
    },
    /// A descriptor's `data` is not the base64 of content with its digest.
    BadData {
        /// The blob concerned.
        digest: Digest,
        /// Where the descriptor was found (an `index.json` entry, a manifest).
        referenced_by: String,
        /// Why, for people.
        reason: String,
    },
    /// A referrer record disagrees with the blobs (from [`Layout::scan_referrers`]).
    Referrers(Issue),
}

impl Problem {
    /// A stable kebab-case name for JSON output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::CorruptBlob { .. } => "corrupt-blob",
            Problem::UnreadableBlob { .. } => "unreadable-blob",
            Problem::MissingBlob { .. } => "missing-blob",
            Problem::SizeMismatch { .. } => "size-mismatch",
            Problem::InvalidManifest { .. } => "invalid-manifest",
            Problem::BadData { .. } => "bad-data",
            Problem::Referrers(i) => i.kind(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob {
                digest,
                actual,
                size,
            } => write!(
                f,
                "blob {digest} is corrupt: its {size} bytes hash to {actual}"
            ),
            Problem::UnreadableBlob { digest, reason } => {
                write!(f, "blob {digest} cannot be read: {reason}")
            }
            Problem::MissingBlob {
                digest,
                referenced_by,
            } => write!(
                f,
                "blob {digest} is missing (referenced by {referenced_by})"
            ),
            Problem::SizeMismatch {
                digest,
                referenced_by,
                declared,
                actual,
            } => write!(
                f,
                "{referenced_by} describes {digest} as {declared} bytes, but the blob has {actual}"
            ),
            Problem::InvalidManifest {
                digest,
                referenced_by,
                reason,
            } => write!(
                f,
                "manifest {digest} (referenced by {referenced_by}) does not parse: {reason}"
            ),
            Problem::BadData {
                digest,
                referenced_by,
                reason,
            } => write!(
                f,
                "the data field of {digest} in {referenced_by} is wrong: {reason}"
            ),
            Problem::Referrers(i) => i.fmt(f),
        }
    }
}

/// Worth knowing, not wrong: fsck exits 0 when only notes are found, and never deletes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A work file another tool (or a killed ocistow) left, relative to the layout root.
    LeftoverFile {
        /// Relative to the layout root.
        path: String,
        /// What the file probably is.
        what: &'static str,
    },
    /// A non-distributable blob (its descriptor has `urls`) is absent, by design.
    NonDistributable {
        /// The blob concerned.
        digest: Digest,
        /// Where the descriptor was found (an `index.json` entry, a manifest).
        referenced_by: String,
    },
    /// A blob of an algorithm ocistow cannot compute: present, but not verified.
    Unverifiable {
        /// The blob concerned.
        digest: Digest,
    },
    /// A referrers finding that is not an error (a subject absent from the layout; an
    /// unreachable blob that looks like a manifest but does not parse).
    Referrers(Issue),
}

impl Note {
    /// A stable kebab-case name for JSON output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Note::LeftoverFile { .. } => "leftover-file",
            Note::NonDistributable { .. } => "non-distributable",
            Note::Unverifiable { .. } => "unverifiable",
            Note::Referrers(i) => i.kind(),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::LeftoverFile { path, what } => write!(f, "{path}: {what}"),
            Note::NonDistributable {
                digest,
                referenced_by,
            } => write!(
                f,
                "non-distributable blob {digest} (referenced by {referenced_by}) is absent: it has urls"
            ),
            Note::Unverifiable { digest } => write!(
                f,
                "blob {digest} uses an algorithm ocistow cannot compute; not verified"
            ),
            Note::Referrers(i) => i.fmt(f),
        }
    }
}

macro_rules! kind_message_serialize {
    ($t:ty, $name:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut st = s.serialize_struct($name, 2)?;
                st.serialize_field("kind", self.kind())?;
                st.serialize_field("message", &self.to_string())?;
                st.end()
            }
        }
    };
}
kind_message_serialize!(Problem, "Problem");
kind_message_serialize!(Note, "Note");

/// What fsck found (after repair, when asked) and what it repaired. Serialized with camelCase
/// keys, the one JSON style of the CLI.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FsckReport {
    /// Blob files hashed.
    pub blobs_checked: usize,
    /// Bytes hashed.
    pub bytes_hashed: u64,
    /// What is wrong (what repair could not fix, when it ran).
    pub problems: Vec<Problem>,
    /// What is worth knowing but not wrong.
    pub notes: Vec<Note>,
    /// What repair did, one line per action.
    pub repaired: Vec<String>,
}

impl FsckReport {
    /// True when there is no problem (notes do not count).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What is known about a blob: absent, or present with its size and whether it verified.
#[derive(Debug, Clone, Copy)]
enum BlobState {
    Absent,
    /// Its path could not be looked up (not a regular file, say); already a problem.
    Unreadable,
    Present {
        size: u64,
        intact: bool,
    },
}

impl Layout {
    /// Checks the whole layout: every blob hashed (in parallel), every descriptor reachable
    /// from `index.json` resolved with the right size, every reachable manifest parsed, the
    /// referrer records checked against the blobs, and leftover work files noted. With
    /// `repair`, referrer records are rebuilt (and with `remove_missing`, entries whose blobs
    /// are missing removed), then the layout is checked again: the report's problems are what
    /// remains.
    ///
    /// `progress` advances by the bytes hashed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ocistow_store::{Layout, layout::NoProgress, maintenance::FsckOptions};
    /// let layout = Layout::init(dir.path()).unwrap();
    /// let blob = layout.write_blob_bytes(b"hello").unwrap();
    /// assert!(layout.fsck(&FsckOptions::default(), &NoProgress).unwrap().is_clean());
    /// std::fs::write(layout.blob_path(blob.digest()), b"hellO").unwrap();
    /// let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    /// assert_eq!(report.problems[0].kind(), "corrupt-blob");
    /// ```
    pub fn fsck(&self, options: &FsckOptions, progress: &dyn Progress) -> Result<FsckReport> {
        let inventory = self.inventory(false)?;
        let threads = hashing_threads(options.threads);
        let (known, unknown): (Vec<&BlobFile>, Vec<&BlobFile>) = inventory
            .blobs
            .iter()
            .partition(|b| b.digest.known_algorithm().is_ok());
        let hashed = hash_files(&known, threads, progress);

        let mut report = FsckReport {
            blobs_checked: known.len(),
            bytes_hashed: 0,
            ..FsckReport::default()
        };
        let mut states: HashMap<Digest, BlobState> = HashMap::with_capacity(inventory.blobs.len());
        let mut suspects = HashSet::new();
        let mut blob_problems = Vec::new();
        for (b, h) in known.iter().zip(hashed) {
            let (size, intact) = match h {
                Hashed::Ok {
                    actual,
                    size,
                    suspect,
                } => {
                    report.bytes_hashed += size;
                    if suspect {
                        suspects.insert(b.digest.clone());
                    }
                    if actual == b.digest {
                        (size, true)
                    } else {
                        blob_problems.push(Problem::CorruptBlob {
                            digest: b.digest.clone(),
                            actual,
                            size,
                        });
                        (size, false)
                    }
                }
                Hashed::Failed(reason) => {
                    blob_problems.push(Problem::UnreadableBlob {
                        digest: b.digest.clone(),
                        reason,
                    });
                    let size = fs::symlink_metadata(&b.path).map_or(0, |m| m.len());
                    (size, false)
                }
            };
            states.insert(b.digest.clone(), BlobState::Present { size, intact });
        }
        let mut blob_notes = Vec::new();
        for b in unknown {
            let size = fs::symlink_metadata(&b.path).at(&b.path)?.len();
            states.insert(b.digest.clone(), BlobState::Present { size, intact: true });
            blob_notes.push(Note::Unverifiable {
                digest: b.digest.clone(),
            });
        }
        blob_problems.sort_by_key(ToString::to_string);

        let (mut problems, mut notes) = self.check_structure(&mut states, &suspects)?;
        let unlisted = options.record_unlisted
            && notes.iter().any(|n| {
                matches!(
                    n,
                    Note::Referrers(
                        Issue::OnlyDeepScan { .. }
                            | Issue::RecordMissing { .. }
                            | Issue::Unrecorded { .. }
                    )
                )
            });
        if options.repair && (options.remove_missing || unlisted || problems.iter().any(repairable))
        {
            report.repaired = self.repair(&problems, options)?;
            if !report.repaired.is_empty() {
                // What remains is what the report lists as problems.
                (problems, notes) = self.check_structure(&mut states, &suspects)?;
            }
        }
        report.problems = blob_problems;
        report.problems.extend(problems);
        report.notes = blob_notes;
        report.notes.extend(notes);
        report.notes.extend(self.leftover_notes(&inventory.strays)?);
        Ok(report)
    }

    /// Everything but the hashing: descriptors, manifests, referrer records.
    fn check_structure(
        &self,
        states: &mut HashMap<Digest, BlobState>,
        suspects: &HashSet<Digest>,
    ) -> Result<(Vec<Problem>, Vec<Note>)> {
        let index = self.read_index()?;
        let mut check = Check {
            layout: self,
            states,
            root_via: String::new(),
            visited: HashSet::new(),
            missing: HashSet::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        };
        let mut walker = Walker::new(self);
        for (i, entry) in index.manifests().iter().enumerate() {
            check.root_via = match entry.ref_name() {
                Some(t) => format!("index.json entry {i} ({t:?})"),
                None => format!("index.json entry {i}"),
            };
            walker.walk(entry, &mut check)?;
        }
        let Check {
            visited,
            mut problems,
            mut notes,
            ..
        } = check;
        let graph = self.referrers_graph(suspects)?;
        for issue in graph.issues() {
            match issue {
                // Reachable ones were reported by the walk already, more precisely.
                Issue::ReferrerBlobMissing { .. } => {}
                Issue::UnreadableManifest { digest, .. } if visited.contains(digest) => {}
                Issue::UnreadableManifest { .. } | Issue::SubjectMissing { .. } => {
                    notes.push(Note::Referrers(issue.clone()));
                }
                // A referrer no record lists: a write killed between its blobs and its record.
                Issue::OnlyDeepScan { .. } => notes.push(Note::Referrers(issue.clone())),
                Issue::RecordMissing { referrer, .. } | Issue::Unrecorded { referrer, .. }
                    if graph.get(referrer).is_some_and(|r| {
                        r.recorded.len() == 1 && r.recorded.contains(&Convention::DeepScan)
                    }) =>
                {
                    notes.push(Note::Referrers(issue.clone()));
                }
                _ => problems.push(Problem::Referrers(issue.clone())),
            }
        }
        Ok((problems, notes))
    }

    fn repair(&self, problems: &[Problem], options: &FsckOptions) -> Result<Vec<String>> {
        // Repair writes record blobs: keep gc away from them until index.json lists them.
        let _pin = self.pin()?;
        let mut done = Vec::new();
        if options.remove_missing {
            let removed = self.edit_index(|index| {
                let mut missing = HashSet::new();
                for (i, e) in index.manifests().iter().enumerate() {
                    if e.urls().is_empty() && !self.blob_exists(e.digest())? {
                        missing.insert(i);
                    }
                }
                Ok(entries::remove_positions(index.manifests_mut(), &missing))
            })?;
            for e in removed {
                done.push(format!(
                    "removed the index.json entry {}{} whose blob is missing",
                    e.digest(),
                    e.ref_name()
                        .map(|t| format!(" ({t:?})"))
                        .unwrap_or_default()
                ));
            }
        }
        let unlisted = options.record_unlisted;
        if unlisted || problems.iter().any(repairable) {
            let (mode, key) = self
                .referrers_mode_in_use()?
                .unwrap_or((Mode::Annotation, ResponseKey::Oci));
            // Referrers only a deep scan finds: convert reads index.json, so record them first.
            if options.record_unlisted {
                let graph = self.scan_referrers(ScanOptions::default().deep(true))?;
                for r in graph.referrers() {
                    let deep_only =
                        r.recorded.len() == 1 && r.recorded.contains(&Convention::DeepScan);
                    if deep_only && self.blob_exists(r.subject.digest())? {
                        self.record_referrer(&r.descriptor, r.subject.digest(), mode, key)?;
                        done.push(format!(
                            "recorded referrer {} of {} ({} mode)",
                            r.digest(),
                            r.subject.digest(),
                            mode.as_str()
                        ));
                    }
                }
            }
            let converted = self.convert_referrers(mode, key, false, false)?;
            if converted.changed {
                done.push(format!(
                    "rebuilt referrer records as {}: {} added, {} updated, {} removed",
                    mode.as_str(),
                    converted.added,
                    converted.updated,
                    converted.removed
                ));
            }
        }
        Ok(done)
    }
}

impl Layout {
    /// The referrers graph of a deep scan, without paying for one when it cannot add anything.
    /// A deep scan adds only blobs outside what `index.json` reaches that are JSON objects with
    /// a `subject`; `suspects` is a superset of those (every blob that is a JSON object and
    /// contains `"subject"`). When the shallow graph already has every suspect, it is what a
    /// deep scan would find (all a skipped deep scan can miss is the note about an unreachable
    /// blob that looks like a manifest, has no `subject`, and does not parse).
    pub(crate) fn referrers_graph(&self, suspects: &HashSet<Digest>) -> Result<Graph> {
        // fsck judges the blobs themselves, so it reads them all (and leaves the cache alone).
        let options = ScanOptions::default().facts_cache(false);
        let shallow = self.scan_referrers(options)?;
        if suspects.iter().all(|d| shallow.get(d).is_some()) {
            return Ok(shallow);
        }
        self.scan_referrers(options.deep(true))
    }
}

/// Referrer problems that rebuilding the records fixes.
fn repairable(p: &Problem) -> bool {
    matches!(
        p,
        Problem::Referrers(
            Issue::RecordMissing { .. }
                | Issue::RecordWrong { .. }
                | Issue::Unrecorded { .. }
                | Issue::AnnotationDisagrees { .. }
                | Issue::OnlyDeepScan { .. }
                | Issue::ReferrerBlobMissing { .. }
        )
    )
}

/// The check of everything reachable from `index.json`: a visitor of the one walk.
struct Check<'a> {
    layout: &'a Layout,
    states: &'a mut HashMap<Digest, BlobState>,
    /// Where the root being walked is listed.
    root_via: String,
    /// Manifests read (parsed or not).
    visited: HashSet<Digest>,
    missing: HashSet<Digest>,
    problems: Vec<Problem>,
    notes: Vec<Note>,
}

impl Check<'_> {
    /// A blob's state: from the hashing pass, else (a blob written since, by repair, or a path
    /// the inventory does not list as a file) looked up and verified now. A path that cannot
    /// be looked up is a problem, and the check goes on.
    fn state(&mut self, digest: &Digest) -> BlobState {
        if let Some(s) = self.states.get(digest) {
            return *s;
        }
        let state = match self.layout.blob_size(digest) {
            Ok(None) => BlobState::Absent,
            Ok(Some(size)) => BlobState::Present {
                size,
                intact: digest.known_algorithm().is_err()
                    || self.layout.verify_blob(digest, Some(size)).is_ok(),
            },
            Err(e) => {
                self.problems.push(Problem::UnreadableBlob {
                    digest: digest.clone(),
                    reason: e.to_string(),
                });
                BlobState::Unreadable
            }
        };
        self.states.insert(digest.clone(), state);
        state
    }

    fn via(&self, parent: Option<&Descriptor>) -> String {
        match parent {
            Some(p) => format!("manifest {}", p.digest()),
            None => self.root_via.clone(),
        }
    }

    /// What every reference to a blob is checked for: its `data`, presence and size. Returns
    /// whether the blob is present and intact.
    fn reference(&mut self, desc: &Descriptor, via: &str) -> bool {
        let digest = desc.digest().clone();
        if let Some(data) = desc.data() {
            self.check_data(desc, data, via);
        }
        match self.state(&digest) {
            BlobState::Unreadable => false,
            BlobState::Absent => {
                if !desc.urls().is_empty() {
                    self.notes.push(Note::NonDistributable {
                        digest,
                        referenced_by: via.to_string(),
                    });
                } else if self.missing.insert(digest.clone()) {
                    self.problems.push(Problem::MissingBlob {
                        digest,
                        referenced_by: via.to_string(),
                    });
                }
                false
            }
            BlobState::Present { size, intact } => {
                if size != desc.size() {
                    self.problems.push(Problem::SizeMismatch {
                        digest,
                        referenced_by: via.to_string(),
                        declared: desc.size(),
                        actual: size,
                    });
                }
                intact
            }
        }
    }
}

impl Visitor for Check<'_> {
    fn enter(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        let via = self.via(parent);
        if !self.reference(desc, &via) {
            return Ok(Vec::new());
        }
        let digest = desc.digest().clone();
        match content {
            Content::Manifest { manifest, .. } => {
                self.visited.insert(digest);
                Ok(manifest.children().into_iter().cloned().collect())
            }
            Content::Invalid {
                declared, error, ..
            } => {
                self.visited.insert(digest.clone());
                match error {
                    Error::InvalidManifest { reason, .. } if declared => {
                        self.problems.push(Problem::InvalidManifest {
                            digest,
                            referenced_by: via,
                            reason: reason.to_string(),
                        });
                    }
                    Error::Corrupt { reason, .. } if declared => {
                        self.problems.push(Problem::InvalidManifest {
                            digest,
                            referenced_by: via,
                            reason: reason.to_string(),
                        });
                    }
                    // Content that only looked like a manifest is a plain blob.
                    Error::InvalidManifest { .. } | Error::Corrupt { .. } => {}
                    other => self.problems.push(Problem::UnreadableBlob {
                        digest,
                        reason: other.to_string(),
                    }),
                }
                Ok(Vec::new())
            }
            Content::Absent | Content::Blob { .. } => Ok(Vec::new()),
        }
    }

    fn again(&mut self, desc: &Descriptor, parent: Option<&Descriptor>, _: bool) -> Result<()> {
        let via = self.via(parent);
        self.reference(desc, &via);
        Ok(())
    }
}

impl Check<'_> {
    fn check_data(&mut self, desc: &Descriptor, data: &str, via: &str) {
        let reason = match base64::engine::general_purpose::STANDARD.decode(data) {
            Err(e) => Some(format!("not base64: {e}")),
            Ok(bytes) => match desc.digest().known_algorithm() {
                Err(_) => None,
                Ok(alg) => {
                    if bytes.len() as u64 != desc.size() {
                        Some(format!(
                            "{} bytes, but the descriptor says {}",
                            bytes.len(),
                            desc.size()
                        ))
                    } else if Digest::of_bytes(alg, &bytes) != *desc.digest() {
                        Some("its content does not hash to the digest".into())
                    } else {
                        None
                    }
                }
            },
        };
        if let Some(reason) = reason {
            self.problems.push(Problem::BadData {
                digest: desc.digest().clone(),
                referenced_by: via.to_string(),
                reason,
            });
        }
    }
}

setters!(FsckOptions {
    repair: bool,
    remove_missing: bool,
    record_unlisted: bool,
    threads: Option<NonZeroUsize>,
});
