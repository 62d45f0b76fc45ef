//! The crate's one error type. Each variant names its subject (a URL, a registry, a digest, a
//! file) so the CLI can print it as is.

use std::path::PathBuf;

use ocistow_store::Digest;

/// Everything that can go wrong talking to a registry or copying to and from one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `docker://` reference does not parse, or names what the operation cannot take.
    #[error("invalid registry reference {input:?}: {problem}")]
    InvalidReference {
        /// The reference as given.
        input: String,
        /// What is wrong with it.
        problem: ReferenceProblem,
    },

    /// The registry could not be reached (refused, reset, TLS failure, timeout), after retries.
    #[error("{method} {url}: {source}")]
    Connect {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// What the HTTP stack reported.
        #[source]
        source: Box<ureq::Error>,
    },

    /// The registry refused the credentials (or asked for some and none were given).
    #[error("{registry}: authentication failed: {reason}")]
    Unauthorized {
        /// `HOST[:PORT]`.
        registry: String,
        /// What the registry said, or which credentials were missing.
        reason: String,
    },

    /// The registry answered with an error status.
    #[error("{method} {url}: {status}{}{message}", if message.is_empty() { "" } else { ": " })]
    Status {
        /// The request's method.
        method: &'static str,
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The first distribution error code in the body (`MANIFEST_UNKNOWN`, ...), if any.
        code: Option<String>,
        /// The registry's message, or a hint of ours.
        message: String,
    },

    /// What the registry sent is not what was asked for or does not parse.
    #[error("{url}: {reason}")]
    BadResponse {
        /// The URL that answered.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },

    /// Content from the registry does not hash to its digest.
    #[error("{url}: content hashes to {actual}, not to the expected {expected}")]
    DigestMismatch {
        /// The URL that answered.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },

    /// An answer exceeded a limit (a manifest, a page count, an error body).
    #[error("{url}: {what} exceeds the limit of {limit}")]
    TooLarge {
        /// The URL that answered.
        url: String,
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: u64,
    },

    /// The registry cannot store this content, and nothing of it was tagged.
    #[error("{registry} cannot store {digest}: {reason}")]
    Unsupported {
        /// `HOST[:PORT]`.
        registry: String,
        /// The refused manifest or blob.
        digest: Digest,
        /// Why, and what to do about it.
        reason: String,
    },

    /// Credentials or a CA file could not be read.
    #[error("{path}: {reason}")]
    Config {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A credential helper failed.
    #[error("docker-credential-{helper} for {registry}: {reason}")]
    CredentialHelper {
        /// The helper's name (`pass`, `desktop`, ...).
        helper: String,
        /// The registry asked about.
        registry: String,
        /// What went wrong.
        reason: String,
    },

    /// A layout operation failed.
    #[error(transparent)]
    Store(#[from] ocistow_store::Error),
}

/// What is wrong with a `docker://` reference ([`Error::InvalidReference`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceProblem {
    /// It does not start with `docker://`.
    #[error("a registry reference starts with docker://")]
    NoScheme,
    /// No `/` separates the host from the repository.
    #[error("expected HOST[:PORT]/REPOSITORY")]
    NoRepository,
    /// The host part is empty.
    #[error("no registry host")]
    NoHost,
    /// The port is not a port number.
    #[error("port {port:?} is not a number from 0 to 65535")]
    BadPort {
        /// The port as given.
        port: String,
    },
    /// The host has characters no host name or address has.
    #[error("{host:?} is not a host name or address")]
    BadHost {
        /// The host as given.
        host: String,
    },
    /// The first component reads as a repository name in docker's grammar, not a host.
    #[error("{host:?} does not look like a registry host (write docker://HOST[:PORT]/REPO)")]
    NotARegistryHost {
        /// The host as given.
        host: String,
    },
    /// The tag or the repository breaks the spec's grammar.
    #[error("{0}")]
    Grammar(#[source] ocistow_store::ReferenceProblem),
    /// The digest does not parse.
    #[error("{0}")]
    Digest(#[source] Box<ocistow_store::Error>),
    /// The operation needs a manifest, and the reference names only a repository.
    #[error("name a tag or a digest")]
    NoTagOrDigest,
    /// A copy from a reference that names only a repository.
    #[error("name a tag or a digest to copy")]
    NoTagOrDigestToCopy,
    /// A destination digest that is not the digest of what is copied.
    #[error("the source is {root}, not this digest")]
    NotTheSourceDigest {
        /// The digest of what is copied.
        root: Digest,
    },
    /// A platform asked of a manifest that is not an index.
    #[error("a platform can be chosen only from an index")]
    PlatformOfNonIndex,
    /// A list of tags (`T1,T2`) with an empty one.
    #[error("an empty tag in the list (T1,T2)")]
    EmptyTagInList,
    /// The index has no manifest for the platform asked.
    #[error("the index has no manifest for platform {platform}")]
    NoSuchPlatform {
        /// The platform as asked.
        platform: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
