//! One file per command, named as the command is; each holds its `Args` and its `run`. Commands
//! never import each other: what they share is in `context`, `output` and `cli`.

pub mod attach;
pub mod blob;
pub mod copy;
pub mod discover;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod import;
pub mod init;
pub mod ls;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod resolve;
pub mod tag;
pub mod tags;
pub mod untag;

use anyhow::Result;

use crate::cli::Command;
use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

/// Runs the command: the one place a command is matched to its code.
pub fn run(ctx: &Context, out: &mut Output, command: Command) -> Result<Outcome> {
    match command {
        Command::Init(args) => init::run(ctx, out, &args),
        Command::Push(args) => push::run(ctx, out, &args),
        Command::Pull(args) => pull::run(ctx, out, &args),
        Command::Tag(args) => tag::run(ctx, out, &args),
        Command::Untag(args) => untag::run(ctx, out, &args),
        Command::Tags(args) => tags::run(ctx, out, &args),
        Command::Resolve(args) => resolve::run(ctx, out, &args),
        Command::Manifest(cmd) => manifest::run(ctx, out, &cmd),
        Command::Blob(cmd) => blob::run(ctx, out, &cmd),
        Command::Attach(args) => attach::run(ctx, out, &args),
        Command::Discover(args) => discover::run(ctx, out, &args),
        Command::Referrers(cmd) => referrers::run(ctx, out, &cmd),
        Command::Copy(args) => copy::run(ctx, out, &args),
        Command::Export(args) => export::run(ctx, out, &args),
        Command::Import(args) => import::run(ctx, out, &args),
        Command::Gc(args) => gc::run(ctx, out, &args),
        Command::Fsck(args) => fsck::run(ctx, out, &args),
        Command::Ls(args) => ls::run(ctx, out, &args),
    }
}
