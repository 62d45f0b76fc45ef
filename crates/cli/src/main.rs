//! `ocistow`: the command-line face of `ocistow-store`.

mod cli;
mod commands;
mod maintenance_cmd;
mod progress;
mod referrers_cmd;
mod transfer_cmd;

use std::process::ExitCode;

use clap::Parser;
use ocistow_store::Error;

/// Exit codes, documented in docs/cli.md.
mod exit {
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const AMBIGUOUS: u8 = 4;
    pub const INTEGRITY: u8 = 5;
    pub const LOCKED: u8 = 6;
    pub const CONFLICT: u8 = 7;
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`ocistow ls | head`), as Unix tools do, instead of panicking
    // in println!.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    match commands::run(&cli) {
        Ok(commands::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(commands::Outcome::No) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    let Some(e) = err.chain().find_map(|c| c.downcast_ref::<Error>()) else {
        return exit::ERROR;
    };
    match e {
        Error::NotFound { .. } | Error::NotALayout { .. } => exit::NOT_FOUND,
        Error::Ambiguous { .. } => exit::AMBIGUOUS,
        Error::DigestMismatch { .. } | Error::SizeMismatch { .. } | Error::Corrupt { .. } => {
            exit::INTEGRITY
        }
        Error::InvalidDigest { .. }
        | Error::InvalidReference { .. }
        | Error::InvalidManifest { .. }
        | Error::InvalidInput(_)
        | Error::RefusedEntry { .. }
        | Error::UnsupportedAlgorithm { .. } => exit::USAGE,
        Error::Locked { .. } => exit::LOCKED,
        Error::Conflict(_) => exit::CONFLICT,
        _ => exit::ERROR,
    }
}
