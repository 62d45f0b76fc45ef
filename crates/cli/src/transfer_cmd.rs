//! CLI for the transfer commands: `copy`, `export`, `import`. The work is in
//! `ocistow_store::transfer`; this parses arguments, shows progress and reports.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use ocistow_store::transfer::{
    self, Compression, CopyOptions, ExportOptions, ExportRoot, ImportOptions,
};
use ocistow_store::{Error, Layout, Platform, Reference, Target};

use crate::cli::{Cli, Command, RecordArgs};
use crate::commands::{Ctx, Outcome};
use crate::progress;

pub fn run(cli: &Cli) -> Result<Outcome> {
    let ctx = Ctx { cli };
    match &cli.command {
        Command::Copy {
            source,
            destination,
            referrers,
            platform,
            record,
        } => copy(&ctx, source, destination, *referrers, platform, record),
        Command::Export {
            references,
            output,
            referrers,
            gzip,
            zstd,
            docker_manifest,
        } => {
            let compression = match (*gzip, *zstd) {
                (true, _) => Compression::Gzip,
                (_, true) => Compression::Zstd,
                _ => Compression::None,
            };
            export(
                &ctx,
                references,
                output,
                *referrers,
                compression,
                *docker_manifest,
            )
        }
        Command::Import { input, dir, force } => import(&ctx, input, dir, *force),
        _ => bail!("not a transfer command"),
    }
}

fn copy(
    ctx: &Ctx<'_>,
    source: &str,
    destination: &str,
    referrers: bool,
    platforms: &[String],
    record: &RecordArgs,
) -> Result<Outcome> {
    let src_ref = ctx.reference(source)?;
    let src = ctx.open(&src_ref)?;
    let root = ctx.resolve(&src, &src_ref, None)?;
    let dst_ref = Reference::parse(destination)?;
    let tags = match (&dst_ref.target, &src_ref.target) {
        (Target::Tag(t), _) => vec![t.clone()],
        (Target::Only, Target::Tag(t)) => vec![t.clone()],
        (Target::Only, _) => Vec::new(),
        (Target::Digest(_), _) => bail!(Error::InvalidReference {
            input: destination.into(),
            reason: "the destination of a copy is DST or DST:TAG".into(),
        }),
    };
    let platforms = platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| anyhow!(Error::InvalidInput(e))))
        .collect::<Result<Vec<_>>>()?;
    // The whole source is checked before the destination is touched (or created).
    let plan = transfer::copy::plan_copy(&src, &root, referrers, &platforms)?;
    let existed = dst_ref
        .dir
        .join(ocistow_store::layout::OCI_LAYOUT_FILE)
        .exists();
    let dst = Layout::init(&dst_ref.dir)?;
    let (mode, key, why) = ctx.write_mode(&dst, record)?;
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
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
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
            }))?
        );
    } else {
        eprintln!(
            "Copied {} to {}{}: {} blobs ({} hard-linked, {} copied, {} already present){}",
            root_name(&src_ref),
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
        if referrers {
            eprintln!(
                "Recorded {} referrers as {} (from {why})",
                report.referrers,
                mode.as_str()
            );
        }
        ctx.print_descriptor(&report.root)?;
    }
    Ok(Outcome::Ok)
}

fn root_name(r: &Reference) -> String {
    r.display()
}

fn export(
    ctx: &Ctx<'_>,
    references: &[String],
    output: &str,
    referrers: bool,
    compression: Compression,
    docker_manifest: bool,
) -> Result<Outcome> {
    let mut roots: Vec<ExportRoot> = Vec::new();
    let mut first_dir = None;
    for arg in references {
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
                    bail!(Error::NotFound {
                        what: format!("an entry in {}", r.dir.display()),
                        hint: " (index.json is empty: nothing to export)".into(),
                    });
                }
                roots.extend(all);
            }
        }
    }
    let options = ExportOptions {
        referrers,
        compression,
        docker_manifest,
        docker_name: first_dir.as_deref().map(docker_name),
        mtime: transfer::source_date_epoch(),
    };
    let report = if output == "-" {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            bail!(Error::InvalidInput(
                "refusing to write a tarball to a terminal; redirect stdout or give -o FILE".into()
            ));
        }
        let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
        let report = transfer::export(&roots, &options, &mut out, &progress::bar)?;
        out.flush().context("stdout")?;
        report
    } else {
        transfer::export_to_path(&roots, &options, Path::new(output), &progress::bar)?
    };
    let target = if output == "-" { "stdout" } else { output };
    if ctx.json() && output != "-" {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "output": output,
                "entries": report.entries,
                "blobs": report.blobs,
                "bytes": report.bytes,
                "referrers": report.referrers,
                "skippedForeign": report.foreign,
            }))?
        );
    }
    eprintln!(
        "Exported {} entries, {} blobs ({} bytes{}) to {target}",
        report.entries,
        report.blobs,
        report.bytes,
        if referrers {
            format!(", {} referrers", report.referrers)
        } else {
            String::new()
        }
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

fn import(ctx: &Ctx<'_>, input: &str, dir: &Path, force: bool) -> Result<Outcome> {
    let dir = ctx.dir(Some(dir))?;
    let (mut reader, size, name): (Box<dyn Read>, u64, String) = if input == "-" {
        (Box::new(io::stdin().lock()), 0, "stdin".into())
    } else {
        let f = match File::open(input) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(Error::NotFound {
                what: format!("input file {input}"),
                hint: String::new(),
            }),
            Err(e) => return Err(anyhow!(e).context(input.to_string())),
        };
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(f), size, input.to_string())
    };
    let bar = progress::bar(&name, size);
    let report = transfer::import(
        &mut reader,
        &dir,
        &ImportOptions {
            force,
            name: name.clone(),
        },
        bar.as_ref(),
    )?;
    drop(bar);
    let compression = match report.compression {
        Compression::None => "tar",
        Compression::Gzip => "tar+gzip",
        Compression::Zstd => "tar+zstd",
    };
    if ctx.json() {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
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
                "referrersMode": report.mode.map(|m| m.as_str()),
            }))?
        );
    } else {
        for t in &report.tags {
            println!("{t}");
        }
    }
    eprintln!(
        "Imported {name} ({} {compression}) into {}{}: {} blobs added ({} bytes), {} already present, {} entries added{}{}",
        match report.format {
            transfer::ArchiveFormat::OciLayout => "OCI layout",
            transfer::ArchiveFormat::DockerArchive => "docker save archive",
        },
        dir.display(),
        if report.created { " (created)" } else { "" },
        report.blobs_added,
        report.bytes_added,
        report.blobs_present,
        report.entries_added,
        if report.replaced.is_empty() {
            String::new()
        } else {
            format!("; replaced tags {}", report.replaced.join(", "))
        },
        match (report.referrers, report.mode) {
            (0, _) => String::new(),
            (n, Some(m)) => format!(
                "; {n} referrers, recorded as {} as the layout does",
                m.as_str()
            ),
            (n, None) => format!("; {n} referrers, records kept as they came"),
        }
    );
    Ok(Outcome::Ok)
}
