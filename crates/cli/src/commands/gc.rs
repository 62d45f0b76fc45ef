//! `ocistow gc DIR`: delete what nothing reaches from index.json; a referrer lives as long as
//! its subject does.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use ocistow_store::maintenance::{GcOptions, GcReport};
use serde_json::json;

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::{Output, count, human_bytes};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
    /// Report what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep referrers whose subject is gone.
    #[arg(long)]
    keep_orphan_referrers: bool,
    /// Keep stale ingest/ files younger than this (e.g. 30s, 10m, 1h).
    // Parsed by clap, before the layout is opened: a typo changes nothing and exits 2.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    grace: Duration,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let options = GcOptions::default()
        .dry_run(args.dry_run)
        .keep_orphan_referrers(args.keep_orphan_referrers)
        .grace(args.grace);
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let report = layout.gc(&options)?;
    if !report.dry_run {
        for b in &report.blobs_removed {
            ctx.step(format_args!(
                "Removed blob {} ({})",
                b.digest,
                human_bytes(b.size)
            ));
        }
        for e in &report.entries_removed {
            ctx.step(format_args!("Removed index.json entry {}", e.digest()));
        }
        for f in &report.work_files_removed {
            ctx.step(format_args!("Removed {} ({})", f.path, human_bytes(f.size)));
        }
    }
    if ctx.json() {
        out.json(&report_json(&report))?;
    } else {
        print(out, &report)?;
    }
    Ok(Outcome::Ok)
}

/// A whole number with an optional unit: `s` (the default), `m`, `h` or `d`.
fn parse_duration(input: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {input:?}: use a whole number with s, m, h or d (e.g. 0, 30s, 10m, 1h, 2d)"
        )
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

fn report_json(r: &GcReport) -> serde_json::Value {
    json!({
        "dryRun": r.dry_run,
        "blobsRemoved": r.blobs_removed.len(),
        "bytesFreed": r.bytes_freed,
        "blobsKept": r.blobs_kept,
        "blobs": r.blobs_removed,
        "entries": r.entries_removed,
        "workFiles": r.work_files_removed,
    })
}

fn print(out: &mut Output, r: &GcReport) -> std::io::Result<()> {
    let verb = if r.dry_run { "Would remove" } else { "Removed" };
    if r.dry_run {
        for b in &r.blobs_removed {
            out.line(format_args!(
                "would remove blob {} ({})",
                b.digest,
                human_bytes(b.size)
            ))?;
        }
        for e in &r.entries_removed {
            out.line(format_args!("would remove index.json entry {}", e.digest()))?;
        }
        for f in &r.work_files_removed {
            out.line(format_args!(
                "would remove {} ({})",
                f.path,
                human_bytes(f.size)
            ))?;
        }
    }
    out.line(format_args!(
        "{verb} {} and {} ({}), and {}; {} kept",
        count(r.blobs_removed.len(), "blob"),
        count(r.work_files_removed.len(), "work file"),
        human_bytes(r.bytes_freed),
        count(r.entries_removed.len(), "index.json entry"),
        count(r.blobs_kept, "blob"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_whole_numbers_with_a_unit() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_mins(10)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_hours(48)));
        for bad in [
            "",
            "5x",
            "1h30m",
            "-1",
            "1.5h",
            "m",
            "99999999999999999999d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad:?}: {err}");
        }
    }
}
