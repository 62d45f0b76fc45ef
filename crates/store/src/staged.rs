//! Writes that land whole: blobs stored under a pin, then listed in one `index.json`
//! transaction. The type carries the pin, so gc cannot delete what a writer stored before the
//! writer lists it, and a writer cannot forget to hold one.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ocistow_store::Layout;
//! let layout = Layout::init(dir.path()).unwrap();
//! let staged = layout.stage().unwrap();
//! let config = staged.layout().write_blob_bytes(b"{}").unwrap();
//! # let _ = config;
//! let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
//! let desc = staged.layout().put_manifest(m, None, false).unwrap();
//! staged.commit(&desc, &["v1".to_string()]).unwrap();
//! assert_eq!(layout.tags().unwrap()[0].0, "v1");
//! ```

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::{Layout, LayoutLock};
use crate::model::{Descriptor, ImageIndex};
use crate::referrers::{Mode, ResponseKey};

/// Blobs being written under a pin. Finish with [`Staged::commit`],
/// [`Staged::commit_as_referrer`] or [`Staged::commit_batch`]; dropped without one, what it
/// wrote stays unlisted (fsck notes it; gc removes it after its grace period).
#[must_use = "staged blobs are listed only by a commit"]
pub struct Staged {
    layout: Layout,
    _pin: LayoutLock,
}

impl Layout {
    /// Starts a write: pins blobs against gc until the returned [`Staged`] commits or drops.
    pub fn stage(&self) -> Result<Staged> {
        Ok(Staged {
            _pin: self.pin()?,
            layout: self.clone(),
        })
    }
}

impl Staged {
    /// The layout to write blobs and manifests into.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Lists `desc` in `index.json` with `tags` (see [`Layout::add_entry`]).
    pub fn commit(self, desc: &Descriptor, tags: &[String]) -> Result<()> {
        self.layout.add_entry(desc, tags)
    }

    /// Records `referrer` as a referrer of `subject` (see [`Layout::record_referrer_auto`]).
    pub fn commit_as_referrer(
        self,
        referrer: &Descriptor,
        subject: &Digest,
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        self.layout
            .record_referrer_auto(referrer, subject, mode, key)
    }

    /// Lists a root (with its tags) and records many referrers, all in one transaction (see
    /// [`Layout::record_referrers`]).
    pub fn commit_batch(
        self,
        root: Option<(&Descriptor, &[String])>,
        referrers: &[(Descriptor, Digest)],
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        self.layout.record_referrers(root, referrers, mode, key)
    }

    /// [`Staged::commit_batch`] without a root, in a transaction that starts from `read` when
    /// index.json still holds it (see [`Layout::edit_index_from`]).
    pub(crate) fn commit_referrers_from(
        self,
        read: Option<ImageIndex>,
        referrers: &[(Descriptor, Digest)],
        mode: Option<Mode>,
        key: Option<ResponseKey>,
    ) -> Result<(Mode, ResponseKey)> {
        self.layout
            .record_referrers_from(read, None, referrers, mode, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expected;
    use crate::fsck::FsckOptions;
    use crate::layout::NoProgress;
    use crate::model::media;

    /// A write killed between its blobs and its record (here: a Staged dropped without a
    /// commit) leaves index.json as it was; fsck notes the unlisted referrer, not a problem.
    #[test]
    fn dropped_without_commit_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let staged = layout.stage().unwrap();
        let l = staged.layout();
        let (cfg, _) = l.write_blob(&mut &b"{}"[..], Expected::default()).unwrap();
        let config = Descriptor::new(media::EMPTY, cfg, 2);
        let subject = l
            .put_manifest(
                &serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2, "mediaType": media::IMAGE_MANIFEST,
                    "config": config, "layers": []}))
                .unwrap(),
                None,
                false,
            )
            .unwrap();
        staged.commit(&subject, &["v1".into()]).unwrap();
        let before = std::fs::read(layout.index_path()).unwrap();
        let staged = layout.stage().unwrap();
        let sig = staged
            .layout()
            .put_manifest(
                &serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2, "mediaType": media::IMAGE_MANIFEST,
                    "config": config, "layers": [], "subject": subject.plain()}))
                .unwrap(),
                None,
                false,
            )
            .unwrap();
        drop(staged);
        assert_eq!(std::fs::read(layout.index_path()).unwrap(), before);
        assert!(layout.blob_exists(sig.digest()).unwrap());
        let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.to_string().contains(sig.digest().as_str())),
            "{:?}",
            report.notes
        );
        // --repair alone does not publish what the user interrupted.
        let repair = FsckOptions {
            repair: true,
            ..FsckOptions::default()
        };
        layout.fsck(&repair, &NoProgress).unwrap();
        assert_eq!(std::fs::read(layout.index_path()).unwrap(), before);
    }
}
