//! The library's one error type. Every variant names what is at fault (a file, a digest, a
//! reference) so the CLI can print it as is and map it to an exit code.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::digest::Digest;
use crate::layout::LockHolder;
use crate::reference::Reference;

/// Everything that can go wrong in `ocistow-store`.
///
/// Callers match on the variant; the `Display` text is meant for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: io::Error,
    },

    /// Reading or writing a stream the caller gave (not a file the library opened) failed.
    #[error("{what}: {source}")]
    Stream {
        /// What the stream is.
        what: Subject,
        #[source]
        /// The underlying error.
        source: io::Error,
    },

    /// The directory is not an OCI layout (no `oci-layout`, a malformed one, or another version).
    #[error("{path}: not an OCI image layout: {reason}")]
    NotALayout {
        /// The file or directory concerned.
        path: PathBuf,
        /// Why, for people.
        reason: String,
    },

    /// A file of the layout (`index.json`, a blob) does not parse or breaks the spec.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file or directory concerned.
        path: PathBuf,
        /// Why, for people.
        reason: String,
    },

    /// A string that should be a digest does not follow the digest grammar.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The string as given.
        input: String,
        /// Why, for people.
        reason: String,
    },

    /// The digest is well-formed but its algorithm cannot be computed here.
    #[error(
        "digest algorithm {algorithm:?} is not supported for writing or verifying (only sha256 and sha512)"
    )]
    UnsupportedAlgorithm {
        /// The algorithm part of the digest.
        algorithm: String,
    },

    /// Content does not hash to the digest it was declared with.
    #[error("{what}: digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// What was checked (a blob, a manifest, a named input).
        what: Box<Subject>,
        /// What was declared.
        expected: Digest,
        /// What the content turned out to be.
        actual: Digest,
    },

    /// Content is not the size it was declared with.
    #[error("{what}: size mismatch: expected {expected} bytes, found {actual}")]
    SizeMismatch {
        /// What was checked (a blob, a manifest, a named input).
        what: Box<Subject>,
        /// What was declared.
        expected: u64,
        /// What the content turned out to be.
        actual: u64,
    },

    /// A reference, tag, digest or blob is absent.
    #[error("{what} not found{hint}")]
    NotFound {
        /// What was looked for.
        what: Subject,
        /// Extra advice appended to the message (may be empty).
        hint: String,
    },

    /// A reference matches more than one thing and we will not guess.
    #[error(
        "{what} is ambiguous: it matches {}",
        candidates.iter().map(Reference::display).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        /// What was asked for (a tag of a layout, a plain layout directory).
        what: Subject,
        /// Everything it matches, each as a reference that names it alone.
        candidates: Vec<Reference>,
    },

    /// A reference string does not parse.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference {
        /// The string as given.
        input: String,
        /// Why, for people.
        reason: String,
    },

    /// JSON given as a manifest or index is not one.
    #[error("{what}: not a valid {kind}: {reason}")]
    InvalidManifest {
        /// What was checked (a blob, the bytes given).
        what: Subject,
        /// What it should have been.
        kind: ManifestKind,
        /// Why, for people.
        reason: String,
    },

    /// Any other input a caller supplied is unusable.
    #[error("{0}")]
    InvalidInput(String),

    /// Someone (another process, or another thread of this one) holds the layout's lock for
    /// longer than we are willing to wait.
    #[error("{path}: timed out after {waited:?} waiting for the layout lock held by {holder}")]
    Locked {
        /// The file or directory concerned.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
        /// Who held the lock when the wait ended.
        holder: LockHolder,
    },

    /// The calling thread already holds this lock in a conflicting mode (a push pin held while
    /// calling gc, say): waiting would only wait for itself, so the call fails at once.
    #[error("{path}: this thread already holds this lock; waiting for it would never end")]
    LockHeldByThisProcess {
        /// The lock file.
        path: PathBuf,
    },

    /// A path that must be a regular file (a blob, `index.json`, `oci-layout`) is something
    /// else. Opened without blocking, so a FIFO is reported instead of hanging.
    #[error("{path}: is {kind}, not a regular file")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is instead: "a FIFO", "a directory", "a device", "a socket".
        kind: &'static str,
    },

    /// A file is larger than ocistow reads into memory, or than its descriptor declares.
    #[error("{path}: more than {limit} bytes{why}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most that was allowed.
        limit: u64,
        /// Why the limit applies (may be empty).
        why: &'static str,
    },

    /// An archive read as a stream has a member that nothing before it declares, and staging
    /// it would take what is staged undeclared past the import's limit; nothing was written
    /// of it, and nothing was imported.
    #[error(
        "{member}: {size} bytes that no descriptor before it declares, past the {limit} bytes an import from a stream stages undeclared; nothing was imported (import from a file, which is read twice, or raise the limit with --undeclared-limit)"
    )]
    UndeclaredTooLarge {
        /// The member.
        member: Subject,
        /// Its size, by its tar header.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// Recording a referrer in tag mode would overwrite a user's tag: an index tagged exactly
    /// with the subject's fallback tag that is not a referrers record of it.
    #[error(
        "tag {tag:?} names an index that is not a referrers record of {subject}; refusing to overwrite it (record in annotation or response mode, or move the tag)"
    )]
    TagIsNotARecord {
        /// The tag, `sha256-<hex>`.
        tag: String,
        /// The subject whose referrer was to be recorded.
        subject: Digest,
    },

    /// The operation would overwrite something the caller did not ask to replace.
    #[error("{0}")]
    Conflict(Conflict),

    /// `pull` refuses what a layer would write (outside the output directory, through a
    /// symlink, a link, a device or a fifo); nothing was written.
    #[error("layer {layer}: {entry}: {reason}; refusing to pull it (nothing was written)")]
    RefusedEntry {
        /// The layer holding the entry (or titled with it).
        layer: Digest,
        /// The entry's path inside the output directory, as the layer names it.
        entry: PathBuf,
        /// Why it is refused.
        reason: String,
    },
}

/// What an error is about: the thing a caller can look at or name again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// A file or directory.
    Path(PathBuf),
    /// A blob, by digest.
    Blob(Digest),
    /// A blob of the layout at `layout`.
    BlobIn {
        /// The blob's digest.
        digest: Digest,
        /// The layout's directory.
        layout: PathBuf,
    },
    /// A manifest, by digest.
    Manifest(Digest),
    /// A layer of an artifact, by digest.
    Layer(Digest),
    /// A tag of the layout at `layout`.
    Tag {
        /// The tag.
        tag: String,
        /// The layout's directory.
        layout: PathBuf,
    },
    /// Any top-level entry of the layout at `layout` (a reference that names no tag or digest).
    Entry {
        /// The layout's directory.
        layout: PathBuf,
    },
    /// A platform of an index.
    Platform {
        /// The platform as asked for (`os/arch[/variant]`).
        platform: String,
        /// The index searched.
        index: Digest,
    },
    /// A reference (a layout's or a registry's) as it reads.
    Reference(String),
    /// A member of an archive being imported; the archive is refused as a whole.
    ArchiveEntry {
        /// The archive, as the caller named it.
        archive: String,
        /// The member's path inside it.
        entry: PathBuf,
    },
    /// An input the caller named: a stream, an archive, a member of one.
    Input {
        /// The caller's name for it.
        name: String,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Path(p) => write!(f, "{}", p.display()),
            Subject::Blob(d) => write!(f, "blob {d}"),
            Subject::BlobIn { digest, layout } => {
                write!(f, "blob {digest} in {}", layout.display())
            }
            Subject::Manifest(d) => write!(f, "manifest {d}"),
            Subject::Layer(d) => write!(f, "layer {d}"),
            Subject::Tag { tag, layout } => write!(f, "tag {tag:?} in {}", layout.display()),
            Subject::Entry { layout } => write!(f, "an entry in {}", layout.display()),
            Subject::Platform { platform, index } => {
                write!(f, "platform {platform} in index {index}")
            }
            Subject::Reference(r) => f.write_str(r),
            Subject::ArchiveEntry { archive, entry } => {
                write!(
                    f,
                    "{archive}: entry \"{}\" (the archive was refused)",
                    entry.display()
                )
            }
            Subject::Input { name } => f.write_str(name),
        }
    }
}

/// What a manifest was expected to be ([`Error::InvalidManifest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestKind {
    /// An image manifest (or a manifest of no known type).
    Manifest,
    /// An image index.
    Index,
    /// A manifest of the media type it was given or declared with.
    MediaType(String),
}

impl ManifestKind {
    /// An index for an index media type, else a manifest.
    pub(crate) fn of_media_type(media_type: &str) -> Self {
        if crate::model::media::is_index(media_type) {
            ManifestKind::Index
        } else {
            ManifestKind::Manifest
        }
    }
}

impl fmt::Display for ManifestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ManifestKind::Manifest => "manifest",
            ManifestKind::Index => "index",
            ManifestKind::MediaType(mt) => mt,
        })
    }
}

/// Why an operation would overwrite or contradict what is there ([`Error::Conflict`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// A directory to make a layout of (by `init` or an import) holds other files.
    #[error(
        "{}: directory is not empty and has no oci-layout file; refusing to {}",
        dir.display(),
        if *import { "import into it" } else { "turn it into a layout" }
    )]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// Whether an import (rather than `init`) was refused.
        import: bool,
    },
    /// Deleting a manifest would leave its referrers without their subject.
    #[error(
        "{manifest} has referrers ({}); delete them first or pass --with-referrers",
        list(referrers)
    )]
    HasReferrers {
        /// The manifest to delete.
        manifest: Digest,
        /// Its direct referrers.
        referrers: Vec<Digest>,
    },
    /// One tag would name two digests in an export.
    #[error("the export would list tag {tag:?} for two digests, {first} and {second}")]
    TagForTwoDigests {
        /// The tag.
        tag: String,
        /// The digest listed first.
        first: Digest,
        /// The other digest.
        second: Digest,
    },
    /// An archive's tags name other digests than the destination's.
    #[error(
        "tags conflict: {}; nothing was imported (use --force to let the archive's tags replace them)",
        tags.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Tags {
        /// Each conflicting tag.
        tags: Vec<TagConflict>,
    },
    /// The destination directory appeared while an import staged the archive.
    #[error("{}: appeared while the archive was imported; nothing was imported", dir.display())]
    Appeared {
        /// The destination directory.
        dir: PathBuf,
    },
    /// A pull that keeps old files would replace files with other content.
    #[error(
        "existing files with other content: {}; not replaced (keep-old-files), nothing was written",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    ExistingFiles {
        /// The files, as they would be written.
        paths: Vec<PathBuf>,
    },
    /// Other writers kept changing `index.json` while gc tried to sweep.
    #[error(
        "{}: index.json kept changing while gc ran ({attempts} attempts); run gc again",
        layout.display()
    )]
    IndexKeptChanging {
        /// The layout's directory.
        layout: PathBuf,
        /// How many times gc tried.
        attempts: usize,
    },
}

/// A tag an archive and its destination give different digests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{tag:?} is {destination} in the destination but {archive} in the archive")]
pub struct TagConflict {
    /// The tag.
    pub tag: String,
    /// What the destination's tag names.
    pub destination: Digest,
    /// What the archive's tag names.
    pub archive: Digest,
}

fn list(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`; every I/O call in the library goes through this so that
/// no error reaches a user without the file it concerns.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl Subject {
    /// A failed read or write of the stream this subject names.
    pub(crate) fn stream_error(&self, source: io::Error) -> Error {
        Error::Stream {
            what: self.clone(),
            source,
        }
    }
}

impl Error {
    /// "Not found" for `what`, with no hint.
    pub fn not_found(what: Subject) -> Self {
        Error::NotFound {
            what,
            hint: String::new(),
        }
    }
}
