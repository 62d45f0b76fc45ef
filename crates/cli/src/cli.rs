//! The command-line grammar: global options, the list of commands, and the one match that runs
//! each. A command's own arguments live with its code in `commands/<command>.rs`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{
    attach, blob, completion, copy, discover, export, fsck, gc, import, init, ls, man, manifest,
    normalize, pull, push, referrers, resolve, serve, tag, tags, untag,
};
use crate::context::Context;
use crate::exit::{self, Outcome};
use crate::output::{Format, Output, TEXT, TEXT_JSON};

/// `0.1.0 (COMMIT)`, from the build script.
pub const VERSION: &str = env!("OCISTOW_VERSION");

#[derive(Parser, Debug)]
#[command(
    name = "ocistow",
    version = VERSION,
    about = "Work with OCI image layout directories offline: push, pull, tag, inspect",
    long_about = "Work with OCI image layout directories (oci-layout, index.json, blobs/) offline.\n\n\
References: DIR:TAG, DIR@DIGEST, or a plain DIR when its index.json has exactly one entry.\n\
For tags containing ':' or '/', name the layout separately: --layout DIR REF.",
    after_help = exit::HELP
)]
pub struct Cli {
    /// Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`).
    #[arg(long, global = true, value_name = "DIR")]
    pub layout: Option<PathBuf>,

    /// Output format: json for every command that prints data; tree and table are
    /// `discover`'s views. A format the command cannot print is refused (exit 2).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Draw no progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_tty: bool,

    /// Say what each step did on stderr (each file pushed or pulled, blob checked or removed,
    /// tag given, index.json entry changed).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an empty layout (the directory too, if needed).
    #[command(after_help = "Example:\n  ocistow init ./layout")]
    Init(init::Args),

    /// Push files as an artifact, as `oras push` builds it.
    #[command(after_help = "Examples:\n  \
        ocistow push ./layout:v1 app.tar.gz:application/gzip --artifact-type application/vnd.example.app\n  \
        ocistow push ./layout:v1 ./docs/ -a org.opencontainers.image.source=https://example.com\n  \
        ocistow push ./layout:cfg layer.tar --config config.json:application/vnd.oci.image.config.v1+json")]
    Push(push::Args),

    /// Write the titled files of an artifact into a directory, verifying every digest.
    #[command(
        after_help = "Examples:\n  ocistow pull ./layout:v1 -o ./out\n  ocistow pull ./layout:multi --platform linux/arm64 -o ./out"
    )]
    Pull(pull::Args),

    /// Give existing content more tags.
    #[command(
        after_help = "Examples:\n  ocistow tag ./layout:v1 latest stable\n  ocistow tag ./layout:v1 v1.0,v1.0.1\n  ocistow tag ./layout@sha256:0ac2… v1"
    )]
    Tag(tag::Args),

    /// Remove a tag (the content stays until `gc`).
    #[command(after_help = "Example:\n  ocistow untag ./layout:old")]
    Untag(untag::Args),

    /// List the tags of a layout.
    #[command(after_help = "Example:\n  ocistow tags ./layout")]
    Tags(tags::Args),

    /// Print the digest a reference resolves to (json: its descriptor).
    #[command(
        after_help = "Examples:\n  ocistow resolve ./layout:v1\n  ocistow resolve ./layout:multi --platform linux/amd64 --format json"
    )]
    Resolve(resolve::Args),

    /// Get, put or delete manifests.
    #[command(subcommand)]
    Manifest(manifest::Command),

    /// Get, put, delete or check blobs.
    #[command(subcommand)]
    Blob(blob::Command),

    /// Attach files to a subject as a referrer (an SBOM, a signature, a scan result).
    #[command(after_help = "Examples:\n  \
        ocistow attach ./layout:v1 sbom.spdx.json:application/spdx+json --artifact-type application/vnd.example.sbom\n  \
        ocistow attach ./layout:multi sig.bin --artifact-type application/vnd.example.sig --platform linux/arm64\n  \
        ocistow attach ./layout:v1 scan.json --artifact-type application/vnd.example.scan --referrers-mode tag")]
    Attach(attach::Args),

    /// List the referrers of a subject, recursively, from every convention a layout may use.
    ///
    /// --format tree (default) draws like oras, table lists one referrer a line, json has the
    /// shape of `oras discover --format json`.
    #[command(
        after_help = "Examples:\n  ocistow discover ./layout:v1\n  ocistow discover ./layout@sha256:0ac2… --format json --artifact-type application/vnd.example.sbom\n  ocistow discover ./layout:v1 --deep --depth 1"
    )]
    Discover(discover::Args),

    /// Inspect and convert how referrers are recorded.
    #[command(subcommand)]
    Referrers(referrers::Command),

    /// Make a layout written by other tools canonical, never rewriting a blob.
    ///
    /// Referrers are recorded in one mode (as `referrers convert`), referrer entries get their
    /// manifest's artifactType and annotations, identical duplicate entries are merged,
    /// superseded response and fallback records dropped and a missing top-level mediaType added.
    /// Exit 1: a tag names two digests (reported, left as it is).
    #[command(
        after_help = "Examples:\n  ocistow normalize ./layout --dry-run\n  ocistow normalize ./layout --to tag"
    )]
    Normalize(normalize::Args),

    /// Copy a manifest or index and everything it reaches between layouts and registries.
    #[command(
        visible_alias = "cp",
        after_help = "Examples:\n  ocistow copy ./build:v1 ./cache:v1 -r\n  ocistow cp ./build:multi ./arm:latest --platform linux/arm64\n  ocistow copy ./build:v1 docker://registry.example:5000/team/app:v1 -r\n  ocistow copy docker://registry.example:5000/team/app:v1 ./mirror -r"
    )]
    Copy(copy::Args),

    /// Write references (and what they reach) as a tarball that is itself a layout.
    #[command(
        after_help = "Examples:\n  ocistow export ./layout:v1 -o v1.tar --referrers\n  ocistow export ./layout:v1 ./layout:v2 -o - --gzip | ssh host ocistow import - ./layout"
    )]
    Export(export::Args),

    /// Merge a tarball (OCI layout or docker save; tar, tar+gzip, tar+zstd) into a layout.
    #[command(
        after_help = "Examples:\n  ocistow import v1.tar ./layout\n  curl -s … | ocistow import - ./layout --force"
    )]
    Import(import::Args),

    /// Delete blobs nothing reaches; a referrer lives as long as its subject does.
    #[command(
        after_help = "Examples:\n  ocistow gc ./layout --dry-run\n  ocistow gc ./layout --grace 10m"
    )]
    Gc(gc::Args),

    /// Verify every blob and descriptor and the referrer records.
    #[command(
        after_help = "Examples:\n  ocistow fsck ./layout\n  ocistow fsck ./layout --repair --format json"
    )]
    Fsck(fsck::Args),

    /// List the entries of index.json: tag, digest, media type, artifact type, platform, size.
    #[command(after_help = "Examples:\n  ocistow ls ./layout\n  ocistow ls ./layout --format json")]
    Ls(ls::Args),

    /// Serve layouts as an OCI distribution registry (referrers answered from every convention).
    #[command(
        after_help = "Examples:\n  ocistow serve ./layouts\n  ocistow serve ./mirror --name team/app --addr 0.0.0.0:5000 --read-only"
    )]
    Serve(serve::Args),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  ocistow completion bash > /etc/bash_completion.d/ocistow\n  ocistow completion zsh > \"${fpath[1]}/_ocistow\""
    )]
    Completion(completion::Args),

    /// Print the manual page (roff) of ocistow or of one of its commands.
    #[command(
        after_help = "Examples:\n  ocistow man | man -l -\n  ocistow man blob get > ocistow-blob-get.1"
    )]
    Man(man::Args),
}

/// `discover`'s views.
const DISCOVER: &[Format] = &[Format::Text, Format::Tree, Format::Table, Format::Json];

impl Command {
    /// The command as `--format` errors name it, and the formats it can print: the one table
    /// of formats, checked before a command runs.
    fn formats(&self) -> (&'static str, &'static [Format]) {
        match self {
            Command::Init(_) => ("init", TEXT),
            Command::Tag(_) => ("tag", TEXT),
            Command::Untag(_) => ("untag", TEXT),
            Command::Serve(_) => ("serve (it logs requests on stderr)", TEXT),
            Command::Completion(_) => ("completion (the script is the output)", TEXT),
            Command::Man(_) => ("man (the page is the output)", TEXT),
            Command::Manifest(cmd) => manifest::formats(cmd),
            Command::Blob(cmd) => blob::formats(cmd),
            Command::Export(args) => export::formats(args),
            Command::Discover(_) => ("discover", DISCOVER),
            Command::Push(_) => ("push", TEXT_JSON),
            Command::Pull(_) => ("pull", TEXT_JSON),
            Command::Tags(_) => ("tags", TEXT_JSON),
            Command::Resolve(_) => ("resolve", TEXT_JSON),
            Command::Attach(_) => ("attach", TEXT_JSON),
            Command::Referrers(_) => ("referrers", TEXT_JSON),
            Command::Normalize(_) => ("normalize", TEXT_JSON),
            Command::Copy(_) => ("copy", TEXT_JSON),
            Command::Import(_) => ("import", TEXT_JSON),
            Command::Gc(_) => ("gc", TEXT_JSON),
            Command::Fsck(_) => ("fsck", TEXT_JSON),
            Command::Ls(_) => ("ls", TEXT_JSON),
        }
    }

    /// Runs the command: the one place a command is matched to its code.
    pub fn run(self, ctx: &Context, out: &mut Output) -> Result<Outcome> {
        let (what, formats) = self.formats();
        ctx.check_format(what, formats)?;
        match self {
            Command::Init(args) => init::run(ctx, out, &args),
            Command::Push(args) => push::run(ctx, out, &args),
            Command::Pull(args) => pull::run(ctx, out, &args),
            Command::Tag(args) => tag::run(ctx, out, &args),
            Command::Untag(args) => untag::run(ctx, out, &args),
            Command::Tags(args) => tags::run(ctx, out, &args),
            Command::Resolve(args) => resolve::run(ctx, out, &args),
            Command::Manifest(cmd) => manifest::run(ctx, out, &cmd),
            Command::Blob(cmd) => blob::run(ctx, out, &cmd),
            Command::Attach(args) => attach::run(ctx, out, &args),
            Command::Discover(args) => discover::run(ctx, out, &args),
            Command::Referrers(cmd) => referrers::run(ctx, out, &cmd),
            Command::Normalize(args) => normalize::run(ctx, out, &args),
            Command::Copy(args) => copy::run(ctx, out, &args),
            Command::Export(args) => export::run(ctx, out, &args),
            Command::Import(args) => import::run(ctx, out, &args),
            Command::Gc(args) => gc::run(ctx, out, &args),
            Command::Fsck(args) => fsck::run(ctx, out, &args),
            Command::Ls(args) => ls::run(ctx, out, &args),
            Command::Serve(args) => serve::run(ctx, out, &args),
            Command::Completion(args) => completion::run(out, &args, Cli::command()),
            Command::Man(args) => man::run(out, &args, Cli::command(), VERSION),
        }
    }
}
