//! Credentials: given by the caller, or looked up in a docker `config.json` (`auths`, then
//! `credHelpers`, then `credsStore`, the order docker itself uses).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

use crate::error::{Error, Result};

/// The largest config.json or helper answer read.
const MAX_CONFIG_SIZE: u64 = 4 << 20;

/// A user name and a password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl Credentials {
    /// A user name and its password (or token).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    // Never print a secret, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// Anonymous access only.
    #[default]
    Anonymous,
    /// These credentials, for the one registry of the operation.
    Given(Credentials),
    /// A docker `config.json` (the caller resolves `DOCKER_CONFIG` or `~/.docker`).
    DockerConfig(PathBuf),
}

impl CredentialSource {
    /// The credentials for `registry` (`HOST[:PORT]`), if any.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        match self {
            CredentialSource::Anonymous => Ok(None),
            CredentialSource::Given(c) => Ok(Some(c.clone())),
            CredentialSource::DockerConfig(path) => from_docker_config(path, registry),
        }
    }
}

/// Reads `path` (a docker `config.json`) for `registry`. A missing file means no credentials.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let bad = |reason: String| Error::Config {
        path: path.to_path_buf(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    if !file.metadata().map_err(|e| bad(e.to_string()))?.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_SIZE {
        return Err(bad(format!("larger than {MAX_CONFIG_SIZE} bytes")));
    }
    let config: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if let Some(auths) = config.get("auths").and_then(Value::as_object) {
        for (key, entry) in auths {
            if normalize_server(key) != registry {
                continue;
            }
            if let Some(c) = auth_entry(entry).map_err(|r| bad(format!("auths.{key}: {r}")))? {
                return Ok(Some(c));
            }
        }
    }
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| config.get("credsStore"))
        .and_then(Value::as_str);
    match helper {
        Some(name) if !name.is_empty() => run_helper(name, registry),
        _ => Ok(None),
    }
}

/// `https://host:5000/v1/` and `host:5000` name the same registry in `auths`.
fn normalize_server(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

fn auth_entry(entry: &Value) -> std::result::Result<Option<Credentials>, String> {
    if let Some(auth) = entry.get("auth").and_then(Value::as_str)
        && !auth.is_empty()
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .map_err(|e| format!("auth is not base64: {e}"))?;
        let text = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8".to_string())?;
        let (user, pass) = text
            .split_once(':')
            .ok_or("auth is not base64 of user:password")?;
        return Ok(Some(Credentials {
            username: user.into(),
            password: pass.into(),
        }));
    }
    let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(match (field("username"), field("password")) {
        (Some(username), Some(password)) => Some(Credentials { username, password }),
        _ => None,
    })
}

/// `docker-credential-<name> get`, the server on stdin, JSON on stdout.
fn run_helper(name: &str, registry: &str) -> Result<Option<Credentials>> {
    let fail = |reason: String| Error::CredentialHelper {
        helper: name.into(),
        registry: registry.into(),
        reason,
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(fail("the helper name is not a plain program name".into()));
    }
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_CONFIG_SIZE)
            .read_to_end(&mut out)
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut err = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        // Bounded like stdout: a helper is a peer too.
        let _ = stderr.take(64 << 10).read_to_end(&mut err);
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        let text = String::from_utf8_lossy(if out.is_empty() { &err } else { &out });
        // Helpers say "credentials not found in native keychain" for an unknown server.
        if text.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(fail(format!("{status}: {}", text.trim())));
    }
    let answer: Value =
        serde_json::from_slice(&out).map_err(|e| fail(format!("answer is not JSON: {e}")))?;
    let field = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or_default();
    Ok(Some(Credentials {
        username: field("Username").into(),
        password: field("Secret").into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auths_under_every_spelling_of_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p:w");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let c = from_docker_config(&path, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:w"));
        assert!(from_docker_config(&path, "other:5000").unwrap().is_none());
        assert!(
            from_docker_config(&dir.path().join("absent.json"), "x")
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            from_docker_config(&path, "x"),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"ocistow-test-absent"}"#).unwrap();
        let err = from_docker_config(&path, "reg:1").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-ocistow-test-absent"),
            "{err}"
        );
    }
}
