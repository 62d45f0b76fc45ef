//! `ocistow manifest get|put|delete`: manifests by reference, stored exactly as given.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use ocistow_store::layout::MAX_MANIFEST_SIZE;
use ocistow_store::referrers::ScanOptions;
use ocistow_store::{Conflict, Digest, Error, ReferenceProblem, Target};

use ocistow_registry::{RegistryRef, is_registry_ref};

use crate::context::{
    Context, RegistryArgs, check_media_type, parse_platform, read_input, resolve,
};
use crate::exit::Outcome;
use crate::output::{Format, Output, TEXT, TEXT_JSON, count};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print a manifest's exact bytes.
    #[command(
        visible_alias = "fetch",
        after_help = "Example:\n  ocistow manifest get ./layout:v1 | jq ."
    )]
    Get {
        /// DIR:TAG, DIR@DIGEST, DIR, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
        reference: String,
        /// Get this platform's manifest when the reference is an index.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Store a manifest from a file or stdin, exactly as given, and list it in index.json.
    #[command(
        visible_alias = "push",
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

/// The subcommand as `--format` errors name it, and the formats it prints.
pub fn formats(cmd: &Command) -> (&'static str, &'static [Format]) {
    match cmd {
        Command::Get { .. } => ("manifest get (the manifest itself is the output)", TEXT),
        Command::Delete { .. } => ("manifest delete", TEXT),
        Command::Put { .. } => ("manifest put", TEXT_JSON),
    }
}

pub fn run(ctx: &Context, out: &mut Output, cmd: &Command) -> Result<Outcome> {
    match cmd {
        Command::Get {
            reference,
            platform,
            registry,
        } if is_registry_ref(reference) => {
            let r = RegistryRef::parse(reference)?;
            let client = ctx.registry_client(&r.registry, registry)?;
            let platform = platform.as_deref().map(parse_platform).transpose()?;
            let (_, manifest) = ocistow_registry::resolve(&client, &r, platform.as_ref())?;
            out.raw().write_all(&manifest.bytes)?;
            Ok(Outcome::Ok)
        }
        Command::Get {
            reference,
            platform,
            ..
        } => get(ctx, out, reference, platform.as_deref()),
        Command::Put {
            reference,
            file,
            media_type,
            allow_sparse,
        } => put(
            ctx,
            out,
            reference,
            file,
            media_type.as_deref(),
            *allow_sparse,
        ),
        Command::Delete {
            reference,
            with_referrers,
        } => delete(ctx, reference, *with_referrers),
    }
}

fn get(
    ctx: &Context,
    out: &mut Output,
    reference: &str,
    platform: Option<&str>,
) -> Result<Outcome> {
    let r = ctx.reference(reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, platform)?;
    let (bytes, _) = layout.read_manifest(&desc)?;
    out.raw().write_all(&bytes)?;
    Ok(Outcome::Ok)
}

fn put(
    ctx: &Context,
    out: &mut Output,
    reference: &str,
    file: &str,
    media_type: Option<&str>,
    sparse: bool,
) -> Result<Outcome> {
    let r = ctx.reference(reference)?;
    let tags = match &r.target {
        Target::Tag(t) => vec![t.clone()],
        Target::Only => vec![],
        Target::Digest(_) => {
            return Err(Error::InvalidReference {
                input: reference.into(),
                problem: ReferenceProblem::WrongForm {
                    expected: "manifest put takes DIR or DIR:TAG",
                },
            }
            .into());
        }
    };
    if let Some(mt) = media_type {
        check_media_type("--media-type", mt)?;
    }
    let layout = ctx.open(&r)?;
    let bytes = read_input(file, MAX_MANIFEST_SIZE)?;
    let what = if file == "-" { "stdin" } else { file };
    // Everything that can fail on input is checked before the first write.
    layout.check_index()?;
    layout
        .validate_manifest(&bytes, media_type, sparse)
        .with_context(|| what.to_string())?;
    let staged = layout.stage()?;
    let desc = layout
        .put_manifest(&bytes, media_type, sparse)
        .with_context(|| what.to_string())?;
    staged.commit(&desc, &tags)?;
    out.descriptor(ctx.format, &desc)?;
    Ok(Outcome::Ok)
}

fn delete(ctx: &Context, reference: &str, with_referrers: bool) -> Result<Outcome> {
    let r = ctx.reference(reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, None)?;
    let graph = layout.scan_referrers(ScanOptions::default())?;
    let mut doomed = BTreeSet::from([desc.digest().clone()]);
    let direct: Vec<Digest> = graph
        .referrers_of(desc.digest())
        .iter()
        .map(|r| r.digest().clone())
        .collect();
    if !direct.is_empty() && !with_referrers {
        return Err(Error::Conflict(Conflict::HasReferrers {
            manifest: desc.digest().clone(),
            referrers: direct,
        })
        .into());
    }
    let mut queue = vec![desc.digest().clone()];
    while let Some(d) = queue.pop() {
        for child in graph.referrers_of(&d) {
            if doomed.insert(child.digest().clone()) {
                queue.push(child.digest().clone());
            }
        }
    }
    let n = layout.delete_manifests(&doomed)?;
    for d in &doomed {
        eprintln!("Deleted {d}");
    }
    eprintln!("({} removed or rewritten)", count(n, "index.json entry"));
    Ok(Outcome::Ok)
}
