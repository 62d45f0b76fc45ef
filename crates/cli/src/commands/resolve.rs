//! `ocistow resolve REF`: the digest (json: the descriptor) a reference names.

use anyhow::Result;

use ocistow_registry::{RegistryRef, is_registry_ref};

use crate::context::{Context, RegistryArgs, parse_platform, resolve};
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR:TAG, DIR@DIGEST, DIR, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    reference: String,
    /// Resolve to this platform's manifest when the reference is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    if is_registry_ref(&args.reference) {
        let r = RegistryRef::parse(&args.reference)?;
        let client = ctx.registry_client(&r.registry, &args.registry)?;
        let platform = args.platform.as_deref().map(parse_platform).transpose()?;
        let (desc, _) = ocistow_registry::resolve(&client, &r, platform.as_ref())?;
        out.descriptor(ctx.format, &desc)?;
        return Ok(Outcome::Ok);
    }
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let desc = resolve(&layout, &r, args.platform.as_deref())?;
    out.descriptor(ctx.format, &desc)?;
    Ok(Outcome::Ok)
}
