//! Typed builders for image manifests and image indexes: no hand-written JSON for the common
//! cases, and the exact bytes fixed once built (so the digest a caller saw is the digest stored).
//!
//! Fields come in the order Go's `ocispec` types marshal them (`schemaVersion`, `mediaType`,
//! `artifactType`, `config`/`manifests`, `layers`, `subject`, `annotations`), annotations sorted
//! by key as Go marshals maps, and absent optional fields left out (`omitempty`): what oras writes.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ocistow_store::{Layout, builder::{ImageManifestBuilder, IndexBuilder}};
//! let layout = Layout::init(dir.path()).unwrap();
//! layout.write_blob_bytes(b"{}").unwrap(); // the empty config an artifact names
//! let layer = layout.write_blob_bytes(b"hello\n").unwrap();
//! let built = ImageManifestBuilder::artifact("application/vnd.example.note")
//!     .layer(layer)
//!     .annotation("org.opencontainers.image.created", "2020-01-01T00:00:00Z")
//!     .build();
//! let stored = built.store(&layout).unwrap();
//! assert_eq!(stored.digest(), built.digest());
//! assert_eq!(layout.read_blob(built.digest()).unwrap(), built.bytes());
//!
//! let index = IndexBuilder::new().manifest(stored).build();
//! assert!(index.bytes().starts_with(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#));
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::digest::{Algorithm, Digest};
use crate::error::Result;
use crate::layout::Layout;
use crate::model::{Descriptor, EMPTY_JSON, media};

/// The empty descriptor (`application/vnd.oci.empty.v1+json`, content `{}`) with its content
/// inlined as `data`, as oras writes the config of an artifact.
pub fn empty_descriptor() -> Descriptor {
    let mut d = Descriptor::new(
        media::EMPTY,
        Digest::of_bytes(Algorithm::Sha256, EMPTY_JSON),
        EMPTY_JSON.len() as u64,
    );
    d.set_data_base64("e30=");
    d
}

/// A built manifest or index: its exact bytes, its media type and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    bytes: Vec<u8>,
    media_type: &'static str,
    digest: Digest,
}

impl Built {
    /// The bytes of `fields` as one compact JSON object.
    pub(crate) fn from_fields(fields: Map<String, Value>, media_type: &'static str) -> Built {
        // A map of JSON values always serializes.
        let bytes = serde_json::to_vec(&Value::Object(fields)).unwrap_or_default();
        let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
        Built {
            bytes,
            media_type,
            digest,
        }
    }

    /// The exact bytes, as they will be stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// `application/vnd.oci.image.manifest.v1+json` or `application/vnd.oci.image.index.v1+json`.
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// The sha256 digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The descriptor of the bytes: media type, digest and size.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    /// Validates and stores the bytes as a manifest blob (see [`Layout::put_manifest`]); every
    /// blob it names must be in the layout. `index.json` is not touched. Returns its descriptor
    /// with the `artifactType` a referrers response gives it.
    pub fn store(&self, layout: &Layout) -> Result<Descriptor> {
        layout.put_manifest(&self.bytes, Some(self.media_type), false)
    }

    /// [`Built::store`] with the directory's fsync left to `dirs`, so a writer of
    /// several blobs (push) syncs `blobs/sha256` once, after its last blob.
    pub(crate) fn store_batched(
        &self,
        layout: &Layout,
        dirs: &mut crate::layout::DirSyncs,
    ) -> Result<Descriptor> {
        layout.put_manifest_batched(&self.bytes, Some(self.media_type), false, dirs)
    }
}

/// Fields shared by both builders.
#[derive(Debug, Clone, Default)]
struct Common {
    artifact_type: Option<String>,
    subject: Option<Descriptor>,
    annotations: BTreeMap<String, String>,
}

impl Common {
    fn head(&self, media_type: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("schemaVersion".into(), Value::from(2));
        m.insert("mediaType".into(), Value::from(media_type));
        if let Some(t) = &self.artifact_type {
            m.insert("artifactType".into(), Value::from(t.as_str()));
        }
        m
    }

    fn tail(&self, m: &mut Map<String, Value>) {
        if let Some(s) = &self.subject {
            m.insert("subject".into(), Value::Object(s.fields().clone()));
        }
        if !self.annotations.is_empty() {
            let a = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            m.insert("annotations".into(), Value::Object(a));
        }
    }
}

/// Sets the fields both builders have, with the same names.
macro_rules! common_setters {
    () => {
        /// Sets `artifactType`.
        #[must_use]
        pub fn artifact_type(mut self, artifact_type: impl Into<String>) -> Self {
            self.common.artifact_type = Some(artifact_type.into());
            self
        }

        /// Makes this a referrer of `subject`. The descriptor is written as given; pass
        /// [`Descriptor::plain`] for the mediaType, digest and size alone, as oras writes it.
        #[must_use]
        pub fn subject(mut self, subject: Descriptor) -> Self {
            self.common.subject = Some(subject);
            self
        }

        /// Adds (or replaces) one annotation.
        #[must_use]
        pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.common.annotations.insert(key.into(), value.into());
            self
        }

        /// Adds (or replaces) annotations.
        #[must_use]
        pub fn annotations<K: Into<String>, V: Into<String>>(
            mut self,
            annotations: impl IntoIterator<Item = (K, V)>,
        ) -> Self {
            for (k, v) in annotations {
                self.common.annotations.insert(k.into(), v.into());
            }
            self
        }
    };
}

/// An OCI image manifest: a config, layers, and optionally an artifact type, a subject and
/// annotations.
#[derive(Debug, Clone)]
pub struct ImageManifestBuilder {
    config: Descriptor,
    layers: Vec<Descriptor>,
    common: Common,
}

impl ImageManifestBuilder {
    /// A manifest with this config descriptor.
    pub fn new(config: Descriptor) -> Self {
        ImageManifestBuilder {
            config,
            layers: Vec::new(),
            common: Common::default(),
        }
    }

    /// An artifact as oras builds one: the [empty config](empty_descriptor) and
    /// `artifactType`. (The empty blob must be in the layout before [`Built::store`]:
    /// [`Layout::write_blob_bytes`] of `{}`.)
    pub fn artifact(artifact_type: impl Into<String>) -> Self {
        ImageManifestBuilder::new(empty_descriptor()).artifact_type(artifact_type)
    }

    /// Appends a layer.
    #[must_use]
    pub fn layer(mut self, layer: Descriptor) -> Self {
        self.layers.push(layer);
        self
    }

    /// Appends layers, in order.
    #[must_use]
    pub fn layers(mut self, layers: impl IntoIterator<Item = Descriptor>) -> Self {
        self.layers.extend(layers);
        self
    }

    common_setters!();

    /// The manifest's bytes, fixed from here on.
    pub fn build(&self) -> Built {
        let mut m = self.common.head(media::IMAGE_MANIFEST);
        m.insert("config".into(), Value::Object(self.config.fields().clone()));
        m.insert(
            "layers".into(),
            Value::Array(
                self.layers
                    .iter()
                    .map(|l| Value::Object(l.fields().clone()))
                    .collect(),
            ),
        );
        self.common.tail(&mut m);
        Built::from_fields(m, media::IMAGE_MANIFEST)
    }
}

/// An OCI image index: manifests (each with its platform, annotations…), and optionally an
/// artifact type, a subject and annotations.
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    manifests: Vec<Descriptor>,
    common: Common,
}

impl IndexBuilder {
    /// An index with no manifests yet.
    pub fn new() -> Self {
        IndexBuilder::default()
    }

    /// Appends a manifest's descriptor, written as given (set its platform on the descriptor).
    #[must_use]
    pub fn manifest(mut self, manifest: Descriptor) -> Self {
        self.manifests.push(manifest);
        self
    }

    /// Appends manifests, in order.
    #[must_use]
    pub fn manifests(mut self, manifests: impl IntoIterator<Item = Descriptor>) -> Self {
        self.manifests.extend(manifests);
        self
    }

    common_setters!();

    /// The index's bytes, fixed from here on.
    pub fn build(&self) -> Built {
        let mut m = self.common.head(media::IMAGE_INDEX);
        m.insert(
            "manifests".into(),
            Value::Array(
                self.manifests
                    .iter()
                    .map(|d| Value::Object(d.fields().clone()))
                    .collect(),
            ),
        );
        self.common.tail(&mut m);
        Built::from_fields(m, media::IMAGE_INDEX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImageIndex, ImageManifest};

    fn blob(byte: u8) -> Descriptor {
        Descriptor::new(
            media::LAYER_TAR,
            Digest::of_bytes(Algorithm::Sha256, &[byte]),
            1,
        )
    }

    #[test]
    fn a_manifest_has_go_field_order_sorted_annotations_and_no_empty_fields() {
        let subject = Descriptor::new(media::IMAGE_MANIFEST, blob(9).digest().clone(), 9);
        let built = ImageManifestBuilder::artifact("application/vnd.example")
            .layer(blob(1))
            .subject(subject.clone())
            .annotation("b", "2")
            .annotation("a", "1")
            .build();
        let text = std::str::from_utf8(built.bytes()).unwrap();
        let keys = [
            "schemaVersion",
            "mediaType",
            "artifactType",
            "config",
            "layers",
            "subject",
            "annotations",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(
            text.ends_with(r#""annotations":{"a":"1","b":"2"}}"#),
            "{text}"
        );
        assert!(text.contains(r#""data":"e30=""#), "{text}");
        let parsed = ImageManifest::parse(built.bytes()).unwrap();
        assert_eq!(parsed.subject.unwrap().digest(), subject.digest());
        assert_eq!(
            built.digest(),
            &Digest::of_bytes(Algorithm::Sha256, built.bytes())
        );

        let bare = ImageManifestBuilder::new(blob(2)).build();
        let text = std::str::from_utf8(bare.bytes()).unwrap();
        assert!(
            !text.contains("artifactType")
                && !text.contains("annotations")
                && !text.contains("subject"),
            "{text}"
        );
    }

    #[test]
    fn an_index_lists_its_manifests_in_order_with_their_platforms() {
        let mut amd = blob(1);
        amd.set_annotation("k", "v");
        let built = IndexBuilder::new()
            .manifest(amd.clone())
            .manifests([blob(2)])
            .artifact_type("application/vnd.example.set")
            .build();
        let parsed = ImageIndex::parse(built.bytes()).unwrap();
        assert_eq!(parsed.manifests(), &[amd, blob(2)]);
        assert_eq!(parsed.artifact_type(), Some("application/vnd.example.set"));
        assert_eq!(built.descriptor().size(), built.bytes().len() as u64);
    }
}
