//! `ocistow serve ROOT`: the layouts under ROOT as an OCI distribution registry (see
//! docs/serve.md and the `ocistow-serve` crate).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use ocistow_serve::{LogLevel, Options, Server};

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory whose layouts (at any depth) are served, each named by its relative path; a
    /// layout itself is served as one repository.
    root: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: SocketAddr,
    /// Repository name when ROOT is itself a layout (default: its directory name).
    #[arg(long)]
    name: Option<String>,
    /// Refuse every upload, manifest push and delete.
    #[arg(long)]
    read_only: bool,
    /// Allow clients to delete manifests, tags and blobs.
    #[arg(long)]
    allow_delete: bool,
    /// Messages on stderr: info logs one line per request.
    #[arg(long, value_enum, default_value_t = Level::Info)]
    log_level: Level,
    /// Seconds an upload may sit idle before it is removed.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    upload_timeout: u64,
}

pub fn run(_ctx: &Context, _out: &mut Output, args: &Args) -> Result<Outcome> {
    let mut options = Options::new(&args.root);
    options.name.clone_from(&args.name);
    options.read_only = args.read_only;
    options.allow_delete = args.allow_delete;
    options.upload_timeout = Duration::from_secs(args.upload_timeout);
    options.log_level = match args.log_level {
        Level::Error => LogLevel::Error,
        Level::Warn => LogLevel::Warn,
        Level::Info => LogLevel::Info,
        Level::Debug => LogLevel::Debug,
    };
    let server = Server::bind(args.addr, options)
        .with_context(|| format!("cannot serve {}", args.root.display()))?;
    let addr = server.local_addr()?;
    let repos = server.repositories();
    if !matches!(args.log_level, Level::Error) {
        eprintln!(
            "serving {} repositories from {} on http://{addr}{}",
            repos.len(),
            args.root.display(),
            if args.read_only { " (read-only)" } else { "" }
        );
    }
    server.run_until_signal()?;
    Ok(Outcome::Ok)
}
