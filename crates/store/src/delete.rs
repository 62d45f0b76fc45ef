//! Deleting manifests with every record of them.

use std::collections::{BTreeSet, HashSet};

use crate::digest::Digest;
use crate::entries;
use crate::error::{Error, Result, Subject};
use crate::layout::Layout;
use crate::model::Descriptor;
use crate::referrers::write::record_index_bytes;
use crate::referrers::{EntryKind, classify};

impl Layout {
    /// Removes every `index.json` entry and referrer record of the manifest, then its blob.
    /// Returns how many entries were removed or rewritten. (No check for referrers of it: see
    /// [`Layout::delete_manifests`] and the CLI's `--with-referrers`.)
    pub fn delete_manifest(&self, desc: &Descriptor) -> Result<usize> {
        if !self.blob_exists(desc.digest())?
            && !self
                .read_index()?
                .manifests()
                .iter()
                .any(|e| e.digest() == desc.digest())
        {
            return Err(Error::not_found(Subject::Manifest(desc.digest().clone())));
        }
        self.delete_manifests(&std::collections::BTreeSet::from([desc.digest().clone()]))
    }

    /// Deletes manifests and every record of them: their `index.json` entries, and their lines
    /// in response and fallback records (an emptied record is removed). Then their blobs.
    /// Returns how many `index.json` entries were removed or rewritten.
    pub fn delete_manifests(&self, digests: &BTreeSet<Digest>) -> Result<usize> {
        let touched = self.edit_index(|index| {
            let mut touched = entries::remove_digests(index.manifests_mut(), digests);
            let mut emptied = HashSet::new();
            let mut rewritten = Vec::new();
            for (i, e) in index.manifests().iter().enumerate() {
                if matches!(
                    classify(e),
                    EntryKind::Response { .. } | EntryKind::Fallback { .. }
                ) {
                    let listed = self.record_listing(e)?;
                    if listed.iter().any(|d| digests.contains(d.digest())) {
                        touched += 1;
                        let rest: Vec<Descriptor> = listed
                            .into_iter()
                            .filter(|d| !digests.contains(d.digest()))
                            .collect();
                        if rest.is_empty() {
                            emptied.insert(i);
                            continue;
                        }
                        let stored = self.write_blob_bytes(&record_index_bytes(&rest))?;
                        rewritten.push((i, stored));
                    }
                }
            }
            for (i, stored) in rewritten {
                entries::upsert_record(index.manifests_mut(), Some(i), stored);
            }
            entries::remove_positions(index.manifests_mut(), &emptied);
            Ok(touched)
        })?;
        for d in digests {
            match self.delete_blob(d) {
                Ok(()) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(touched)
    }
}
