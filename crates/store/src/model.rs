//! Descriptors, platforms, image manifests and image indexes.
//!
//! Every type here keeps the JSON object it was read from (an order-preserving map) and exposes
//! typed, validated accessors over it. Writing one back therefore keeps unknown fields, key order,
//! and the difference between absent and empty `annotations`: rewriting `index.json` loses nothing.
//! Manifest blobs are never re-serialized at all; [`ImageManifest`] and [`ImageIndex`] are read-only
//! views used to validate and walk them.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::digest::Digest;

mod error;
mod fast;
mod text;

pub use error::ModelError;

/// Media types and annotation keys ocistow uses.
pub mod media {
    /// An OCI image manifest.
    pub const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index.
    pub const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// An OCI image config.
    pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// The empty descriptor's content, `{}`.
    pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// An uncompressed layer.
    pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// A gzip layer.
    pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// A Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// A Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// What oras uses when neither a config nor an artifact type is given.
    pub const UNKNOWN_ARTIFACT: &str = "application/vnd.unknown.artifact.v1";
    /// What oras gives a `--config` file without a media type.
    pub const UNKNOWN_CONFIG: &str = "application/vnd.unknown.config.v1+json";

    /// True for media types whose content has the shape of an image manifest.
    pub fn is_image_manifest(mt: &str) -> bool {
        mt == IMAGE_MANIFEST || mt == DOCKER_MANIFEST
    }

    /// True for media types whose content has the shape of an image index.
    pub fn is_index(mt: &str) -> bool {
        mt == IMAGE_INDEX || mt == DOCKER_MANIFEST_LIST
    }

    /// Every manifest media type of either kind ([`is_manifest`]).
    pub const MANIFESTS: [&str; 4] = [
        IMAGE_MANIFEST,
        IMAGE_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];

    /// True for anything that is a manifest of either kind.
    pub fn is_manifest(mt: &str) -> bool {
        MANIFESTS.contains(&mt)
    }
}

/// Well-known annotation keys.
pub mod annotations {
    /// The tag of an `index.json` entry.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// A file name (oras push, pull).
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// When the content was created (RFC 3339).
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// containerd's and docker's full image name next to `ref.name`.
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
    /// oras: the layer is a tarball of a directory to unpack on pull.
    pub const ORAS_UNPACK: &str = "io.deis.oras.content.unpack";
    /// oras: digest of the uncompressed tar of a directory layer.
    pub const ORAS_CONTENT_DIGEST: &str = "io.deis.oras.content.digest";
}

/// The empty descriptor's content, `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";

/// An OCI content descriptor, kept as the JSON object it came from.
///
/// A descriptor read from compact JSON whose fields the fast reader knows keeps the text it was
/// read from and writes it back verbatim; its few hot fields are decoded up front, the rest on
/// first use. Any other descriptor (whitespace, escapes, duplicate keys, nested unknown
/// fields, `urls`, `platform`), and any descriptor once edited, is the order-preserving map
/// it always was. Both write the same bytes.
///
/// ```
/// use ocistow_store::Descriptor;
/// let d: Descriptor = serde_json::from_str(
///     r#"{"mediaType":"text/plain","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"x-unknown":[1]}"#,
/// ).unwrap();
/// assert_eq!(d.size(), 2);
/// assert!(serde_json::to_string(&d).unwrap().ends_with(r#""x-unknown":[1]}"#));
/// ```
#[derive(Clone)]
pub struct Descriptor(Arc<Inner>);

/// What a [`Descriptor`] shares between its clones: graphs, trees and plans clone descriptors
/// freely, so a clone is a refcount and an edit copies only a shared one.
#[derive(Clone)]
struct Inner {
    digest: Digest,
    size: u64,
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Read from canonical compact JSON: its text is what serializing `fields` would write.
    Raw(RawEntry),
    /// Built or edited, or read from JSON the fast reader leaves to the map.
    Map(Map<String, Value>),
}

/// An entry kept as its place in the text it was read from (shared by every entry of one
/// `index.json`), with its hot fields decoded.
#[derive(Clone)]
struct RawEntry {
    src: Arc<String>,
    start: u32,
    end: u32,
    media_type: Option<Str>,
    artifact_type: Option<Str>,
    /// `None` when the entry has no `annotations`; never JSON null here.
    annotations: Option<Vec<(Str, Str)>>,
    /// Every field, parsed from the text on first use of [`Descriptor::fields`] (boxed: most
    /// entries never need it, and 100,000 of them should stay small).
    fields: OnceLock<Box<Map<String, Value>>>,
}

impl RawEntry {
    fn text(&self) -> &str {
        // The fast reader took the span at character boundaries of this text.
        self.src
            .get(self.start as usize..self.end as usize)
            .unwrap_or("{}")
    }

    fn str<'a>(&'a self, s: &'a Str) -> &'a str {
        s.get(&self.src)
    }
}

/// A decoded string of a [`RawEntry`]: its place in the text when it holds no escape.
#[derive(Clone)]
enum Str {
    At(u32, u32),
    Owned(Box<str>),
}

impl Str {
    fn get<'a>(&'a self, src: &'a str) -> &'a str {
        match self {
            Str::At(start, end) => src.get(*start as usize..*end as usize).unwrap_or(""),
            Str::Owned(s) => s,
        }
    }
}

impl PartialEq for Descriptor {
    fn eq(&self, other: &Self) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        if self.0.digest != other.0.digest || self.0.size != other.0.size {
            return false;
        }
        match (&self.0.repr, &other.0.repr) {
            (Repr::Raw(a), Repr::Raw(b)) if a.text() == b.text() => true,
            _ => self.fields() == other.fields(),
        }
    }
}

impl Descriptor {
    /// A new descriptor with the three required fields, in the order Go tools write them.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        let mut fields = Map::new();
        fields.insert("mediaType".into(), Value::String(media_type.into()));
        fields.insert("digest".into(), Value::String(digest.to_string()));
        fields.insert("size".into(), Value::from(size));
        Descriptor::from_parts(digest, size, Repr::Map(fields))
    }

    fn from_parts(digest: Digest, size: u64, repr: Repr) -> Self {
        Descriptor(Arc::new(Inner { digest, size, repr }))
    }

    /// Validates a JSON object as a descriptor. The error is a reason without context; callers
    /// add the file and position.
    pub fn from_map(fields: Map<String, Value>) -> Result<Self, ModelError> {
        let digest = match fields.get("digest") {
            Some(Value::String(s)) => Digest::parse(s).map_err(|e| ModelError::BadDigest {
                source: Box::new(e),
            })?,
            Some(_) => return Err(ModelError::DigestNotString),
            None => return Err(ModelError::NoDigest),
        };
        let size = match fields.get("size") {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| ModelError::BadSize { found: v.clone() })?,
            None => return Err(ModelError::NoSize { digest }),
        };
        for key in ["mediaType", "artifactType", "data"] {
            if let Some(v) = fields.get(key)
                && !v.is_string()
            {
                return Err(ModelError::FieldNotString { digest, field: key });
            }
        }
        match fields.get("annotations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(ModelError::AnnotationNotString {
                        digest,
                        key: k.clone(),
                    });
                }
            }
            Some(_) => {
                return Err(ModelError::AnnotationsNotObject { digest });
            }
        }
        match fields.get("urls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(ModelError::UrlsNotStrings { digest });
            }
        }
        if let Some(p) = fields.get("platform")
            && !p.is_null()
            && let Err(source) = Platform::deserialize_value(p)
        {
            return Err(ModelError::BadPlatform { digest, source });
        }
        Ok(Descriptor::from_parts(digest, size, Repr::Map(fields)))
    }

    /// Validates any JSON value as a descriptor.
    pub fn from_value(value: Value) -> Result<Self, ModelError> {
        match value {
            Value::Object(m) => Descriptor::from_map(m),
            found => Err(ModelError::DescriptorNotObject { found }),
        }
    }

    /// A descriptor from its text (kept when it can be written back as is), or `None` for
    /// whatever the map reader must judge.
    fn from_text(src: &Arc<String>, raw: &RawValue) -> Option<Self> {
        text::descriptor_in(src, raw.get())
            .or_else(|| Descriptor::from_value(fast::value(raw)?).ok())
    }

    /// The media type, or `""` when the field is absent.
    pub fn media_type(&self) -> &str {
        match &self.0.repr {
            Repr::Raw(r) => r.media_type.as_ref().map_or("", |s| r.str(s)),
            Repr::Map(_) => self.str_field("mediaType").unwrap_or(""),
        }
    }

    /// The content's digest.
    pub fn digest(&self) -> &Digest {
        &self.0.digest
    }

    /// The content's size in bytes.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// `artifactType`, when set.
    pub fn artifact_type(&self) -> Option<&str> {
        match &self.0.repr {
            Repr::Raw(r) => r.artifact_type.as_ref().map(|s| r.str(s)),
            Repr::Map(_) => self.str_field("artifactType"),
        }
    }

    /// The `data` field (base64 of the content), if any.
    pub fn data(&self) -> Option<&str> {
        self.str_field("data")
    }

    /// `urls` (non-distributable content), empty when absent.
    pub fn urls(&self) -> Vec<&str> {
        // The fast reader leaves every descriptor with `urls` to the map.
        if let Repr::Raw(_) = self.0.repr {
            return Vec::new();
        }
        match self.fields().get("urls") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `platform`, when set and valid.
    pub fn platform(&self) -> Option<Platform> {
        if let Repr::Raw(_) = self.0.repr {
            return None;
        }
        self.fields().get("platform").and_then(Platform::from_value)
    }

    /// The annotations object, when present (it may be empty).
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        match &self.0.repr {
            Repr::Raw(r) => {
                r.annotations.as_ref()?;
                self.fields().get("annotations").and_then(Value::as_object)
            }
            Repr::Map(m) => m.get("annotations").and_then(Value::as_object),
        }
    }

    /// The annotation `key`, when set to a string.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        match &self.0.repr {
            Repr::Raw(r) => r
                .annotations
                .as_ref()?
                .iter()
                .find(|(k, _)| r.str(k) == key)
                .map(|(_, v)| r.str(v)),
            Repr::Map(_) => self.annotations()?.get(key)?.as_str(),
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(annotations::REF_NAME)
    }

    /// Sets one annotation, creating the object when absent.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        let slot = self
            .fields_mut()
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(m) = slot {
            m.insert(key.to_string(), Value::String(value.to_string()));
        }
    }

    /// Removes one annotation; the (possibly empty) object stays, as it was found.
    pub fn remove_annotation(&mut self, key: &str) -> Option<String> {
        // Nothing to remove: keep the descriptor (and its text) as it is.
        self.annotation(key)?;
        match self.fields_mut().get_mut("annotations") {
            Some(Value::Object(m)) => m
                .shift_remove(key)
                .and_then(|v| v.as_str().map(String::from)),
            _ => None,
        }
    }

    /// Sets `artifactType`.
    pub fn set_artifact_type(&mut self, artifact_type: &str) {
        self.fields_mut()
            .insert("artifactType".into(), Value::String(artifact_type.into()));
    }

    /// Sets `data` (base64) on the descriptor.
    pub fn set_data_base64(&mut self, b64: &str) {
        self.fields_mut()
            .insert("data".into(), Value::String(b64.into()));
    }

    /// Replaces the annotations with `annotations` (in the order given).
    pub fn set_annotations(&mut self, annotations: Map<String, Value>) {
        self.fields_mut()
            .insert("annotations".into(), Value::Object(annotations));
    }

    /// Points the descriptor at other content, keeping every other field where it is.
    pub fn set_digest_and_size(&mut self, digest: Digest, size: u64) {
        let fields = self.fields_mut();
        fields.insert("digest".into(), Value::String(digest.to_string()));
        fields.insert("size".into(), Value::from(size));
        // `fields_mut` left this descriptor unshared.
        let inner = Arc::make_mut(&mut self.0);
        inner.digest = digest;
        inner.size = size;
    }

    /// The descriptor reduced to `mediaType`, `digest` and `size`, as a `subject` is written.
    #[must_use]
    pub fn plain(&self) -> Descriptor {
        Descriptor::new(self.media_type(), self.0.digest.clone(), self.0.size)
    }

    /// The underlying JSON object, with every field as read.
    pub fn fields(&self) -> &Map<String, Value> {
        match &self.0.repr {
            Repr::Raw(r) => r.fields.get_or_init(|| {
                // The text was validated as an object when it was read.
                Box::new(serde_json::from_str(r.text()).unwrap_or_default())
            }),
            Repr::Map(m) => m,
        }
    }

    /// The fields for an edit: a descriptor read as text becomes a map from here on.
    fn fields_mut(&mut self) -> &mut Map<String, Value> {
        if matches!(self.0.repr, Repr::Raw(_)) {
            // A shared descriptor's map is built from its text, without copying the rest.
            let cached = match Arc::get_mut(&mut self.0) {
                Some(Inner {
                    repr: Repr::Raw(r), ..
                }) => r.fields.take().map(|b| *b),
                _ => match &self.0.repr {
                    Repr::Raw(r) => r.fields.get().map(|b| Map::clone(b)),
                    Repr::Map(_) => None,
                },
            };
            let fields = cached.unwrap_or_else(|| match &self.0.repr {
                // The text was validated as an object when it was read.
                Repr::Raw(r) => serde_json::from_str(r.text()).unwrap_or_default(),
                Repr::Map(m) => m.clone(),
            });
            *self = Descriptor::from_parts(self.0.digest.clone(), self.0.size, Repr::Map(fields));
        }
        match &mut Arc::make_mut(&mut self.0).repr {
            Repr::Map(m) => m,
            // Made a map just above.
            Repr::Raw(_) => unreachable!("descriptor text was turned into a map"),
        }
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.fields().get(key).and_then(Value::as_str)
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descriptor({})", Value::Object(self.fields().clone()))
    }
}

impl serde::Serialize for Descriptor {
    /// Its fields, in any format (pretty JSON too); `ImageIndex::to_vec` copies kept text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(self.fields(), s)
    }
}

impl<'de> serde::Deserialize<'de> for Descriptor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        Descriptor::from_map(map).map_err(serde::de::Error::custom)
    }
}

/// A descriptor's `platform`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Platform {
    /// The CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// The operating system (`linux`).
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    /// `os.version`.
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    /// `os.features`.
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The architecture variant (`v8`).
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `features` (reserved by the spec).
    pub features: Option<Vec<String>>,
}

impl Platform {
    fn from_value(v: &Value) -> Option<Self> {
        Platform::deserialize_value(v).ok()
    }

    fn deserialize_value(v: &Value) -> serde_json::Result<Self> {
        serde::Deserialize::deserialize(v)
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(ModelError::PlatformSyntax { input: s.into() });
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(std::string::ToString::to_string),
            ..Platform::default()
        })
    }

    /// True when `self` (as asked for) is satisfied by `other` (as found): os and architecture
    /// equal, and the variant equal when one was asked for.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ModelError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ModelError::NotObject),
        Err(e) => Err(ModelError::Json(e)),
    }
}

fn check_schema_version(fields: &Map<String, Value>, required: bool) -> Result<(), ModelError> {
    match fields.get("schemaVersion") {
        Some(v) if v.as_u64() == Some(2) => Ok(()),
        Some(v) => Err(ModelError::SchemaVersion { found: v.clone() }),
        None if required => Err(ModelError::NoSchemaVersion),
        None => Ok(()),
    }
}

fn descriptor_field(
    fields: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<Descriptor>, ModelError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Descriptor::from_value(v.clone())
            .map(Some)
            .map_err(|e| e.at(key, None)),
    }
}

fn descriptor_list(
    fields: &Map<String, Value>,
    key: &'static str,
) -> Result<Vec<Descriptor>, ModelError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Descriptor::from_value(v.clone()).map_err(|e| e.at(key, Some(i))))
            .collect(),
        Some(_) => Err(ModelError::NotList { field: key }),
    }
}

/// An image index: `index.json` itself, or an index blob.
///
/// Entries are held as [`Descriptor`]s; every other field is kept as read, and writing the index
/// puts `manifests` back at the position it had.
#[derive(Clone)]
pub struct ImageIndex {
    fields: Map<String, Value>,
    manifests: Vec<Descriptor>,
    /// The text this index was read from, while it is unedited and [`ImageIndex::to_vec`]
    /// writes exactly that text: `edit_index` tells an edit from none without serializing the
    /// index as read.
    pristine: Option<Arc<String>>,
}

impl PartialEq for ImageIndex {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields && self.manifests == other.manifests
    }
}

impl fmt::Debug for ImageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageIndex")
            .field("fields", &self.fields)
            .field("manifests", &self.manifests)
            .finish_non_exhaustive()
    }
}

impl ImageIndex {
    /// An empty index as ocistow writes a new `index.json`.
    pub fn new() -> Self {
        let mut fields = Map::new();
        fields.insert("schemaVersion".into(), Value::from(2));
        fields.insert("mediaType".into(), Value::String(media::IMAGE_INDEX.into()));
        fields.insert("manifests".into(), Value::Array(Vec::new()));
        ImageIndex {
            fields,
            manifests: Vec::new(),
            pristine: None,
        }
    }

    /// Parses and validates index JSON. `schemaVersion` is required to be 2 when present; a
    /// missing top-level `mediaType` is fine (skopeo and regctl omit it).
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => ImageIndex::parse_string(text.to_owned()),
            Err(_) => ImageIndex::from_fields(parse_object(bytes)?),
        }
    }

    /// [`ImageIndex::parse`] of text the caller owns: the entries read in one pass keep their
    /// place in it instead of a copy each.
    pub fn parse_string(text: String) -> Result<Self, ModelError> {
        let src = Arc::new(text);
        match ImageIndex::parse_fast(&src) {
            Some(index) => Ok(index),
            None => ImageIndex::from_fields(parse_object(src.as_bytes())?),
        }
    }

    /// The entries read from their text, each kept as read when it can be written back as is.
    /// `None` for anything the map reader must judge (every error among them), so both
    /// readers accept the same indexes and the errors are the map reader's.
    fn parse_fast(src: &Arc<String>) -> Option<Self> {
        let text::ReadIndex {
            fields,
            manifests,
            exact,
        } = text::index(src)?;
        check_schema_version(&fields, false).ok()?;
        if fields.get("mediaType").is_some_and(|mt| !mt.is_string()) {
            return None;
        }
        let mut index = ImageIndex::checked(fields, manifests).ok()?;
        if exact {
            index.pristine = Some(Arc::clone(src));
        }
        Some(index)
    }

    /// The text this index was read from, when it is unedited and [`ImageIndex::to_vec`]
    /// writes exactly that text.
    pub(crate) fn pristine(&self) -> Option<&Arc<String>> {
        self.pristine.as_ref()
    }

    /// The map reader's index: what [`ImageIndex::parse`] falls back to.
    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, ModelError> {
        check_schema_version(&fields, false)?;
        if let Some(mt) = fields.get("mediaType")
            && !mt.is_string()
        {
            return Err(ModelError::NotString { field: "mediaType" });
        }
        // Taken out by value: converting each entry without a copy matters for an index.json
        // with 100,000 entries.
        let manifests = match fields.get_mut("manifests").map(Value::take) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| Descriptor::from_value(v).map_err(|e| e.at("manifests", Some(i))))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ModelError::NotList { field: "manifests" }),
        };
        ImageIndex::checked(fields, manifests)
    }

    /// The checks after the entries: `subject` and `annotations`.
    fn checked(fields: Map<String, Value>, manifests: Vec<Descriptor>) -> Result<Self, ModelError> {
        descriptor_field(&fields, "subject")?;
        if let Some(Value::Object(m)) = fields.get("annotations")
            && let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string())
        {
            return Err(ModelError::TopAnnotationNotString { key: k.clone() });
        }
        // The entries live in `manifests`; the map keeps the key's position only (now null).
        Ok(ImageIndex {
            fields,
            manifests,
            pristine: None,
        })
    }

    /// Serializes compactly, with `manifests` back in its place.
    pub fn to_vec(&self) -> Vec<u8> {
        // What `serde_json::to_vec` writes for the fields and entries, with each entry kept as
        // text copied as it is, into one buffer sized up front.
        let kept: usize = self
            .manifests
            .iter()
            .map(|d| match &d.0.repr {
                Repr::Raw(r) => r.text().len() + 1,
                Repr::Map(_) => 256,
            })
            .sum();
        let mut out = Vec::with_capacity(kept + 256);
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, key: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json(out, key);
            out.push(b':');
        };
        for (k, v) in &self.fields {
            member(&mut out, k);
            if k == "manifests" {
                self.write_entries(&mut out);
            } else {
                write_json(&mut out, v);
            }
        }
        if !self.fields.contains_key("manifests") {
            member(&mut out, "manifests");
            self.write_entries(&mut out);
        }
        out.push(b'}');
        out
    }

    fn write_entries(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, d) in self.manifests.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match &d.0.repr {
                Repr::Raw(r) => out.extend_from_slice(r.text().as_bytes()),
                Repr::Map(m) => write_json(out, m),
            }
        }
        out.push(b']');
    }

    /// The listed descriptors.
    pub fn manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// The listed descriptors, for editing.
    pub fn manifests_mut(&mut self) -> &mut Vec<Descriptor> {
        self.pristine = None;
        &mut self.manifests
    }

    /// `mediaType`, when set.
    pub fn media_type(&self) -> Option<&str> {
        self.fields.get("mediaType").and_then(Value::as_str)
    }

    /// Sets `mediaType`; a new field goes right after `schemaVersion`, where Go tools write it.
    pub fn set_media_type(&mut self, media_type: &str) {
        self.pristine = None;
        let value = Value::String(media_type.into());
        if let Some(slot) = self.fields.get_mut("mediaType") {
            *slot = value;
        } else {
            let at = self
                .fields
                .keys()
                .position(|k| k == "schemaVersion")
                .map_or(0, |i| i + 1);
            self.fields.shift_insert(at, "mediaType".into(), value);
        }
    }

    /// `artifactType`, when set.
    pub fn artifact_type(&self) -> Option<&str> {
        self.fields.get("artifactType").and_then(Value::as_str)
    }

    /// The index's `subject`, if it is a referrer. (Validated at parse time.)
    pub fn subject(&self) -> Option<Descriptor> {
        descriptor_field(&self.fields, "subject").ok().flatten()
    }

    /// `annotations`, when set.
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        self.fields.get("annotations").and_then(Value::as_object)
    }

    /// The annotation `key`, when set to a string.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations()?.get(key)?.as_str()
    }

    /// Sets a top-level annotation, creating the object when absent.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.pristine = None;
        let slot = self
            .fields
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = slot {
            m.insert(key.into(), Value::String(value.into()));
        }
    }

    /// Removes a top-level annotation; the object stays even if it becomes empty.
    pub fn remove_annotation(&mut self, key: &str) {
        self.pristine = None;
        if let Some(Value::Object(m)) = self.fields.get_mut("annotations") {
            m.shift_remove(key);
        }
    }

    /// Every field except `manifests`, as read.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl serde::Serialize for ImageIndex {
    /// Every field in the order read, `manifests` at its original position (or last), written
    /// straight from the entries without copying them.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_index(self, s, &self.manifests)
    }
}

/// Compact JSON of `value`, as `serde_json::to_vec` writes it (which cannot fail for strings
/// and maps of JSON values).
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

fn serialize_index<S: serde::Serializer, E: serde::Serialize>(
    index: &ImageIndex,
    s: S,
    entries: &[E],
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let has_slot = index.fields.contains_key("manifests");
    let mut map = s.serialize_map(Some(index.fields.len() + usize::from(!has_slot)))?;
    for (k, v) in &index.fields {
        if k == "manifests" {
            map.serialize_entry(k, entries)?;
        } else {
            map.serialize_entry(k, v)?;
        }
    }
    if !has_slot {
        map.serialize_entry("manifests", entries)?;
    }
    map.end()
}

impl Default for ImageIndex {
    fn default() -> Self {
        ImageIndex::new()
    }
}

/// A read-only view of an image manifest blob (OCI or Docker schema 2).
#[derive(Clone, Debug)]
pub struct ImageManifest {
    /// `mediaType`, when set.
    pub media_type: Option<String>,
    /// `artifactType`, when set.
    pub artifact_type: Option<String>,
    /// `config`.
    pub config: Descriptor,
    /// `layers`, in order.
    pub layers: Vec<Descriptor>,
    /// `subject`, when set.
    pub subject: Option<Descriptor>,
    /// `annotations`, when set.
    pub annotations: Option<Map<String, Value>>,
}

impl ImageManifest {
    /// Parses and validates an image manifest.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        match ImageManifest::parse_fast(bytes) {
            Some(m) => Ok(m),
            None => ImageManifest::from_fields(&parse_object(bytes)?),
        }
    }

    /// The manifest read from its members' text, its descriptors kept as read; `None` for
    /// whatever the map reader must judge (so both accept the same manifests).
    fn parse_fast(bytes: &[u8]) -> Option<Self> {
        // One copy of the text, shared by the descriptors kept as read.
        let src = Arc::new(std::str::from_utf8(bytes).ok()?.to_owned());
        let fast::Members(members) = fast::members(src.as_bytes())?;
        let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        if fast::has_duplicates(&mut keys) {
            return None;
        }
        let (mut schema, mut media_type, mut artifact_type, mut annotations) =
            (None, None, None, None);
        let (mut config, mut layers, mut subject) = (None, None, None);
        for (key, raw) in &members {
            match key.as_ref() {
                "schemaVersion" => schema = Some(fast::value(raw)?),
                "mediaType" => media_type = Some(fast::value(raw)?),
                "artifactType" => artifact_type = Some(fast::value(raw)?),
                "annotations" => annotations = Some(fast::value(raw)?),
                "manifests" => return None,
                "config" => config = Some(*raw),
                "layers" => layers = Some(*raw),
                "subject" => subject = Some(*raw),
                _ => {
                    if !fast::valid(raw) {
                        return None;
                    }
                }
            }
        }
        if schema.as_ref().and_then(Value::as_u64) != Some(2) {
            return None;
        }
        let media_type = match media_type {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return None,
        };
        let config = Descriptor::from_text(&src, config?)?;
        let layers = fast::elements(layers?)?
            .into_iter()
            .map(|raw| Descriptor::from_text(&src, raw))
            .collect::<Option<Vec<_>>>()?;
        let subject = match subject {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => Some(Descriptor::from_text(&src, raw)?),
        };
        // An error here is the map reader's to give.
        ImageManifest::assemble(
            media_type,
            config,
            layers,
            subject,
            artifact_type,
            annotations,
        )
        .ok()
    }

    /// The map reader's manifest: what [`ImageManifest::parse`] falls back to.
    fn from_fields(fields: &Map<String, Value>) -> Result<Self, ModelError> {
        check_schema_version(fields, true)?;
        let media_type = match fields.get("mediaType") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ModelError::NotString { field: "mediaType" }),
        };
        if fields.contains_key("manifests") {
            return Err(ModelError::IndexNotManifest);
        }
        let config = descriptor_field(fields, "config")?.ok_or(ModelError::NoConfig)?;
        if !matches!(fields.get("layers"), Some(Value::Array(_))) {
            return Err(ModelError::NoLayers);
        }
        let layers = descriptor_list(fields, "layers")?;
        let subject = descriptor_field(fields, "subject")?;
        ImageManifest::assemble(
            media_type,
            config,
            layers,
            subject,
            fields.get("artifactType").cloned(),
            fields.get("annotations").cloned(),
        )
    }

    /// The one construction of a manifest, for both readers: the descriptors as read, and
    /// `artifactType` and `annotations` checked here.
    fn assemble(
        media_type: Option<String>,
        config: Descriptor,
        layers: Vec<Descriptor>,
        subject: Option<Descriptor>,
        artifact_type: Option<Value>,
        annotations: Option<Value>,
    ) -> Result<Self, ModelError> {
        let artifact_type = match artifact_type {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(ModelError::NotString {
                    field: "artifactType",
                });
            }
        };
        let annotations = match annotations {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) if m.values().all(Value::is_string) => Some(m),
            Some(_) => return Err(ModelError::AnnotationsNotStrings),
        };
        Ok(ImageManifest {
            media_type,
            artifact_type,
            config,
            layers,
            subject,
            annotations,
        })
    }

    /// The artifact type as the referrers API reports it: `artifactType`, else the config's media type.
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or_else(|| self.config.media_type())
    }
}

/// Either kind of manifest, as found in a blob.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // short-lived values; boxing would only add indirection
pub enum Manifest {
    /// An image manifest.
    Image(ImageManifest),
    /// An image index.
    Index(ImageIndex),
}

impl Manifest {
    /// Parses `bytes` as the kind `media_type` names. Other media types are not manifests.
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Self, ModelError> {
        if media::is_image_manifest(media_type) {
            ImageManifest::parse(bytes).map(Manifest::Image)
        } else if media::is_index(media_type) {
            let index = ImageIndex::parse(bytes)?;
            let fields = index.fields();
            check_schema_version(fields, true)?;
            if !fields.contains_key("manifests") {
                return Err(ModelError::NoManifests);
            }
            Ok(Manifest::Index(index))
        } else {
            Err(ModelError::NotManifestType {
                media_type: media_type.into(),
            })
        }
    }

    /// Guesses the media type of manifest JSON: its `mediaType` field, else its shape.
    pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
        let fields = parse_object(bytes).ok()?;
        if let Some(Value::String(mt)) = fields.get("mediaType") {
            return Some(mt.clone());
        }
        if fields.contains_key("manifests") {
            Some(media::IMAGE_INDEX.into())
        } else if fields.contains_key("config") && fields.contains_key("layers") {
            Some(media::IMAGE_MANIFEST.into())
        } else {
            None
        }
    }

    /// The `subject` descriptor, when set.
    pub fn subject(&self) -> Option<Descriptor> {
        match self {
            Manifest::Image(m) => m.subject.clone(),
            Manifest::Index(i) => i.subject(),
        }
    }

    /// Every descriptor the manifest points to, subject excluded.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image(m) => std::iter::once(&m.config).chain(m.layers.iter()).collect(),
            Manifest::Index(i) => i.manifests().iter().collect(),
        }
    }

    /// `artifactType`, else the config media type for image manifests; none for indexes without it.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        match self {
            Manifest::Image(m) => Some(m.effective_artifact_type()),
            Manifest::Index(i) => i.artifact_type(),
        }
    }

    /// `annotations`, when set.
    pub fn annotations(&self) -> Option<&Map<String, Value>> {
        match self {
            Manifest::Image(m) => m.annotations.as_ref(),
            Manifest::Index(i) => i.annotations(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_keeps_everything() {
        let src = br#"{"zz":1,"manifests":[{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"mediaType":"application/xml","annotations":{},"platform":{"architecture":"amd64","os":"linux","features":["sse4"],"x":true},"extra":{"a":[1,2]}}],"schemaVersion":2,"annotations":{"b":"1","a":"2"}}"#;
        let idx = ImageIndex::parse(src).unwrap();
        assert_eq!(idx.to_vec(), src.to_vec());
        assert!(idx.media_type().is_none());
        assert_eq!(
            idx.manifests()[0].annotations().map(serde_json::Map::len),
            Some(0)
        );
    }

    #[test]
    fn absent_annotations_stay_absent() {
        let src = br#"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
        assert_eq!(ImageIndex::parse(src).unwrap().to_vec(), src.to_vec());
    }

    #[test]
    fn rejects_bad_descriptors() {
        for bad in [
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"sha256:../x","size":1}]}"#,
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}]}"#,
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}"#,
            r#"{"schemaVersion":2,"manifests":{}}"#,
            r#"{"schemaVersion":3,"manifests":[]}"#,
            r"[]",
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"k":1}}]}"#,
        ] {
            assert!(ImageIndex::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_shapes() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let parsed = Manifest::parse(media::IMAGE_MANIFEST, m).unwrap();
        assert_eq!(parsed.effective_artifact_type(), Some(media::EMPTY));
        assert!(Manifest::parse(media::IMAGE_INDEX, m).is_err());
        assert!(
            Manifest::parse(
                media::IMAGE_MANIFEST,
                br#"{"schemaVersion":2,"manifests":[]}"#
            )
            .is_err()
        );
        assert!(Manifest::parse(media::IMAGE_MANIFEST, b"{}").is_err());
        assert_eq!(
            Manifest::sniff_media_type(m).as_deref(),
            Some(media::IMAGE_MANIFEST)
        );
    }

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(!Platform::parse("linux/amd64").unwrap().matches(&p));
        assert!(Platform::parse("linux/arm64").unwrap().matches(&p));
        assert!(Platform::parse("linux").is_err());
    }
}

#[cfg(test)]
mod fast_reader_tests {
    use super::*;

    const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    /// The index as the map reader alone reads it.
    fn by_map(bytes: &[u8]) -> Result<ImageIndex, ModelError> {
        ImageIndex::from_fields(parse_object(bytes)?)
    }

    /// Both readers give the same answer: the same bytes back and the same fields, or the
    /// same error.
    fn same(text: &str) {
        let fast = ImageIndex::parse(text.as_bytes());
        let map = by_map(text.as_bytes());
        match (&fast, &map) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.to_vec(), b.to_vec(), "{text}");
                // An index that says it writes back the text it was read from does.
                if let Some(t) = a.pristine() {
                    assert_eq!(t.as_bytes(), text.as_bytes());
                    assert_eq!(a.to_vec(), text.as_bytes(), "{text}");
                }
                assert_eq!(a, b, "{text}");
                for (x, y) in a.manifests().iter().zip(b.manifests()) {
                    assert_eq!(x.fields(), y.fields(), "{text}");
                    assert_eq!(x.media_type(), y.media_type());
                    assert_eq!(x.artifact_type(), y.artifact_type());
                    assert_eq!(x.annotations(), y.annotations());
                    assert_eq!(x.ref_name(), y.ref_name());
                    assert_eq!(x.data(), y.data());
                    assert_eq!(x.urls(), y.urls());
                    assert_eq!(x.platform(), y.platform());
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            _ => panic!("{text}: fast {fast:?}, map {map:?}"),
        }
    }

    fn sample_entries() -> Vec<String> {
        vec![
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":2}}"#),
            format!(r#"{{"digest":"{D}","size":2,"annotations":{{}},"x":1.50,"y":-0,"z":null}}"#),
            format!(
                r#"{{"mediaType":"a/b","digest":"{D}","size":2,"annotations":{{"org.opencontainers.image.ref.name":"v1","k":"a \" \\ \n b"}},"artifactType":"t/u"}}"#
            ),
            format!(r#"{{ "mediaType": "a/b", "digest": "{D}", "size": 2 }}"#),
            format!(r#"{{"mediaType":"a\/b","digest":"{D}","size":2}}"#),
            format!(r#"{{"mediaType":"\u0061/b","digest":"{D}","size":2}}"#),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":2,"size":3}}"#),
            format!(r#"{{"digest":"{D}","size":2,"annotations":{{"a":"1","a":"2"}}}}"#),
            format!(r#"{{"digest":"{D}","size":2,"x":1E5,"y":1e5}}"#),
            format!(r#"{{"digest":"{D}","size":2,"x":{{"a":1,"a":2}}}}"#),
            format!(
                r#"{{"digest":"{D}","size":2,"platform":{{"architecture":"amd64","os":"linux"}},"urls":["u"]}}"#
            ),
            format!(r#"{{"digest":"{D}","size":2,"annotations":null}}"#),
            format!(r#"{{"digest":"{D}","size":2,"data":"e30="}}"#),
            format!(r#"{{"digest":"{D}","size":2e0}}"#),
            format!(r#"{{"digest":"{D}","size":-1}}"#),
            format!(r#"{{"digest":"{D}","size":"2"}}"#),
            format!(r#"{{"digest":"{D}"}}"#),
            r#"{"digest":"sha256:../x","size":2}"#.to_string(),
            format!(r#"{{"digest":"{D}","size":2,"annotations":{{"k":1}}}}"#),
            format!(r#"{{"digest":"{D}","size":2,"annotations":[]}}"#),
            format!(r#"{{"digest":"{D}","size":2,"mediaType":3}}"#),
            format!(r#"{{"digest":"{D}","size":2,"x":"\ud800"}}"#),
            format!(
                r#"{{"digest":"{D}","size":2,"x":{}1{}}}"#,
                "[".repeat(40),
                "]".repeat(40)
            ),
            format!(
                r#"{{"digest":"{D}","size":2,"x":{}1{}}}"#,
                "[".repeat(126),
                "]".repeat(126)
            ),
            r"[]".to_string(),
            r#""x""#.to_string(),
            format!(r#"{{"digest":"{D}","size":2,"annotations":{{"k\n":"v\t"}}}}"#),
            format!(r#"{{"digest":"{D}","size":2,"k\"":1}}"#),
            format!(r#"{{"digest":"{D}","size":02}}"#),
            format!(r#"{{"digest":"{D}","size":2,"x":tru}}"#),
            format!("{{\"digest\":\"{D}\",\"size\":2,\"x\":\"a\u{1}b\"}}"),
            format!(r#"{{"digest":"{D}","size":2,"x":1.}}"#),
            format!(r#"{{"digest":"{D}","size":2}} "#),
            r"{}".to_string(),
        ]
    }

    #[test]
    fn fast_reader_agrees_with_the_map_reader() {
        let entries = sample_entries();
        for e in &entries {
            same(&format!(r#"{{"schemaVersion":2,"manifests":[{e}]}}"#));
            same(&format!(
                r#"{{"manifests":[{e},{e}],"zz":{{"a":1}},"schemaVersion":2}}"#
            ));
        }
        // The canonical entries are the ones kept as text (else the test proves nothing).
        let kept = ImageIndex::parse(
            format!(
                r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
                entries[1], entries[3]
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(matches!(kept.manifests()[0].0.repr, Repr::Raw(_)));
        assert!(matches!(kept.manifests()[1].0.repr, Repr::Map(_)));
        assert!(kept.pristine().is_none(), "an entry left to the map");
        let compact = format!(
            r#"{{"schemaVersion":2,"annotations":{{"b":"1"}},"manifests":[{},{}]}}"#,
            entries[0], entries[2]
        );
        let exact = ImageIndex::parse(compact.as_bytes()).unwrap();
        assert!(exact.pristine().is_some(), "compact text is kept whole");
        let mut edited = exact.clone();
        edited.manifests_mut();
        assert!(edited.pristine().is_none(), "an edit forgets the text");
        for top in [
            r#"{"schemaVersion":2,"manifests":null}"#,
            r#"{"schemaVersion":2}"#,
            r#"{"schemaVersion":2,"manifests":{}}"#,
            r#"{"schemaVersion":3,"manifests":[]}"#,
            r#"{"schemaVersion":2,"mediaType":1,"manifests":[]}"#,
            r#"{"schemaVersion":2,"manifests":[],"manifests":[1]}"#,
            r#"{"schemaVersion":2,"manifests":[1],"manifests":[]}"#,
            r#"{"schemaVersion":2,"annotations":{"a":1},"manifests":[]}"#,
            r#"{"schemaVersion":2,"subject":{"digest":"x"},"manifests":[]}"#,
            r#"{"schemaVersion":2,"x":"\ud800","manifests":[]}"#,
            r#"{"schemaVersion":2,"manifests":[]} x"#,
            r#"{"schemaVersion":2,"manifests":[],}"#,
            r#"{"schemaVersion":2,"manifests":[]}"#,
            r#" {"schemaVersion":2,"manifests":[]}"#,
            "{\"schemaVersion\":2,\"manifests\":[]}\n",
            r#"{"schemaVersion":2,"manifests":[] }"#,
            r#"{"schemaVersion":2,"x":1e5,"manifests":[]}"#,
            r#"{"schemaVersion":2,"x":{"a":1,"a":2},"manifests":[]}"#,
            r#"{"schemaVersion":2,"x":1,"x":2,"manifests":[]}"#,
            r#"{"schem\u0061Version":2,"manifests":[]}"#,
            r#"{"schemaVersion":2,"x":"\/","manifests":[]}"#,
            r#"{"schemaVersion":2,"manifests":[]"#,
            r"{}",
            r"[]",
            "",
        ] {
            same(top);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random indexes put together from the samples (each entry kept as text, left to the
        /// map, or rejected), in compact and spaced layouts: both readers agree.
        #[test]
        fn readers_agree_on_random_indexes(
            picks in proptest::collection::vec(0..64usize, 0..5),
            top in 0..4usize,
            spaced in proptest::prelude::any::<bool>(),
        ) {
            let entries = sample_entries();
            let sep = if spaced { ", " } else { "," };
            let list = picks
                .iter()
                .map(|i| entries[i % entries.len()].as_str())
                .collect::<Vec<_>>()
                .join(sep);
            let text = match top {
                0 => format!(r#"{{"schemaVersion":2,"manifests":[{list}]}}"#),
                1 => format!(r#"{{"manifests":[{list}],"zz":{{"a":[1,"x"]}},"schemaVersion":2}}"#),
                2 => format!("{{\n  \"schemaVersion\": 2,\n  \"manifests\": [ {list} ]\n}}\n"),
                _ => format!(r#"{{"schemaVersion":2,"annotations":{{"b":"1","a":"2"}},"manifests":[{list}],"mediaType":"x"}}"#),
            };
            same(&text);
        }
    }

    #[test]
    fn fast_manifest_reader_agrees_with_the_map_reader() {
        let desc = format!(r#"{{"mediaType":"a/b","digest":"{D}","size":2}}"#);
        for m in [
            format!(
                r#"{{"schemaVersion":2,"config":{desc},"layers":[{desc}],"subject":{desc},"annotations":{{"a":"b"}},"artifactType":"t"}}"#
            ),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":[]}}"#),
            format!(r#"{{"schemaVersion":2,"config":{desc}}}"#),
            r#"{"schemaVersion":2,"config":null,"layers":[]}"#.to_string(),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":{{}}}}"#),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":[],"subject":null}}"#),
            format!(
                r#"{{"schemaVersion":2,"config":{desc},"layers":[],"subject":{{"digest":"x"}}}}"#
            ),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":[],"manifests":[]}}"#),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":[],"annotations":{{"a":1}}}}"#),
            format!(r#"{{"schemaVersion":2,"config":{desc},"layers":[],"x":"\ud800"}}"#),
            format!(r#"{{"schemaVersion":2,"config":{desc},"config":{desc},"layers":[]}}"#),
            format!(r#"{{"schemaVersion":"2","config":{desc},"layers":[]}}"#),
            format!(r#"{{"config":{desc},"layers":[]}}"#),
        ] {
            let fast = ImageManifest::parse(m.as_bytes());
            let map = parse_object(m.as_bytes()).and_then(|f| ImageManifest::from_fields(&f));
            match (fast, map) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.config, b.config, "{m}");
                    assert_eq!(a.layers, b.layers, "{m}");
                    assert_eq!(a.subject, b.subject, "{m}");
                    assert_eq!(a.annotations, b.annotations, "{m}");
                    assert_eq!(a.artifact_type, b.artifact_type, "{m}");
                    assert_eq!(a.media_type, b.media_type, "{m}");
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{m}"),
                (a, b) => panic!("{m}: fast {a:?}, map {b:?}"),
            }
        }
    }
}
