//! `ocistow pull REF [-o DIR]`: write an artifact's titled files, verifying every digest.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ocistow_store::artifact::{self, safe_relative_path};
use ocistow_store::model::annotations::{ORAS_UNPACK, TITLE};
use ocistow_store::referrers::Node;
use ocistow_store::{Descriptor, Layout, Manifest};
use serde_json::{Value, json};

use crate::context::{Context, resolve};
use crate::exit::Outcome;
use crate::output::{Output, verbose_descriptor};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:TAG, DIR@DIGEST or DIR.
    reference: String,
    /// Directory to write the files to (created if needed).
    #[arg(short, long, value_name = "OUTDIR", default_value = ".")]
    output: PathBuf,
    /// Pick this platform's manifest when the reference is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Do not replace existing files that differ: refuse the pull (exit 7) and write nothing
    /// (oras's flag). Without it such files are replaced, each named on stderr.
    #[arg(short = 'k', long)]
    keep_old_files: bool,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, args.platform.as_deref())?;
    let options = artifact::PullOptions::default().keep_old_files(args.keep_old_files);
    let pulled = artifact::pull_with(&layout, &desc, &args.output, &options, &progress::bar)?;
    for p in &pulled.replaced {
        eprintln!(
            "Replaced {}: it had other content (-k keeps existing files)",
            args.output.join(p).display()
        );
    }
    let written = pulled.written;
    let layers = titled_layers(&layout, &desc)?;
    if ctx.verbose {
        for layer in &layers {
            verbose_descriptor("Downloaded", "layer", layer);
        }
    }
    if ctx.json() {
        let dir = r.dir.display().to_string();
        let root = args.output.canonicalize()?;
        let files: Vec<Value> = layers
            .iter()
            .filter_map(|layer| file_json(&dir, &root, layer))
            .collect();
        out.json(&json!({
            "reference": format!("{dir}@{}", desc.digest()),
            "files": files,
        }))?;
    } else {
        for p in &written {
            out.line(p.display())?;
        }
        eprintln!("Pulled {} ({})", r.display(), desc.digest());
    }
    Ok(Outcome::Ok)
}

/// The layers of the pulled manifest that became files: those with a title.
fn titled_layers(layout: &Layout, desc: &Descriptor) -> Result<Vec<Descriptor>> {
    let (_, manifest) = layout.read_manifest(desc)?;
    Ok(match manifest {
        Manifest::Image(m) => m
            .layers
            .into_iter()
            .filter(|l| l.annotation(TITLE).is_some())
            .collect(),
        Manifest::Index(_) => Vec::new(),
    })
}

/// One entry of `files`, as oras prints it: the absolute `path` written (ending in `/` for an
/// unpacked directory) and the layer's descriptor fields.
fn file_json(dir: &str, root: &Path, layer: &Descriptor) -> Option<Value> {
    let rel = safe_relative_path(layer.annotation(TITLE)?).ok()?;
    let mut path = root.join(rel).display().to_string();
    if layer.annotation(ORAS_UNPACK) == Some("true") {
        path.push('/');
    }
    let mut m = serde_json::Map::new();
    m.insert("path".into(), Value::from(path));
    m.extend(Node::oras_descriptor(dir, layer));
    Some(Value::Object(m))
}
