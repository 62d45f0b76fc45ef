//! `ocistow tags DIR`: list a layout's tags.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use ocistow_registry::{RegistryRef, RegistryTarget, is_registry_ref};

use crate::context::{Context, RegistryArgs};
use crate::exit::Outcome;
use crate::exit::usage;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory, or `docker://HOST[:PORT]/REPO`.
    dir: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    if let Some(text) = args.dir.as_deref().and_then(|d| d.to_str())
        && is_registry_ref(text)
    {
        let r = RegistryRef::parse(text)?;
        if r.target != RegistryTarget::Repository {
            return Err(usage("tags lists a repository: docker://HOST[:PORT]/REPO"));
        }
        let client = ctx.registry_client(&r.registry, &args.registry)?;
        let tags = client.tags(&r.repository)?;
        if ctx.json() {
            out.json(&json!({ "tags": tags }))?;
        } else {
            for t in tags {
                out.line(t)?;
            }
        }
        return Ok(Outcome::Ok);
    }
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let tags = layout.tags()?;
    if ctx.json() {
        // oras's shape (`oras repo tags --format json`); `ls` has each tag's digest.
        let list: Vec<&String> = tags.iter().map(|(t, _)| t).collect();
        out.json(&json!({ "tags": list }))?;
    } else {
        for (t, _) in tags {
            out.line(t)?;
        }
    }
    Ok(Outcome::Ok)
}
