//! Helpers shared by the end-to-end tests: the binary, fixture copies, directory snapshots,
//! and the rule for peer tools (missing under CI is a failure, never a silent skip).

#![allow(dead_code)]

pub mod registry;
pub mod serve;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ocistow` binary under test.
pub fn ocistow() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_ocistow"))
}

/// Path of the binary, for spawning many processes.
pub fn ocistow_path() -> &'static str {
    env!("CARGO_BIN_EXE_ocistow")
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `testdata/fixtures/<name>`.
pub fn fixture_dir(name: &str) -> PathBuf {
    root().join("testdata/fixtures").join(name)
}

/// Every fixture that has a `layout/` directory.
pub fn layout_fixtures() -> Vec<&'static str> {
    vec![
        "oras-referrers",
        "oras-multiplatform",
        "regctl-referrers",
        "olareg-referrers",
        "containerd-subject-annotation",
        "buildkit-attestations",
    ]
}

/// Copies `testdata/fixtures/<name>/layout` to `dest` (writable) and returns `dest`.
pub fn copy_fixture(name: &str, dest: &Path) -> PathBuf {
    copy_tree(&fixture_dir(name).join("layout"), dest);
    dest.to_path_buf()
}

/// Recursively copies a directory, making everything owner-writable.
pub fn copy_tree(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dest.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
            let mut perms = fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            fs::set_permissions(&to, perms).unwrap();
        }
    }
}

/// Every file and directory below `dir`, with file contents: equal snapshots mean the tree is
/// byte-identical (including files such as a lock or ingest temp that should not appear),
/// except for the facts cache at the root, which any scan may write (tests/cache.rs shows it
/// never changes an answer).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(base).unwrap().to_path_buf();
            if rel.as_os_str() == ocistow_store::referrers::FACTS_FILE {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(base, &entry.path(), out);
            } else {
                out.insert(rel, Some(fs::read(entry.path()).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// True when `tool` is on PATH. Under CI (`CI=true`) a missing tool fails the test instead.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "{tool} is required under CI but is not installed (.ci/run installs it)"
        );
        eprintln!("SKIP: {tool} is not installed (it is required under CI=true)");
    }
    found
}

/// Parses stdout of a successful command as JSON.
pub fn json_of(out: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// What a finished `ocistow` run printed and how it exited.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The binary, with nothing taken from the environment of whoever runs the tests.
pub fn cmd() -> assert_cmd::Command {
    let mut c = ocistow();
    c.env_remove("OCISTOW_REFERRERS_MODE");
    c.env_remove("OCISTOW_LOCK_TIMEOUT");
    c
}

/// Runs a prepared command; a panic of ocistow is always a failure.
pub fn exec(mut c: assert_cmd::Command, what: &str) -> Out {
    let o = c.output().unwrap();
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked"),
        "`ocistow {what}` panicked:\n{}",
        out.stderr
    );
    out
}

/// Runs `ocistow ARGS`.
pub fn run(args: &[&str]) -> Out {
    let mut c = cmd();
    c.args(args);
    exec(c, &args.join(" "))
}

/// Runs `ocistow ARGS` and requires exit 0.
pub fn ok(args: &[&str]) -> Out {
    let out = run(args);
    assert_eq!(
        out.code,
        0,
        "`ocistow {}` failed (exit {}):\n{}\n{}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr
    );
    out
}

/// The digests of `reference`'s direct referrers, in the order `discover --format json` lists
/// them.
pub fn referrer_digests(reference: &str) -> Vec<String> {
    let out = ok(&["discover", "--format", "json", reference]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap().to_string())
        .collect()
}

/// A writable copy of a fixture's layout in a fresh temporary directory (dropped with the `TempDir`).
pub fn writable_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture(name, &tmp.path().join("layout"));
    (tmp, dir)
}

/// A path as an argument string.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `DIR:TAG`.
pub fn tagged(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

/// `DIR@DIGEST`.
pub fn at(dir: &Path, digest: &str) -> String {
    format!("{}@{digest}", dir.display())
}

/// Stdout of a finished command, as text.
pub fn stdout_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// A JSON file, or a panic naming it.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The hex of a `sha256:` digest, checked to be 64 lowercase hex digits (a test must never
/// build a path from anything else).
pub fn sha256_hex(digest: &str) -> &str {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "malformed digest {digest}"
    );
    hex
}

/// Where a blob lives: `DIR/blobs/ALG/HEX`, for any algorithm.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    if alg == "sha256" {
        sha256_hex(digest);
    }
    dir.join("blobs").join(alg).join(hex)
}

/// The parsed `index.json` of a layout.
pub fn index_json(dir: &Path) -> serde_json::Value {
    read_json(&dir.join("index.json"))
}

/// The `manifests` array of a layout's `index.json`.
pub fn entries(dir: &Path) -> Vec<serde_json::Value> {
    index_json(dir)["manifests"].as_array().unwrap().clone()
}
