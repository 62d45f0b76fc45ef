//! `ocistow export REF... -o FILE`: write references (and what they reach) as a tarball that is
//! itself a layout.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context as _, Result};
use ocistow_store::transfer::{self, Compression, ExportOptions, ExportRoot};
use ocistow_store::{Error, Target};
use serde_json::json;

use crate::context::{Context, source_date_epoch};
use crate::exit::{Outcome, usage};
use crate::output::Output;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
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
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let mtime = source_date_epoch()?.unwrap_or(0);
    let compression = match (args.gzip, args.zstd) {
        (true, _) => Compression::Gzip,
        (_, true) => Compression::Zstd,
        _ => Compression::None,
    };
    let mut roots: Vec<ExportRoot> = Vec::new();
    let mut first_dir = None;
    for arg in &args.references {
        let r = ctx.reference(arg)?;
        let layout = ctx.open(&r)?;
        first_dir.get_or_insert_with(|| r.dir.clone());
        match &r.target {
            Target::Tag(t) => {
                let d = layout.resolve(&r.target)?;
                roots.push(ExportRoot::tagged(&layout, &d, t));
            }
            Target::Digest(_) => {
                let d = layout.resolve(&r.target)?;
                roots.push(ExportRoot::untagged(&layout, &d));
            }
            Target::Only => {
                let all = ExportRoot::whole_layout(&layout)?;
                if all.is_empty() {
                    return Err(Error::NotFound {
                        what: format!("an entry in {}", r.dir.display()),
                        hint: " (index.json is empty: nothing to export)".into(),
                    }
                    .into());
                }
                roots.extend(all);
            }
        }
    }
    let options = ExportOptions {
        referrers: args.referrers,
        compression,
        docker_manifest: args.docker_manifest,
        docker_name: first_dir.as_deref().map(docker_name),
        mtime,
    };
    let to_stdout = args.output == "-";
    let report = if to_stdout {
        if std::io::stdout().is_terminal() {
            return Err(usage(
                "refusing to write a tarball to a terminal; redirect stdout or give -o FILE",
            ));
        }
        let report = transfer::export(&roots, &options, out.raw(), &progress::bar)?;
        out.flush().context("stdout")?;
        report
    } else {
        transfer::export_to_path(&roots, &options, Path::new(&args.output), &progress::bar)?
    };
    if ctx.json() && !to_stdout {
        out.json(&json!({
            "output": args.output,
            "entries": report.entries,
            "blobs": report.blobs,
            "bytes": report.bytes,
            "referrers": report.referrers,
            "skippedForeign": report.foreign,
        }))?;
    }
    eprintln!(
        "Exported {} entries, {} blobs ({} bytes{}) to {}",
        report.entries,
        report.blobs,
        report.bytes,
        if args.referrers {
            format!(", {} referrers", report.referrers)
        } else {
            String::new()
        },
        if to_stdout { "stdout" } else { &args.output }
    );
    Ok(Outcome::Ok)
}

/// A docker repository name from a directory name: lowercase, other characters as `-`.
fn docker_name(dir: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mapped: String = base
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "ocistow".into()
    } else {
        trimmed.to_string()
    }
}
