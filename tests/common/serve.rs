//! `ocistow serve` for the tests: started on a free 127.0.0.1 port, ready once `/v2/` answers
//! (bounded wait), killed and reaped on drop; and raw HTTP requests to check exactly what it
//! answers.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ocistow_path;
use super::registry::{RawResponse, free_port, parse_response, read_all};

/// A running `ocistow serve`.
pub struct Serve {
    child: Child,
    pub port: u16,
    /// Its stderr (the request log), for failure messages.
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Serve {
    /// `ocistow serve ROOT --addr 127.0.0.1:PORT ARGS...`, waited for up to 30 s.
    pub fn start(root: &Path, args: &[&str]) -> Serve {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("serve.log");
        let port = free_port();
        let child = Command::new(ocistow_path())
            .arg("serve")
            .arg(root)
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Serve {
            child,
            port,
            log,
            _log_dir: log_dir,
        };
        serve.wait_ready();
        serve
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = request(self.port, "GET", "/v2/", &[], b"")
                && r.status == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ocistow serve exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "ocistow serve did not answer /v2/ on port {} within 30 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/<rest>`.
    pub fn reference(&self, rest: &str) -> String {
        format!("docker://{}/{rest}", self.host())
    }

    /// A raw request; panics only when the connection fails.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        request(self.port, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> RawResponse {
        self.send("GET", path, &[], b"")
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ocistow serve did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request over a fresh connection (`Connection: close`), the answer read to the end
/// within a 30 s read timeout.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let has_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !has_length && (!body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH")) {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let raw = read_all(&mut s);
    if raw.is_empty() {
        return Err(std::io::Error::other("no answer"));
    }
    Ok(parse_response(&raw))
}
