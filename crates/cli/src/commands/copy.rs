//! `ocistow copy SRC DST`: copy a graph (and with `-r` its referrers) between layouts.

use anyhow::Result;
use ocistow_store::layout::OCI_LAYOUT_FILE;
use ocistow_store::transfer::{self, CopyOptions};
use ocistow_store::{Error, Reference, Target};
use serde_json::json;

use crate::context::{Context, RecordArgs, parse_platform, resolve};
use crate::exit::Outcome;
use crate::output::Output;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
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
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let src_ref = ctx.reference(&args.source)?;
    let src = ctx.open(&src_ref)?;
    let root = resolve(&src, &src_ref, None)?;
    let dst_ref = Reference::parse(&args.destination)?;
    let tags = match (&dst_ref.target, &src_ref.target) {
        (Target::Tag(t), _) | (Target::Only, Target::Tag(t)) => vec![t.clone()],
        (Target::Only, _) => Vec::new(),
        (Target::Digest(_), _) => {
            return Err(Error::InvalidReference {
                input: args.destination.clone(),
                reason: "the destination of a copy is DST or DST:TAG".into(),
            }
            .into());
        }
    };
    let platforms = args
        .platform
        .iter()
        .map(|p| parse_platform(p))
        .collect::<Result<Vec<_>>>()?;
    // The whole source is checked before the destination is touched (or created).
    let plan = transfer::copy::plan_copy(&src, &root, args.referrers, &platforms)?;
    let existed = dst_ref.dir.join(OCI_LAYOUT_FILE).exists();
    let dst = ctx.init_dir(&dst_ref.dir)?;
    let (mode, key, why) = ctx.write_mode(&dst, &args.record)?;
    let report = transfer::copy(
        &src,
        &plan,
        &dst,
        &CopyOptions {
            tags: tags.clone(),
            mode,
            response_key: key,
            hard_links: true,
        },
        &progress::bar,
    )?;
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
            "Copied {} to {}{}: {} blobs ({} hard-linked, {} copied, {} already present){}",
            src_ref.display(),
            dst_ref.dir.display(),
            if existed { "" } else { " (created)" },
            report.blobs,
            report.linked,
            report.copied,
            report.present,
            if report.foreign > 0 {
                format!(", {} non-distributable blobs left out", report.foreign)
            } else {
                String::new()
            }
        );
        if args.referrers {
            eprintln!(
                "Recorded {} referrers as {} (from {why})",
                report.referrers,
                mode.as_str()
            );
        }
        out.descriptor(ctx.format, &report.root)?;
    }
    Ok(Outcome::Ok)
}
