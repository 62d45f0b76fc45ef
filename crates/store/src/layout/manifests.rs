//! Reading, describing, validating and storing manifests.

use base64::Engine as _;
use serde_json::Value;

use super::{DirSyncs, Layout, MAX_MANIFEST_SIZE};
use crate::digest::Digest;
use crate::error::{Error, InputProblem, ManifestKind, ManifestProblem, Result, Subject};
use crate::model::{Descriptor, Manifest};
use crate::walk::Content;

impl Layout {
    /// Reads a manifest blob, verifies it, and parses it as the descriptor's media type (or, when
    /// the descriptor has none or `application/octet-stream`, as what its content declares or
    /// looks like): the walk's one "might be a manifest" rule, under the one size limit. Any
    /// other media type is not read as a manifest.
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<(Vec<u8>, Manifest)> {
        let digest = desc.digest();
        // The walk's one rule decides whether the blob is read as a manifest, and how.
        match crate::walk::read_content(self, desc) {
            Content::Absent => Err(Error::not_found(Subject::Manifest(digest.clone()))),
            Content::Blob { .. } => Err(Error::InvalidManifest {
                what: Subject::Blob(digest.clone()),
                kind: ManifestKind::Manifest,
                reason: if desc.media_type().is_empty() {
                    ManifestProblem::NotAManifest
                } else {
                    ManifestProblem::NotOfListedType {
                        media_type: desc.media_type().to_string(),
                    }
                },
            }),
            Content::Invalid { error, .. } => Err(error),
            Content::Manifest {
                bytes, manifest, ..
            } => {
                if bytes.len() as u64 != desc.size() {
                    return Err(Error::SizeMismatch {
                        what: Subject::Manifest(digest.clone()).into(),
                        expected: desc.size(),
                        actual: bytes.len() as u64,
                    });
                }
                Ok((bytes, manifest))
            }
        }
    }

    /// A descriptor for a blob found by digest alone: media type and artifactType from its
    /// content when it is a manifest, else `application/octet-stream`.
    pub fn describe_blob(&self, digest: &Digest) -> Result<Descriptor> {
        let size = self.blob_size(digest)?.ok_or_else(|| Error::NotFound {
            what: Subject::Blob(digest.clone()),
            hint: " (neither in index.json nor in blobs/)".into(),
        })?;
        if size <= MAX_MANIFEST_SIZE {
            let bytes = self.read_blob(digest)?;
            if let Some(mt) = Manifest::sniff_media_type(&bytes)
                && let Ok(m) = Manifest::parse(&mt, &bytes)
            {
                let mut desc = Descriptor::new(&mt, digest.clone(), size);
                if let Some(at) = m.effective_artifact_type() {
                    desc.set_artifact_type(at);
                }
                return Ok(desc);
            }
        }
        Ok(Descriptor::new(
            "application/octet-stream",
            digest.clone(),
            size,
        ))
    }

    /// Checks manifest bytes without storing them: they parse as `media_type` (or the type they
    /// declare) and, unless `allow_sparse`, every blob they reference is present. Returns the
    /// media type and the parsed manifest.
    pub fn validate_manifest(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
        allow_sparse: bool,
    ) -> Result<(String, Manifest)> {
        let invalid = |kind: ManifestKind, reason: ManifestProblem| Error::InvalidManifest {
            what: Subject::Input {
                name: "the manifest given".into(),
            },
            kind,
            reason,
        };
        let given = || {
            media_type.map_or(ManifestKind::Manifest, |mt| {
                ManifestKind::MediaType(mt.into())
            })
        };
        if let Err(e) = serde_json::from_slice::<Value>(bytes) {
            return Err(invalid(given(), ManifestProblem::Json(e)));
        }
        // Only a real `mediaType` field can contradict the caller; the shape is checked by parsing.
        let declared = serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from));
        let sniffed = declared
            .clone()
            .or_else(|| Manifest::sniff_media_type(bytes));
        let mt = match (media_type, sniffed.as_deref()) {
            (Some(given), Some(found)) if declared.is_some() && given != found => {
                return Err(invalid(
                    ManifestKind::MediaType(given.into()),
                    ManifestProblem::MediaTypeSays {
                        found: found.to_string(),
                    },
                ));
            }
            (Some(given), _) => given.to_string(),
            (None, Some(found)) => found.to_string(),
            (None, None) => {
                return Err(invalid(
                    ManifestKind::Manifest,
                    ManifestProblem::Unrecognized,
                ));
            }
        };
        let manifest = Manifest::parse(&mt, bytes)
            .map_err(|e| invalid(ManifestKind::MediaType(mt.clone()), e.into()))?;
        if !allow_sparse {
            for child in manifest.children() {
                // Non-distributable layers with urls may be absent by design.
                if !child.urls().is_empty() {
                    continue;
                }
                self.check_child_present(child)?;
            }
        }
        Ok((mt, manifest))
    }

    /// Stores manifest bytes exactly as given, after [`Layout::validate_manifest`]. Returns the
    /// manifest's descriptor (with `artifactType` when it has one). Write it under a
    /// [`Layout::stage`], committed once the manifest is to be listed in `index.json`.
    pub fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
        allow_sparse: bool,
    ) -> Result<Descriptor> {
        let mut dirs = DirSyncs::default();
        let desc = self.put_manifest_batched(bytes, media_type, allow_sparse, &mut dirs)?;
        dirs.finish()?;
        Ok(desc)
    }

    /// [`Layout::put_manifest`] with the fsync of `blobs/<alg>` left to `dirs`, so a writer of
    /// several blobs (push) syncs the directory once, after its last blob.
    pub(crate) fn put_manifest_batched(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
        allow_sparse: bool,
        dirs: &mut DirSyncs,
    ) -> Result<Descriptor> {
        let (mt, manifest) = self.validate_manifest(bytes, media_type, allow_sparse)?;
        let (digest, size) = self.write_bytes_batched(bytes, dirs)?;
        let mut desc = Descriptor::new(&mt, digest, size);
        if let Some(at) = manifest.effective_artifact_type() {
            desc.set_artifact_type(at);
        }
        Ok(desc)
    }

    fn check_child_present(&self, child: &Descriptor) -> Result<()> {
        let digest = child.digest();
        if let Some(data) = child.data() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|source| {
                    Error::InvalidInput(InputProblem::DataNotBase64 {
                        digest: digest.clone(),
                        source,
                    })
                })?;
            if let Ok(alg) = digest.known_algorithm()
                && Digest::of_bytes(alg, &bytes) != *digest
            {
                return Err(Error::InvalidInput(InputProblem::DataDoesNotMatchDigest {
                    digest: digest.clone(),
                }));
            }
        }
        match self.blob_size(digest)? {
            Some(size) if size == child.size() => Ok(()),
            Some(size) => Err(Error::SizeMismatch {
                what: Subject::Blob(digest.clone()).into(),
                expected: child.size(),
                actual: size,
            }),
            None => Err(Error::NotFound {
                what: Subject::Blob(digest.clone()),
                hint: " (referenced by the manifest: push it first, or allow a sparse manifest)"
                    .into(),
            }),
        }
    }
}
