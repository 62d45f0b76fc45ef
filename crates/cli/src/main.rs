//! `ocistow`: the command-line face of `ocistow-store`. Parse, run, exit.
//!
//! Where things are: `cli.rs` is the grammar (and the one match that runs a command),
//! `commands/<command>.rs` the code of each command
//! (with its arguments), `context.rs` what commands share (global options, environment,
//! reference resolution), `output.rs` stdout and formats, `exit.rs` every exit code.

// The doc comments of clap's argument types are the users' help text, written as help is
// (`FILE[:MEDIATYPE]`), not as rustdoc links; escaping them would show the backslashes in --help.
#![allow(rustdoc::broken_intra_doc_links)]

mod cli;
mod commands;
mod context;
mod exit;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::context::Context;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and exit 0; usage errors go to stderr and exit 2.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let mut out = Output::stdout();
    progress::enable(!cli.no_tty);
    let result = Context::new(cli.layout, cli.format, cli.verbose)
        .and_then(|ctx| cli.command.run(&ctx, &mut out));
    let flushed = out.flush().map_err(anyhow::Error::from);
    match result.and_then(|outcome| flushed.map(|()| outcome)) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", exit::message(&err));
            ExitCode::from(exit::code_of(&err))
        }
    }
}
