//! `ocistow man [COMMAND...]`: the manual page (roff) of ocistow or of one of its commands.

use anyhow::Result;

use crate::exit::{Outcome, usage};
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A command (and subcommand) to show the page of, e.g. `push` or `blob get`.
    command: Vec<String>,
}

/// Renders the page of `grammar` (the whole command line), or of the command named in `args`;
/// every page carries `version` in its footer.
pub fn run(
    out: &mut Output,
    args: &Args,
    grammar: clap::Command,
    version: &'static str,
) -> Result<Outcome> {
    let mut page = grammar;
    // Building names every subcommand's page after its path (`ocistow-blob-get`).
    page.build();
    for name in &args.command {
        let Some(sub) = page.find_subcommand(name).cloned() else {
            return Err(usage(format!(
                "{} has no command {name:?}",
                page.get_display_name().unwrap_or(page.get_name())
            )));
        };
        page = sub;
    }
    clap_mangen::Man::new(page.version(version)).render(out.raw())?;
    Ok(Outcome::Ok)
}
