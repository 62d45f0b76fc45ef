//! `ocistow completion SHELL`: a shell completion script, written to stdout.

use anyhow::Result;
use clap_complete::Shell;

use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script of `grammar` (the whole command line) for the shell asked for.
pub fn run(out: &mut Output, args: &Args, mut grammar: clap::Command) -> Result<Outcome> {
    let name = grammar.get_name().to_string();
    // clap_complete panics when its writer fails: render into memory, then write through
    // `out`, which reports a closed pipe as an error like every other command's output.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut grammar, name, &mut script);
    out.raw().write_all(&script)?;
    Ok(Outcome::Ok)
}
