//! `ocistow blob get|put|delete|exists`: blobs by digest, always verified.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ocistow_store::layout::Expected;
use ocistow_store::{Digest, Error, Layout, ReferenceProblem, Subject, Target};
use serde_json::json;

use ocistow_registry::{RegistryRef, RegistryTarget, is_registry_ref};
use ocistow_store::Descriptor;

use crate::context::{Context, RegistryArgs};
use crate::exit::{Outcome, usage};
use crate::output::{Format, Output, TEXT, TEXT_JSON};
use crate::progress;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a blob to stdout or a file, verifying its digest.
    #[command(
        visible_alias = "fetch",
        after_help = "Example:\n  ocistow blob get ./layout@sha256:51bc… -o file.txt"
    )]
    Get {
        /// DIR@DIGEST, or `docker://HOST[:PORT]/REPO@DIGEST`
        reference: String,
        /// Write here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Store a blob from a file or stdin and print its digest.
    #[command(
        visible_alias = "push",
        after_help = "Examples:\n  ocistow blob put ./layout file.bin\n  ocistow blob put ./layout - --digest sha256:51bc… < file.bin"
    )]
    Put {
        /// The layout directory.
        dir: String,
        /// File, or - for stdin.
        #[arg(default_value = "-")]
        file: String,
        /// Expected digest (its algorithm is used: sha256 or sha512).
        #[arg(long)]
        digest: Option<String>,
        /// Expected size in bytes.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Delete a blob (even one still referenced: see `gc` for safe cleanup).
    #[command(after_help = "Example:\n  ocistow blob delete ./layout@sha256:51bc…")]
    Delete { reference: String },
    /// Exit 0 if the blob exists, 1 if not.
    #[command(after_help = "Example:\n  ocistow blob exists ./layout@sha256:51bc… && echo present")]
    Exists { reference: String },
}

/// The subcommand as `--format` errors name it, and the formats it prints.
pub fn formats(cmd: &Command) -> (&'static str, &'static [Format]) {
    match cmd {
        Command::Get { .. } => ("blob get (the blob itself is the output)", TEXT),
        Command::Delete { .. } => ("blob delete", TEXT),
        Command::Put { .. } => ("blob put", TEXT_JSON),
        Command::Exists { .. } => ("blob exists", TEXT_JSON),
    }
}

pub fn run(ctx: &Context, out: &mut Output, cmd: &Command) -> Result<Outcome> {
    match cmd {
        Command::Get {
            reference,
            output,
            registry,
        } => get(ctx, out, reference, output.as_deref(), registry),
        Command::Put {
            dir,
            file,
            digest,
            size,
        } => put(ctx, out, dir, file, digest.as_deref(), *size),
        Command::Delete { reference } => {
            let (layout, digest) = blob_ref(ctx, reference)?;
            layout.delete_blob(&digest)?;
            eprintln!("Deleted blob {digest}");
            Ok(Outcome::Ok)
        }
        Command::Exists { reference } => {
            let (layout, digest) = blob_ref(ctx, reference)?;
            let size = layout.blob_size(&digest)?;
            if ctx.json() {
                out.json(&json!({"digest": digest, "exists": size.is_some(), "size": size}))?;
            }
            Ok(Outcome::from_answer(size.is_some()))
        }
    }
}

/// A `DIR@DIGEST` argument.
fn blob_ref(ctx: &Context, reference: &str) -> Result<(Layout, Digest)> {
    let r = ctx.reference(reference)?;
    let Target::Digest(d) = &r.target else {
        return Err(Error::InvalidReference {
            input: reference.into(),
            problem: ReferenceProblem::WrongForm {
                expected: "blobs are named DIR@DIGEST",
            },
        }
        .into());
    };
    Ok((ctx.open(&r)?, d.clone()))
}

fn get(
    ctx: &Context,
    out: &mut Output,
    reference: &str,
    output: Option<&Path>,
    registry: &RegistryArgs,
) -> Result<Outcome> {
    if is_registry_ref(reference) {
        return get_from_registry(ctx, out, reference, output, registry);
    }
    let (layout, digest) = blob_ref(ctx, reference)?;
    // get verifies, so an algorithm we cannot compute is an error whether or not the file exists.
    digest.known_algorithm()?;
    let size = layout.blob_size(&digest)?.ok_or_else(|| {
        Error::not_found(Subject::BlobIn {
            digest: digest.clone(),
            layout: layout.root().to_path_buf(),
        })
    })?;
    let bar = progress::bar(&digest.to_string(), size);
    write_verified(out, output, &mut |w| {
        layout.copy_blob_to(&digest, None, w, bar.as_ref())?;
        Ok(())
    })
}

/// A blob of a registry, streamed and verified on the way.
fn get_from_registry(
    ctx: &Context,
    out: &mut Output,
    reference: &str,
    output: Option<&Path>,
    registry: &RegistryArgs,
) -> Result<Outcome> {
    let r = RegistryRef::parse(reference)?;
    let RegistryTarget::Digest(digest) = &r.target else {
        return Err(Error::InvalidReference {
            input: reference.into(),
            problem: ReferenceProblem::WrongForm {
                expected: "blobs are named docker://HOST[:PORT]/REPO@DIGEST",
            },
        }
        .into());
    };
    digest.known_algorithm()?;
    let client = ctx.registry_client(&r.registry, registry)?;
    let size = client
        .head_blob(&r.repository, digest)?
        .ok_or_else(|| {
            Error::not_found(Subject::Reference(
                r.with_target(RegistryTarget::Digest(digest.clone()))
                    .to_string(),
            ))
        })?
        .ok_or_else(|| usage(format!("{r}: the registry does not tell the blob's size")))?;
    let desc = Descriptor::new("application/octet-stream", digest.clone(), size);
    write_verified(out, output, &mut |w| {
        client.copy_blob(&r.repository, &desc, w)?;
        Ok(())
    })
}

/// Writes through `write` to stdout, a device, or a file that appears only when `write`
/// succeeded (it verifies as it goes).
fn write_verified(
    out: &mut Output,
    output: Option<&Path>,
    write: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
) -> Result<Outcome> {
    match output {
        None => write(out.raw())?,
        // A device or pipe (`-o /dev/null`) is written to directly: renaming a temp file over
        // it would replace the device.
        Some(path) if fs::metadata(path).is_ok_and(|m| !m.is_file()) => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("{}", path.display()))?;
            write(&mut f)?;
        }
        Some(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let mut temp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("{}", dir.display()))?;
            {
                let mut w = io::BufWriter::new(temp.as_file_mut());
                write(&mut w)?;
                w.flush()?;
            }
            temp.persist(path)
                .with_context(|| format!("{}", path.display()))?;
        }
    }
    Ok(Outcome::Ok)
}

fn put(
    ctx: &Context,
    out: &mut Output,
    dir: &str,
    file: &str,
    digest: Option<&str>,
    size: Option<u64>,
) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(Some(Path::new(dir)))?)?;
    let expected = Expected::default()
        .digest(digest.map(Digest::parse).transpose()?)
        .size(size)
        .input(Some(if file == "-" {
            Subject::Input {
                name: "stdin".into(),
            }
        } else {
            Subject::Path(file.into())
        }));
    let (digest, size) = if file == "-" {
        layout
            .write_blob(&mut io::stdin().lock(), expected)
            .context("storing stdin as a blob")?
    } else {
        let path = Path::new(file);
        let mut f = fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let len = f.metadata().map_or(0, |m| m.len());
        let bar = progress::bar(file, len);
        layout
            .write_blob_with_progress(&mut f, expected, bar.as_ref())
            .with_context(|| format!("storing {file} as a blob"))?
    };
    if ctx.json() {
        out.json(&json!({"digest": digest, "size": size}))?;
    } else {
        out.line(&digest)?;
    }
    Ok(Outcome::Ok)
}
