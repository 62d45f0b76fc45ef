//! `ocistow init DIR`: create an empty layout.

use std::path::PathBuf;

use anyhow::Result;
use ocistow_store::layout::OCI_LAYOUT_FILE;

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to create the layout in.
    dir: Option<PathBuf>,
}

pub fn run(ctx: &Context, _out: &mut Output, args: &Args) -> Result<Outcome> {
    let dir = ctx.dir(args.dir.as_deref())?;
    let existed = dir.join(OCI_LAYOUT_FILE).exists();
    ctx.init_dir(&dir)?;
    if existed {
        eprintln!("{} is already an OCI layout", dir.display());
    } else {
        eprintln!("Initialized an empty OCI layout in {}", dir.display());
    }
    Ok(Outcome::Ok)
}
