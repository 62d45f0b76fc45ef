//! `ocistow-serve`: OCI image layouts served as an OCI distribution registry.
//!
//! Every layout under a root directory is a repository named by its path relative to the root
//! (or the root itself is one repository). Reads, uploads and manifest pushes go through
//! `ocistow-store`'s public API: blobs through its verified writer and its regular-file opener,
//! manifests through its staged commit and `index.json` transaction, so `ocistow serve` runs
//! safely beside the CLI on the same layouts. The referrers API is answered from the store's
//! scan of every referrer convention, cached on the identity of `index.json`.
//!
//! Where things are: `repos` finds the repositories, `routes` parses request paths, `api`
//! dispatches a request to `manifests`, `blobs`, `uploads`, `listing` or `referrers`; `body`
//! bridges request bodies to the synchronous store; `error` holds the startup errors and the
//! registry's JSON error answers.
//!
//! ```no_run
//! use ocistow_serve::{Options, Server};
//! let server = Server::bind("127.0.0.1:5000".parse().unwrap(), Options::new("/srv/layouts")).unwrap();
//! server.run_until_signal().unwrap();
//! ```

#![warn(missing_docs)]

mod api;
mod blobs;
mod body;
mod error;
mod listing;
mod log;
mod manifests;
mod referrers;
mod repos;
mod routes;
mod uploads;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{Error, Result};
pub use log::LogLevel;

/// How long an upload session may sit idle before it is removed, unless told otherwise.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_mins(10);
/// The largest blob an upload may bring, unless told otherwise.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 64 << 30;

/// What to serve and how.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The directory whose layouts are served.
    pub root: PathBuf,
    /// The repository name when `root` is itself a layout (default: its directory name).
    pub name: Option<String>,
    /// Refuse every write (uploads, manifest pushes, deletes).
    pub read_only: bool,
    /// Allow `DELETE` of manifests, tags and blobs.
    pub allow_delete: bool,
    /// Which messages go to stderr; `Info` logs one line per request.
    pub log_level: LogLevel,
    /// Idle upload sessions older than this are removed (with what they staged).
    pub upload_timeout: Duration,
    /// The largest blob an upload may bring.
    pub max_blob_size: u64,
}

impl Options {
    /// Defaults: writable, no deletes, `Info` logging, ten-minute upload timeout.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Options {
            root: root.into(),
            name: None,
            read_only: false,
            allow_delete: false,
            log_level: LogLevel::Info,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            max_blob_size: DEFAULT_MAX_BLOB_SIZE,
        }
    }
}

ocistow_store::setters!(Options {
    name: Option<String>,
    read_only: bool,
    allow_delete: bool,
    log_level: LogLevel,
    upload_timeout: Duration,
    max_blob_size: u64,
});

/// A bound server: repositories discovered, socket listening, not answering yet.
pub struct Server {
    listener: std::net::TcpListener,
    state: Arc<api::State>,
}

impl Server {
    /// Discovers the repositories under `options.root` and binds `addr`.
    pub fn bind(addr: SocketAddr, options: Options) -> Result<Server> {
        let state = api::State::new(options)?;
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Server {
            listener,
            state: Arc::new(state),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Runtime)
    }

    /// The repository names found at startup, sorted.
    pub fn repositories(&self) -> Vec<String> {
        self.state.repos.names()
    }

    /// Answers requests until SIGINT or SIGTERM, then finishes the requests under way.
    pub fn run_until_signal(self) -> Result<()> {
        self.run_until(async {
            shutdown_signal().await;
        })
    }

    /// Answers requests until `shutdown` completes, on a runtime of its own.
    pub fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        runtime.block_on(self.run(shutdown))
    }

    /// Answers requests until `shutdown` completes, on the caller's tokio runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(Error::Runtime)?;
        let state = self.state;
        let expiry = tokio::spawn(uploads::expire_loop(state.clone()));
        let app = api::router(state.clone());
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Error::Runtime);
        expiry.abort();
        state.log.info(format_args!("stopped"));
        served
    }
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            let int = Box::pin(int.recv());
            let term = Box::pin(term.recv());
            futures_util::future::select(int, term).await;
        }
        // Without signal handlers the server runs until killed, which is what it would do anyway.
        _ => std::future::pending::<()>().await,
    }
}
