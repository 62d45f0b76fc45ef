//! `ocistow referrers status|convert`: which referrer conventions a layout uses, its
//! inconsistencies, and converting every record to one convention.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ocistow_store::referrers::{Convention, Mode, ResponseKey, ScanOptions, mode_in_index};
use serde_json::{Value, json};

use crate::context::{Context, KeyArg, ModeArg};
use crate::exit::Outcome;
use crate::output::{Output, count, verbose_entries};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Which referrer conventions the layout uses, and every inconsistency.
    #[command(after_help = "Example:\n  ocistow referrers status ./layout --format json")]
    Status {
        /// The layout directory.
        dir: Option<PathBuf>,
    },
    /// Record every referrer in one convention (and, unless --keep, drop the others' records).
    #[command(
        after_help = "Examples:\n  ocistow referrers convert ./layout --to tag          # for regctl\n  \
        ocistow referrers convert ./layout --to response --response-key olareg\n  \
        ocistow referrers convert ./layout --to annotation --keep --dry-run"
    )]
    Convert {
        /// The layout directory.
        dir: Option<PathBuf>,
        /// The target convention.
        #[arg(long, value_enum)]
        to: ModeArg,
        /// Annotation key for response records.
        #[arg(long, value_enum, default_value_t = KeyArg::Oci)]
        response_key: KeyArg,
        /// Keep the records of other conventions too.
        #[arg(long)]
        keep: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(ctx: &Context, out: &mut Output, cmd: &Command) -> Result<Outcome> {
    match cmd {
        Command::Status { dir } => status(ctx, out, dir.as_deref()),
        Command::Convert {
            dir,
            to,
            response_key,
            keep,
            dry_run,
        } => convert(
            ctx,
            out,
            dir.as_deref(),
            (*to).into(),
            (*response_key).into(),
            *keep,
            *dry_run,
        ),
    }
}

fn convert(
    ctx: &Context,
    out: &mut Output,
    dir: Option<&Path>,
    to: Mode,
    key: ResponseKey,
    keep: bool,
    dry_run: bool,
) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(dir)?)?;
    let before = ctx.verbose.then(|| layout.read_index()).transpose()?;
    let report = layout.convert_referrers(to, key, keep, dry_run)?;
    if let Some(before) = before
        && !dry_run
    {
        verbose_entries(before.manifests(), layout.read_index()?.manifests());
    }
    if ctx.json() {
        out.json(&json!({
            "mode": report.mode.as_str(),
            "referrers": report.referrers,
            "added": report.added,
            "updated": report.updated,
            "removed": report.removed,
            "changed": report.changed,
            "dryRun": report.dry_run,
        }))?;
    } else {
        out.line(format_args!(
            "{} {} as {}: {} added, {} updated, {} removed{}",
            if report.dry_run {
                "Would record"
            } else {
                "Recorded"
            },
            count(report.referrers, "referrer"),
            report.mode.as_str(),
            count(report.added, "record"),
            report.updated,
            report.removed,
            if report.changed {
                ""
            } else {
                " (index.json unchanged)"
            }
        ))?;
    }
    Ok(Outcome::Ok)
}

fn status(ctx: &Context, out: &mut Output, dir: Option<&Path>) -> Result<Outcome> {
    use Convention as C;
    let layout = ctx.open_dir(&ctx.dir(dir)?)?;
    let index = layout.read_index()?;
    let graph = layout.scan_referrers_in(&index, ScanOptions::default().deep(true))?;
    let conventions = [
        C::Plain,
        C::FallbackTag,
        C::Response,
        C::SubjectAnnotation,
        C::Attestation,
        C::Nested,
        C::DeepScan,
    ];
    let counts: Vec<(C, usize)> = conventions
        .iter()
        .map(|&c| (c, graph.count(c)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let mode = mode_in_index(&index);
    if ctx.json() {
        let conv: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(c, n)| (c.as_str().to_string(), json!(n)))
            .collect();
        let issues: Vec<Value> = graph
            .issues()
            .iter()
            .map(|i| json!({"kind": i.kind(), "message": i.to_string()}))
            .collect();
        out.json(&json!({
            "referrers": graph.referrers().len(),
            "subjects": graph.subjects().len(),
            "conventions": conv,
            "records": {
                "response": graph.record_count(C::Response),
                "fallbackTag": graph.record_count(C::FallbackTag),
            },
            "mode": mode.map(|(m, _)| m.as_str()),
            "issues": issues,
        }))?;
    } else {
        out.line(format_args!(
            "{} of {}",
            count(graph.referrers().len(), "referrer"),
            count(graph.subjects().len(), "subject")
        ))?;
        for (c, n) in &counts {
            out.line(format_args!("  {:<20} {n}", c.as_str()))?;
        }
        match mode {
            Some((m, _)) => out.line(format_args!("write mode in use: {}", m.as_str()))?,
            None => {
                out.line("write mode in use: none consistently (writes default to annotation)")?;
            }
        }
        if graph.issues().is_empty() {
            out.line("no inconsistencies")?;
        } else {
            out.line(format_args!(
                "{}:",
                count(graph.issues().len(), "inconsistency")
            ))?;
            for i in graph.issues() {
                out.line(format_args!("  {}: {i}", i.kind()))?;
            }
        }
    }
    let outcome = Outcome::from_answer(graph.issues().is_empty());
    // Not freed: the process exits now (see discover).
    std::mem::forget((index, graph));
    Ok(outcome)
}
