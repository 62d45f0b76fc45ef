//! Command-line grammar. Every command has an example in its long help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "ocistow",
    version,
    about = "Work with OCI image layout directories offline: push, pull, tag, inspect",
    long_about = "Work with OCI image layout directories (oci-layout, index.json, blobs/) offline.\n\n\
References: DIR:TAG, DIR@DIGEST, or a plain DIR when its index.json has exactly one entry.\n\
For tags containing ':' or '/', name the layout separately: --layout DIR REF.",
    after_help = "Example:\n  ocistow init ./layout\n  ocistow push ./layout:v1 ./app.bin --artifact-type application/vnd.example.app\n  ocistow pull ./layout:v1 -o ./out"
)]
pub struct Cli {
    /// Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`).
    #[arg(long, global = true, value_name = "DIR")]
    pub layout: Option<PathBuf>,

    /// Output format for data (tree and table apply to `discover`; elsewhere they mean text).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Tree,
    Table,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an empty layout (the directory too, if needed).
    #[command(after_help = "Example:\n  ocistow init ./layout")]
    Init {
        /// Directory to create the layout in.
        dir: Option<PathBuf>,
    },

    /// Push files as an artifact, as `oras push` builds it.
    #[command(after_help = "Examples:\n  \
        ocistow push ./layout:v1 app.tar.gz:application/gzip --artifact-type application/vnd.example.app\n  \
        ocistow push ./layout:v1 ./docs/ -a org.opencontainers.image.source=https://example.com\n  \
        ocistow push ./layout:cfg layer.tar --config config.json:application/vnd.oci.image.config.v1+json")]
    Push(PushArgs),

    /// Write the titled files of an artifact into a directory, verifying every digest.
    #[command(
        after_help = "Examples:\n  ocistow pull ./layout:v1 -o ./out\n  ocistow pull ./layout:multi --platform linux/arm64 -o ./out"
    )]
    Pull {
        /// DIR:TAG, DIR@DIGEST or DIR.
        reference: String,
        /// Directory to write the files to (created if needed).
        #[arg(short, long, value_name = "OUTDIR")]
        output: PathBuf,
        /// Pick this platform's manifest when the reference is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },

    /// Give existing content more tags.
    #[command(
        after_help = "Examples:\n  ocistow tag ./layout:v1 latest stable\n  ocistow tag ./layout@sha256:0ac2… v1"
    )]
    Tag {
        /// The content to tag: DIR:TAG, DIR@DIGEST or DIR.
        reference: String,
        /// New tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },

    /// Remove a tag (the content stays until `gc`).
    #[command(after_help = "Example:\n  ocistow untag ./layout:old")]
    Untag {
        /// DIR:TAG
        reference: String,
    },

    /// List the tags of a layout.
    #[command(after_help = "Example:\n  ocistow tags ./layout")]
    Tags {
        /// The layout directory.
        dir: Option<PathBuf>,
    },

    /// Print the digest a reference resolves to (json: its descriptor).
    #[command(
        after_help = "Examples:\n  ocistow resolve ./layout:v1\n  ocistow resolve ./layout:multi --platform linux/amd64 --format json"
    )]
    Resolve {
        /// DIR:TAG, DIR@DIGEST or DIR.
        reference: String,
        /// Resolve to this platform's manifest when the reference is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },

    /// Get, put or delete manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),

    /// Get, put, delete or check blobs.
    #[command(subcommand)]
    Blob(BlobCommand),

    /// Attach files to a subject as a referrer (an SBOM, a signature, a scan result).
    #[command(after_help = "Examples:\n  \
        ocistow attach ./layout:v1 sbom.spdx.json:application/spdx+json --artifact-type application/vnd.example.sbom\n  \
        ocistow attach ./layout:multi sig.bin --artifact-type application/vnd.example.sig --platform linux/arm64\n  \
        ocistow attach ./layout:v1 scan.json --artifact-type application/vnd.example.scan --referrers-mode tag")]
    Attach(AttachArgs),

    /// List the referrers of a subject, recursively, from every convention a layout may use.
    ///
    /// --format tree (default) draws like oras, table lists one referrer a line, json has the
    /// shape of `oras discover --format json`.
    #[command(
        after_help = "Examples:\n  ocistow discover ./layout:v1\n  ocistow discover ./layout@sha256:0ac2… --format json --artifact-type application/vnd.example.sbom\n  ocistow discover ./layout:v1 --deep --depth 1"
    )]
    Discover {
        /// The subject: DIR:TAG, DIR@DIGEST (the blob may be absent) or DIR.
        reference: String,
        /// Only referrers of this artifact type (repeatable).
        #[arg(long)]
        artifact_type: Vec<String>,
        /// Levels of referrers to show (all when not given).
        #[arg(long)]
        depth: Option<usize>,
        /// Also scan every manifest blob under blobs/, so referrers reachable from nothing are found.
        #[arg(long)]
        deep: bool,
        /// Discover from this platform's manifest when the subject is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },

    /// Inspect and convert how referrers are recorded.
    #[command(subcommand)]
    Referrers(ReferrersCommand),

    /// Copy a manifest or index and everything it reaches into another layout.
    #[command(
        after_help = "Examples:\n  ocistow copy ./build:v1 ./cache:v1 -r\n  ocistow copy ./build:multi ./arm:latest --platform linux/arm64"
    )]
    Copy {
        /// SRC:REF, SRC@DIGEST or SRC.
        source: String,
        /// DST or DST:TAG (DST is created when missing).
        destination: String,
        /// Also copy the referrers of the root and of every child, recursively.
        #[arg(short = 'r', long)]
        referrers: bool,
        /// Copy only these platforms of an index (repeatable).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Vec<String>,
        #[command(flatten)]
        record: RecordArgs,
    },

    /// Write references (and what they reach) as a tarball that is itself a layout.
    #[command(
        after_help = "Examples:\n  ocistow export ./layout:v1 -o v1.tar --referrers\n  ocistow export ./layout:v1 ./layout:v2 -o - --gzip | ssh host ocistow import - ./layout"
    )]
    Export {
        /// DIR:REF, DIR@DIGEST or DIR (repeatable).
        #[arg(required = true)]
        references: Vec<String>,
        /// Output file, or - for stdout.
        #[arg(short, long)]
        output: String,
        /// Include the referrers of what is exported, recursively, with their records.
        #[arg(long)]
        referrers: bool,
        /// Compress with gzip.
        #[arg(long, conflicts_with = "zstd")]
        gzip: bool,
        /// Compress with zstd.
        #[arg(long)]
        zstd: bool,
        /// Add manifest.json so `docker load` accepts a single-platform image.
        #[arg(long)]
        docker_manifest: bool,
    },

    /// Merge a tarball (OCI layout or docker save; tar, tar+gzip, tar+zstd) into a layout.
    #[command(
        after_help = "Examples:\n  ocistow import v1.tar ./layout\n  curl -s … | ocistow import - ./layout --force"
    )]
    Import {
        /// The tarball, or - for stdin.
        input: String,
        /// The layout to merge into (created when missing).
        dir: PathBuf,
        /// Let tags in the tarball replace existing tags that point elsewhere.
        #[arg(long)]
        force: bool,
    },

    /// Delete blobs nothing reaches; a referrer lives as long as its subject does.
    #[command(
        after_help = "Examples:\n  ocistow gc ./layout --dry-run\n  ocistow gc ./layout --grace 10m"
    )]
    Gc {
        /// The layout directory.
        dir: Option<PathBuf>,
        /// Report what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep referrers whose subject is gone.
        #[arg(long)]
        keep_orphan_referrers: bool,
        /// Keep stale ingest/ files younger than this (e.g. 30s, 10m, 1h).
        #[arg(long, default_value = "1h")]
        grace: String,
    },

    /// Verify every blob and descriptor and the referrer records.
    #[command(
        after_help = "Examples:\n  ocistow fsck ./layout\n  ocistow fsck ./layout --repair --format json"
    )]
    Fsck {
        /// The layout directory.
        dir: Option<PathBuf>,
        /// Rebuild referrer records.
        #[arg(long)]
        repair: bool,
        /// With --repair: also remove index.json entries whose blobs are missing.
        #[arg(long, requires = "repair")]
        remove_missing: bool,
    },

    /// List the entries of index.json: tag, digest, media type, artifact type, platform, size.
    #[command(after_help = "Examples:\n  ocistow ls ./layout\n  ocistow ls ./layout --format json")]
    Ls {
        /// The layout directory.
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// DIR or DIR:TAG (with --layout: the tag).
    pub reference: String,
    /// Files or directories, each FILE[:MEDIATYPE]. Directories become tar+gzip layers.
    pub files: Vec<String>,
    /// The manifest's artifactType.
    #[arg(long)]
    pub artifact_type: Option<String>,
    /// Manifest annotation KEY=VALUE (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// A config blob, FILE[:MEDIATYPE], instead of the empty config.
    #[arg(long, value_name = "FILE[:MEDIATYPE]")]
    pub config: Option<String>,
    /// Make the artifact a referrer of this subject (DIR:TAG, DIR@DIGEST, or with --layout a tag/@digest).
    #[arg(long, value_name = "REF")]
    pub subject: Option<String>,
    #[command(flatten)]
    pub record: RecordArgs,
}

/// How a new referrer is recorded.
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Record referrers as subject annotations, referrers responses or fallback tags
    /// [default: what the layout already uses consistently, else annotation].
    #[arg(long, value_enum, env = "OCISTOW_REFERRERS_MODE", value_name = "MODE")]
    pub referrers_mode: Option<ModeArg>,
    /// Annotation key for response records: oci (org.opencontainers.image.referrer.subject)
    /// or olareg (org.olareg.referrer.subject) [default: what the layout uses, else oci].
    #[arg(long, value_enum, value_name = "KEY")]
    pub response_key: Option<KeyArg>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Annotation,
    Response,
    Tag,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyArg {
    Oci,
    Olareg,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The subject: DIR:TAG, DIR@DIGEST or DIR.
    pub reference: String,
    /// Files, each FILE[:MEDIATYPE].
    pub files: Vec<String>,
    /// The referrer's artifactType (required).
    #[arg(long, required = true)]
    pub artifact_type: String,
    /// Manifest annotation KEY=VALUE (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Attach to this platform's manifest when the subject is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub record: RecordArgs,
}

#[derive(Subcommand, Debug)]
pub enum ReferrersCommand {
    /// Which referrer conventions the layout uses, and every inconsistency.
    #[command(after_help = "Example:\n  ocistow referrers status ./layout --format json")]
    Status {
        /// The layout directory.
        dir: Option<PathBuf>,
    },
    /// Record every referrer in one convention (and, unless --keep, drop the others' records).
    #[command(
        after_help = "Examples:\n  ocistow referrers convert ./layout --to tag          # for regctl\n  \
        ocistow referrers convert ./layout --to response --response-key olareg\n  \
        ocistow referrers convert ./layout --to annotation --keep --dry-run"
    )]
    Convert {
        /// The layout directory.
        dir: Option<PathBuf>,
        /// The target convention.
        #[arg(long, value_enum)]
        to: ModeArg,
        /// Annotation key for response records.
        #[arg(long, value_enum, default_value_t = KeyArg::Oci)]
        response_key: KeyArg,
        /// Keep the records of other conventions too.
        #[arg(long)]
        keep: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Print a manifest's exact bytes.
    #[command(after_help = "Example:\n  ocistow manifest get ./layout:v1 | jq .")]
    Get {
        reference: String,
        /// Get this platform's manifest when the reference is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Store a manifest from a file or stdin, exactly as given, and list it in index.json.
    #[command(
        after_help = "Examples:\n  ocistow manifest put ./layout:v2 manifest.json\n  cat index.json | ocistow manifest put ./layout:multi - --media-type application/vnd.oci.image.index.v1+json"
    )]
    Put {
        /// DIR or DIR:TAG.
        reference: String,
        /// File with the manifest JSON, or - for stdin.
        #[arg(default_value = "-")]
        file: String,
        /// The media type, when the JSON has no mediaType field.
        #[arg(long)]
        media_type: Option<String>,
        /// Accept a manifest whose blobs are not (all) in the layout.
        #[arg(long)]
        allow_sparse: bool,
    },
    /// Remove a manifest's index.json entries, its records as a referrer, and its blob.
    #[command(
        after_help = "Examples:\n  ocistow manifest delete ./layout:old\n  ocistow manifest delete ./layout:v1 --with-referrers"
    )]
    Delete {
        reference: String,
        /// Also delete its referrers, recursively (otherwise a subject with referrers is refused).
        #[arg(long)]
        with_referrers: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlobCommand {
    /// Write a blob to stdout or a file, verifying its digest.
    #[command(after_help = "Example:\n  ocistow blob get ./layout@sha256:51bc… -o file.txt")]
    Get {
        /// DIR@DIGEST
        reference: String,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Store a blob from a file or stdin and print its digest.
    #[command(
        after_help = "Examples:\n  ocistow blob put ./layout file.bin\n  ocistow blob put ./layout - --digest sha256:51bc… < file.bin"
    )]
    Put {
        /// The layout directory.
        dir: String,
        /// File, or - for stdin.
        #[arg(default_value = "-")]
        file: String,
        /// Expected digest (its algorithm is used: sha256 or sha512).
        #[arg(long)]
        digest: Option<String>,
        /// Expected size in bytes.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Delete a blob (even one still referenced: see `gc` for safe cleanup).
    #[command(after_help = "Example:\n  ocistow blob delete ./layout@sha256:51bc…")]
    Delete { reference: String },
    /// Exit 0 if the blob exists, 1 if not.
    #[command(after_help = "Example:\n  ocistow blob exists ./layout@sha256:51bc… && echo present")]
    Exists { reference: String },
}
