//! Referrers: the five conventions tools use to record them in a layout (see
//! `docs/referrers.md`), one scan that reads them all into a graph, and the writers and converter
//! for ocistow's three modes.
//!
//! The one source of truth is the `subject` field inside a manifest blob. Everything in
//! `index.json` (untagged entries, fallback tags, referrers responses, subject annotations) is a
//! locator that may be stale, partial or missing; the scan reports where locators and blobs disagree.

mod facts;
mod graph;
mod issue;
#[cfg(test)]
mod prop_tests;
mod scan;
pub(crate) mod write;

pub use facts::FACTS_FILE;
pub(crate) use facts::FACTS_TEMP_PREFIX;
pub use graph::{Conventions, Graph, Node, Referrer};
pub use issue::Issue;
pub use scan::ScanOptions;
pub use write::{AttachOutcome, ConvertReport, Mode, ResponseKey, mode_in_index};

use crate::digest::Digest;
use crate::model::{Descriptor, media};

/// Annotation keys of the conventions.
pub mod keys {
    /// Convention C as proposed in image-spec PR #1171.
    pub const OCI_RESPONSE_SUBJECT: &str = "org.opencontainers.image.referrer.subject";
    /// Set on `index.json` (`"true"`) when responses are the layout's referrer records (PR #1171).
    pub const OCI_RESPONSE_CONVERT: &str = "org.opencontainers.image.referrer.convert";
    /// Convention C as olareg writes it.
    pub const OLAREG_RESPONSE_SUBJECT: &str = "org.olareg.referrer.subject";
    /// The olareg spelling of the convert flag.
    pub const OLAREG_RESPONSE_CONVERT: &str = "org.olareg.referrer.convert";
    /// Convention D: containerd >= 2.2 and docker save >= 29.1.
    pub const CONTAINERD_SUBJECT: &str = "io.containerd.manifest.subject";
    /// Convention E: `BuildKit` attestations.
    pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
    /// Convention E: the digest of the manifest an attestation is for.
    pub const DOCKER_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
    /// Convention E: the value of the reference type of an attestation.
    pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
}

/// How a referrer relation is recorded (or was found).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Convention {
    /// A: a top-level entry whose blob has a `subject`, with no other record (oras).
    Plain,
    /// B: listed in a fallback-tag index `<alg>-<encoded>` (regctl).
    FallbackTag,
    /// C: listed in a referrers-response index annotated with the subject (olareg, PR #1171).
    Response,
    /// D: a top-level entry annotated `io.containerd.manifest.subject` (containerd, docker save).
    SubjectAnnotation,
    /// E: a `BuildKit` attestation inside an image index.
    Attestation,
    /// Reachable through an index but not recorded anywhere as a referrer.
    Nested,
    /// Found only by scanning every blob under `blobs/`.
    DeepScan,
}

impl Convention {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::Plain => "plain",
            Convention::FallbackTag => "fallback-tag",
            Convention::Response => "response",
            Convention::SubjectAnnotation => "subject-annotation",
            Convention::Attestation => "attestation",
            Convention::Nested => "nested",
            Convention::DeepScan => "deep-scan",
        }
    }
}

/// The fallback tag for a subject, per the distribution spec: `<alg>-<encoded>`, the algorithm
/// truncated to 32 characters and the encoded part to 64, characters not allowed in a tag
/// replaced by `-`.
///
/// ```
/// use ocistow_store::{Digest, referrers::fallback_tag};
/// let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".parse().unwrap();
/// assert_eq!(fallback_tag(&d), "sha256-44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
/// ```
pub fn fallback_tag(subject: &Digest) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "{}-{}",
        clean(subject.algorithm(), 32),
        clean(subject.encoded(), 64)
    )
}

/// True when a ref name is exactly the fallback tag of a digest of a known algorithm:
/// `sha256-<64 hex>`, or `sha512-<the first 64 hex>` (the distribution spec truncates). Any other
/// name (`build-<hex>`, regclient's `sha256-<hex>.<x>.meta`) is a user's tag.
///
/// The name is only the first of three conditions for a fallback-tag record; see
/// [`Graph::is_fallback_record`] for the other two.
///
/// ```
/// use ocistow_store::referrers::looks_like_fallback_tag;
/// let hex = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// assert!(looks_like_fallback_tag(&format!("sha256-{hex}")));
/// assert!(looks_like_fallback_tag(&format!("sha512-{hex}")));
/// assert!(!looks_like_fallback_tag(&format!("build-{hex}")));
/// assert!(!looks_like_fallback_tag(&format!("sha256-{hex}.sig")));
/// ```
pub fn looks_like_fallback_tag(name: &str) -> bool {
    let Some((alg, enc)) = name.split_once('-') else {
        return false;
    };
    matches!(alg, "sha256" | "sha512")
        && enc.len() == 64
        && enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What an `index.json` entry is, as far as referrers go.
pub(crate) enum EntryKind {
    Response { subject: String },
    Fallback { tag: String },
    SubjectAnnotation { subject: String },
    Other,
}

/// Classifies an entry by its annotations and media type alone.
pub(crate) fn classify(entry: &Descriptor) -> EntryKind {
    for key in [keys::OCI_RESPONSE_SUBJECT, keys::OLAREG_RESPONSE_SUBJECT] {
        if let Some(s) = entry.annotation(key) {
            return EntryKind::Response {
                subject: s.to_string(),
            };
        }
    }
    if let Some(tag) = entry.ref_name()
        && looks_like_fallback_tag(tag)
        && media::is_index(entry.media_type())
    {
        return EntryKind::Fallback {
            tag: tag.to_string(),
        };
    }
    if let Some(s) = entry.annotation(keys::CONTAINERD_SUBJECT) {
        return EntryKind::SubjectAnnotation {
            subject: s.to_string(),
        };
    }
    EntryKind::Other
}
