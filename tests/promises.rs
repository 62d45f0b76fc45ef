//! The promises of docs/guarantees.md on the paths issue 8 found broken: hostile layouts built
//! here (deep chains, FIFOs and `/dev/zero` in every file role, look-alike tags, entries
//! without a manifest media type), each command bounded by a timeout so a hang is a failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, ocistow_path, ok};
use ocistow_store::{Algorithm, Digest};
use serde_json::{Value, json};

/// Runs `ocistow ARGS`, killing it after `limit`: a hang fails the test instead of stalling it.
fn bounded(args: &[&str], limit: Duration) -> common::Out {
    let mut child = Command::new(ocistow_path())
        .args(args)
        .env_remove("OCISTOW_REFERRERS_MODE")
        .env("OCISTOW_LOCK_TIMEOUT", "5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ocistow {}` still running after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let out = common::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked") && o.status.code().is_some(),
        "`ocistow {}` crashed:\n{}",
        args.join(" "),
        out.stderr
    );
    out
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, enc) = digest.split_once(':').unwrap();
    layout.join("blobs").join(alg).join(enc)
}

/// Writes a blob file directly (no fsync: these tests write thousands).
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let d = Digest::of_bytes(Algorithm::Sha256, bytes);
    let path = blob_path(layout, d.as_str());
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    (d.to_string(), bytes.len() as u64)
}

fn set_index(layout: &Path, entries: &[Value]) {
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// An artifact pushed by ocistow: the layout, and the digests of manifest, config and layer.
struct Pushed {
    dir: PathBuf,
    manifest: String,
    config: String,
    layer: String,
}

fn pushed(root: &Path) -> Pushed {
    let dir = root.join("l");
    let file = root.join("hello.txt");
    fs::write(&file, "hello\n").unwrap();
    ok(&["init", &s(&dir)]);
    ok(&["push", &format!("{}:v1", s(&dir)), &s(&file)]);
    let manifest = ok(&["resolve", &format!("{}:v1", s(&dir))])
        .stdout
        .trim()
        .to_string();
    let m: Value = serde_json::from_slice(&fs::read(blob_path(&dir, &manifest)).unwrap()).unwrap();
    Pushed {
        config: m["config"]["digest"].as_str().unwrap().into(),
        layer: m["layers"][0]["digest"].as_str().unwrap().into(),
        dir,
        manifest,
    }
}

// ---- fsck checks what every other reader checks -------------------------------------------

/// An entry whose mediaType is `application/octet-stream` or missing still names a manifest:
/// fsck checks what it references, as copy and export do.
#[test]
fn fsck_reads_entries_without_a_manifest_media_type() {
    for media_type in [Some("application/octet-stream"), None] {
        let tmp = tempfile::tempdir().unwrap();
        let p = pushed(tmp.path());
        let size = fs::metadata(blob_path(&p.dir, &p.manifest)).unwrap().len();
        let mut entry = json!({"digest": p.manifest, "size": size});
        if let Some(mt) = media_type {
            entry["mediaType"] = json!(mt);
        }
        set_index(&p.dir, &[entry]);
        fs::remove_file(blob_path(&p.dir, &p.layer)).unwrap();
        let out = bounded(&["fsck", &s(&p.dir)], Duration::from_mins(1));
        assert_ne!(
            out.code, 0,
            "{media_type:?}: fsck said clean:\n{}",
            out.stdout
        );
        assert!(
            format!("{}{}", out.stdout, out.stderr).contains(&p.layer),
            "{media_type:?}: the missing layer is not named:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        let copy = bounded(
            &[
                "copy",
                &format!("{}@{}", s(&p.dir), p.manifest),
                &s(&tmp.path().join("c")),
            ],
            Duration::from_mins(1),
        );
        assert_ne!(copy.code, 0, "copy agrees that the layer is missing");
    }
}

/// fsck goes on after a blob path that is not a regular file and reports the others too.
#[test]
fn fsck_reports_every_problem_past_a_fifo() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let config = blob_path(&p.dir, &p.config);
    fs::remove_file(&config).unwrap();
    mkfifo(&config);
    fs::remove_file(blob_path(&p.dir, &p.layer)).unwrap();
    let out = bounded(&["fsck", &s(&p.dir)], Duration::from_secs(30));
    assert_ne!(out.code, 0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&p.config), "the FIFO is not named:\n{all}");
    assert!(
        all.contains(&p.layer),
        "the missing layer is hidden:\n{all}"
    );
}

// ---- any depth ------------------------------------------------------------------------------

/// A chain of nested image indexes `depth` deep, tagged `top`.
fn index_chain(dir: &Path, depth: usize) -> String {
    ok(&["init", &s(dir)]);
    let (mut digest, mut size) = put_blob(dir, b"{}");
    let mut media_type = "application/vnd.oci.empty.v1+json";
    for _ in 0..depth {
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": media_type, "digest": digest, "size": size}],
        }))
        .unwrap();
        (digest, size) = put_blob(dir, &bytes);
        media_type = "application/vnd.oci.image.index.v1+json";
    }
    set_index(
        dir,
        &[
            json!({"mediaType": media_type, "digest": digest, "size": size,
                 "annotations": {"org.opencontainers.image.ref.name": "top"}}),
        ],
    );
    digest
}

/// Runs each command on `dir` (tagged `top`), requiring exit 0 within the limit.
fn all_succeed(commands: &[Vec<&str>], limit: Duration) {
    for args in commands {
        let out = bounded(args, limit);
        assert_eq!(
            out.code,
            0,
            "`ocistow {}` failed:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
    }
}

/// Before the one traversal, about 10,000 nested indexes aborted these commands (exit 134).
#[test]
fn a_100000_deep_index_chain_under_every_scanning_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deep");
    index_chain(&dir, 100_000);
    let l = s(&dir);
    let top = format!("{l}:top");
    let export = s(&tmp.path().join("deep.tar"));
    all_succeed(
        &[
            vec!["fsck", &l],
            vec!["gc", &l],
            vec!["referrers", "status", &l],
            vec!["discover", &top],
            vec!["export", &top, "-o", &export],
        ],
        Duration::from_mins(10),
    );
}

/// copy makes every blob durable on its own (an fsync each), so 100,000 of them take minutes
/// on a loaded machine; 20,000 is past the depth that aborted before.
#[test]
fn a_20000_deep_index_chain_under_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deep");
    index_chain(&dir, 20_000);
    let top = format!("{}:top", s(&dir));
    let copy = s(&tmp.path().join("copy"));
    all_succeed(&[vec!["copy", &top, &copy]], Duration::from_mins(10));
}

// ---- FIFOs and /dev/zero in every role -----------------------------------------------------

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success());
}

#[derive(Clone, Copy, Debug)]
enum Hostile {
    Fifo,
    DevZero,
}

fn plant(path: &Path, how: Hostile) {
    fs::remove_file(path).unwrap();
    match how {
        Hostile::Fifo => mkfifo(path),
        Hostile::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
    }
}

/// Every command that reads a file stops with an error naming it, quickly, whether the file is
/// a FIFO (which blocks a plain open or read forever) or a symlink to `/dev/zero` (endless).
#[test]
fn fifos_and_dev_zero_in_every_role() {
    let limit = Duration::from_secs(20);
    for how in [Hostile::Fifo, Hostile::DevZero] {
        for role in ["manifest", "config", "layer", "index.json", "oci-layout"] {
            let tmp = tempfile::tempdir().unwrap();
            let p = pushed(tmp.path());
            let (file, named) = match role {
                "manifest" => (blob_path(&p.dir, &p.manifest), p.manifest.clone()),
                "config" => (blob_path(&p.dir, &p.config), p.config.clone()),
                "layer" => (blob_path(&p.dir, &p.layer), p.layer.clone()),
                other => (p.dir.join(other), other.to_string()),
            };
            let hex = named
                .split_once(':')
                .map_or(named.as_str(), |x| x.1)
                .to_string();
            plant(&file, how);
            let dir = s(&p.dir);
            let v1 = format!("{dir}:v1");
            let at = format!("{dir}@{}", p.manifest);
            let out_dir = s(&tmp.path().join("out"));
            let copy_dst = s(&tmp.path().join("copy"));
            let tar = s(&tmp.path().join("x.tar"));
            // (command, must it read the planted file?)
            let reads_manifest = matches!(role, "manifest" | "index.json" | "oci-layout");
            let commands: Vec<(Vec<&str>, bool)> = vec![
                (vec!["fsck", &dir], true),
                (vec!["gc", &dir], true),
                (vec!["discover", &at], reads_manifest),
                (vec!["referrers", "status", &dir], reads_manifest),
                (
                    vec!["referrers", "convert", "--to", "tag", &dir],
                    reads_manifest,
                ),
                (vec!["copy", "-r", &at, &copy_dst], true),
                (vec!["export", "--referrers", &at, "-o", &tar], true),
                (vec!["pull", &v1, "-o", &out_dir], role != "config"),
                (
                    vec!["ls", &dir],
                    matches!(role, "index.json" | "oci-layout"),
                ),
            ];
            for (args, must_fail) in commands {
                let out = bounded(&args, limit);
                if must_fail {
                    assert_ne!(
                        out.code,
                        0,
                        "{how:?} {role}: `ocistow {}` succeeded:\n{}",
                        args.join(" "),
                        out.stdout
                    );
                    let all = format!("{}{}", out.stdout, out.stderr);
                    assert!(
                        all.contains(&hex),
                        "{how:?} {role}: `ocistow {}` does not name {named}:\n{all}",
                        args.join(" ")
                    );
                }
            }
            // Nothing was written outside the temp dir, and nothing huge inside it.
            let big = walk_sizes(tmp.path());
            assert!(big < 1 << 20, "{how:?} {role}: {big} bytes written");
        }
    }
}

/// Total size of the regular files under `dir` (symlinks not followed).
fn walk_sizes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                total += e.metadata().unwrap().len();
            }
        }
    }
    total
}

// ---- look-alike tags are the user's ---------------------------------------------------------

fn tags_of(dir: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(String::from)
        .collect()
}

/// A tag on an image index that has the shape of a regctl fallback tag (`build-<hex>`), or even
/// its exact spelling for a digest whose referrers the index does not list, is a root: gc,
/// convert and fsck --repair keep it and everything it reaches.
#[test]
fn look_alike_fallback_tags_survive_gc_and_convert() {
    let hex = Digest::of_bytes(Algorithm::Sha256, b"build")
        .encoded()
        .to_string();
    let amd64 = "b7ef1ab818cd74500834da9af00d1bf75606f3a093a3a85b7a2427903c8d5581";
    for tag in [format!("build-{hex}"), format!("sha256-{amd64}")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = common::copy_fixture("oras-multiplatform", &tmp.path().join("l"));
        let l = s(&dir);
        ok(&["tag", &format!("{l}:multi"), &tag]);
        ok(&["untag", &format!("{l}:multi")]);
        let multi = "sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239";
        let children: Vec<String> = {
            let m: Value =
                serde_json::from_slice(&fs::read(blob_path(&dir, multi)).unwrap()).unwrap();
            m["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["digest"].as_str().unwrap().to_string())
                .collect()
        };
        for args in [
            vec!["gc", l.as_str()],
            vec!["referrers", "convert", "--to", "annotation", l.as_str()],
            vec!["referrers", "convert", "--to", "tag", l.as_str()],
            vec!["referrers", "convert", "--to", "response", l.as_str()],
            vec!["gc", l.as_str()],
        ] {
            let out = bounded(&args, Duration::from_mins(1));
            assert_eq!(
                out.code,
                0,
                "{tag}: `ocistow {}`: {}",
                args.join(" "),
                out.stderr
            );
            assert!(
                tags_of(&dir).contains(&tag),
                "{tag}: `ocistow {}` dropped the tag",
                args.join(" ")
            );
            assert!(
                blob_path(&dir, multi).is_file(),
                "{tag}: the index was deleted"
            );
            for c in &children {
                assert!(blob_path(&dir, c).is_file(), "{tag}: child {c} was deleted");
            }
        }
        assert_eq!(
            ok(&["resolve", &format!("{l}:{tag}")]).stdout.trim(),
            multi,
            "{tag} still names the index"
        );
    }
}

// ---- records are complete, whatever mix of modes wrote them -------------------------------

/// Each attach in another mode: the tag and response records list every referrer of the
/// subject, so `referrers status` stays clean right after each successful attach.
#[test]
fn mixed_mode_attaches_keep_status_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let v1 = format!("{}:v1", s(&p.dir));
    for (i, mode) in ["annotation", "tag", "response", "annotation", "tag"]
        .iter()
        .enumerate()
    {
        let f = tmp.path().join(format!("r{i}.json"));
        fs::write(&f, format!("{{\"n\":{i}}}")).unwrap();
        ok(&[
            "attach",
            &v1,
            &s(&f),
            "--artifact-type",
            "application/vnd.example",
            "--referrers-mode",
            mode,
        ]);
        let status = bounded(&["referrers", "status", &s(&p.dir)], Duration::from_mins(1));
        assert_eq!(
            status.code, 0,
            "after attach {i} ({mode}):\n{}\n{}",
            status.stdout, status.stderr
        );
        let fsck = bounded(&["fsck", &s(&p.dir)], Duration::from_mins(1));
        assert_eq!(
            fsck.code, 0,
            "after attach {i} ({mode}):\n{}\n{}",
            fsck.stdout, fsck.stderr
        );
        let found = ok(&["discover", "--format", "json", &v1]).stdout;
        let found: Value = serde_json::from_str(&found).unwrap();
        assert_eq!(
            found["referrers"].as_array().unwrap().len(),
            i + 1,
            "after attach {i}"
        );
    }
}

// ---- init never replaces index.json ------------------------------------------------------

/// `init` on a layout that exists, even while another process holds its lock, leaves its
/// index.json byte for byte.
#[test]
fn init_on_a_live_layout_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let before = fs::read(p.dir.join("index.json")).unwrap();
    ok(&["init", &s(&p.dir)]);
    assert_eq!(fs::read(p.dir.join("index.json")).unwrap(), before);
    // A killed init leaves index.json without oci-layout: a second init keeps that file too.
    let half = tmp.path().join("half");
    ok(&["init", &s(&half)]);
    fs::remove_file(half.join("oci-layout")).unwrap();
    let marked = br#"{"schemaVersion":2,"manifests":[],"annotations":{"x":"kept"}}"#;
    fs::write(half.join("index.json"), marked).unwrap();
    let out = run_init(&half);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(fs::read(half.join("index.json")).unwrap(), marked);
    // Racing inits and tags: every tag survives.
    let raced = tmp.path().join("raced");
    let file = tmp.path().join("hello.txt");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (raced, file) = (raced.clone(), file.clone());
            std::thread::spawn(move || {
                let a = bounded(&["init", &s(&raced)], Duration::from_mins(1));
                assert_eq!(a.code, 0, "{}", a.stderr);
                let b = bounded(
                    &["push", &format!("{}:t{i}", s(&raced)), &s(&file)],
                    Duration::from_mins(1),
                );
                assert_eq!(b.code, 0, "{}", b.stderr);
                let c = bounded(&["init", &s(&raced)], Duration::from_mins(1));
                assert_eq!(c.code, 0, "{}", c.stderr);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut tags = tags_of(&raced);
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3"]);
}

fn run_init(dir: &Path) -> common::Out {
    bounded(&["init", &s(dir)], Duration::from_secs(30))
}

// ---- numbers survive rewrites --------------------------------------------------------------

/// Unknown fields of index.json keep big integers and long decimals exactly through a rewrite.
#[test]
fn big_numbers_in_index_json_survive_rewrites() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let path = p.dir.join("index.json");
    let text = String::from_utf8(fs::read(&path).unwrap()).unwrap();
    let numbers = r#""x.big": 123456789012345678901234567890, "x.long": 3.14159265358979323846264338327950288, "x.neg": -18446744073709551617, "#;
    let text = text.replacen(
        "\"schemaVersion\"",
        &format!("{numbers}\"schemaVersion\""),
        1,
    );
    fs::write(&path, &text).unwrap();
    ok(&["tag", &format!("{}:v1", s(&p.dir)), "v2"]);
    let after = String::from_utf8(fs::read(&path).unwrap()).unwrap();
    for n in [
        "123456789012345678901234567890",
        "3.14159265358979323846264338327950288",
        "-18446744073709551617",
    ] {
        assert!(after.contains(n), "{n} changed:\n{after}");
    }
}

// ---- a kill between blobs and record ------------------------------------------------------

/// A source layout with one tagged subject and `n` referrers recorded as subject annotations.
fn layout_with_referrers(dir: &Path, n: usize) {
    ok(&["init", &s(dir)]);
    let (cfg, cfg_size) = put_blob(dir, b"{}");
    let config =
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": cfg_size});
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let subject = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": mt, "config": config, "layers": []}),
    )
    .unwrap();
    let (sd, ss) = put_blob(dir, &subject);
    let mut entries = vec![json!({"mediaType": mt, "digest": sd, "size": ss,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}})];
    for i in 0..n {
        let r = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt,
            "artifactType": "application/vnd.example", "config": config, "layers": [],
            "subject": {"mediaType": mt, "digest": sd, "size": ss}, "annotations": {"n": i.to_string()}}))
        .unwrap();
        let (d, size) = put_blob(dir, &r);
        entries.push(json!({"mediaType": mt, "digest": d, "size": size, "artifactType": "application/vnd.example",
            "annotations": {"n": i.to_string(), "io.containerd.manifest.subject": sd}}));
    }
    set_index(dir, &entries);
}

/// SIGKILL during `copy -r`, while blobs are being copied: the destination lists nothing or
/// everything (the root and every referrer are one transaction), and fsck finds no problem.
#[test]
fn copy_r_killed_midway_lists_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    layout_with_referrers(&src, 1_000);
    let dst = tmp.path().join("dst");
    ok(&["init", &s(&dst)]);
    let mut child = Command::new(ocistow_path())
        .args(["copy", "-r", &format!("{}:v1", s(&src)), &s(&dst)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some blobs are there, long before a thousand fsynced copies are done.
    let blobs = dst.join("blobs/sha256");
    let start = Instant::now();
    while fs::read_dir(&blobs).map_or(0, Iterator::count) < 20
        && start.elapsed() < Duration::from_mins(1)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let index: Value = serde_json::from_slice(&fs::read(dst.join("index.json")).unwrap()).unwrap();
    let listed = index["manifests"].as_array().unwrap().len();
    assert!(
        listed == 0 || listed == 1_001,
        "{listed} entries after a kill"
    );
    let fsck = bounded(&["fsck", &s(&dst)], Duration::from_mins(2));
    assert_eq!(fsck.code, 0, "{}\n{}", fsck.stdout, fsck.stderr);
}

/// import keeps a look-alike tag too: `build-<hex>` on an index is the user's, in any mode.
#[test]
fn look_alike_fallback_tags_survive_import() {
    let hex = Digest::of_bytes(Algorithm::Sha256, b"build")
        .encoded()
        .to_string();
    let tag = format!("build-{hex}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = common::copy_fixture("oras-multiplatform", &tmp.path().join("l"));
    let l = s(&dir);
    ok(&["tag", &format!("{l}:multi"), &tag]);
    let tar = s(&tmp.path().join("x.tar"));
    ok(&["export", &format!("{l}:{tag}"), "-o", &tar]);
    let dst = tmp.path().join("dst");
    ok(&["init", &s(&dst)]);
    ok(&["import", &tar, &s(&dst)]);
    assert!(
        tags_of(&dst).contains(&tag),
        "import dropped {tag}: {:?}",
        tags_of(&dst)
    );
    let gc = bounded(&["gc", &s(&dst)], Duration::from_mins(1));
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(
        tags_of(&dst).contains(&tag),
        "gc dropped {tag} after import"
    );
}

// ---- one blob placement --------------------------------------------------------------------

/// Only layout/ingest.rs places blobs: no other library file renames, persists or hard-links a
/// file, except the writers of other files listed here (each its own rule's one place).
#[test]
fn one_blob_placement() {
    let allowed: &[(&str, &str, &str)] = &[
        ("layout/ingest.rs", "", "the one blob placement"),
        ("layout/index.rs", ".persist(", "the one index.json writer"),
        ("referrers/facts.rs", ".persist(", "the facts cache writer"),
        (
            "transfer/export.rs",
            ".persist(",
            "the archive written beside its path",
        ),
        (
            "transfer/import/merge.rs",
            "fs::rename(&root, dir)",
            "a new layout's directory",
        ),
        ("artifact/confined.rs", "rename", "pull's confined output"),
        (
            "artifact/pull.rs",
            "OutDir::rename(",
            "pull's confined output",
        ),
    ];
    let src = common::root().join("crates/store/src");
    let mut found = Vec::new();
    for entry in walkdir(&src) {
        let rel = entry.strip_prefix(&src).unwrap().display().to_string();
        let text = fs::read_to_string(&entry).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !["rename(", ".persist(", "hard_link("]
                .iter()
                .any(|p| code.contains(p))
            {
                continue;
            }
            let ok = allowed
                .iter()
                .any(|(file, pat, _)| rel == *file && code.contains(pat));
            if !ok && !code.contains("#[test]") && !in_tests(&text, n) {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "blobs placed outside layout/ingest.rs:\n{}",
        found.join("\n")
    );
}

/// True when line `n` is inside the file's `#[cfg(test)]` module (which sits at the end).
fn in_tests(text: &str, n: usize) -> bool {
    text.lines()
        .position(|l| l.trim() == "#[cfg(test)]")
        .is_some_and(|start| n > start)
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

// ---- gc and what an interrupted write left ---------------------------------------------------

/// A referrer blob that no record lists (what a killed attach or `copy -r` leaves) is a note
/// for fsck; gc keeps it within `--grace` and removes it (and its own layer) after, while the
/// listed referrer of the same subject stays.
#[test]
fn gc_removes_an_unlisted_referrer_after_the_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let v1 = format!("{}:v1", s(&p.dir));
    let f = tmp.path().join("listed.json");
    fs::write(&f, "{\"listed\":true}").unwrap();
    ok(&[
        "attach",
        &v1,
        &s(&f),
        "--artifact-type",
        "application/vnd.example",
    ]);
    let listed: Value =
        serde_json::from_str(&ok(&["discover", "--format", "json", &v1]).stdout).unwrap();
    let listed = listed["referrers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // The leftover: a referrer manifest and its layer, stored but never recorded.
    let subject_size = fs::metadata(blob_path(&p.dir, &p.manifest)).unwrap().len();
    let (layer, layer_size) = put_blob(&p.dir, b"an interrupted attach's layer");
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let (leftover, _) = put_blob(
        &p.dir,
        &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": mt,
            "artifactType": "application/vnd.example",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": [{"mediaType": "text/plain", "digest": layer, "size": layer_size}],
            "subject": {"mediaType": mt, "digest": p.manifest, "size": subject_size}}))
        .unwrap(),
    );
    fs::write(
        blob_path(
            &p.dir,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
        "{}",
    )
    .unwrap();
    let fsck = bounded(
        &["fsck", "--format", "json", &s(&p.dir)],
        Duration::from_mins(1),
    );
    assert_eq!(fsck.code, 0, "{}{}", fsck.stdout, fsck.stderr);
    assert!(
        fsck.stdout.contains(&leftover),
        "fsck notes it: {}",
        fsck.stdout
    );
    // Within the grace: kept.
    let gc = bounded(&["gc", &s(&p.dir), "--grace", "1h"], Duration::from_mins(1));
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(blob_path(&p.dir, &leftover).is_file(), "{}", gc.stdout);
    assert!(blob_path(&p.dir, &layer).is_file());
    // Two hours old: removed, with the layer only it used; the listed referrer stays.
    let past = std::time::SystemTime::now() - Duration::from_hours(2);
    for d in [&leftover, &layer] {
        fs::File::options()
            .write(true)
            .open(blob_path(&p.dir, d))
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    let gc = bounded(&["gc", &s(&p.dir), "--grace", "1h"], Duration::from_mins(1));
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(!blob_path(&p.dir, &leftover).exists(), "{}", gc.stdout);
    assert!(!blob_path(&p.dir, &layer).exists(), "{}", gc.stdout);
    for live in [&listed, &p.manifest, &p.config, &p.layer] {
        assert!(
            blob_path(&p.dir, live).is_file(),
            "{live} removed: {}",
            gc.stdout
        );
    }
    let fsck = bounded(
        &["fsck", "--format", "json", &s(&p.dir)],
        Duration::from_mins(1),
    );
    assert_eq!(fsck.code, 0, "{}{}", fsck.stdout, fsck.stderr);
    assert!(!fsck.stdout.contains(&leftover), "{}", fsck.stdout);
    let found: Value =
        serde_json::from_str(&ok(&["discover", "--format", "json", &v1]).stdout).unwrap();
    assert_eq!(found["referrers"].as_array().unwrap().len(), 1);
}

// ---- import lands whole --------------------------------------------------------------------

/// Import merges the archive's entries and records its referrers in the destination's
/// convention in one index.json transaction: when recording fails (here: the destination's
/// fallback-tag record of the subject is corrupt), the merged tags are not left behind either.
#[test]
fn import_merge_and_records_are_one_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let src = s(&p.dir);
    let other = tmp.path().join("other.txt");
    fs::write(&other, "other\n").unwrap();
    ok(&["push", &format!("{src}:v2"), &s(&other)]);
    let f = tmp.path().join("sbom.json");
    fs::write(&f, "{\"sbom\":1}").unwrap();
    ok(&[
        "attach",
        &format!("{src}:v1"),
        &s(&f),
        "--artifact-type",
        "application/vnd.example",
    ]);
    let tar = s(&tmp.path().join("a.tar"));
    ok(&[
        "export",
        "--referrers",
        &format!("{src}:v1"),
        &format!("{src}:v2"),
        "-o",
        &tar,
    ]);
    // The destination has v1 with a referrer recorded in a fallback tag, whose record is then
    // damaged (same size, other bytes).
    let dst = tmp.path().join("dst");
    ok(&["copy", &format!("{src}:v1"), &format!("{}:v1", s(&dst))]);
    let g = tmp.path().join("sig.json");
    fs::write(&g, "{\"sig\":1}").unwrap();
    ok(&[
        "attach",
        &format!("{}:v1", s(&dst)),
        &s(&g),
        "--artifact-type",
        "application/vnd.example.sig",
        "--referrers-mode",
        "tag",
    ]);
    let tag = format!("sha256-{}", common::sha256_hex(&p.manifest));
    let record = common::entries(&dst)
        .into_iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .expect("a fallback tag record");
    let path = blob_path(&dst, record["digest"].as_str().unwrap());
    let len = fs::metadata(&path).unwrap().len() as usize;
    fs::write(&path, vec![b' '; len]).unwrap();
    let before = fs::read_to_string(dst.join("index.json")).unwrap();
    let out = bounded(&["import", &tar, &s(&dst)], Duration::from_mins(1));
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        fs::read_to_string(dst.join("index.json")).unwrap(),
        before,
        "a failed import left part of its merge: {}",
        out.stderr
    );
}

// ---- an exact fallback-tag name on a user's index ------------------------------------------

/// A user's index tagged exactly `sha256-<subject hex>` that is not a referrers record: a tag
/// mode attach refuses (a conflict naming the tag) and changes nothing; an annotation mode
/// attach records the referrer and leaves the user's tag on its index.
#[test]
fn an_exact_fallback_tag_on_a_user_index_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let size = fs::metadata(blob_path(&p.dir, &p.manifest)).unwrap().len();
    let mt = "application/vnd.oci.image.manifest.v1+json";
    let it = "application/vnd.oci.image.index.v1+json";
    let (user_index, user_size) = put_blob(
        &p.dir,
        &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": it,
            "manifests": [{"mediaType": mt, "digest": p.manifest, "size": size}]}))
        .unwrap(),
    );
    let tag = format!("sha256-{}", common::sha256_hex(&p.manifest));
    let mut entries = common::entries(&p.dir);
    entries.push(
        json!({"mediaType": it, "digest": user_index, "size": user_size,
        "annotations": {"org.opencontainers.image.ref.name": tag}}),
    );
    set_index(&p.dir, &entries);
    let before = fs::read_to_string(p.dir.join("index.json")).unwrap();
    let f = tmp.path().join("sig.json");
    fs::write(&f, "{\"sig\":1}").unwrap();
    let v1 = format!("{}:v1", s(&p.dir));
    let attach = |mode: &str| {
        bounded(
            &[
                "attach",
                &v1,
                &s(&f),
                "--artifact-type",
                "application/vnd.example",
                "--referrers-mode",
                mode,
            ],
            Duration::from_mins(1),
        )
    };
    let out = attach("tag");
    assert_eq!(out.code, 7, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(&tag), "{}", out.stderr);
    assert_eq!(
        fs::read_to_string(p.dir.join("index.json")).unwrap(),
        before
    );
    let out = attach("annotation");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let kept = common::entries(&p.dir)
        .into_iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(kept, vec![user_index]);
}

// ---- referrer order ------------------------------------------------------------------------

/// The referrers of a subject, listed in the order they were attached (not digest order), come
/// out of export, import and copy -r in the same order.
#[test]
fn referrer_order_survives_export_import_and_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let p = pushed(tmp.path());
    let v1 = format!("{}:v1", s(&p.dir));
    for i in 0..6 {
        let f = tmp.path().join(format!("r{i}.json"));
        fs::write(&f, format!("{{\"n\":{i}}}")).unwrap();
        ok(&[
            "attach",
            &v1,
            &s(&f),
            "--artifact-type",
            "application/vnd.example",
        ]);
    }
    let order = crate::common::referrer_digests;
    let source = order(&v1);
    assert_eq!(source.len(), 6);
    let mut sorted = source.clone();
    sorted.sort();
    assert_ne!(
        source, sorted,
        "the attach order happens to be digest order: pick other content"
    );
    let tar = s(&tmp.path().join("a.tar"));
    ok(&["export", "--referrers", &v1, "-o", &tar]);
    let imported = tmp.path().join("imported");
    ok(&["import", &tar, &s(&imported)]);
    assert_eq!(
        order(&format!("{}:v1", s(&imported))),
        source,
        "export + import"
    );
    let copied = tmp.path().join("copied");
    ok(&["copy", "-r", &v1, &format!("{}:v1", s(&copied))]);
    assert_eq!(order(&format!("{}:v1", s(&copied))), source, "copy -r");
}
