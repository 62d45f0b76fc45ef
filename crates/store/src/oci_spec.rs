//! Conversions to and from the [`oci_spec::image`] types (the `oci-spec` cargo feature), for
//! programs that already hold them.
//!
//! Lossless where the types allow:
//! - every field the image-spec defines converts both ways (media types, digests, sizes, urls,
//!   data, platforms with `os.version`/`os.features`/`variant`, artifact types, subjects,
//!   annotations);
//!
//! and, where they do not:
//! - **unknown fields** (other specs' or tools' extensions, kept by ocistow's model) have no place
//!   in `oci_spec` structs and are dropped on the way there;
//! - **key order**: `oci_spec` holds annotations in a `HashMap`, so their order is gone; on the
//!   way back they are sorted by key (as Go marshals maps), and fields come in `oci_spec`'s
//!   struct order;
//! - **numbers**: `size` is a `u64` on both sides; `schemaVersion` a `u32` in `oci_spec`;
//!   anything else (a size written as `1.0` or above `u64::MAX`) is refused, not rounded;
//! - **absent versus empty `annotations`** survive (`oci_spec` holds an `Option<HashMap>`).
//!
//! A manifest converted from `oci_spec` therefore gets new bytes (and a new digest): it comes
//! back as a [`Built`], whose bytes are what will be stored. Blobs already in a layout are never
//! re-serialized: convert what you read, store what you built.
//!
//! ```
//! use ocistow_store::{Descriptor, builder::ImageManifestBuilder};
//! let built = ImageManifestBuilder::artifact("application/vnd.example").build();
//! let spec = ::oci_spec::image::ImageManifest::try_from(&built).unwrap();
//! assert_eq!(spec.artifact_type().as_ref().unwrap().to_string(), "application/vnd.example");
//! let back = ocistow_store::builder::Built::try_from(&spec).unwrap();
//! assert_eq!(back.bytes(), built.bytes(), "no field here needs anything oci-spec lacks");
//! ```

use ::oci_spec::image as spec;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::builder::Built;
use crate::error::{Error, ManifestKind, ManifestProblem, Result, Subject};
use crate::model::ModelError;
use crate::model::{Descriptor, ImageIndex, ImageManifest, media};

/// The error for a value that is not the `kind` it should be; `what` names the input.
fn invalid(what: &str, kind: &str, reason: impl Into<ManifestProblem>) -> Error {
    Error::InvalidManifest {
        what: Subject::Input {
            name: what.to_string(),
        },
        kind: ManifestKind::MediaType(kind.to_string()),
        reason: reason.into(),
    }
}

/// Deserializes `value` as an `oci_spec` type; `what` names the input in the error.
fn into_spec<T: DeserializeOwned>(value: Value, what: &str, kind: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|e| invalid(what, &format!("oci-spec {kind}"), e))
}

/// Serializes an `oci_spec` value with every `annotations` map sorted by key.
fn from_spec<T: Serialize>(value: &T, what: &str, kind: &str) -> Result<Value> {
    let mut v = serde_json::to_value(value).map_err(|e| invalid(what, kind, e))?;
    sort_annotations(&mut v);
    Ok(v)
}

fn sort_annotations(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if k == "annotations"
                    && let Value::Object(a) = child
                {
                    a.sort_keys();
                } else {
                    sort_annotations(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_annotations),
        _ => {}
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl TryFrom<&Descriptor> for spec::Descriptor {
    type Error = Error;
    /// Drops fields the image-spec does not define.
    fn try_from(d: &Descriptor) -> Result<Self> {
        let what = format!("descriptor {}", d.digest());
        into_spec(Value::Object(d.fields().clone()), &what, "descriptor")
    }
}

impl TryFrom<&spec::Descriptor> for Descriptor {
    type Error = Error;
    /// Validates the digest as ocistow does (an `oci_spec` digest may use an algorithm ocistow
    /// cannot verify; it is kept when it fits the grammar).
    fn try_from(d: &spec::Descriptor) -> Result<Self> {
        let what = format!("oci-spec descriptor {}", d.digest());
        let v = from_spec(d, &what, "descriptor")?;
        Descriptor::from_value(v).map_err(|reason| invalid(&what, "descriptor", reason))
    }
}

impl TryFrom<&ImageIndex> for spec::ImageIndex {
    type Error = Error;
    /// Drops fields the image-spec does not define, at the top and in every entry.
    fn try_from(index: &ImageIndex) -> Result<Self> {
        let v = serde_json::to_value(index).unwrap_or_default();
        into_spec(v, "index", "image index")
    }
}

impl TryFrom<&spec::ImageIndex> for ImageIndex {
    type Error = Error;
    fn try_from(index: &spec::ImageIndex) -> Result<Self> {
        let v = from_spec(index, "oci-spec image index", "image index")?;
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        ImageIndex::parse(&bytes)
            .map_err(|reason| invalid("oci-spec image index", media::IMAGE_INDEX, reason))
    }
}

impl TryFrom<&ImageManifest> for spec::ImageManifest {
    type Error = Error;
    /// From ocistow's read-only view of a manifest blob (its defined fields are all it holds).
    fn try_from(m: &ImageManifest) -> Result<Self> {
        let mut v = Map::new();
        v.insert("schemaVersion".into(), Value::from(2));
        if let Some(mt) = &m.media_type {
            v.insert("mediaType".into(), Value::from(mt.as_str()));
        }
        if let Some(at) = &m.artifact_type {
            v.insert("artifactType".into(), Value::from(at.as_str()));
        }
        v.insert("config".into(), Value::Object(m.config.fields().clone()));
        v.insert(
            "layers".into(),
            Value::Array(
                m.layers
                    .iter()
                    .map(|l| Value::Object(l.fields().clone()))
                    .collect(),
            ),
        );
        if let Some(s) = &m.subject {
            v.insert("subject".into(), Value::Object(s.fields().clone()));
        }
        if let Some(a) = &m.annotations {
            v.insert("annotations".into(), Value::Object(a.clone()));
        }
        into_spec(Value::Object(v), "image manifest", "image manifest")
    }
}

/// The built bytes as an `oci_spec` type.
fn from_built<T: DeserializeOwned>(built: &Built) -> Result<T> {
    let v: Value = serde_json::from_slice(built.bytes()).unwrap_or_default();
    into_spec(v, &format!("built {}", built.digest()), built.media_type())
}

impl TryFrom<&Built> for spec::ImageManifest {
    type Error = Error;
    /// A built image manifest (an index is refused: convert it to [`spec::ImageIndex`]).
    fn try_from(built: &Built) -> Result<Self> {
        from_built(built)
    }
}

impl TryFrom<&Built> for spec::ImageIndex {
    type Error = Error;
    /// A built image index.
    fn try_from(built: &Built) -> Result<Self> {
        from_built(built)
    }
}

/// New bytes for an `oci_spec` manifest or index, checked by `check` as ocistow checks what it
/// stores.
fn built_from<T: Serialize, U>(
    value: &T,
    media_type: &'static str,
    check: fn(&[u8]) -> std::result::Result<U, ModelError>,
) -> Result<Built> {
    let what = format!("oci-spec {media_type}");
    let built = Built::from_fields(object(from_spec(value, &what, media_type)?), media_type);
    check(built.bytes()).map_err(|reason| invalid(&what, media_type, reason))?;
    Ok(built)
}

impl TryFrom<&spec::ImageManifest> for Built {
    type Error = Error;
    /// New bytes for the manifest, checked as ocistow checks any manifest it stores.
    fn try_from(m: &spec::ImageManifest) -> Result<Self> {
        built_from(m, media::IMAGE_MANIFEST, ImageManifest::parse)
    }
}

impl TryFrom<&spec::ImageIndex> for Built {
    type Error = Error;
    /// New bytes for the index, checked as ocistow checks any index it stores.
    fn try_from(i: &spec::ImageIndex) -> Result<Self> {
        built_from(i, media::IMAGE_INDEX, ImageIndex::parse)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Layout;
    use crate::model::Manifest;

    fn fixture_layouts() -> Vec<Layout> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures");
        let mut out = Vec::new();
        for e in std::fs::read_dir(root).unwrap() {
            let dir = e.unwrap().path().join("layout");
            if dir.is_dir() {
                out.push(Layout::open(&dir).unwrap());
            }
        }
        assert!(out.len() >= 6);
        out
    }

    /// The known fields of a JSON object, with annotations compared as sets.
    fn known(v: &Value) -> Value {
        let mut v = v.clone();
        sort_annotations(&mut v);
        v
    }

    #[test]
    fn every_fixture_manifest_and_index_json_round_trips_through_oci_spec() {
        let mut checked = 0;
        for layout in fixture_layouts() {
            let index = layout.read_index().unwrap();
            let spec_index = spec::ImageIndex::try_from(&index).unwrap();
            let back = ImageIndex::try_from(&spec_index).unwrap();
            assert_eq!(
                known(&serde_json::to_value(&back).unwrap()),
                known(&serde_json::to_value(&index).unwrap()),
                "{}",
                layout.root().display()
            );
            for entry in index.manifests() {
                let d = spec::Descriptor::try_from(entry).unwrap();
                assert_eq!(&Descriptor::try_from(&d).unwrap().plain(), &entry.plain());
                let Ok((bytes, manifest)) = layout.read_manifest(entry) else {
                    continue;
                };
                let original: Value = serde_json::from_slice(&bytes).unwrap();
                let built = match &manifest {
                    Manifest::Image(m) => {
                        Built::try_from(&spec::ImageManifest::try_from(m).unwrap()).unwrap()
                    }
                    Manifest::Index(i) => {
                        Built::try_from(&spec::ImageIndex::try_from(i).unwrap()).unwrap()
                    }
                };
                let rebuilt: Value = serde_json::from_slice(built.bytes()).unwrap();
                assert_eq!(known(&rebuilt), known(&original), "{}", entry.digest());
                checked += 1;
            }
        }
        assert!(checked >= 10, "{checked}");
    }

    #[test]
    fn unknown_fields_are_dropped_and_fractional_sizes_refused() {
        let d = Descriptor::from_value(serde_json::json!({
            "mediaType": media::EMPTY,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
            "x-vendor": [1]
        }))
        .unwrap();
        let s = spec::Descriptor::try_from(&d).unwrap();
        let back = Descriptor::try_from(&s).unwrap();
        assert!(back.fields().get("x-vendor").is_none());
        assert_eq!(back.size(), 2);
        let fractional = serde_json::json!({
            "mediaType": media::EMPTY,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2.5
        });
        assert!(into_spec::<spec::Descriptor>(fractional, "d", "descriptor").is_err());
    }
}
