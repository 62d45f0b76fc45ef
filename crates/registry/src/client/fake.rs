//! A scripted HTTP server on 127.0.0.1 for the client's tests: each request goes to a handler
//! that may answer anything, including what a broken or hostile registry would.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the handler sees it.
pub(crate) struct FakeRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, headers, body. `Content-Length` is added unless a header sets it.
pub(crate) struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FakeResponse {
    pub fn new(status: u16) -> Self {
        FakeResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

type Handler = dyn Fn(&FakeRequest) -> FakeResponse + Send + Sync;

/// The running server; stopped on drop.
pub(crate) struct FakeServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&FakeRequest) -> FakeResponse + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || serve(conn, handler.as_ref()));
            }
        });
        FakeServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler) {
    // A client that stops talking ends the connection rather than the test.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: u64 = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = Vec::new();
        if (&mut reader).take(len).read_to_end(&mut body).is_err() {
            return;
        }
        let req = FakeRequest {
            method,
            path,
            headers,
            body,
        };
        let resp = handler(&req);
        let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
        let mut has_len = false;
        for (k, v) in &resp.headers {
            has_len |= k.eq_ignore_ascii_case("content-length");
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if !has_len {
            let _ = write!(head, "Content-Length: {}\r\n", resp.body.len());
        }
        head.push_str("\r\n");
        let body = if req.method == "HEAD" {
            &[][..]
        } else {
            &resp.body
        };
        if out.write_all(head.as_bytes()).is_err() || out.write_all(body).is_err() {
            return;
        }
        if has_len {
            // The handler lied about the length on purpose: end the connection after it.
            return;
        }
    }
}

/// An in-memory registry with the referrers API, one repository, for the API path of a copy.
#[derive(Default)]
pub(crate) struct Memory {
    blobs: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// digest -> (media type, bytes)
    manifests: std::sync::Mutex<std::collections::HashMap<String, (String, Vec<u8>)>>,
    tags: std::sync::Mutex<std::collections::HashMap<String, String>>,
    uploads: std::sync::atomic::AtomicUsize,
}

impl Memory {
    pub fn tags(&self) -> Vec<String> {
        self.tags.lock().unwrap().keys().cloned().collect()
    }

    pub fn handle(&self, req: &FakeRequest) -> FakeResponse {
        let path = req.path.split('?').next().unwrap_or_default();
        let query = req.path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        if path == "/v2/" {
            return FakeResponse::new(200);
        }
        if let Some(n) = path.strip_prefix("/upload/") {
            let digest = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .unwrap_or_default();
            let _ = n;
            self.blobs
                .lock()
                .unwrap()
                .insert(digest.to_string(), req.body.clone());
            return FakeResponse::new(201);
        }
        let rest = path.strip_prefix("/v2/").unwrap_or_default();
        if rest.ends_with("/blobs/uploads/") {
            let n = self.uploads.fetch_add(1, Ordering::Relaxed);
            return FakeResponse::new(202).header("Location", &format!("/upload/{n}"));
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            return match self.blobs.lock().unwrap().get(digest) {
                Some(b) => FakeResponse::new(200).body(b.clone()),
                None => FakeResponse::new(404),
            };
        }
        if let Some((_, subject)) = rest.split_once("/referrers/") {
            let mut listed = Vec::new();
            for (digest, (mt, bytes)) in self.manifests.lock().unwrap().iter() {
                let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                if v["subject"]["digest"].as_str() != Some(subject) {
                    continue;
                }
                let mut d =
                    serde_json::json!({"mediaType": mt, "digest": digest, "size": bytes.len()});
                let at = v["artifactType"]
                    .as_str()
                    .or(v["config"]["mediaType"].as_str());
                if let Some(at) = at {
                    d["artifactType"] = at.into();
                }
                if let Some(a) = v.get("annotations") {
                    d["annotations"] = a.clone();
                }
                listed.push(d);
            }
            listed.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_string());
            let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed});
            return FakeResponse::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(serde_json::to_vec(&index).unwrap());
        }
        let Some((_, reference)) = rest.split_once("/manifests/") else {
            return FakeResponse::new(404);
        };
        if req.method == "PUT" {
            let digest =
                ocistow_store::Digest::of_bytes(ocistow_store::Algorithm::Sha256, &req.body)
                    .to_string();
            let mt = req.header("content-type").unwrap_or_default().to_string();
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            self.manifests
                .lock()
                .unwrap()
                .insert(digest.clone(), (mt, req.body.clone()));
            if !reference.contains(':') {
                self.tags
                    .lock()
                    .unwrap()
                    .insert(reference.to_string(), digest.clone());
            }
            let mut resp = FakeResponse::new(201).header("Docker-Content-Digest", &digest);
            if let Some(s) = v["subject"]["digest"].as_str() {
                resp = resp.header("OCI-Subject", s);
            }
            return resp;
        }
        let digest = if reference.contains(':') {
            reference.to_string()
        } else {
            match self.tags.lock().unwrap().get(reference) {
                Some(d) => d.clone(),
                None => return FakeResponse::new(404),
            }
        };
        match self.manifests.lock().unwrap().get(&digest) {
            Some((mt, bytes)) => FakeResponse::new(200)
                .header("Content-Type", mt)
                .header("Docker-Content-Digest", &digest)
                .body(bytes.clone()),
            None => FakeResponse::new(404),
        }
    }
}
