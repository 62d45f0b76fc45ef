//! What users of oras and of other Rust CLIs expect (issue 12, the binary's side): shell
//! completion, man pages, `cp` for `copy`, a `--version` that names the commit, and arguments
//! refused at once when they cannot mean anything (`--depth 0`, a media type with spaces).

use std::fs;
use std::process::Command;

use crate::common::{at, ok, root, run, s, snapshot, tagged, writable_fixture};

const USAGE: i32 = 2;

#[test]
fn completion_scripts_name_every_command() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ocistow"),
        ("fish", "complete -c ocistow"),
    ] {
        let script = ok(&["completion", shell]).stdout;
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["discover", "referrers", "export", "completion"] {
            assert!(script.contains(command), "{shell} script lacks {command}");
        }
    }
    let bad = run(&["completion", "cmd.exe"]);
    assert_eq!(bad.code, USAGE, "{}", bad.stderr);
}

#[test]
fn man_pages_for_the_tool_and_each_command() {
    let page = ok(&["man"]).stdout;
    assert!(page.contains(".TH ocistow 1"), "{page}");
    assert!(page.contains("discover"), "{page}");
    let sub = ok(&["man", "blob", "get"]).stdout;
    assert!(sub.contains(".TH ocistow-blob-get 1"), "{sub}");
    assert!(sub.contains("verifying its digest"), "{sub}");
    let bad = run(&["man", "nope"]);
    assert_eq!(bad.code, USAGE, "{}", bad.stderr);
    assert!(bad.stderr.contains("nope"), "{}", bad.stderr);
}

#[test]
fn cp_is_copy() {
    let (tmp, src) = writable_fixture("oras-referrers");
    let dst = tmp.path().join("dst");
    ok(&["cp", &tagged(&src, "v1"), &tagged(&dst, "copied")]);
    let copied = ok(&["resolve", &tagged(&dst, "copied")]).stdout;
    let original = ok(&["resolve", &tagged(&src, "v1")]).stdout;
    assert_eq!(copied, original);
}

#[test]
fn version_names_the_commit() {
    let version = ok(&["--version"]).stdout;
    assert!(
        version.starts_with(&format!("ocistow {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .arg("-C")
        .arg(root())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    match head {
        Ok(out) if out.status.success() => {
            let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                version.contains(&format!("({commit}")),
                "{version} lacks {commit}"
            );
        }
        // Built from a tarball: the version alone.
        _ => assert!(!version.contains('('), "{version}"),
    }
}

#[test]
fn depth_zero_and_media_types_with_spaces_are_refused() {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let before = snapshot(&dir);
    let file = tmp.path().join("note.txt");
    fs::write(&file, "note").unwrap();
    let manifest = tmp.path().join("manifest.json");
    fs::copy(
        dir.join("blobs/sha256/0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08"),
        &manifest,
    )
    .unwrap();
    let v1 = tagged(&dir, "v1");
    let (file, manifest) = (s(&file), s(&manifest));
    let spaced = format!("{file}:text/ plain");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["discover", &v1, "--depth", "0"], "--depth"),
        (vec!["push", &v1, &spaced], "not a media type"),
        (
            vec!["push", &v1, &file, "--artifact-type", "application/x y"],
            "--artifact-type",
        ),
        (
            vec![
                "attach",
                &v1,
                &file,
                "--artifact-type",
                "application/vnd.example sbom",
            ],
            "--artifact-type",
        ),
        (
            vec![
                "manifest",
                "put",
                &v1,
                &manifest,
                "--media-type",
                "application/vnd.oci.image.manifest.v1+json ",
            ],
            "--media-type",
        ),
    ];
    for (args, needle) in cases {
        let out = run(&args);
        assert_eq!(out.code, USAGE, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        snapshot(&dir),
        before,
        "a refused command changed the layout"
    );
    // Depth 1 is fine.
    ok(&[
        "discover",
        &at(
            &dir,
            "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08",
        ),
        "--depth",
        "1",
    ]);
}
