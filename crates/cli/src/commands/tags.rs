//! `ocistow tags DIR`: list a layout's tags.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value, json};

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let tags = layout.tags()?;
    if ctx.json() {
        let list: Vec<Value> = tags
            .iter()
            .map(|(t, d)| json!({"tag": t, "digest": d.digest()}))
            .collect();
        out.json(&list)?;
    } else {
        for (t, _) in tags {
            out.line(t)?;
        }
    }
    Ok(Outcome::Ok)
}
