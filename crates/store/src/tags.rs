//! Changes to `index.json` entries: recording pushed manifests, tagging, untagging.
//! Each is one [`Layout::edit_index`] transaction.

use crate::entries;
use crate::error::{Error, Result, Subject};
use crate::layout::Layout;
use crate::model::{Descriptor, ImageIndex};
use crate::reference::validate_ref_name;

impl Layout {
    /// Every tagged entry, in index order: `(tag, descriptor)`.
    pub fn tags(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| d.ref_name().map(|t| (t.to_string(), d.clone())))
            .collect())
    }

    /// Records a stored manifest in `index.json`: one entry per tag (moving each tag off any
    /// other entry), or a single untagged entry when `tags` is empty and the digest is not
    /// listed yet. `desc`'s annotations are kept except the naming ones.
    pub fn add_entry(&self, desc: &Descriptor, tags: &[String]) -> Result<()> {
        check_entry(self, desc, tags)?;
        self.edit_index(|index| add_entry_in(self, index, desc, tags))
    }

    /// Removes the entries carrying `tag`; returns them. The blobs stay (see `gc`).
    pub fn untag(&self, tag: &str) -> Result<Vec<Descriptor>> {
        let missing = || {
            Error::not_found(Subject::Tag {
                tag: tag.to_string(),
                layout: self.root().to_path_buf(),
            })
        };
        // Checked before locking so a typo changes nothing on disk, not even the lock file.
        if !self
            .read_index()?
            .manifests()
            .iter()
            .any(|e| e.ref_name() == Some(tag))
        {
            return Err(missing());
        }
        self.edit_index(|index| {
            let removed = entries::untag(index.manifests_mut(), tag);
            if removed.is_empty() {
                return Err(missing());
            }
            Ok(removed)
        })
    }

    pub(crate) fn must_exist(&self, desc: &Descriptor) -> Result<()> {
        if self.blob_exists(desc.digest())? {
            Ok(())
        } else {
            Err(Error::NotFound {
                what: Subject::Manifest(desc.digest().clone()),
                hint: " (an index.json entry must point at a stored blob)".into(),
            })
        }
    }
}

/// What [`Layout::add_entry`] checks before it locks: valid tags, and a stored blob (so a bad
/// digest changes nothing on disk).
pub(crate) fn check_entry(layout: &Layout, desc: &Descriptor, tags: &[String]) -> Result<()> {
    for t in tags {
        validate_ref_name(t).map_err(|problem| Error::InvalidReference {
            input: t.clone(),
            problem,
        })?;
    }
    layout.must_exist(desc)
}

/// The entry edit of [`Layout::add_entry`], inside a transaction. The blob is checked again
/// under the lock, where gc cannot delete it between the check and the new entry.
pub(crate) fn add_entry_in(
    layout: &Layout,
    index: &mut ImageIndex,
    desc: &Descriptor,
    tags: &[String],
) -> Result<()> {
    layout.must_exist(desc)?;
    entries::set_tags(index.manifests_mut(), desc, tags);
    Ok(())
}
