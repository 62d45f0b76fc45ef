//! `ocistow export REF... -o FILE`: write references (and what they reach) as a tarball that is
//! itself a layout.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context as _, Result};
use ocistow_store::transfer::{self, Compression, ExportOptions, ExportRoot};
use ocistow_store::{Error, Subject, Target};
use serde_json::json;

use crate::context::{Context, source_date_epoch};
use crate::exit::{Outcome, usage};
use crate::output::{Format, Output, TEXT, TEXT_JSON, count, human_bytes};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:REF, DIR@DIGEST or DIR (repeatable).
    #[arg(required = true)]
    references: Vec<String>,
    /// Output file, or - for stdout. Its extension sets the compression: .tar, .tar.gz or .tgz,
    /// .tar.zst or .tzst (a flag that contradicts it is refused).
    #[arg(short, long)]
    output: String,
    /// Include the referrers of what is exported, recursively, with their records.
    #[arg(long)]
    referrers: bool,
    /// Compress with gzip (the default for .tar.gz and .tgz).
    #[arg(long, conflicts_with = "zstd")]
    gzip: bool,
    /// Compress with zstd (the default for .tar.zst and .tzst).
    #[arg(long)]
    zstd: bool,
    /// Add manifest.json so `docker load` accepts a single-platform image.
    #[arg(long)]
    docker_manifest: bool,
}

/// The command as `--format` errors name it, and the formats it prints.
pub fn formats(args: &Args) -> (&'static str, &'static [Format]) {
    if args.output == "-" {
        ("export -o - (the tarball is stdout)", TEXT)
    } else {
        ("export", TEXT_JSON)
    }
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let to_stdout = args.output == "-";
    let mtime = source_date_epoch()?.unwrap_or(0);
    let compression = compression_for(&args.output, args.gzip, args.zstd)?;
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
                        what: Subject::Entry {
                            layout: r.dir.clone(),
                        },
                        hint: " (index.json is empty: nothing to export)".into(),
                    }
                    .into());
                }
                roots.extend(all);
            }
        }
    }
    for root in &roots {
        ctx.step(format_args!(
            "Exporting {} from {}{}",
            root.entry.digest(),
            root.layout.root().display(),
            root.entry
                .ref_name()
                .map(|t| format!(" as {t}"))
                .unwrap_or_default()
        ));
    }
    let options = ExportOptions::default()
        .referrers(args.referrers)
        .compression(compression)
        .docker_manifest(args.docker_manifest)
        .docker_name(first_dir.as_deref().map(docker_name))
        .mtime(mtime);
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
    if ctx.json() {
        out.json(&json!({
            "output": args.output,
            "compression": compression_name(compression),
            "entries": report.entries,
            "blobs": report.blobs,
            "bytes": report.bytes,
            "referrers": report.referrers,
            "skippedForeign": report.foreign,
        }))?;
    }
    eprintln!(
        "Exported {}, {} ({}{}) to {} as {}",
        count(report.entries, "entry"),
        count(report.blobs, "blob"),
        human_bytes(report.bytes),
        if args.referrers {
            format!(", {}", count(report.referrers, "referrer"))
        } else {
            String::new()
        },
        if to_stdout { "stdout" } else { &args.output },
        compression_name(compression),
    );
    Ok(Outcome::Ok)
}

/// The compression a tarball is written with: what the file name's extension says, else the
/// flag, else none. A flag that contradicts the extension is refused, so `-o x.tar.zst` never
/// silently holds a plain tar.
fn compression_for(output: &str, gzip: bool, zstd: bool) -> Result<Compression> {
    const EXTENSIONS: [(&str, Compression); 6] = [
        (".tar", Compression::None),
        (".tar.gz", Compression::Gzip),
        (".tgz", Compression::Gzip),
        (".tar.zst", Compression::Zstd),
        (".tar.zstd", Compression::Zstd),
        (".tzst", Compression::Zstd),
    ];
    let name = output.to_ascii_lowercase();
    let by_name = EXTENSIONS
        .iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, c)| *c);
    let by_flag = match (gzip, zstd) {
        (true, _) => Some(Compression::Gzip),
        (_, true) => Some(Compression::Zstd),
        _ => None,
    };
    match (by_name, by_flag) {
        (Some(n), Some(f)) if n != f => Err(usage(format!(
            "-o {output} names a {} file but --{} asks for {}; drop the flag or rename the file",
            compression_name(n),
            if gzip { "gzip" } else { "zstd" },
            compression_name(f),
        ))),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Ok(Compression::None),
    }
}

/// How a compression is named in messages and JSON.
fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "tar",
        Compression::Gzip => "tar+gzip",
        Compression::Zstd => "tar+zstd",
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{USAGE, code_of};

    #[test]
    fn the_extension_sets_the_compression_and_a_contradicting_flag_is_refused() {
        let c = |o: &str, g: bool, z: bool| compression_for(o, g, z).unwrap();
        assert_eq!(c("x.tar.zst", false, false), Compression::Zstd);
        assert_eq!(c("x.TZST", false, false), Compression::Zstd);
        assert_eq!(c("x.tar.gz", false, false), Compression::Gzip);
        assert_eq!(c("x.tgz", true, false), Compression::Gzip);
        assert_eq!(c("x.tar", false, false), Compression::None);
        assert_eq!(c("x.bin", false, true), Compression::Zstd);
        assert_eq!(c("-", true, false), Compression::Gzip);
        assert_eq!(c("-", false, false), Compression::None);
        for (o, g, z) in [
            ("x.tar.zst", true, false),
            ("x.tar", false, true),
            ("x.tgz", false, true),
        ] {
            let err = compression_for(o, g, z).unwrap_err();
            assert_eq!(code_of(&err), USAGE, "{o}");
        }
    }
}
