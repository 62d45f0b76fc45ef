//! `gc` and `fsck`: argument handling and output; the work is in `ocistow_store::maintenance`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::json;

use ocistow_store::Layout;
use ocistow_store::maintenance::{FsckOptions, FsckReport, GcOptions, GcReport, parse_duration};

use crate::cli::{Cli, Command};
use crate::commands::{Ctx, Outcome};
use crate::progress;

pub fn run(cli: &Cli) -> Result<Outcome> {
    let ctx = Ctx { cli };
    match &cli.command {
        Command::Gc {
            dir,
            dry_run,
            keep_orphan_referrers,
            grace,
        } => {
            // Parsed before the layout is opened: a typo changes nothing.
            let options = GcOptions {
                dry_run: *dry_run,
                keep_orphan_referrers: *keep_orphan_referrers,
                grace: parse_duration(grace)?,
            };
            gc(&ctx, dir.as_deref(), &options)
        }
        Command::Fsck {
            dir,
            repair,
            remove_missing,
        } => fsck(
            &ctx,
            dir.as_deref(),
            &FsckOptions {
                repair: *repair,
                remove_missing: *remove_missing,
                threads: None,
            },
        ),
        _ => bail!("internal error: not a maintenance command"),
    }
}

fn gc(ctx: &Ctx<'_>, dir: Option<&Path>, options: &GcOptions) -> Result<Outcome> {
    let layout = Layout::open(ctx.dir(dir)?)?;
    let report = layout.gc(options)?;
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&gc_json(&report))?);
    } else {
        print_gc(&report);
    }
    Ok(Outcome::Ok)
}

fn gc_json(r: &GcReport) -> serde_json::Value {
    json!({
        "dry_run": r.dry_run,
        "blobs_removed": r.blobs_removed.len(),
        "bytes_freed": r.bytes_freed,
        "blobs_kept": r.blobs_kept,
        "blobs": r.blobs_removed,
        "entries": r.entries_removed,
        "work_files": r.work_files_removed,
    })
}

fn print_gc(r: &GcReport) {
    let verb = if r.dry_run { "Would remove" } else { "Removed" };
    if r.dry_run {
        for b in &r.blobs_removed {
            println!("would remove blob {} ({} bytes)", b.digest, b.size);
        }
        for e in &r.entries_removed {
            println!("would remove index.json entry {}", e.digest());
        }
        for f in &r.work_files_removed {
            println!("would remove {} ({} bytes)", f.path, f.size);
        }
    }
    println!(
        "{verb} {} blob{} and {} work file{} ({}), and {} index.json entr{}; {} blob{} kept",
        r.blobs_removed.len(),
        plural(r.blobs_removed.len()),
        r.work_files_removed.len(),
        plural(r.work_files_removed.len()),
        human_bytes(r.bytes_freed),
        r.entries_removed.len(),
        if r.entries_removed.len() == 1 {
            "y"
        } else {
            "ies"
        },
        r.blobs_kept,
        plural(r.blobs_kept),
    );
}

fn fsck(ctx: &Ctx<'_>, dir: Option<&Path>, options: &FsckOptions) -> Result<Outcome> {
    let layout = Layout::open(ctx.dir(dir)?)?;
    // Sizing the bar costs a directory walk: only pay it when a bar can be drawn.
    let total = if std::io::stderr().is_terminal() {
        layout.blob_usage()?.1
    } else {
        0
    };
    let bar = progress::bar("fsck: hashing blobs", total);
    let report = layout.fsck(options, bar.as_ref())?;
    drop(bar);
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_fsck(&report);
    }
    Ok(if report.is_clean() {
        Outcome::Ok
    } else {
        Outcome::No
    })
}

fn print_fsck(r: &FsckReport) {
    for p in &r.problems {
        println!("problem {}: {p}", p.kind());
    }
    for n in &r.notes {
        println!("note {}: {n}", n.kind());
    }
    for line in &r.repaired {
        println!("repaired: {line}");
    }
    println!(
        "{} blob{} checked ({} hashed): {} problem{}, {} note{}",
        r.blobs_checked,
        plural(r.blobs_checked),
        human_bytes(r.bytes_hashed),
        r.problems.len(),
        plural(r.problems.len()),
        r.notes.len(),
        plural(r.notes.len()),
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
