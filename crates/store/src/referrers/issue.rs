//! What a scan finds wrong: records and blobs that disagree.

use std::fmt;

use super::Convention;
use crate::digest::Digest;

/// Something in the layout that disagrees with the `subject` fields of its blobs, or that a
/// reader of one convention would get wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Issue {
    /// A response or fallback index for `subject` does not list `referrer`.
    RecordMissing {
        /// The convention of the record.
        convention: Convention,
        /// The subject concerned.
        subject: Digest,
        /// The referrer concerned.
        referrer: Digest,
    },
    /// A response or fallback index for `subject` lists `referrer`, whose blob names another
    /// subject (or none, or is absent).
    RecordWrong {
        /// The convention of the record.
        convention: Convention,
        /// The subject digest, or the fallback tag, the record is for.
        subject: String,
        /// The referrer concerned.
        referrer: Digest,
        /// The subject the referrer's blob names (`None`: none, or the blob is absent).
        actual: Option<Digest>,
    },
    /// The layout keeps records in `convention`, but this referrer has none there.
    Unrecorded {
        /// The convention of the record.
        convention: Convention,
        /// The subject concerned.
        subject: Digest,
        /// The referrer concerned.
        referrer: Digest,
    },
    /// An entry annotated as a response is not an index.
    ResponseNotIndex {
        /// The `index.json` entry concerned.
        entry: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A response entry's subject annotation is not a valid digest.
    ResponseBadSubject {
        /// The `index.json` entry concerned.
        entry: Digest,
        /// The annotation value as written.
        value: String,
    },
    /// A tag shaped like a fallback tag points at something other than an index.
    FallbackNotIndex {
        /// The tag as written.
        tag: String,
        /// The `index.json` entry concerned.
        entry: Digest,
        /// Its media type.
        media_type: String,
    },
    /// `io.containerd.manifest.subject` disagrees with the blob's `subject`.
    AnnotationDisagrees {
        /// The referrer concerned.
        referrer: Digest,
        /// The subject the annotation names.
        annotated: String,
        /// The subject the blob names (`None`: none).
        actual: Option<Digest>,
    },
    /// The subject's blob is not in the layout.
    SubjectMissing {
        /// The subject concerned.
        subject: Digest,
        /// Its referrers.
        referrers: Vec<Digest>,
    },
    /// The `subject` descriptor's size or media type differs from the subject blob.
    SubjectMismatch {
        /// The referrer concerned.
        referrer: Digest,
        /// The subject concerned.
        subject: Digest,
        /// The descriptor field that differs.
        field: &'static str,
        /// What the referrer's `subject` says.
        written: String,
        /// What the subject blob has.
        actual: String,
    },
    /// Found only by scanning `blobs/`: no reader that starts from index.json sees it.
    OnlyDeepScan {
        /// The referrer concerned.
        referrer: Digest,
        /// The subject it names.
        subject: Digest,
    },
    /// A manifest's `subject` is unusable (invalid digest or not a descriptor).
    BadSubject {
        /// The manifest whose `subject` is unusable.
        manifest: Digest,
        /// Why, for people.
        reason: String,
    },
    /// A record lists a referrer whose blob is absent.
    ReferrerBlobMissing {
        /// The referrer concerned.
        referrer: Digest,
        /// The convention that lists it.
        via: Convention,
    },
    /// A manifest blob that should be readable is not.
    UnreadableManifest {
        /// The blob concerned.
        digest: Digest,
        /// Why, for people.
        reason: String,
    },
    /// Two entries carry the same tag with different digests.
    AmbiguousTag {
        /// The tag as written.
        tag: String,
        /// The digests it points to.
        digests: Vec<Digest>,
    },
}

impl Issue {
    /// A stable kebab-case name for JSON output and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Issue::RecordMissing { .. } => "record-missing",
            Issue::RecordWrong { .. } => "record-wrong",
            Issue::Unrecorded { .. } => "unrecorded",
            Issue::ResponseNotIndex { .. } => "response-not-index",
            Issue::ResponseBadSubject { .. } => "response-bad-subject",
            Issue::FallbackNotIndex { .. } => "fallback-not-index",
            Issue::AnnotationDisagrees { .. } => "annotation-disagrees",
            Issue::SubjectMissing { .. } => "subject-missing",
            Issue::SubjectMismatch { .. } => "subject-mismatch",
            Issue::OnlyDeepScan { .. } => "only-deep-scan",
            Issue::BadSubject { .. } => "bad-subject",
            Issue::ReferrerBlobMissing { .. } => "referrer-blob-missing",
            Issue::UnreadableManifest { .. } => "unreadable-manifest",
            Issue::AmbiguousTag { .. } => "ambiguous-tag",
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::RecordMissing {
                convention,
                subject,
                referrer,
            } => write!(
                f,
                "the {} record for {subject} does not list its referrer {referrer}",
                convention.as_str()
            ),
            Issue::RecordWrong {
                convention,
                subject,
                referrer,
                actual,
            } => match actual {
                Some(a) => write!(
                    f,
                    "the {} record for {subject} lists {referrer}, whose subject is {a}",
                    convention.as_str()
                ),
                None => write!(
                    f,
                    "the {} record for {subject} lists {referrer}, which has no subject",
                    convention.as_str()
                ),
            },
            Issue::Unrecorded {
                convention,
                subject,
                referrer,
            } => write!(
                f,
                "referrer {referrer} of {subject} has no {} record, though the layout uses that convention",
                convention.as_str()
            ),
            Issue::ResponseNotIndex { entry, media_type } => {
                write!(
                    f,
                    "referrers-response entry {entry} is not an index (mediaType {media_type:?})"
                )
            }
            Issue::ResponseBadSubject { entry, value } => {
                write!(
                    f,
                    "referrers-response entry {entry} names subject {value:?}, which is not a valid digest"
                )
            }
            Issue::FallbackNotIndex {
                tag,
                entry,
                media_type,
            } => write!(
                f,
                "tag {tag:?} looks like a referrers fallback tag but points at {entry}, which is not an index (mediaType {media_type:?})"
            ),
            Issue::AnnotationDisagrees {
                referrer,
                annotated,
                actual,
            } => match actual {
                Some(a) => write!(
                    f,
                    "entry {referrer} is annotated with subject {annotated} but its blob's subject is {a}"
                ),
                None => write!(
                    f,
                    "entry {referrer} is annotated with subject {annotated} but its blob has no subject"
                ),
            },
            Issue::SubjectMissing { subject, referrers } => write!(
                f,
                "subject {subject} is not in the layout ({} point{} at it)",
                if referrers.len() == 1 {
                    "1 referrer".to_string()
                } else {
                    format!("{} referrers", referrers.len())
                },
                if referrers.len() == 1 { "s" } else { "" }
            ),
            Issue::SubjectMismatch {
                referrer,
                subject,
                field,
                written,
                actual,
            } => write!(
                f,
                "referrer {referrer} describes its subject {subject} with {field} {written}, but the blob has {actual}"
            ),
            Issue::OnlyDeepScan { referrer, subject } => write!(
                f,
                "referrer {referrer} of {subject} is reachable from nothing in index.json (found by --deep only)"
            ),
            Issue::BadSubject { manifest, reason } => {
                write!(f, "manifest {manifest} has an unusable subject: {reason}")
            }
            Issue::ReferrerBlobMissing { referrer, via } => {
                write!(
                    f,
                    "a {} record lists {referrer}, whose blob is missing",
                    via.as_str()
                )
            }
            Issue::UnreadableManifest { digest, reason } => {
                write!(f, "manifest {digest} cannot be read: {reason}")
            }
            Issue::AmbiguousTag { tag, digests } => {
                let list: Vec<String> = digests.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "tag {tag:?} is on entries with different digests: {}",
                    list.join(", ")
                )
            }
        }
    }
}
