//! `ocistow import FILE DIR`: merge a tarball (OCI layout or docker save) into a layout.

use std::fs::File;
use std::io;
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
    /// From stdin or a pipe, the most bytes staged of members nothing before them declares
    /// (blobs before index.json, as docker save writes them): 512M by default; K, M, G suffixes.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    undeclared_limit: Option<u64>,
}

/// `1048576`, `512K`, `512M`, `2G` (powers of 1024).
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M or G)"))
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let input = args.input.as_str();
    let dir = ctx.dir(Some(&args.dir))?;
    // A regular file is read twice (its declarations first); stdin, a pipe or a FIFO once.
    let (mut file, size, name): (Option<File>, u64, String) = if input == "-" {
        (None, 0, "stdin".into())
    } else {
        let f = match File::open(input) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(Subject::Path(input.into())).into());
            }
            Err(e) => return Err(anyhow!(e).context(input.to_string())),
        };
        let size = f.metadata().map_or(0, |m| m.len());
        (Some(f), size, input.to_string())
    };
    let bar = progress::bar(&name, size);
    let mut options = ImportOptions::default()
        .force(args.force)
        .name(name.clone())
        .skip_unreferenced(args.skip_unreferenced);
    if let Some(limit) = args.undeclared_limit {
        options = options.undeclared_limit(limit);
    }
    let report = match &mut file {
        Some(f) if f.metadata().is_ok_and(|m| m.is_file()) => {
            transfer::import_seekable(f, &dir, &options, bar.as_ref())?
        }
        Some(f) => transfer::import(f, &dir, &options, bar.as_ref())?,
        None => transfer::import(&mut io::stdin().lock(), &dir, &options, bar.as_ref())?,
    };
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_anything_else() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size(" 2G "), Ok(2 << 30));
        for bad in ["", "M", "1.5G", "-1", "1T", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
