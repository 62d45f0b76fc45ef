//! `ocistow pull REF -o DIR`: write an artifact's titled files, verifying every digest.

use std::path::PathBuf;

use anyhow::Result;
use ocistow_store::artifact;
use serde_json::json;

use crate::context::{Context, resolve};
use crate::exit::Outcome;
use crate::output::Output;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:TAG, DIR@DIGEST or DIR.
    reference: String,
    /// Directory to write the files to (created if needed).
    #[arg(short, long, value_name = "OUTDIR")]
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
    if ctx.json() {
        let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        out.json(&json!({"digest": desc.digest(), "files": files}))?;
    } else {
        for p in &written {
            out.line(p.display())?;
        }
        eprintln!("Pulled {} ({})", r.display(), desc.digest());
    }
    Ok(Outcome::Ok)
}
