//! `ocistow normalize DIR [--to MODE] [--dry-run]`: make a foreign layout canonical in one
//! `index.json` transaction, without rewriting a blob.

use std::path::PathBuf;

use anyhow::Result;
use ocistow_store::normalize::{NormalizeOptions, NormalizeReport};
use serde_json::json;

use crate::context::{Context, KeyArg, ModeArg};
use crate::exit::Outcome;
use crate::output::{Output, count, verbose_entries};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
    /// Record every referrer in this mode [default: the mode the layout already uses
    /// consistently, else annotation].
    #[arg(long, value_enum, value_name = "MODE")]
    to: Option<ModeArg>,
    /// Annotation key for response records [default: the key the layout uses, else oci].
    #[arg(long, value_enum)]
    response_key: Option<KeyArg>,
    /// Print the change to index.json as a unified diff; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let mut options = NormalizeOptions::new(args.to.map(Into::into)).dry_run(args.dry_run);
    if let Some(k) = args.response_key {
        options = options.response_key(k.into());
    }
    let report = layout.normalize(&options)?;
    if ctx.verbose {
        verbose_entries(report.before.manifests(), report.after.manifests());
    }
    if ctx.json() {
        // The report's fields, then the diff (empty when nothing changes).
        let mut shown = serde_json::to_value(&report)?;
        if let Some(m) = shown.as_object_mut() {
            m.insert("diff".into(), json!(diff(&report)));
        }
        out.json(&shown)?;
    } else {
        if report.dry_run {
            out.raw().write_all(diff(&report).as_bytes())?;
        }
        eprintln!("{}", summary(&report));
    }
    for a in &report.ambiguous_tags {
        let digests: Vec<&str> = a
            .digests
            .iter()
            .map(ocistow_store::Digest::as_str)
            .collect();
        eprintln!(
            "warning: tag {:?} names {} digests ({}); left as it is: untag the wrong one",
            a.tag,
            digests.len(),
            digests.join(", ")
        );
    }
    Ok(Outcome::from_answer(report.ambiguous_tags.is_empty()))
}

/// The change to index.json as a unified diff of its pretty-printed form (the file itself is one
/// line), empty when nothing changes.
fn diff(report: &NormalizeReport) -> String {
    if !report.changed {
        return String::new();
    }
    let pretty = |index| serde_json::to_string_pretty(index).unwrap_or_default() + "\n";
    let (before, after) = (pretty(&report.before), pretty(&report.after));
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("index.json", "index.json (normalized)")
        .to_string()
}

fn summary(report: &NormalizeReport) -> String {
    let c = &report.convert;
    let mut parts = vec![format!(
        "{} as {} ({} added, {} updated, {} removed)",
        count(c.referrers, "referrer"),
        report.mode.as_str(),
        count(c.added, "record"),
        c.updated,
        c.removed
    )];
    if report.media_type_added {
        parts.push("top-level mediaType added".into());
    }
    if report.duplicates_merged > 0 {
        parts.push(format!(
            "{} merged",
            count(report.duplicates_merged, "duplicate entry")
        ));
    }
    if report.entries_described > 0 {
        parts.push(format!(
            "{} given their manifest's artifactType and annotations",
            count(report.entries_described, "referrer entry")
        ));
    }
    let verb = if report.dry_run {
        "Would normalize"
    } else {
        "Normalized"
    };
    let tail = if report.changed {
        ""
    } else {
        " (index.json unchanged)"
    };
    format!("{verb}: {}{tail}", parts.join("; "))
}
