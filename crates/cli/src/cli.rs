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

    /// Output format for data.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
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
    /// Remove a manifest's index.json entries and its blob.
    #[command(after_help = "Example:\n  ocistow manifest delete ./layout:old")]
    Delete { reference: String },
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
