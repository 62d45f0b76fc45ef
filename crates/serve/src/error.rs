//! Startup errors ([`Error`]) and the registry's error answers (`ApiError`), in the spec's JSON
//! form `{"errors":[{"code","message","detail"}]}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Why the server could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The root directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The root is a layout whose name is not a repository name.
    #[error("{name:?} is not a repository name ({reason}); give one with --name")]
    InvalidName {
        /// The name tried.
        name: String,
        /// Why the grammar refuses it.
        reason: ocistow_store::ReferenceProblem,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime or the socket failed.
    #[error("server: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Results of starting and running the server.
pub type Result<T> = std::result::Result<T, Error>;

/// The error codes of the distribution spec (and distribution's own few more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    PaginationNumberInvalid,
    TagInvalid,
    Unknown,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// One error answer: status, code, message and a detail object.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub detail: Value,
    /// `Content-Range: bytes */SIZE` for an unsatisfiable range.
    pub content_range: Option<u64>,
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
            content_range: None,
        }
    }

    #[must_use]
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn name_unknown(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::NameUnknown,
            "repository name not known to registry",
        )
        .detail(json!({ "name": name }))
    }

    pub fn manifest_unknown(reference: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::ManifestUnknown,
            "manifest unknown",
        )
        .detail(json!({ "reference": reference }))
    }

    pub fn blob_unknown(digest: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::BlobUnknown,
            "blob unknown to registry",
        )
        .detail(json!({ "digest": digest }))
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, Code::DigestInvalid, message)
    }

    pub fn upload_unknown(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::BlobUploadUnknown,
            "blob upload unknown to registry",
        )
        .detail(json!({ "uuid": id }))
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, Code::Unsupported, message)
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unknown,
            "unknown error (see the server's log)",
        )
    }

    /// A store error met while reading or writing `subject` (a reference, digest or name). The
    /// caller maps "not found" itself, since only it knows what was missing; the store's own
    /// message (which names server paths) goes to the log, not to the client.
    pub fn from_store(e: &ocistow_store::Error, subject: &str) -> Self {
        use ocistow_store::Error as E;
        let detail = json!({ "subject": subject });
        let (status, code, message) = match e {
            E::DigestMismatch { .. } => (
                StatusCode::BAD_REQUEST,
                Code::DigestInvalid,
                "provided digest did not match uploaded content",
            ),
            E::InvalidDigest { .. } | E::UnsupportedAlgorithm { .. } => (
                StatusCode::BAD_REQUEST,
                Code::DigestInvalid,
                "invalid or unsupported digest",
            ),
            E::SizeMismatch { .. } => (
                StatusCode::BAD_REQUEST,
                Code::SizeInvalid,
                "provided length did not match content length",
            ),
            E::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                "content is larger than the registry accepts",
            ),
            E::InvalidManifest { reason, .. } => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::ManifestInvalid,
                    "manifest invalid",
                )
                .detail(json!({ "subject": subject, "reason": reason.to_string() }));
            }
            E::InvalidReference { .. } => (
                StatusCode::BAD_REQUEST,
                Code::TagInvalid,
                "manifest tag did not match URI",
            ),
            E::Locked { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                Code::TooManyRequests,
                "the layout is locked by another writer; try again",
            ),
            E::NotRegularFile { .. } => (
                StatusCode::NOT_FOUND,
                Code::BlobUnknown,
                "the blob is not a regular file in the layout",
            ),
            E::NotFound { .. } => (StatusCode::NOT_FOUND, Code::BlobUnknown, "not found"),
            _ => return ApiError::internal().detail(detail),
        };
        ApiError::new(status, code, message).detail(detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut entry = json!({ "code": self.code.as_str(), "message": self.message });
        if !self.detail.is_null() {
            entry["detail"] = self.detail;
        }
        let body = serde_json::to_vec(&json!({ "errors": [entry] })).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(size) = self.content_range
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            headers.insert(header::CONTENT_RANGE, v);
        }
        response
    }
}
