//! `ocistow tag REF TAG...`: give existing content more tags.

use anyhow::Result;

use crate::context::{Context, resolve};
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The content to tag: DIR:TAG, DIR@DIGEST or DIR.
    reference: String,
    /// New tags.
    #[arg(required = true)]
    tags: Vec<String>,
}

pub fn run(ctx: &Context, _out: &mut Output, args: &Args) -> Result<Outcome> {
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, None)?;
    layout.add_entry(&desc, &args.tags)?;
    for t in &args.tags {
        eprintln!("Tagged {} as {t}", desc.digest());
    }
    Ok(Outcome::Ok)
}
