//! `ocistow resolve REF`: the digest (json: the descriptor) a reference names.

use anyhow::Result;

use crate::context::{Context, resolve};
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:TAG, DIR@DIGEST or DIR.
    reference: String,
    /// Resolve to this platform's manifest when the reference is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, args.platform.as_deref())?;
    out.descriptor(ctx.format, &desc)?;
    Ok(Outcome::Ok)
}
