//! A blocking client for the OCI distribution API, one registry per [`Client`].
//!
//! Every request goes through `Client::send`: it adds the credentials the registry asked
//! for (basic, or a bearer token fetched from the `WWW-Authenticate` challenge for the
//! request's scope, then cached), and retries idempotent requests with backoff on 5xx answers
//! and connection errors. Nothing read from the peer is unbounded: bodies read into memory go
//! through `read_limited`, blobs are streamed into the store's verified writer with their
//! declared size as the bound.

mod api;
mod auth;
pub mod credentials;
#[cfg(test)]
pub(crate) mod fake;
mod referrers;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use ocistow_store::{Digest, Layout, Progress};
use ureq::http::{self, Response};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Body, SendBody};

pub use api::{ManifestBytes, PutManifest};
pub use credentials::{CredentialSource, Credentials};
pub use referrers::ReferrerList;

use crate::error::{Error, Result};
use auth::{Challenge, query_escape, token_from_answer};

/// Error bodies and token answers are read up to this size.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// How a [`Client`] connects and authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Where credentials come from.
    pub credentials: CredentialSource,
    /// Speak plain HTTP (a registry on loopback or a lab network).
    pub plain_http: bool,
    /// Trust the certificates in this PEM file instead of the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// Retries of an idempotent request after a 5xx answer or a connection error.
    pub retries: u32,
    /// The first wait before a retry; it doubles with each one.
    pub backoff: Duration,
    /// Limit on connecting, and on each read or write once connected.
    pub timeout: Duration,
    /// The largest manifest (or referrers page, or tags page) read from the registry.
    pub max_manifest_size: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: CredentialSource::Anonymous,
            plain_http: false,
            ca_file: None,
            retries: 3,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_mins(1),
            max_manifest_size: ocistow_store::layout::MAX_MANIFEST_SIZE,
        }
    }
}

ocistow_store::setters!(ClientOptions {
    credentials: CredentialSource,
    plain_http: bool,
    ca_file: Option<PathBuf>,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
    max_manifest_size: u64,
});

/// A connection to one registry.
pub struct Client {
    agent: Agent,
    registry: String,
    base: String,
    credentials: Option<Credentials>,
    auth: Mutex<AuthCache>,
    retries: u32,
    backoff: Duration,
    max_manifest_size: u64,
}

/// What the registry asked for so far: basic for everything, or a token per scope.
#[derive(Default)]
struct AuthCache {
    basic: bool,
    tokens: HashMap<String, String>,
}

/// A request body that can be produced again for a retry.
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A blob of a layout, streamed from its file.
    Blob {
        layout: &'a Layout,
        digest: &'a Digest,
        size: u64,
        progress: &'a dyn Progress,
    },
    /// A body read once from elsewhere (another registry's answer).
    Stream {
        reader: std::cell::RefCell<Option<Box<dyn Read + 'a>>>,
        size: u64,
    },
}

/// One request: the URL, the scopes a token must grant, extra headers, the body, and whether
/// it may be sent twice.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub url: String,
    pub scopes: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReqBody<'a>,
    pub idempotent: bool,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: &'static str, url: String, scope: String) -> Self {
        Request {
            method,
            url,
            scopes: vec![scope],
            headers: Vec::new(),
            body: ReqBody::Empty,
            idempotent: matches!(method, "GET" | "HEAD"),
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: ReqBody<'a>) -> Self {
        self.body = body;
        self
    }
}

/// The token scope for `repository` with `push` or only pull access.
pub(crate) fn scope(repository: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{repository}:{actions}")
}

impl Client {
    /// A client for `registry` (`HOST[:PORT]`). Credentials are looked up once, here.
    pub fn new(registry: &str, options: &ClientOptions) -> Result<Client> {
        let roots = match &options.ca_file {
            None => RootCerts::PlatformVerifier,
            Some(path) => RootCerts::new_with_certs(&read_ca_file(path)?),
        };
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // Proxies come from the caller's options, never from the environment.
            .proxy(None)
            .user_agent(concat!("ocistow/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .timeout_connect(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .timeout_per_write(Some(options.timeout))
            .build();
        let scheme = if options.plain_http { "http" } else { "https" };
        Ok(Client {
            agent: Agent::new_with_config(config),
            registry: registry.into(),
            base: format!("{scheme}://{registry}"),
            credentials: options.credentials.lookup(registry)?,
            auth: Mutex::new(AuthCache::default()),
            retries: options.retries,
            backoff: options.backoff,
            max_manifest_size: options.max_manifest_size,
        })
    }

    /// `HOST[:PORT]` of this client.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The URL of `path` (which starts with `/v2/`) on this registry.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a `Location` or `Link` target against this registry.
    pub(crate) fn resolve_url(&self, target: &str) -> String {
        if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else if target.starts_with('/') {
            self.url(target)
        } else {
            format!("{}/{target}", self.base)
        }
    }

    /// Checks that the registry speaks the distribution API (`GET /v2/`) and that the
    /// credentials, if it wants some, are accepted.
    pub fn ping(&self) -> Result<()> {
        let req = Request::new("GET", self.url("/v2/"), String::new());
        let resp = self.send(&req)?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(status_error("GET", &req.url, resp, ""))
    }

    /// Sends `req` with authentication and retries; any status comes back as a response,
    /// except a 401 after authenticating, which is [`Error::Unauthorized`].
    pub(crate) fn send(&self, req: &Request<'_>) -> Result<Response<Body>> {
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            let auth = self.cached_auth(&req.scopes);
            match self.send_once(req, auth.as_deref()) {
                Err(e) if req.idempotent && attempt < self.retries && retryable(&e) => {}
                Err(Error::Connect { source, .. }) => {
                    return Err(Error::Connect {
                        method: req.method,
                        url: req.url.clone(),
                        source,
                    });
                }
                Err(e) => return Err(e),
                Ok(resp) if resp.status() == http::StatusCode::UNAUTHORIZED => {
                    if authenticated {
                        return Err(self.refused(resp));
                    }
                    let challenge = resp
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .and_then(Challenge::parse);
                    self.authenticate(challenge, &req.scopes)?;
                    authenticated = true;
                    continue;
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        && req.idempotent
                        && attempt < self.retries => {}
                Ok(resp) => return Ok(resp),
            }
            std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt));
            attempt += 1;
        }
    }

    fn send_once(&self, req: &Request<'_>, auth: Option<&str>) -> Result<Response<Body>> {
        let mut builder = http::Request::builder()
            .method(req.method)
            .uri(req.url.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(a) = auth {
            builder = builder.header("authorization", a);
        }
        let connect = |source: ureq::Error| Error::Connect {
            method: req.method,
            url: req.url.clone(),
            source: Box::new(source),
        };
        let http_err = |e: http::Error| connect(ureq::Error::Http(e));
        let result = match &req.body {
            // POST and PUT without content still say so: some registries refuse a bodyless
            // upload request that has no length.
            ReqBody::Empty if matches!(req.method, "POST" | "PUT") => self.agent.run(
                builder
                    .header("content-length", 0)
                    .body(&b""[..])
                    .map_err(http_err)?,
            ),
            ReqBody::Empty => self
                .agent
                .run(builder.body(SendBody::none()).map_err(http_err)?),
            ReqBody::Bytes(bytes) => self.agent.run(
                builder
                    .header("content-length", bytes.len())
                    .body(*bytes)
                    .map_err(http_err)?,
            ),
            ReqBody::Blob { size, .. } | ReqBody::Stream { size, .. } => {
                let mut reader = streamed(req)?;
                self.agent.run(
                    builder
                        .header("content-length", *size)
                        .header("content-type", "application/octet-stream")
                        .body(SendBody::from_reader(&mut reader))
                        .map_err(http_err)?,
                )
            }
        };
        result.map_err(connect)
    }

    fn cached_auth(&self, scopes: &[String]) -> Option<String> {
        let cache = self
            .auth
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.basic {
            return self.credentials.as_ref().map(basic_header);
        }
        cache.tokens.get(&scopes.join(" ")).cloned()
    }

    fn authenticate(&self, challenge: Option<Challenge>, scopes: &[String]) -> Result<()> {
        let unauthorized = |reason: String| Error::Unauthorized {
            registry: self.registry.clone(),
            reason,
        };
        match challenge {
            None => Err(unauthorized(
                "the registry answered 401 without a challenge ocistow understands".into(),
            )),
            Some(Challenge::Basic) => {
                if self.credentials.is_none() {
                    return Err(unauthorized(
                        "the registry wants credentials and none were given (--username with \
                         --password-stdin, or a docker config.json entry)"
                            .into(),
                    ));
                }
                self.auth
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .basic = true;
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let token = self.fetch_token(&realm, service.as_deref(), scope, scopes)?;
                self.auth
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .tokens
                    .insert(scopes.join(" "), format!("Bearer {token}"));
                Ok(())
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        challenged: Option<String>,
        scopes: &[String],
    ) -> Result<String> {
        let mut url = realm.to_string();
        let mut params: Vec<String> = Vec::new();
        if let Some(s) = service {
            params.push(format!("service={}", query_escape(s)));
        }
        let mut wanted: Vec<String> = scopes.iter().filter(|s| !s.is_empty()).cloned().collect();
        if let Some(c) = challenged
            && !wanted.contains(&c)
        {
            wanted.push(c);
        }
        params.extend(wanted.iter().map(|s| format!("scope={}", query_escape(s))));
        if !params.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&params.join("&"));
        }
        let mut builder = http::Request::builder().method("GET").uri(url.as_str());
        if let Some(c) = &self.credentials {
            builder = builder.header("authorization", basic_header(c));
        }
        let connect = |source: ureq::Error| Error::Connect {
            method: "GET",
            url: url.clone(),
            source: Box::new(source),
        };
        let request = builder
            .body(SendBody::none())
            .map_err(|e| connect(ureq::Error::Http(e)))?;
        let resp = self.agent.run(request).map_err(connect)?;
        if !resp.status().is_success() {
            return Err(self.refused(resp));
        }
        let bytes = read_limited(resp, MAX_SMALL_BODY, "token answer", &url)?;
        token_from_answer(&bytes).ok_or_else(|| Error::BadResponse {
            url,
            reason: "the token endpoint's answer holds no token".into(),
        })
    }

    fn refused(&self, resp: Response<Body>) -> Error {
        let (_, message) = error_body(resp);
        let who = match &self.credentials {
            Some(c) => format!("the credentials of user {:?} were refused", c.username),
            None => "anonymous access was refused".into(),
        };
        Error::Unauthorized {
            registry: self.registry.clone(),
            reason: if message.is_empty() {
                who
            } else {
                format!("{who}: {message}")
            },
        }
    }
}

/// The reader of a streamed body: a layout's blob file (opened anew for each attempt), or a
/// reader that can be sent only once.
fn streamed<'a>(req: &'a Request<'_>) -> Result<Box<dyn Read + 'a>> {
    match &req.body {
        ReqBody::Blob {
            layout,
            digest,
            size,
            progress,
        } => Ok(Box::new(Counting {
            inner: layout.open_blob(digest)?.take(*size),
            progress: *progress,
        })),
        ReqBody::Stream { reader, .. } => {
            reader
                .borrow_mut()
                .take()
                .ok_or_else(|| Error::BadResponse {
                    url: req.url.clone(),
                    reason: "the upload would have to be sent a second time".into(),
                })
        }
        ReqBody::Empty | ReqBody::Bytes(_) => Ok(Box::new(std::io::empty())),
    }
}

fn basic_header(c: &Credentials) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Connect { source, .. } if matches!(
            **source,
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_)
        )
    )
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<Certificate<'static>>> {
    let bad = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    if !file.metadata().map_err(|e| bad(e.to_string()))?.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut pem = Vec::new();
    file.take(MAX_SMALL_BODY * 4)
        .read_to_end(&mut pem)
        .map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// Reads a whole body, refusing one larger than `limit`.
pub(crate) fn read_limited(
    resp: Response<Body>,
    limit: u64,
    what: &'static str,
    url: &str,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::BadResponse {
            url: url.into(),
            reason: format!("reading the {what}: {e}"),
        })?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge {
            url: url.into(),
            what,
            limit,
        });
    }
    Ok(bytes)
}

/// The first distribution error code and message of an error answer.
fn error_body(resp: Response<Body>) -> (Option<String>, String) {
    let mut bytes = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(64 << 10)
        .read_to_end(&mut bytes);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let first = parsed
        .as_ref()
        .and_then(|v| v.get("errors"))
        .and_then(|e| e.get(0));
    match first {
        Some(e) => {
            let field = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let code = field("code");
            let message = [field("code"), field("message")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            (code, message)
        }
        None => (
            None,
            String::from_utf8_lossy(&bytes)
                .trim()
                .chars()
                .take(200)
                .collect(),
        ),
    }
}

/// An [`Error::Status`] for an unexpected answer, with the registry's message and `hint`.
pub(crate) fn status_error(
    method: &'static str,
    url: &str,
    resp: Response<Body>,
    hint: &str,
) -> Error {
    let status = resp.status().as_u16();
    let (code, mut message) = error_body(resp);
    if !hint.is_empty() {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(hint);
    }
    Error::Status {
        method,
        url: url.into(),
        status,
        code,
        message,
    }
}

/// Counts bytes through a [`Progress`] as they are read.
pub(crate) struct Counting<'a, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
