//! `ocistow discover SUBJECT`: the referrers of a subject, recursively, as an oras-style tree,
//! a table, or `oras discover --format json`.

use std::io::{self, Write};

use anyhow::Result;
use ocistow_store::referrers::{Node, ScanOptions};
use ocistow_store::{Descriptor, Error, Target};

use ocistow_registry::{RegistryRef, RegistryTarget, is_registry_ref};

use crate::context::{Context, RegistryArgs, parse_platform, resolve_in};
use crate::exit::Outcome;
use crate::exit::usage;
use crate::output::{Format, Output};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The subject: DIR:TAG, DIR@DIGEST (the blob may be absent) or DIR.
    reference: String,
    /// Only referrers of this artifact type (repeatable).
    #[arg(long)]
    artifact_type: Vec<String>,
    /// Levels of referrers to show, 1 or more (all when not given).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    depth: Option<u64>,
    /// Also scan every manifest blob under blobs/, so referrers reachable from nothing are found.
    #[arg(long)]
    deep: bool,
    /// Discover from this platform's manifest when the subject is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    if is_registry_ref(&args.reference) {
        return in_registry(ctx, out, args);
    }
    let platform = args.platform.as_deref();
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let index = layout.read_index()?;
    let graph = layout.scan_referrers_in(&index, ScanOptions::default().deep(args.deep))?;
    let root = match (resolve_in(&layout, &index, &r, platform), &r.target) {
        (Ok(d), _) => d,
        // A subject whose blob is absent still has an answer: describe it from what its
        // referrers say about it.
        (Err(e), Target::Digest(d)) if is_not_found(&e) && platform.is_none() => {
            graph.referrers_of(d).first().map_or_else(
                || Descriptor::new("application/octet-stream", d.clone(), 0),
                |first| first.subject.plain(),
            )
        }
        (Err(e), _) => return Err(e),
    };
    let prefix = r.dir.display().to_string();
    let shown = if ctx.format == Format::Json {
        // Written from the graph: a tree would copy every referrer's descriptor.
        let tree = graph.oras_tree(&root, &args.artifact_type, depth(args), &prefix);
        out.json(&tree).map(|()| Outcome::Ok).map_err(Into::into)
    } else {
        let tree = graph.tree(&root, &args.artifact_type, depth(args));
        let shown = show(ctx, out, &tree, &prefix);
        std::mem::forget(tree);
        shown
    };
    // Not freed: the process exits now, and dropping a graph of 100,000 referrers, their
    // descriptors and the index entries one by one was a tenth of discover's time.
    std::mem::forget((index, graph));
    shown
}

/// The referrers of a registry subject, through the referrers API or the fallback tag.
fn in_registry(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    if args.deep {
        return Err(usage(
            "--deep scans a layout's blobs; a registry is asked, not scanned",
        ));
    }
    let r = RegistryRef::parse(&args.reference)?;
    let client = ctx.registry_client(&r.registry, &args.registry)?;
    let platform = args.platform.as_deref().map(parse_platform).transpose()?;
    let root = match (
        ocistow_registry::resolve(&client, &r, platform.as_ref()),
        &r.target,
    ) {
        (Ok((d, _)), _) => d,
        // As in a layout, a subject the registry does not hold may still have referrers.
        (Err(e), RegistryTarget::Digest(d)) if e.is_not_found() && platform.is_none() => {
            Descriptor::new("application/octet-stream", d.clone(), 0)
        }
        (Err(e), _) => return Err(e.into()),
    };
    let tree = ocistow_registry::discover(
        &client,
        &r.repository,
        &root,
        &args.artifact_type,
        depth(args),
    )?;
    show(ctx, out, &tree, &format!("{}/{}", r.registry, r.repository))
}

/// The depth asked for; one beyond `usize` is as good as "all".
fn depth(args: &Args) -> Option<usize> {
    args.depth.map(|d| usize::try_from(d).unwrap_or(usize::MAX))
}

fn show(ctx: &Context, out: &mut Output, tree: &Node, prefix: &str) -> Result<Outcome> {
    match ctx.format {
        Format::Json => out.json(&tree.oras_json(prefix))?,
        Format::Table => table(out.raw(), tree)?,
        Format::Text | Format::Tree => {
            out.line(format_args!("{prefix}@{}", tree.descriptor.digest()))?;
            draw(out.raw(), tree, "")?;
        }
    }
    Ok(Outcome::Ok)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::NotFound { .. })))
}

/// `└── ` for the last item of a level, `├── ` before it; and the indent below each.
fn branch(last: bool) -> (&'static str, &'static str) {
    if last {
        ("└── ", "    ")
    } else {
        ("├── ", "│   ")
    }
}

/// Draws a discover tree as oras does: referrers grouped by artifact type, each with its
/// annotations and its own referrers.
fn draw(out: &mut dyn Write, node: &Node, indent: &str) -> io::Result<()> {
    let mut groups: Vec<(&str, Vec<&Node>)> = Vec::new();
    for child in &node.referrers {
        let at = child.descriptor.artifact_type().unwrap_or("<unknown>");
        match groups.iter_mut().find(|(t, _)| *t == at) {
            Some((_, list)) => list.push(child),
            None => groups.push((at, vec![child])),
        }
    }
    for (gi, (at, children)) in groups.iter().enumerate() {
        let (mark, below) = branch(gi + 1 == groups.len());
        writeln!(out, "{indent}{mark}{at}")?;
        let gindent = format!("{indent}{below}");
        for (ci, child) in children.iter().enumerate() {
            let (mark, below) = branch(ci + 1 == children.len());
            writeln!(out, "{gindent}{mark}{}", child.descriptor.digest())?;
            let cindent = format!("{gindent}{below}");
            let annotations: Vec<(String, String)> = child
                .descriptor
                .annotations()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default();
            if !annotations.is_empty() {
                let (mark, below) = branch(child.referrers.is_empty());
                writeln!(out, "{cindent}{mark}[annotations]")?;
                let aindent = format!("{cindent}{below}");
                for (ai, (k, v)) in annotations.iter().enumerate() {
                    let (mark, _) = branch(ai + 1 == annotations.len());
                    writeln!(out, "{aindent}{mark}{k}: {v}")?;
                }
            }
            draw(out, child, &cindent)?;
        }
    }
    Ok(())
}

/// One referrer a line: depth, digest, artifact type, subject.
fn table(out: &mut dyn Write, root: &Node) -> io::Result<()> {
    fn rows(node: &Node, depth: usize, out: &mut Vec<[String; 4]>) {
        for c in &node.referrers {
            out.push([
                depth.to_string(),
                c.descriptor.digest().to_string(),
                c.descriptor.artifact_type().unwrap_or("-").to_string(),
                node.descriptor.digest().to_string(),
            ]);
            rows(c, depth + 1, out);
        }
    }
    let mut table = Vec::new();
    rows(root, 1, &mut table);
    writeln!(
        out,
        "{:<5}  {:<71}  {:<40}  SUBJECT",
        "DEPTH", "DIGEST", "ARTIFACTTYPE"
    )?;
    for [d, dg, at, s] in table {
        writeln!(out, "{d:<5}  {dg:<71}  {at:<40}  {s}")?;
    }
    Ok(())
}
