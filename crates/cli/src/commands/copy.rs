//! `ocistow copy SRC DST`: copy a graph (and with `-r` its referrers) between layouts and
//! registries (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` on either side).

use anyhow::Result;
use ocistow_store::layout::OCI_LAYOUT_FILE;
use ocistow_store::referrers::Mode;
use ocistow_store::transfer::{self, CopyOptions};
use ocistow_store::{Error, Reference, ReferenceProblem, Target};
use serde_json::json;

use ocistow_registry::{self as registry, RegistryRef, RegistryTarget, is_registry_ref};
use registry::copy::DEFAULT_CONCURRENCY;

use crate::context::{
    Context, RecordArgs, RegistryArgs, parse_platform, reference_with_tags, resolve,
};
use crate::exit::Outcome;
use crate::output::Output;
use crate::output::{count, human_bytes};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// SRC:REF, SRC@DIGEST, SRC, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    source: String,
    /// DST, DST:TAG or DST:TAG1,TAG2 (DST is created when missing), or
    /// `docker://HOST[:PORT]/REPO[:TAG]`.
    destination: String,
    /// Also copy the referrers of the root and of every child, recursively.
    #[arg(short = 'r', long)]
    referrers: bool,
    /// Copy only these platforms of an index (repeatable).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Vec<String>,
    #[command(flatten)]
    record: RecordArgs,
    /// Blobs moved at once to or from a registry.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = concurrency)]
    concurrency: usize,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn concurrency(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("a number from 1 to 64".into()),
    }
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let platforms = args
        .platform
        .iter()
        .map(|p| parse_platform(p))
        .collect::<Result<Vec<_>>>()?;
    let options = registry::copy::CopyOptions::default()
        .referrers(args.referrers)
        .platforms(platforms)
        .concurrency(args.concurrency);
    match (
        is_registry_ref(&args.source),
        is_registry_ref(&args.destination),
    ) {
        (false, false) => layout_to_layout(ctx, out, args),
        (false, true) => layout_to_registry(ctx, out, args, &options),
        (true, false) => registry_to_layout(ctx, out, args, &options),
        (true, true) => registry_to_registry(ctx, out, args, &options),
    }
}

fn layout_to_registry(
    ctx: &Context,
    out: &mut Output,
    args: &Args,
    options: &registry::copy::CopyOptions,
) -> Result<Outcome> {
    let src_ref = ctx.reference(&args.source)?;
    let src = ctx.open(&src_ref)?;
    let root = resolve(&src, &src_ref, None)?;
    let (mut dest, options) = registry_destination(&args.destination, options)?;
    if let (RegistryTarget::Repository, Target::Tag(t)) = (&dest.target, &src_ref.target) {
        registry::reference::validate_tag(t).map_err(|problem| Error::InvalidReference {
            input: args.destination.clone(),
            problem: ReferenceProblem::TagNotForRegistry(Box::new(problem)),
        })?;
        dest = dest.with_target(RegistryTarget::Tag(t.clone()));
    }
    ctx.step(format_args!(
        "Resolved {} to {}",
        src_ref.display(),
        root.digest()
    ));
    let client = ctx.registry_client(&dest.registry, &args.registry)?;
    let report = registry::copy::push(&src, &root, &client, &dest, &options, &progress::bar)?;
    pushed(ctx, out, &src_ref.display(), &dest, &options, &report)
}

fn registry_to_registry(
    ctx: &Context,
    out: &mut Output,
    args: &Args,
    options: &registry::copy::CopyOptions,
) -> Result<Outcome> {
    let src = RegistryRef::parse(&args.source)?;
    let (dest, options) = registry_destination(&args.destination, options)?;
    let src_client = ctx.registry_client(&src.registry, &args.registry)?;
    let dst_client = if dest.registry == src.registry {
        None
    } else {
        Some(ctx.registry_client(&dest.registry, &args.registry)?)
    };
    let report = registry::copy::copy_between(
        &src_client,
        &src,
        dst_client.as_ref().unwrap_or(&src_client),
        &dest,
        &options,
        &progress::bar,
    )?;
    pushed(ctx, out, &src.to_string(), &dest, &options, &report)
}

/// A destination in a registry, which may name several tags (`docker://HOST/REPO:T1,T2`): the
/// reference of the first, and the options that give the root the others too.
fn registry_destination(
    destination: &str,
    options: &registry::copy::CopyOptions,
) -> Result<(RegistryRef, registry::copy::CopyOptions)> {
    let (dest, tags) = RegistryRef::parse_with_tags(destination)?;
    let also = tags.get(1..).unwrap_or_default().to_vec();
    Ok((dest, options.clone().also_tags(also)))
}

/// What a push into a registry did.
fn pushed(
    ctx: &Context,
    out: &mut Output,
    source: &str,
    dest: &RegistryRef,
    options: &registry::copy::CopyOptions,
    report: &registry::copy::PushReport,
) -> Result<Outcome> {
    ctx.step(format_args!("Pushed {} to {dest}", report.root.digest()));
    let repo = dest.with_target(RegistryTarget::Repository);
    tagged(ctx, &repo, &options.also_tags);
    if ctx.json() {
        out.json(&json!({
            "descriptor": report.root,
            "destination": dest.to_string(),
            "blobs": report.blobs,
            "uploaded": report.uploaded,
            "present": report.blobs - report.uploaded,
            "bytes": report.bytes,
            "referrers": report.referrers,
            "indexedByRegistry": report.indexed_by_api,
            "fallbackTagEntriesAdded": report.fallback_added,
            "skippedForeign": report.foreign,
        }))?;
        return Ok(Outcome::Ok);
    }
    eprintln!(
        "Copied {source} to {dest}: {} ({} uploaded, {} already there, {}){}",
        count(report.blobs, "blob"),
        report.uploaded,
        report.blobs - report.uploaded,
        human_bytes(report.bytes),
        left_out(report.foreign)
    );
    if report.referrers > 0 {
        eprintln!(
            "Carried {}: {} indexed by the registry, {}",
            count(report.referrers, "referrer"),
            report.indexed_by_api,
            count(report.fallback_added, "new fallback-tag entry")
        );
    }
    out.descriptor(ctx.format, &report.root)?;
    Ok(Outcome::Ok)
}

fn registry_to_layout(
    ctx: &Context,
    out: &mut Output,
    args: &Args,
    options: &registry::copy::CopyOptions,
) -> Result<Outcome> {
    let src = RegistryRef::parse(&args.source)?;
    let src_tag = match &src.target {
        RegistryTarget::Tag(t) => Some(t.as_str()),
        _ => None,
    };
    let (dst_ref, tags) = destination(&args.destination, src_tag)?;
    let client = ctx.registry_client(&src.registry, &args.registry)?;
    // The whole graph's manifests are read and verified before the destination is touched.
    let plan = registry::copy::plan_pull(&client, &src, options)?;
    ctx.step(format_args!(
        "Resolved {src} to {} and read every manifest it reaches",
        plan.root().digest()
    ));
    let existed = dst_ref.dir.join(OCI_LAYOUT_FILE).exists();
    let dir_existed = dst_ref.dir.exists();
    let dst = ctx.init_dir(&dst_ref.dir)?;
    let (mode, key, why) = ctx.write_mode(&dst, &args.record)?;
    let into = registry::copy::PullInto::default()
        .tags(tags.clone())
        .mode(Some(mode))
        .response_key(Some(key));
    let result = registry::copy::pull_planned(&client, &plan, &dst, options, &into, &progress::bar);
    if result.is_err() && !dir_existed {
        // The directory this command created would be left as an empty layout: a refused pull
        // leaves no trace. A directory that was there before is never removed.
        let _ = std::fs::remove_dir_all(&dst_ref.dir);
    }
    let report = result?;
    tagged(ctx, &dst_ref.dir.display(), &tags);
    if ctx.json() {
        out.json(&json!({
            "descriptor": report.root,
            "tags": tags,
            "blobs": report.blobs,
            "downloaded": report.downloaded,
            "bytes": report.bytes,
            "referrers": report.referrers,
            "referrersMode": mode.as_str(),
            "skippedForeign": report.foreign,
        }))?;
        return Ok(Outcome::Ok);
    }
    eprintln!(
        "Copied {src} to {}{}: {} ({} downloaded, {} already present, {})",
        dst_ref.dir.display(),
        if existed { "" } else { " (created)" },
        count(report.blobs, "blob"),
        report.downloaded,
        report.blobs - report.downloaded,
        human_bytes(report.bytes),
    );
    recorded(args, report.referrers, mode, why);
    out.descriptor(ctx.format, &report.root)?;
    Ok(Outcome::Ok)
}

/// `-v`: a line for each tag the copy's root got in `dest`.
fn tagged(ctx: &Context, dest: &dyn std::fmt::Display, tags: &[String]) {
    for t in tags {
        ctx.step(format_args!("Tagged {dest}:{t}"));
    }
}

/// `, N non-distributable blobs left out` when there are any.
fn left_out(foreign: usize) -> String {
    if foreign > 0 {
        format!(", {} left out", count(foreign, "non-distributable blob"))
    } else {
        String::new()
    }
}

/// Says how the referrers a copy brought into a layout were recorded.
fn recorded(args: &Args, referrers: usize, mode: Mode, why: &str) {
    if args.referrers {
        eprintln!(
            "Recorded {} as {} (from {why})",
            count(referrers, "referrer"),
            mode.as_str()
        );
    }
}

/// A destination layout and the tags of the copy's root in it: those named (`DST:T1,T2`),
/// else the source's.
fn destination(destination: &str, src_tag: Option<&str>) -> Result<(Reference, Vec<String>)> {
    let (dst_ref, mut tags) = reference_with_tags(
        destination,
        |a| Ok(Reference::parse(a)?),
        "the destination of a copy is DST or DST:TAG",
    )?;
    if tags.is_empty() {
        tags.extend(src_tag.map(String::from));
    }
    Ok((dst_ref, tags))
}

fn layout_to_layout(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let src_ref = ctx.reference(&args.source)?;
    let src = ctx.open(&src_ref)?;
    let root = resolve(&src, &src_ref, None)?;
    let src_tag = match &src_ref.target {
        Target::Tag(t) => Some(t.as_str()),
        _ => None,
    };
    let (dst_ref, tags) = destination(&args.destination, src_tag)?;
    let platforms = args
        .platform
        .iter()
        .map(|p| parse_platform(p))
        .collect::<Result<Vec<_>>>()?;
    ctx.step(format_args!(
        "Resolved {} to {}",
        src_ref.display(),
        root.digest()
    ));
    // The whole source is checked before the destination is touched (or created).
    let plan = transfer::copy::plan_copy(&src, &root, args.referrers, &platforms)?;
    for b in &plan.plan.blobs {
        ctx.step(format_args!(
            "Checked {} {} ({})",
            b.media_type(),
            b.digest(),
            human_bytes(b.size())
        ));
    }
    let existed = dst_ref.dir.join(OCI_LAYOUT_FILE).exists();
    let dst = ctx.init_dir(&dst_ref.dir)?;
    let (mode, key, why) = ctx.write_mode(&dst, &args.record)?;
    let report = transfer::copy(
        &src,
        &plan,
        &dst,
        &CopyOptions::new(mode)
            .tags(tags.clone())
            .response_key(key)
            .hard_links(true),
        &progress::bar,
    )?;
    tagged(ctx, &dst_ref.dir.display(), &tags);
    for r in &plan.plan.relations {
        ctx.step(format_args!(
            "Recorded referrer {} of {} as {}",
            r.referrer.digest(),
            r.subject,
            mode.as_str()
        ));
    }
    if ctx.json() {
        out.json(&json!({
            "descriptor": report.root,
            "tags": tags,
            "blobs": report.blobs,
            "linked": report.linked,
            "copied": report.copied,
            "present": report.present,
            "bytes": report.bytes,
            "referrers": report.referrers,
            "referrersMode": mode.as_str(),
            "skippedForeign": report.foreign,
        }))?;
    } else {
        eprintln!(
            "Copied {} to {}{}: {} ({} hard-linked, {} copied, {} already present, {}){}",
            src_ref.display(),
            dst_ref.dir.display(),
            if existed { "" } else { " (created)" },
            count(report.blobs, "blob"),
            report.linked,
            report.copied,
            report.present,
            human_bytes(report.bytes),
            left_out(report.foreign)
        );
        recorded(args, report.referrers, mode, why);
        out.descriptor(ctx.format, &report.root)?;
    }
    Ok(Outcome::Ok)
}
