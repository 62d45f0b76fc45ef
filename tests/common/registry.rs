//! A real registry for the tests: Debian's `docker-registry` (CNCF distribution 2.8) on
//! 127.0.0.1 with a free port, its own config file and storage directory, stopped on drop;
//! and a raw HTTP/1.1 reader so tests check what the registry holds without our client.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::have_tool;

pub const REGISTRY_BIN: &str = "docker-registry";

/// A running registry; killed and reaped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// `Authorization` header value for raw reads when the registry has basic auth.
    auth: Option<String>,
}

impl Registry {
    /// An anonymous registry, or `None` when the binary is missing outside CI.
    pub fn start() -> Option<Registry> {
        Self::start_inner(None)
    }

    /// A registry with basic auth for one user (a bcrypt file from `htpasswd -Bbn`).
    pub fn start_with_user(user: &str, password: &str) -> Option<Registry> {
        if !have_tool("htpasswd") {
            return None;
        }
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(user: Option<(&str, &str)>) -> Option<Registry> {
        if !have_tool(REGISTRY_BIN) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let mut auth_yaml = String::new();
        let mut auth = None;
        if let Some((u, p)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth_yaml = format!(
                "auth: {{htpasswd: {{realm: test, path: {}}}}}\n",
                file.display()
            );
            auth = Some(format!("Basic {}", base64_encode(&format!("{u}:{p}"))));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log: {{level: error, accesslog: {{disabled: true}}}}\n\
                 storage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
                 http: {{addr: 127.0.0.1:{port}}}\n{auth_yaml}",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            port,
            dir,
            auth,
        };
        registry.wait_ready();
        Some(registry)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = raw_get(self.port, "/v2/", None, None)
                && (r.status == 200 || r.status == 401)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer /v2/ on port {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `HOST:PORT` of the registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/<rest>`.
    pub fn reference(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host())
    }

    /// The storage directory (everything the registry holds).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// A raw GET with the test user's credentials, if any.
    pub fn get(&self, path: &str, accept: Option<&str>) -> RawResponse {
        raw_get(self.port, path, accept, self.auth.as_deref()).unwrap()
    }

    /// A raw manifest GET: status and exact bytes.
    pub fn manifest(&self, repo: &str, reference: &str) -> RawResponse {
        self.get(
            &format!("/v2/{repo}/manifests/{reference}"),
            Some(
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json",
            ),
        )
    }

    /// A raw manifest PUT (another client writing to the registry).
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let auth = self
            .auth
            .as_ref()
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "PUT /v2/{repo}/manifests/{reference} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: {media_type}\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        parse_response(&read_all(&mut s)).status
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status, headers (lowercase names) and body of a raw answer.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// GET over a fresh connection, `Connection: close`, read to the end (bounded by a timeout).
pub fn raw_get(
    port: u16,
    path: &str,
    accept: Option<&str>,
    auth: Option<&str>,
) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(a) = accept {
        let _ = write!(req, "Accept: {a}\r\n");
    }
    if let Some(a) = auth {
        let _ = write!(req, "Authorization: {a}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    Ok(parse_response(&read_all(&mut s)))
}

pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = s.take(256 << 20).read_to_end(&mut buf);
    buf
}

pub fn parse_response(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    // distribution answers with Content-Length; a chunked answer is decoded here for HEAD-less
    // error pages only.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[pos + 2..pos + 2 + size]);
        body = &body[pos + 2 + size + 2..];
    }
    out
}

fn base64_encode(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a docker `config.json` with an `auths` entry for `host` into `dir`.
pub fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            base64_encode(&format!("{user}:{password}"))
        ),
    )
    .unwrap();
    path
}

/// What a [`Proxy`] sends back for one upstream answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the headers as they are (with the full length) but only this many body bytes,
    /// then hang up.
    pub cut_at: Option<usize>,
}

impl From<RawResponse> for Reply {
    fn from(r: RawResponse) -> Self {
        Reply {
            status: r.status,
            headers: r.headers,
            body: r.body,
            cut_at: None,
        }
    }
}

type Rewrite = dyn Fn(&str, &str, RawResponse) -> Reply + Send + Sync;
type Refuse = dyn Fn(&str, &str) -> Option<Reply> + Send + Sync;

/// A misbehaving registry: forwards every request to a real one and rewrites the answers
/// (corrupts, truncates, loops, refuses). One request per connection; stops on drop.
pub struct Proxy {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// `rewrite(method, path, upstream answer)` decides what the client gets.
    pub fn start(
        upstream: u16,
        rewrite: impl Fn(&str, &str, RawResponse) -> Reply + Send + Sync + 'static,
    ) -> Proxy {
        Self::with(upstream, |_, _| None, rewrite)
    }

    /// `refuse(method, path)` answers in place of the registry, which never sees the request.
    pub fn refusing(
        upstream: u16,
        refuse: impl Fn(&str, &str) -> Option<Reply> + Send + Sync + 'static,
    ) -> Proxy {
        Self::with(upstream, refuse, |_, _, r| r.into())
    }

    fn with(
        upstream: u16,
        refuse: impl Fn(&str, &str) -> Option<Reply> + Send + Sync + 'static,
        rewrite: impl Fn(&str, &str, RawResponse) -> Reply + Send + Sync + 'static,
    ) -> Proxy {
        use std::sync::atomic::Ordering;
        let refuse: std::sync::Arc<Refuse> = std::sync::Arc::new(refuse);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rewrite: std::sync::Arc<Rewrite> = std::sync::Arc::new(rewrite);
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rewrite, refuse) = (rewrite.clone(), refuse.clone());
                std::thread::spawn(move || {
                    let _ = forward(conn, upstream, port, refuse.as_ref(), rewrite.as_ref());
                });
            }
        });
        Proxy {
            port,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn forward(
    mut client: TcpStream,
    upstream: u16,
    own_port: u16,
    refuse: &Refuse,
    rewrite: &Rewrite,
) -> std::io::Result<()> {
    use std::io::BufRead;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = std::io::BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut head = request_line.clone();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim_end().is_empty() {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push_str(&h);
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let reply = if let Some(r) = refuse(&method, &path) {
        r
    } else {
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        up.set_read_timeout(Some(Duration::from_secs(30)))?;
        up.write_all(head.as_bytes())?;
        up.write_all(&body)?;
        let raw = read_all(&mut up);
        let mut answer = parse_response(&raw);
        if method == "HEAD" {
            answer.body.clear();
        }
        rewrite(&method, &path, answer)
    };
    let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
    let mut has_len = false;
    for (k, v) in &reply.headers {
        if k == "connection" || k == "transfer-encoding" {
            continue;
        }
        // Upload locations name the upstream registry: point them back through the proxy.
        let v = v.replace(
            &format!("127.0.0.1:{upstream}"),
            &format!("127.0.0.1:{own_port}"),
        );
        if k == "content-length" {
            has_len = true;
            if method != "HEAD" && reply.cut_at.is_none() {
                let _ = write!(out, "content-length: {}\r\n", reply.body.len());
                continue;
            }
        }
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if !has_len && method != "HEAD" {
        let _ = write!(out, "content-length: {}\r\n", reply.body.len());
    }
    out.push_str("connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;
    if method != "HEAD" {
        let end = reply
            .cut_at
            .unwrap_or(reply.body.len())
            .min(reply.body.len());
        client.write_all(&reply.body[..end])?;
    }
    client.flush()
}
