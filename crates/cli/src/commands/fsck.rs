//! `ocistow fsck DIR`: verify every blob, descriptor and referrer record; `--repair` rebuilds
//! records.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use ocistow_store::maintenance::{FsckOptions, FsckReport};

use crate::context::Context;
use crate::exit::Outcome;
use serde_json::{Value, json};

use crate::output::{Output, count, human_bytes, verbose_entries};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
    /// Rebuild referrer records.
    #[arg(long)]
    repair: bool,
    /// With --repair: also remove index.json entries whose blobs are missing.
    #[arg(long, requires = "repair")]
    remove_missing: bool,
    /// With --repair: also record referrers no record lists (usually an interrupted write).
    #[arg(long, requires = "repair")]
    record_unlisted: bool,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let options = FsckOptions::default()
        .repair(args.repair)
        .remove_missing(args.remove_missing)
        .record_unlisted(args.record_unlisted);
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    // Sizing the bar costs a directory walk: only pay it when a bar can be drawn (or -v says it).
    let (files, total) = if std::io::stderr().is_terminal() || ctx.verbose {
        layout.blob_usage()?
    } else {
        (0, 0)
    };
    ctx.step(format_args!(
        "Hashing {} ({}) under {}",
        count(files, "blob file"),
        human_bytes(total),
        layout.root().join("blobs").display()
    ));
    let bar = progress::bar("fsck: hashing blobs", total);
    // A damaged index.json is fsck's to report, so -v never fails on it.
    let before = (ctx.verbose && args.repair)
        .then(|| layout.read_index().ok())
        .flatten();
    let report = layout.fsck(&options, bar.as_ref())?;
    drop(bar);
    ctx.step(format_args!(
        "Checked every descriptor reachable from index.json and every referrer record"
    ));
    if let (Some(before), Ok(after)) = (before, layout.read_index()) {
        verbose_entries(before.manifests(), after.manifests());
    }
    if ctx.json() {
        out.json(&report_json(&report))?;
    } else {
        print(out, &report)?;
    }
    Ok(Outcome::from_answer(report.is_clean()))
}

/// The report in the CLI's one JSON style (camelCase keys).
fn report_json(r: &FsckReport) -> Value {
    let listed = |items: Vec<(&str, String)>| -> Vec<Value> {
        items
            .into_iter()
            .map(|(kind, message)| json!({"kind": kind, "message": message}))
            .collect()
    };
    json!({
        "blobsChecked": r.blobs_checked,
        "bytesHashed": r.bytes_hashed,
        "problems": listed(r.problems.iter().map(|p| (p.kind(), p.to_string())).collect()),
        "notes": listed(r.notes.iter().map(|n| (n.kind(), n.to_string())).collect()),
        "repaired": r.repaired,
    })
}

fn print(out: &mut Output, r: &FsckReport) -> std::io::Result<()> {
    for p in &r.problems {
        out.line(format_args!("problem {}: {p}", p.kind()))?;
    }
    for n in &r.notes {
        out.line(format_args!("note {}: {n}", n.kind()))?;
    }
    for line in &r.repaired {
        out.line(format_args!("repaired: {line}"))?;
    }
    out.line(format_args!(
        "{} checked ({} hashed): {}, {}",
        count(r.blobs_checked, "blob"),
        human_bytes(r.bytes_hashed),
        count(r.problems.len(), "problem"),
        count(r.notes.len(), "note"),
    ))
}
