//! `ocistow import FILE DIR`: merge a tarball (OCI layout or docker save) into a layout.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use ocistow_store::transfer::{self, ArchiveFormat, Compression, ImportOptions};
use ocistow_store::{Error, Subject};
use serde_json::json;

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::{Output, count, human_bytes};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The tarball, or - for stdin.
    input: String,
    /// The layout to merge into (created when missing).
    dir: PathBuf,
    /// Let tags in the tarball replace existing tags that point elsewhere.
    #[arg(long)]
    force: bool,
    /// Leave out blobs that nothing in the tarball references instead of refusing it.
    #[arg(long)]
    skip_unreferenced: bool,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let input = args.input.as_str();
    let dir = ctx.dir(Some(&args.dir))?;
    let (mut reader, size, name): (Box<dyn Read>, u64, String) = if input == "-" {
        (Box::new(io::stdin().lock()), 0, "stdin".into())
    } else {
        let f = match File::open(input) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(Subject::Path(input.into())).into());
            }
            Err(e) => return Err(anyhow!(e).context(input.to_string())),
        };
        let size = f.metadata().map_or(0, |m| m.len());
        (Box::new(f), size, input.to_string())
    };
    let bar = progress::bar(&name, size);
    let report = transfer::import(
        &mut reader,
        &dir,
        &ImportOptions::default()
            .force(args.force)
            .name(name.clone())
            .skip_unreferenced(args.skip_unreferenced),
        bar.as_ref(),
    )?;
    drop(bar);
    for t in &report.tags {
        ctx.step(format_args!("Tagged {}:{t}", dir.display()));
    }
    for t in &report.replaced {
        ctx.step(format_args!("Replaced tag {t} (it named another digest)"));
    }
    for m in &report.skipped {
        ctx.step(format_args!(
            "Left out {m} (nothing in the archive references it)"
        ));
    }
    let compression = match report.compression {
        Compression::None => "tar",
        Compression::Gzip => "tar+gzip",
        Compression::Zstd => "tar+zstd",
    };
    if ctx.json() {
        out.json(&json!({
            "format": report.format,
            "compression": compression,
            "created": report.created,
            "blobsAdded": report.blobs_added,
            "bytesAdded": report.bytes_added,
            "blobsPresent": report.blobs_present,
            "entriesAdded": report.entries_added,
            "tags": report.tags,
            "replacedTags": report.replaced,
            "referrers": report.referrers,
            "referrersMode": report.mode.map(ocistow_store::referrers::Mode::as_str),
            "skipped": report.skipped,
        }))?;
    } else {
        for t in &report.tags {
            out.line(t)?;
        }
    }
    eprintln!(
        "Imported {name} ({} {compression}) into {}{}: {} added ({}), {} already present, {} added{}{}",
        match report.format {
            ArchiveFormat::OciLayout => "OCI layout",
            ArchiveFormat::DockerArchive => "docker save archive",
        },
        dir.display(),
        if report.created { " (created)" } else { "" },
        count(report.blobs_added, "blob"),
        human_bytes(report.bytes_added),
        report.blobs_present,
        count(report.entries_added, "entry"),
        if report.replaced.is_empty() {
            String::new()
        } else {
            format!("; replaced tags {}", report.replaced.join(", "))
        },
        match (report.referrers, report.mode) {
            (0, _) => String::new(),
            (n, Some(m)) => format!(
                "; {}, recorded as {} as the layout does",
                count(n, "referrer"),
                m.as_str()
            ),
            (n, None) => format!("; {}, records kept as they came", count(n, "referrer")),
        }
    );
    Ok(Outcome::Ok)
}
