//! `pull -k/--keep-old-files` (oras's flag): an existing file with other content is refused and
//! nothing is written; without it the file is replaced and named on stderr; an identical file
//! is no conflict.

use std::fs;

use crate::common::{ok, run, s, tagged};

/// A layout with `v1`: a file `a.txt` and a directory `d/` (unpacked on pull).
fn pushed() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("a.txt"), "hello\n").unwrap();
    fs::write(src.join("d/f"), "x\n").unwrap();
    let layout = tmp.path().join("layout");
    ok(&["init", &s(&layout)]);
    ok(&[
        "push",
        &tagged(&layout, "v1"),
        &s(&src.join("a.txt")),
        &s(&src.join("d")),
    ]);
    let out = tmp.path().join("out");
    ok(&["pull", &tagged(&layout, "v1"), "-o", &s(&out)]);
    (tmp, layout, out)
}

#[test]
fn keep_old_files_refuses_a_changed_file_and_writes_nothing() {
    let (_tmp, layout, out) = pushed();
    fs::write(out.join("a.txt"), "mine\n").unwrap();
    fs::remove_file(out.join("d/f")).unwrap();
    let r = run(&["pull", &tagged(&layout, "v1"), "-o", &s(&out), "-k"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("a.txt") && r.stderr.contains("nothing was written"),
        "{}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "mine\n");
    assert!(
        !out.join("d/f").exists(),
        "not even the missing file is written"
    );

    // A file inside an unpacked directory is compared too.
    fs::write(out.join("a.txt"), "hello\n").unwrap();
    fs::write(out.join("d/f"), "changed\n").unwrap();
    let r = run(&[
        "pull",
        &tagged(&layout, "v1"),
        "--keep-old-files",
        "-o",
        &s(&out),
    ]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("d/f"), "{}", r.stderr);
    assert_eq!(fs::read_to_string(out.join("d/f")).unwrap(), "changed\n");
}

#[test]
fn keep_old_files_accepts_files_that_are_already_right() {
    let (_tmp, layout, out) = pushed();
    let again = ok(&["pull", &tagged(&layout, "v1"), "-o", &s(&out), "-k"]);
    assert!(!again.stderr.contains("Replaced"), "{}", again.stderr);
}

#[test]
fn without_keep_old_files_a_changed_file_is_replaced_and_named() {
    let (_tmp, layout, out) = pushed();
    fs::write(out.join("a.txt"), "mine\n").unwrap();
    let r = ok(&["pull", &tagged(&layout, "v1"), "-o", &s(&out)]);
    assert!(
        r.stderr.contains("Replaced") && r.stderr.contains("a.txt"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("d/f"),
        "an unchanged file is not reported: {}",
        r.stderr
    );
    assert_eq!(fs::read_to_string(out.join("a.txt")).unwrap(), "hello\n");
}
