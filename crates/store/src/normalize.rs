//! Normalize: make a layout written by oras, regctl, olareg, containerd or `BuildKit` canonical in
//! one `index.json` transaction, without rewriting a blob.
//!
//! The plan, in order:
//! 1. a missing top-level `mediaType` is added;
//! 2. identical duplicate entries are merged (the first one stays where it is);
//! 3. every referrer is recorded in one mode, by the converter of `referrers convert` (which also
//!    drops superseded response and fallback records, and records `BuildKit` attestations that
//!    name their platform manifest as `subject` like any other referrer);
//! 4. every top-level entry of a referrer gets the `artifactType` and the annotations of its
//!    manifest where the entry lacks them (`oras cp` leaves bare entries);
//!
//! `BuildKit` attestations from before 0.32 have no `subject`: they are no referrers, so nothing
//! is recorded for them (a record would contradict the blob, and blobs are never rewritten); they
//! stay children of their image index (docs/referrers.md).
//!
//! What it cannot decide is reported, never guessed: a tag on entries of two digests is left
//! exactly as it is, and the report lists it.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ocistow_store::{Layout, normalize::NormalizeOptions};
//! let layout = Layout::init(dir.path().join("layout")).unwrap();
//! let report = layout.normalize(&NormalizeOptions::default()).unwrap();
//! assert!(!report.changed && report.ambiguous_tags.is_empty());
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::Digest;
use crate::entries;
use crate::error::Result;
use crate::layout::Layout;
use crate::model::{ImageIndex, media};
use crate::referrers::{ConvertReport, Graph, Mode, ResponseKey, ScanOptions};

/// What to normalize to.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NormalizeOptions {
    /// The mode referrers are recorded in; `None`: the mode the layout already uses
    /// consistently, else annotation.
    pub to: Option<Mode>,
    /// The key of response records; `None`: the key the layout uses, else `oci`.
    pub response_key: Option<ResponseKey>,
    /// Plan only: nothing is written, not even the lock file.
    pub dry_run: bool,
}

impl NormalizeOptions {
    /// Normalize to `to` (or the layout's own mode), writing.
    pub fn new(to: Option<Mode>) -> Self {
        NormalizeOptions {
            to,
            ..NormalizeOptions::default()
        }
    }

    /// The same options, as a dry run when `dry_run`.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The same options with the response records' key.
    #[must_use]
    pub fn response_key(mut self, key: ResponseKey) -> Self {
        self.response_key = Some(key);
        self
    }
}

/// A tag that names entries of more than one digest: normalize cannot know which is meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AmbiguousTag {
    /// The `org.opencontainers.image.ref.name`.
    pub tag: String,
    /// Every digest it names, in `index.json` order.
    pub digests: Vec<Digest>,
}

/// What normalize did (or, for a dry run, would do).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NormalizeReport {
    /// The mode referrers are recorded in.
    pub mode: Mode,
    /// The key of response records.
    pub response_key: ResponseKey,
    /// True when a missing top-level `mediaType` was added.
    pub media_type_added: bool,
    /// Identical duplicate entries removed.
    pub duplicates_merged: usize,
    /// What recording every referrer in `mode` changed.
    pub convert: ConvertReport,
    /// Entries of referrers given their manifest's `artifactType` or annotations.
    pub entries_described: usize,
    /// Tags on more than one digest, left as they are.
    pub ambiguous_tags: Vec<AmbiguousTag>,
    /// True when `index.json` changed (or would).
    pub changed: bool,
    /// True when nothing was written.
    pub dry_run: bool,
    /// `index.json` before.
    #[serde(skip)]
    pub before: ImageIndex,
    /// `index.json` after (for a dry run: as it would be).
    #[serde(skip)]
    pub after: ImageIndex,
}

impl Layout {
    /// Normalizes the layout (see the [module](crate::normalize) for the plan). Blobs are never
    /// rewritten; in the response and tag modes new record indexes are written beside the old
    /// ones, which are left for gc. The whole edit is one `index.json` transaction.
    pub fn normalize(&self, options: &NormalizeOptions) -> Result<NormalizeReport> {
        if options.dry_run {
            // Planned on a copy without the lock: a dry run writes nothing, not even a lock file.
            let before = self.read_index()?;
            let graph = self.scan_referrers(ScanOptions::default())?;
            let mut after = before.clone();
            let report = self.normalize_in(&mut after, &graph, options)?;
            return Ok(report.finish(before, after, true));
        }
        self.edit_index(|index| {
            let graph = self.scan_referrers(ScanOptions::default())?;
            let before = index.clone();
            let report = self.normalize_in(index, &graph, options)?;
            Ok(report.finish(before, index.clone(), false))
        })
    }

    fn normalize_in(
        &self,
        index: &mut ImageIndex,
        graph: &Graph,
        options: &NormalizeOptions,
    ) -> Result<Planned> {
        let media_type_added = index.media_type().is_none();
        if media_type_added {
            index.set_media_type(media::IMAGE_INDEX);
        }

        let duplicates_merged = entries::dedup_identical(index.manifests_mut());

        let in_use = crate::referrers::write::mode_in_index(index);
        let mode = options
            .to
            .or(in_use.map(|(m, _)| m))
            .unwrap_or(Mode::Annotation);
        let key = options
            .response_key
            .or(in_use.map(|(_, k)| k))
            .unwrap_or_default();
        let convert = self.convert_in(index, graph, mode, key, false, options.dry_run)?;

        // A value the entry already has stays, and the blob's stays what discover shows.
        let entries_described = entries::describe(index.manifests_mut(), |d| {
            graph.get(d).map(|r| &r.descriptor)
        });

        let mut by_tag: BTreeMap<&str, Vec<Digest>> = BTreeMap::new();
        for e in index.manifests() {
            if let Some(tag) = e.ref_name() {
                let digests = by_tag.entry(tag).or_default();
                if !digests.contains(e.digest()) {
                    digests.push(e.digest().clone());
                }
            }
        }
        let ambiguous_tags = by_tag
            .into_iter()
            .filter(|(_, d)| d.len() > 1)
            .map(|(tag, digests)| AmbiguousTag {
                tag: tag.to_string(),
                digests,
            })
            .collect();

        Ok(Planned {
            mode,
            key,
            media_type_added,
            duplicates_merged,
            convert,
            entries_described,
            ambiguous_tags,
        })
    }
}

/// The counts of a plan, before the indexes are attached.
struct Planned {
    mode: Mode,
    key: ResponseKey,
    media_type_added: bool,
    duplicates_merged: usize,
    convert: ConvertReport,
    entries_described: usize,
    ambiguous_tags: Vec<AmbiguousTag>,
}

impl Planned {
    fn finish(self, before: ImageIndex, after: ImageIndex, dry_run: bool) -> NormalizeReport {
        let changed = before != after;
        NormalizeReport {
            mode: self.mode,
            response_key: self.key,
            media_type_added: self.media_type_added,
            duplicates_merged: self.duplicates_merged,
            convert: ConvertReport {
                dry_run,
                ..self.convert
            },
            entries_described: self.entries_described,
            ambiguous_tags: self.ambiguous_tags,
            changed,
            dry_run,
            before,
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Descriptor;

    fn layout_with(index_json: &str) -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l")).unwrap();
        std::fs::write(layout.index_path(), index_json).unwrap();
        (dir, layout)
    }

    fn entry(tag: Option<&str>, byte: u8) -> Descriptor {
        let digest = Digest::of_bytes(crate::digest::Algorithm::Sha256, &[byte]);
        let mut d = Descriptor::new(media::IMAGE_MANIFEST, digest, 1);
        if let Some(t) = tag {
            d.set_annotation(crate::model::annotations::REF_NAME, t);
        }
        d
    }

    fn index_of(entries: &[Descriptor], media_type: bool) -> String {
        let list: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let mt = if media_type {
            format!(r#""mediaType":"{}","#, media::IMAGE_INDEX)
        } else {
            String::new()
        };
        format!(
            r#"{{"schemaVersion":2,{mt}"manifests":[{}]}}"#,
            list.join(",")
        )
    }

    #[test]
    fn adds_the_media_type_after_schema_version_and_merges_identical_duplicates() {
        let (a, b) = (entry(Some("a"), 1), entry(None, 2));
        let (_d, layout) = layout_with(&index_of(&[a.clone(), b.clone(), a.clone()], false));
        let report = layout.normalize(&NormalizeOptions::default()).unwrap();
        assert!(report.media_type_added);
        assert_eq!(report.duplicates_merged, 1);
        let bytes = std::fs::read(layout.index_path()).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            index_of(&[a, b], true),
            "mediaType second, entries in their first positions"
        );
        let again = layout.normalize(&NormalizeOptions::default()).unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn a_tag_on_two_digests_is_reported_and_left_alone() {
        let text = index_of(&[entry(Some("v1"), 1), entry(Some("v1"), 2)], true);
        let (_d, layout) = layout_with(&text);
        let report = layout.normalize(&NormalizeOptions::default()).unwrap();
        assert_eq!(report.ambiguous_tags.len(), 1);
        assert_eq!(report.ambiguous_tags[0].tag, "v1");
        assert_eq!(report.ambiguous_tags[0].digests.len(), 2);
        assert!(!report.changed);
        assert_eq!(std::fs::read_to_string(layout.index_path()).unwrap(), text);
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let text = index_of(&[entry(Some("v1"), 1), entry(Some("v1"), 1)], false);
        let (_d, layout) = layout_with(&text);
        let lock = layout.root().join(crate::layout::LOCK_FILE);
        std::fs::remove_file(&lock).unwrap();
        let report = layout
            .normalize(&NormalizeOptions::default().dry_run(true))
            .unwrap();
        assert!(report.changed && report.dry_run);
        assert_eq!(report.after.manifests().len(), 1);
        assert_eq!(std::fs::read_to_string(layout.index_path()).unwrap(), text);
        assert!(!lock.exists(), "a dry run takes no lock");
    }
}
