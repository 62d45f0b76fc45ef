//! Why JSON is not a valid descriptor, manifest or index. A reason without context: callers
//! say which file or response it came from.

use std::fmt;

use serde_json::Value;

use crate::digest::Digest;

/// Why the model refused some JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The bytes are not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A manifest or index is JSON but not an object.
    #[error("not a JSON object")]
    NotObject,
    /// A descriptor is JSON but not an object.
    #[error("descriptor is not a JSON object: {found}")]
    DescriptorNotObject {
        /// What was there instead.
        found: Value,
    },
    /// A descriptor without `digest`.
    #[error("descriptor has no \"digest\"")]
    NoDigest,
    /// `digest` is not a string.
    #[error("\"digest\" is not a string")]
    DigestNotString,
    /// `digest` is a string but not a valid digest.
    #[error("{source}")]
    BadDigest {
        /// Why the digest parser refused it.
        source: Box<crate::error::Error>,
    },
    /// `size` is not a non-negative integer.
    #[error("\"size\" must be a non-negative integer, found {found}")]
    BadSize {
        /// What was there instead.
        found: Value,
    },
    /// A descriptor without `size`.
    #[error("descriptor {digest} has no \"size\"")]
    NoSize {
        /// The descriptor's digest.
        digest: Digest,
    },
    /// A descriptor field that must be a string is not one.
    #[error("descriptor {digest}: \"{field}\" is not a string")]
    FieldNotString {
        /// The descriptor's digest.
        digest: Digest,
        /// `mediaType`, `artifactType` or `data`.
        field: &'static str,
    },
    /// A descriptor's annotation is not a string.
    #[error("descriptor {digest}: annotation {key:?} is not a string")]
    AnnotationNotString {
        /// The descriptor's digest.
        digest: Digest,
        /// The annotation's key.
        key: String,
    },
    /// A descriptor's `annotations` is not an object.
    #[error("descriptor {digest}: \"annotations\" is not an object")]
    AnnotationsNotObject {
        /// The descriptor's digest.
        digest: Digest,
    },
    /// A descriptor's `urls` is not a list of strings.
    #[error("descriptor {digest}: \"urls\" is not a list of strings")]
    UrlsNotStrings {
        /// The descriptor's digest.
        digest: Digest,
    },
    /// A descriptor's `platform` does not have the platform's shape.
    #[error("descriptor {digest}: platform: {source}")]
    BadPlatform {
        /// The descriptor's digest.
        digest: Digest,
        /// What the platform's reader said.
        source: serde_json::Error,
    },
    /// A platform given as text is not `os/arch[/variant]`.
    #[error("platform {input:?} is not os/arch[/variant]")]
    PlatformSyntax {
        /// The text given.
        input: String,
    },
    /// `schemaVersion` is not 2.
    #[error("schemaVersion must be 2, found {found}")]
    SchemaVersion {
        /// What was there instead.
        found: Value,
    },
    /// A manifest without `schemaVersion`.
    #[error("schemaVersion is missing")]
    NoSchemaVersion,
    /// A top-level field that must be a string is not one.
    #[error("\"{field}\" is not a string")]
    NotString {
        /// `mediaType` or `artifactType`.
        field: &'static str,
    },
    /// A field that must be a list is not one.
    #[error("\"{field}\" is not a list")]
    NotList {
        /// `manifests` or `layers`.
        field: &'static str,
    },
    /// A descriptor inside a manifest or index is invalid.
    #[error("{}: {source}", Position(field, *index))]
    At {
        /// The field holding the descriptor (`manifests`, `config`, `layers`, `subject`).
        field: &'static str,
        /// Its position, when the field is a list.
        index: Option<usize>,
        /// What is wrong with it.
        source: Box<ModelError>,
    },
    /// A top-level annotation is not a string.
    #[error("annotation {key:?} is not a string")]
    TopAnnotationNotString {
        /// The annotation's key.
        key: String,
    },
    /// JSON read as an image manifest has `manifests`.
    #[error("has \"manifests\": this is an index, not an image manifest")]
    IndexNotManifest,
    /// An image manifest without `config`.
    #[error("\"config\" is missing")]
    NoConfig,
    /// An image manifest whose `layers` is absent or not a list.
    #[error("\"layers\" is missing or not a list")]
    NoLayers,
    /// An image manifest whose `annotations` is not an object of strings.
    #[error("\"annotations\" is not an object of strings")]
    AnnotationsNotStrings,
    /// An index blob without `manifests`.
    #[error("\"manifests\" is missing")]
    NoManifests,
    /// A media type that names no kind of manifest.
    #[error("{media_type:?} is not a manifest media type")]
    NotManifestType {
        /// The media type given.
        media_type: String,
    },
}

impl ModelError {
    /// This error, as found in the descriptor at `field` (`index` in a list).
    pub(crate) fn at(self, field: &'static str, index: Option<usize>) -> Self {
        ModelError::At {
            field,
            index,
            source: Box::new(self),
        }
    }
}

/// `field` or `field[index]`.
struct Position(&'static str, Option<usize>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(i) => write!(f, "{}[{i}]", self.0),
            None => f.write_str(self.0),
        }
    }
}
