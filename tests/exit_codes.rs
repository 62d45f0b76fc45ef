//! Exit codes (crates/cli/src/exit.rs, docs/cli.md): a "no" is 1 and never an error; usage
//! errors, clap's included, are 2; other failures are 8; a closed stdout is a quiet 0.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{at, cmd, ocistow_path, ok, run, s, snapshot};

const NO: i32 = 1;
const USAGE: i32 = 2;
const ERROR: i32 = 8;

/// A layout holding one blob of `size` bytes; returns the blob's digest.
fn layout_with_blob(tmp: &Path, size: usize) -> (std::path::PathBuf, String) {
    let dir = tmp.join("layout");
    ok(&["init", &s(&dir)]);
    let file = tmp.join("blob.bin");
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, bytes).unwrap();
    let digest = ok(&["blob", "put", &s(&dir), &s(&file)])
        .stdout
        .trim()
        .to_string();
    (dir, digest)
}

#[test]
fn a_negative_answer_and_an_error_exit_differently() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, digest) = layout_with_blob(tmp.path(), 16);
    ok(&["blob", "exists", &at(&dir, &digest)]);
    let absent = format!("sha256:{}", "0".repeat(64));
    let no = run(&["blob", "exists", &at(&dir, &absent)]);
    assert_eq!(no.code, NO, "{}", no.stderr);
    assert!(no.stderr.is_empty(), "a no is not an error: {}", no.stderr);
    // Writing the blob into a directory that does not exist is an I/O failure, not a "no".
    let out = tmp.path().join("missing-dir/blob.bin");
    let err = run(&["blob", "get", &at(&dir, &digest), "-o", &s(&out)]);
    assert_eq!(err.code, ERROR, "{}", err.stderr);
    assert!(err.stderr.contains("missing-dir"), "{}", err.stderr);
}

#[test]
fn usage_errors_exit_2_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = layout_with_blob(tmp.path(), 16);
    let other = tmp.path().join("other");
    let before = snapshot(&dir);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--bogus".into()], "unexpected argument"),
        (vec!["tags".into()], "which layout"),
        (
            vec!["tags".into(), s(&dir), "--layout".into(), s(&other)],
            "not both",
        ),
        (
            vec!["gc".into(), s(&dir), "--grace".into(), "5x".into()],
            "invalid duration",
        ),
        (
            vec![
                "push".into(),
                format!("{}:v1", s(&dir)),
                "-a".into(),
                "novalue".into(),
            ],
            "KEY=VALUE",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.code, USAGE, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn malformed_environment_values_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = layout_with_blob(tmp.path(), 16);
    for bad in ["ten", "-1", "5m", ""] {
        let mut c = cmd();
        c.env("OCISTOW_LOCK_TIMEOUT", bad).args(["tags", &s(&dir)]);
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(USAGE), "{bad:?}: {stderr}");
        assert!(stderr.contains("OCISTOW_LOCK_TIMEOUT"), "{bad:?}: {stderr}");
    }
    let mut c = cmd();
    c.env("SOURCE_DATE_EPOCH", "yesterday").args([
        "export",
        &s(&dir),
        "-o",
        &s(&tmp.path().join("x.tar")),
    ]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(stderr.contains("SOURCE_DATE_EPOCH"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    let tmp = tempfile::tempdir().unwrap();
    // Far more than a pipe buffer, so the write meets the closed pipe.
    let (dir, digest) = layout_with_blob(tmp.path(), 4 << 20);
    let mut child = Command::new(ocistow_path())
        .args(["blob", "get", &at(&dir, &digest)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_mins(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ocistow blob get did not end after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_exit_codes_are_listed_in_help() {
    let help = ok(&["--help"]).stdout;
    for line in [
        "1  a question's answer is no",
        "2  invalid input",
        "8  other error",
    ] {
        assert!(help.contains(line), "{line:?} missing from --help:\n{help}");
    }
}
