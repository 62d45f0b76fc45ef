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
        /// Why.
        reason: LayoutProblem,
    },

    /// A file of the layout (`index.json`, a blob) does not parse or breaks the spec.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file or directory concerned (for an archive being imported, the caller's name
        /// for it).
        path: PathBuf,
        /// What is wrong with it.
        reason: Corruption,
    },

    /// A string that should be a digest does not follow the digest grammar.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest {
        /// The string as given.
        input: String,
        /// Which rule of the grammar it breaks.
        reason: DigestProblem,
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

    /// A reference string does not parse, or names what the operation cannot take.
    #[error("invalid reference {input:?}: {problem}")]
    InvalidReference {
        /// The string as given.
        input: String,
        /// What is wrong with it.
        problem: ReferenceProblem,
    },

    /// JSON given as a manifest or index is not one.
    #[error("{what}: not a valid {kind}: {reason}")]
    InvalidManifest {
        /// What was checked (a blob, the bytes given).
        what: Subject,
        /// What it should have been.
        kind: ManifestKind,
        /// Why it is not one.
        reason: ManifestProblem,
    },

    /// Any other input a caller supplied (a file to push, an option, a descriptor's data) is
    /// unusable; the problem names the input at fault.
    #[error("{0}")]
    InvalidInput(InputProblem),

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
        reason: Refusal,
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

/// What is wrong with an input the caller supplied ([`Error::InvalidInput`]). Each variant names
/// the input at fault; wrapped errors are its `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputProblem {
    /// A name (a referrers mode, a response key) is not one of the accepted names.
    #[error("{what} {given:?} is not one of {}", choices.join(", "))]
    NotOneOf {
        /// What the name is for.
        what: &'static str,
        /// The name as given.
        given: String,
        /// The names accepted.
        choices: Vec<&'static str>,
    },
    /// A referrers record in tag mode would be larger than a manifest may be.
    #[error(
        "the referrers record for {subject} would list {referrers} referrers in {bytes} bytes, \
         more than a manifest may hold ({limit} bytes); record them in annotation mode instead"
    )]
    RecordTooLarge {
        /// The subject whose record it is.
        subject: Digest,
        /// How many referrers it would list.
        referrers: usize,
        /// Its size.
        bytes: usize,
        /// The most a manifest may hold.
        limit: u64,
    },
    /// A descriptor's `data` field is not base64.
    #[error("descriptor {digest}: data is not base64: {source}")]
    DataNotBase64 {
        /// The descriptor's digest.
        digest: Digest,
        /// What the decoder refused.
        #[source]
        source: base64::DecodeError,
    },
    /// A descriptor's `data` field does not hash to its digest.
    #[error("descriptor {digest}: its data field does not hash to its digest")]
    DataDoesNotMatchDigest {
        /// The descriptor's digest.
        digest: Digest,
    },
    /// A path that must stay inside a directory is absolute or climbs out of it.
    #[error("{}: not a plain relative path", path.display())]
    NotPlainRelativePath {
        /// The path as given.
        path: PathBuf,
    },
    /// A file to push does not exist.
    #[error("{}: no such file or directory", path.display())]
    NoSuchFile {
        /// The path as given.
        path: PathBuf,
    },
    /// A file to push cannot be looked at.
    #[error("{}: {source}", path.display())]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file to push is neither a regular file nor a directory.
    #[error("{}: not a regular file or directory", path.display())]
    NotFileOrDirectory {
        /// The path as given.
        path: PathBuf,
    },
    /// Two files to push would be pulled under one name.
    #[error("{} and {} would both be pulled as {title:?}", first.display(), second.display())]
    SameTitle {
        /// The file given first.
        first: PathBuf,
        /// The file given second.
        second: PathBuf,
        /// The title both would get.
        title: String,
    },
    /// Layer annotations name a file that is not pushed.
    #[error("annotations are given for {}, which is not pushed", path.display())]
    AnnotationsForUnpushedFile {
        /// The file the annotations name.
        path: PathBuf,
    },
    /// A push with no file, no config and no artifact type.
    #[error("nothing to push: give files, a config or an artifact type")]
    NothingToPush,
    /// A config to push is a directory.
    #[error("{}: a config must be a file", path.display())]
    ConfigNotAFile {
        /// The path as given.
        path: PathBuf,
    },
    /// A file to push has no file name that could be its title.
    #[error("{}: has no usable file name", path.display())]
    NoFileName {
        /// The path as given.
        path: PathBuf,
    },
    /// A directory to push holds something a tar archive cannot carry.
    #[error(
        "{}: not a regular file, directory or symbolic link; push does not archive it",
        path.display()
    )]
    CannotArchive {
        /// The entry.
        path: PathBuf,
    },
    /// Pulling an index needs a platform to choose one of its manifests.
    #[error(
        "{index} is an index; choose one of its manifests with --platform ({})",
        if platforms.is_empty() { "it lists no platforms".to_string() } else { platforms.join(", ") }
    )]
    IndexNeedsPlatform {
        /// The index.
        index: Digest,
        /// The platforms it lists.
        platforms: Vec<String>,
    },
    /// Two layers of an artifact to pull have the same title.
    #[error("two layers are titled {title:?}")]
    TitledTwice {
        /// The title.
        title: String,
    },
    /// An artifact to pull has no titled layer.
    #[error(
        "{manifest} has no layers with an org.opencontainers.image.title annotation: nothing to pull"
    )]
    NothingToPull {
        /// The artifact's manifest.
        manifest: Digest,
    },
    /// An attach request without a subject.
    #[error("attach needs a subject: set PushRequest::subject")]
    NoSubject,
    /// An export of no entry.
    #[error("nothing to export")]
    NothingToExport,
    /// An export with a Docker `manifest.json` of content that cannot have one.
    #[error("--docker-manifest needs exactly one image manifest with an image config: {0}")]
    DockerManifest(DockerManifestProblem),
    /// An export's output path is a directory.
    #[error("{}: is a directory; give a file name", path.display())]
    OutputIsADirectory {
        /// The path as given.
        path: PathBuf,
    },
    /// A platform was asked of a manifest that is not an index.
    #[error("{manifest} is not an index; --platform applies only to an index")]
    PlatformOfNonIndex {
        /// The manifest.
        manifest: Digest,
    },
}

/// What is wrong with a reference, a ref name, a tag or a repository name
/// ([`Error::InvalidReference`], and the validators of [`crate::reference`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceProblem {
    /// The reference is the empty string.
    #[error("empty")]
    Empty,
    /// Nothing names a layout directory before the `@` or `:`.
    #[error("no layout directory before '{separator}'")]
    NoDirectory {
        /// `@` or `:`.
        separator: char,
    },
    /// `DIR:` with nothing after the colon.
    #[error("empty tag after ':'")]
    EmptyTagAfterColon,
    /// The digest after `@` does not parse.
    #[error("{0}")]
    Digest(#[source] Box<Error>),
    /// A ref name that is empty.
    #[error("a tag cannot be empty")]
    EmptyName,
    /// A ref name with an empty `/`-separated component.
    #[error("{name:?} has an empty path component")]
    EmptyComponent {
        /// The ref name.
        name: String,
    },
    /// A ref name with a separator at the start of a component or next to another.
    #[error("{name:?}: a separator must sit between letters or digits")]
    MisplacedSeparator {
        /// The ref name.
        name: String,
    },
    /// A ref name with a character the grammar does not allow.
    #[error("{name:?}: character {character:?} is not allowed")]
    CharacterNotAllowed {
        /// The ref name.
        name: String,
        /// The first character refused.
        character: char,
    },
    /// A ref name whose component ends with a separator.
    #[error("{name:?} must not end with a separator")]
    EndsWithSeparator {
        /// The ref name.
        name: String,
    },
    /// A tag the distribution spec's tag grammar refuses.
    #[error("tag {tag:?} is not 1 to 128 of [A-Za-z0-9._-] starting with a letter, digit or '_'")]
    NotARegistryTag {
        /// The tag.
        tag: String,
    },
    /// A repository name that is empty.
    #[error("no repository")]
    NoRepository,
    /// A repository name longer than the spec allows.
    #[error("repository name longer than 255 characters")]
    RepositoryTooLong,
    /// A repository name component the spec's grammar refuses.
    #[error(
        "repository component {component:?} is not lowercase letters and digits separated by \
         '.', '_', '__' or '-'"
    )]
    BadRepositoryComponent {
        /// The component.
        component: String,
    },
    /// The reference has another form than the command takes; the sentence says which form
    /// it takes (a fixed text of the caller's, such as "untag needs DIR:TAG").
    #[error("{expected}")]
    WrongForm {
        /// What the command takes.
        expected: &'static str,
    },
    /// A local tag that cannot be a registry tag, given where the tag is carried over to a
    /// registry.
    #[error("the source's tag cannot be a registry tag: {0}; name one")]
    TagNotForRegistry(#[source] Box<ReferenceProblem>),
}

/// Which rule of the digest grammar a string breaks ([`Error::InvalidDigest`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestProblem {
    /// Longer than a digest may be.
    #[error("longer than 255 characters")]
    TooLong,
    /// No `:` between algorithm and encoded part.
    #[error("expected algorithm:encoded")]
    NoColon,
    /// The algorithm part breaks its grammar.
    #[error("algorithm must be lowercase letters and digits, with + . _ - between parts")]
    BadAlgorithm,
    /// The encoded part breaks its grammar.
    #[error("encoded part must be [a-zA-Z0-9=_-]+")]
    BadEncoded,
    /// A known algorithm's encoded part has the wrong length.
    #[error("{algorithm} needs {expected} hex characters, found {found}")]
    WrongLength {
        /// The algorithm.
        algorithm: String,
        /// The length it needs.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A known algorithm's encoded part is not lowercase hex.
    #[error("{algorithm} must be lowercase hex")]
    NotLowercaseHex {
        /// The algorithm.
        algorithm: String,
    },
}

/// Why a directory is not an OCI layout ([`Error::NotALayout`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutProblem {
    /// The directory cannot be looked at.
    #[error("{0}")]
    Unreadable(#[source] io::Error),
    /// It is not a directory.
    #[error("not a directory")]
    NotADirectory,
    /// A file where a layout directory was named.
    #[error("a file, not a layout directory")]
    AFile,
    /// Attaching to a directory that is not a layout yet: it holds no subject.
    #[error(
        "so it holds no subject to attach to, and attach creates no layout (oras would make an \
         empty one, then fail to find the subject); put the subject there first \
         (`ocistow push DIR:TAG FILE...`, `ocistow copy SRC DIR:TAG`)"
    )]
    NoSubjectToAttachTo,
    /// It has no `index.json`.
    #[error("index.json is missing")]
    NoIndex,
    /// It has no `oci-layout` file.
    #[error("oci-layout file is missing")]
    NoOciLayout,
    /// Its `oci-layout` file is not JSON.
    #[error("invalid JSON: {0}")]
    OciLayoutNotJson(#[source] serde_json::Error),
    /// Its `oci-layout` names another version.
    #[error(
        "unsupported imageLayoutVersion {found} (only {})",
        crate::layout::LAYOUT_VERSION
    )]
    UnsupportedVersion {
        /// The version's JSON value as written.
        found: String,
    },
    /// Its `oci-layout` names no version.
    #[error("imageLayoutVersion is missing")]
    NoVersion,
}

/// What is wrong with a file of a layout, or with an archive being imported
/// ([`Error::Corrupt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// `index.json` does not parse as an index.
    #[error("{0}")]
    Index(#[source] crate::model::ModelError),
    /// A referrers record (response or fallback) is an image manifest.
    #[error("a referrers record must be an index, this is an image manifest")]
    RecordNotAnIndex,
    /// A blob declared as a manifest is larger than a manifest may be.
    #[error("{size} bytes is too large for a manifest (at most {limit})")]
    ManifestTooLarge {
        /// Its size.
        size: u64,
        /// The most a manifest may be.
        limit: u64,
    },
    /// A layer's content changed between the checks of a pull and its writes.
    #[error("the layer changed while it was pulled")]
    LayerChanged,
    /// A layer or an archive is not a readable tar archive.
    #[error("{0}")]
    Tar(TarProblem),
    /// A blob the layout has is not the size its verified content has.
    #[error(
        "the layout already has this blob with {found} bytes, but its verified content has {expected} (run fsck)"
    )]
    ExistingBlobSize {
        /// The size on disk.
        found: u64,
        /// The size of the verified content.
        expected: u64,
    },
    /// A blob a copy's destination has is not the size the source declares.
    #[error(
        "the destination already has this blob with {found} bytes, but it should have {expected} (run fsck)"
    )]
    DestinationBlobSize {
        /// The size on disk.
        found: u64,
        /// The size declared.
        expected: u64,
    },
    /// gc cannot read a manifest, so it cannot tell what the manifest keeps.
    #[error(
        "{0}; gc stops because it cannot tell which blobs this manifest keeps (see `ocistow fsck`)"
    )]
    GcCannotRead(#[source] Box<Error>),
    /// An archive being imported is refused.
    #[error("{0}")]
    Archive(Box<ArchiveProblem>),
}

/// Why a tar stream cannot be read ([`Corruption::Tar`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarProblem {
    /// The stream ends inside the archive.
    #[error("truncated archive: {detail}")]
    Truncated {
        /// Where, as the tar reader tells it (free text: it names the header field or member
        /// at fault, in a format with many ways to be cut).
        detail: String,
    },
    /// A header breaks the format.
    #[error("not a valid tar archive: {detail}")]
    Format {
        /// What, as the tar reader tells it (free text, as for `Truncated`).
        detail: String,
    },
}

/// Why an archive is refused by import ([`Corruption::Archive`]). Nothing was imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveProblem {
    /// The input has no byte.
    #[error("the input is empty")]
    Empty,
    /// An xz-compressed archive.
    #[error("xz-compressed archives are not supported (use tar, tar+gzip or tar+zstd)")]
    Xz,
    /// A bzip2-compressed archive.
    #[error("bzip2-compressed archives are not supported (use tar, tar+gzip or tar+zstd)")]
    Bzip2,
    /// Members nothing in the archive references.
    #[error(
        "{} member(s) that nothing in the archive references ({}{}); nothing was imported (skip them with --skip-unreferenced)",
        members.len(),
        members.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(", "),
        if members.len() > 3 { ", ..." } else { "" }
    )]
    Unreferenced {
        /// The members, sorted.
        members: Vec<String>,
    },
    /// `oci-layout` without `index.json`.
    #[error("the archive has oci-layout but no index.json; nothing was imported")]
    NoIndex,
    /// `index.json` without `oci-layout`.
    #[error("the archive has index.json but no oci-layout file; nothing was imported")]
    NoOciLayout,
    /// Neither layout nor docker save archive.
    #[error(
        "neither an OCI layout (oci-layout, index.json) nor a docker save archive (manifest.json); nothing was imported"
    )]
    Unrecognized,
    /// Its `oci-layout` is not JSON.
    #[error("oci-layout is not valid JSON: {0}")]
    OciLayoutNotJson(#[source] serde_json::Error),
    /// Its `oci-layout` names another version, or none.
    #[error(
        "oci-layout has imageLayoutVersion {}, not \"1.0.0\"",
        found.as_deref().unwrap_or("missing")
    )]
    OciLayoutVersion {
        /// The version's JSON value as written, if any.
        found: Option<String>,
    },
    /// A blob named as a manifest is not a valid one.
    #[error(
        "blob {digest} (named by {}) is not a valid {kind}: {reason}; nothing was imported",
        shown_parent(named_by.as_ref())
    )]
    InvalidManifest {
        /// The blob.
        digest: Digest,
        /// The manifest naming it; none for `index.json`.
        named_by: Option<Digest>,
        /// What it should have been.
        kind: ManifestKind,
        /// Why it is not one.
        reason: ManifestProblem,
    },
    /// A manifest of the archive is corrupt.
    #[error(
        "manifest {digest} (named by {}): {reason}; nothing was imported",
        shown_parent(named_by.as_ref())
    )]
    CorruptManifest {
        /// The manifest.
        digest: Digest,
        /// The manifest naming it; none for `index.json`.
        named_by: Option<Digest>,
        /// What is wrong with it.
        reason: Box<Corruption>,
    },
    /// Its `index.json` does not parse as an index.
    #[error("index.json: {0}; nothing was imported")]
    Index(#[source] crate::model::ModelError),
    /// Its `index.json` gives one tag two digests.
    #[error(
        "index.json gives tag {tag:?} to two digests ({first} and {second}); nothing was imported"
    )]
    TagForTwoDigests {
        /// The tag.
        tag: String,
        /// The digest listed first.
        first: Digest,
        /// The other.
        second: Digest,
    },
    /// A member is refused.
    #[error("entry {entry:?} {problem}; the archive was refused and nothing was imported")]
    Entry {
        /// The member's name as the archive writes it.
        entry: String,
        /// Why it is refused.
        problem: EntryProblem,
    },
    /// Data after the end-of-archive marker.
    #[error("the archive has data after its end-of-archive marker; nothing was imported")]
    TrailingData,
    /// The stream ends inside the archive (inside `entry`, if known).
    #[error("{}the archive is truncated; nothing was imported", at(entry.as_deref()))]
    Truncated {
        /// The member being read.
        entry: Option<String>,
    },
    /// The (decompressed) stream cannot be read.
    #[error("{}cannot be read ({source}); nothing was imported", at(entry.as_deref()))]
    Unreadable {
        /// The member being read.
        entry: Option<String>,
        /// What the decoder reported.
        source: io::Error,
    },
    /// A member read into memory is larger than accepted.
    #[error("entry {entry:?} is {size} bytes, more than the {cap} accepted; nothing was imported")]
    EntryTooLarge {
        /// The member.
        entry: String,
        /// Its size.
        size: u64,
        /// The most accepted.
        cap: u64,
    },
    /// A docker save archive's `manifest.json` is unusable.
    #[error("manifest.json: {0}; nothing was imported")]
    DockerManifest(DockerArchiveProblem),
}

fn shown_parent(parent: Option<&Digest>) -> String {
    parent.map_or_else(|| "index.json".to_string(), |d| format!("manifest {d}"))
}

fn at(entry: Option<&str>) -> String {
    entry.map(|p| format!("entry {p:?}: ")).unwrap_or_default()
}

/// Why import refuses a member of an archive ([`ArchiveProblem::Entry`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// Its name names no file.
    #[error("names no file")]
    NamesNoFile,
    /// Its name is not UTF-8.
    #[error("has a name that is not UTF-8")]
    NameNotUtf8,
    /// Its name is absolute.
    #[error("has an absolute path")]
    Absolute,
    /// Its name has a NUL byte or a backslash.
    #[error("has a name with a NUL byte or a backslash")]
    NulOrBackslash,
    /// Its name climbs with `..`.
    #[error("has a path with '..', which could leave the layout")]
    ParentDir,
    /// Two members have one name.
    #[error("appears twice in the archive")]
    Twice,
    /// A directory inside `blobs/<algorithm>/`.
    #[error("is a directory where blobs/<algorithm>/ may only hold blob files")]
    DirectoryInBlobs,
    /// A symbolic link that is not a known alias.
    #[error("is a symbolic link (to {target:?}); links are not allowed")]
    Symlink {
        /// Its target, as written.
        target: String,
    },
    /// A hard link.
    #[error("is a hard link (to {target:?}); links are not allowed")]
    HardLink {
        /// Its target, as written.
        target: String,
    },
    /// Neither a regular file nor a directory.
    #[error("is a {kind}; only regular files and directories are allowed")]
    Kind {
        /// The member's type, as tar names it ("fifo", "character device", ...).
        kind: String,
    },
    /// A blob file whose name is not a digest.
    #[error("is not named by a valid digest ({0})")]
    BadDigest(#[source] Box<Error>),
    /// A blob file of an algorithm ocistow cannot compute.
    #[error("uses the digest algorithm {algorithm:?}, which ocistow cannot verify")]
    UnverifiableAlgorithm {
        /// The algorithm.
        algorithm: String,
    },
    /// A file under `blobs/` that is not `blobs/<algorithm>/<encoded>`.
    #[error("is not a blob file: under blobs/ only blobs/<algorithm>/<encoded> is allowed")]
    NotABlobFile,
}

/// Why a docker save archive's `manifest.json` is unusable ([`ArchiveProblem::DockerManifest`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerArchiveProblem {
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// Not a list.
    #[error("not a list of images")]
    NotAList,
    /// An empty list.
    #[error("lists no image")]
    NoImage,
    /// A path that is not inside the archive.
    #[error("{path:?} is not a path inside the archive")]
    PathOutside {
        /// The path as written.
        path: String,
    },
    /// A path that names no file of the archive.
    #[error("names {path:?}, which is not a file in the archive")]
    NoSuchFile {
        /// The path as written.
        path: String,
    },
    /// An image that is not an object.
    #[error("image {image} is not an object")]
    ImageNotObject {
        /// The image's position in the list.
        image: usize,
    },
    /// An image without `Config`.
    #[error("image {image} has no \"Config\" path")]
    NoConfig {
        /// The image's position in the list.
        image: usize,
    },
    /// A config larger than a manifest may be.
    #[error("config {path:?} is too large")]
    ConfigTooLarge {
        /// The config's path.
        path: String,
    },
    /// A config that is not a JSON object.
    #[error("config {path:?} is not a JSON object")]
    ConfigNotObject {
        /// The config's path.
        path: String,
    },
    /// An image without `Layers`.
    #[error("image {image} has no \"Layers\" list")]
    NoLayers {
        /// The image's position in the list.
        image: usize,
    },
    /// A layer path that is not a string.
    #[error("image {image}: a layer path is not a string")]
    LayerNotString {
        /// The image's position in the list.
        image: usize,
    },
    /// A `LayerSources` value that is not a descriptor.
    #[error("LayerSources of {layer:?}: {source}")]
    LayerSource {
        /// The layer's path.
        layer: String,
        /// Why the descriptor was refused.
        source: crate::model::ModelError,
    },
    /// A `LayerSources` descriptor of a foreign layer without urls.
    #[error("LayerSources gives {layer:?} the digest {digest}, which has no file and no urls")]
    LayerSourceWithoutUrls {
        /// The layer's path.
        layer: String,
        /// The digest given.
        digest: Digest,
    },
    /// A `RepoTags` item that is not a string.
    #[error("image {image}: a RepoTag is not a string")]
    RepoTagNotString {
        /// The image's position in the list.
        image: usize,
    },
    /// `RepoTags` that is not a list.
    #[error("image {image}: RepoTags is not a list")]
    RepoTagsNotList {
        /// The image's position in the list.
        image: usize,
    },
    /// A tag that is not a reference name.
    #[error("image {image}: tag {tag:?} is not a valid reference name: {problem}")]
    BadTag {
        /// The image's position in the list.
        image: usize,
        /// The tag.
        tag: String,
        /// Which rule it breaks.
        problem: ReferenceProblem,
    },
}

/// Why JSON is not the manifest it should be ([`Error::InvalidManifest`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// A blob read as a manifest is none (no media type was listed).
    #[error("its content is not a manifest")]
    NotAManifest,
    /// A blob listed with a manifest media type is not a manifest of that type.
    #[error("it is listed as {media_type:?}, and its content is not a manifest of that type")]
    NotOfListedType {
        /// The media type listed.
        media_type: String,
    },
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Its `mediaType` field contradicts the media type given.
    #[error("its mediaType field says {found:?}")]
    MediaTypeSays {
        /// What the field says.
        found: String,
    },
    /// Neither a `mediaType` field nor a recognizable shape.
    #[error("no mediaType field and not shaped like a manifest or index; give --media-type")]
    Unrecognized,
    /// The model refuses it.
    #[error("{0}")]
    Model(#[source] Box<crate::model::ModelError>),
    /// A conversion to or from an `oci-spec` type failed.
    #[error("{0}")]
    Serde(#[source] serde_json::Error),
}

impl From<crate::model::ModelError> for ManifestProblem {
    fn from(e: crate::model::ModelError) -> Self {
        ManifestProblem::Model(Box::new(e))
    }
}

impl From<serde_json::Error> for ManifestProblem {
    fn from(e: serde_json::Error) -> Self {
        ManifestProblem::Serde(e)
    }
}

/// Why `pull` refuses an entry ([`Error::RefusedEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The layer's title is not a plain relative path.
    #[error("the title {0}")]
    Title(PathProblem),
    /// A tar member's name is not a plain relative path.
    #[error("the name {0}")]
    Name(PathProblem),
    /// A tar member's name is not UTF-8.
    #[error("has a name that is not UTF-8")]
    NameNotUtf8,
    /// A symbolic link that leads outside the output directory.
    #[error(
        "is a symbolic link to {}, which leads outside the output directory",
        target.display()
    )]
    SymlinkOutside {
        /// The link's target.
        target: PathBuf,
    },
    /// A member of a type pull does not create (a device, a fifo, a hard link).
    #[error("is a {kind}, which pull does not create")]
    NotCreated {
        /// The member's type, as tar names it.
        kind: String,
    },
    /// A path under a path this pull creates as something other than a directory.
    #[error("lies under {}, which this pull creates as a {creates}", parent.display())]
    UnderNonDirectory {
        /// The parent.
        parent: PathBuf,
        /// What the parent is created as.
        creates: &'static str,
    },
    /// A path written twice.
    #[error("is written twice (as a {first} and as a {second})")]
    WrittenTwice {
        /// What it is written as first.
        first: &'static str,
        /// What it is written as then.
        second: &'static str,
    },
    /// A parent on disk is a symbolic link or not a directory.
    #[error(
        "{} in the output directory is a symbolic link or not a directory",
        parent.display()
    )]
    ParentNotADirectory {
        /// The parent.
        parent: PathBuf,
    },
    /// A directory on disk that a file or link would replace.
    #[error("is a directory in the output directory; pull will not replace it with a {with}")]
    WouldReplaceDirectory {
        /// What would replace it.
        with: &'static str,
    },
    /// Something on disk that is not the directory the pull needs.
    #[error("exists in the output directory and is not a directory")]
    NotADirectoryOnDisk,
}

/// Why a name is not a plain relative path ([`crate::artifact::safe_relative_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathProblem {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// It climbs with `..`.
    #[error("contains '..'")]
    ParentDir,
    /// It is absolute.
    #[error("is absolute")]
    Absolute,
    /// Only `.` components.
    #[error("names no file")]
    NamesNoFile,
}

/// Why an export cannot write a Docker `manifest.json` ([`InputProblem::DockerManifest`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DockerManifestProblem {
    /// The export has more or fewer than one root.
    #[error("the export has {roots} roots")]
    RootCount {
        /// How many roots it has.
        roots: usize,
    },
    /// The root is an index.
    #[error("{index} is an index (export one platform's manifest, e.g. DIR@<digest>)")]
    Index {
        /// The index.
        index: Digest,
    },
    /// The root's config is not an image config.
    #[error("{manifest} has config media type {media_type:?}, not an image config")]
    NotAnImageConfig {
        /// The manifest.
        manifest: Digest,
        /// Its config's media type.
        media_type: String,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Reference, validate_tag};

    #[test]
    fn reference_problems_are_typed_and_read_as_before() {
        let err = Reference::parse("dir:-x").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidReference {
                    problem: ReferenceProblem::MisplacedSeparator { name },
                    ..
                } if name == "-x"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            r#"invalid reference "dir:-x": "-x": a separator must sit between letters or digits"#
        );
        let err = Reference::parse("dir@sha256:ABC").unwrap_err();
        let Error::InvalidReference {
            problem: ReferenceProblem::Digest(inner),
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(matches!(**inner, Error::InvalidDigest { .. }), "{inner:?}");
        assert!(matches!(
            validate_tag("-v1"),
            Err(ReferenceProblem::NotARegistryTag { tag }) if tag == "-v1"
        ));
    }

    #[test]
    fn input_problems_name_their_subject() {
        let problem = InputProblem::IndexNeedsPlatform {
            index: Digest::of_bytes(crate::Algorithm::Sha256, b""),
            platforms: Vec::new(),
        };
        assert!(
            problem.to_string().ends_with(
                "is an index; choose one of its manifests with --platform (it lists no platforms)"
            ),
            "{problem}"
        );
        let err = Error::InvalidInput(InputProblem::DockerManifest(
            DockerManifestProblem::RootCount { roots: 2 },
        ));
        assert_eq!(
            err.to_string(),
            "--docker-manifest needs exactly one image manifest with an image config: the export has 2 roots"
        );
    }

    #[test]
    fn layout_and_corruption_reasons_are_typed_with_their_source() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            crate::Layout::open(&file),
            Err(Error::NotALayout {
                reason: LayoutProblem::NotADirectory,
                ..
            })
        ));
        let layout = crate::Layout::init(dir.path().join("l")).unwrap();
        std::fs::write(layout.index_path(), b"{\"manifests\":[").unwrap();
        let err = layout.read_index().unwrap_err();
        let Error::Corrupt {
            reason: reason @ Corruption::Index(_),
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert!(reason.source().is_some(), "the model's error is the source");
        assert!(err.to_string().contains("invalid JSON"), "{err}");
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(Error::InvalidDigest {
                reason: DigestProblem::WrongLength {
                    expected: 64,
                    found: 3,
                    ..
                },
                ..
            })
        ));
    }
}
