//! CLI for the transfer commands (to be written).

use anyhow::{Result, bail};

use crate::cli::Cli;
use crate::commands::Outcome;

pub fn run(_cli: &Cli) -> Result<Outcome> {
    bail!("not implemented yet")
}
