//! Bad input: every case must fail with the documented exit code, say what is at fault, and
//! leave the layout byte-identical (not even a lock file or an `ingest/` directory may appear).
//!
//! Exit codes (crates/cli/src/exit.rs): 2 usage/invalid input, 3 not found / not a
//! layout, 4 ambiguous, 5 integrity, 6 locked, 7 conflict, 8 other errors (1 is a "no").

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{blob_path, fixture_dir, ocistow, snapshot, writable_fixture};
use serde_json::Value;

const USAGE: i32 = 2;
const NOT_FOUND: i32 = 3;
const AMBIGUOUS: i32 = 4;
const INTEGRITY: i32 = 5;

const ORAS_V1: &str = "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08";
const ORAS_SBOM: &str = "sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7";
const FILE_TXT: &str = "sha256:51bc0fc1f19104fa6e89ce50be9aa1f57c3346c1ca51ab49f5f00e14ce8f8076";
const EMPTY_JSON: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn r(dir: &Path, sep: &str, what: &str) -> String {
    format!("{}{sep}{what}", dir.display())
}

/// Runs `ocistow ARGS`, expects exit `code`, no panic, and `layout` byte-identical afterwards.
/// Returns stderr.
fn fails<I, S>(layout: &Path, args: I, code: i32) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let before = snapshot(layout);
    let out = ocistow().args(&args).assert();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "ocistow {args:?}: expected exit {code}; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "ocistow {args:?} panicked: {stderr}"
    );
    let after = snapshot(layout);
    assert_eq!(
        changes(&before, &after),
        Vec::<String>::new(),
        "ocistow {args:?} changed the layout; stderr: {stderr}"
    );
    assert_eq!(before, after);
    stderr
}

type Snapshot = std::collections::BTreeMap<PathBuf, Option<Vec<u8>>>;

/// What differs between two snapshots, one line a path: `+` added, `-` removed, `~` changed.
fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (path, content) in after {
        match before.get(path) {
            None => out.push(format!("+ {}", path.display())),
            Some(old) if old != content => out.push(format!("~ {}", path.display())),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        out.push(format!("- {}", path.display()));
    }
    out
}

fn assert_mentions(stderr: &str, needle: &str) {
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}: {stderr}"
    );
}

/// True when `dir` is absent or empty.
fn absent_or_empty(dir: &Path) -> bool {
    !dir.exists() || fs::read_dir(dir).unwrap().next().is_none()
}

// ---- not a layout, corrupt index.json --------------------------------------------------------

#[test]
fn missing_oci_layout_file() {
    let (tmp, dir) = writable_fixture("oras-referrers");
    fs::remove_file(dir.join("oci-layout")).unwrap();
    let input = fixture_dir("oras-referrers").join("inputs/file.txt");
    let out = tmp.path().join("out");
    for args in [
        vec!["ls".into(), dir.display().to_string()],
        vec!["tags".into(), dir.display().to_string()],
        vec!["resolve".into(), r(&dir, ":", "v1")],
        vec!["manifest".into(), "get".into(), r(&dir, ":", "v1")],
        vec!["blob".into(), "get".into(), r(&dir, "@", FILE_TXT)],
        vec![
            "pull".into(),
            r(&dir, ":", "v1"),
            "-o".into(),
            out.display().to_string(),
        ],
        vec!["tag".into(), r(&dir, ":", "v1"), "v2".into()],
        vec!["untag".into(), r(&dir, ":", "v1")],
        vec![
            "push".into(),
            r(&dir, ":", "v2"),
            input.display().to_string(),
        ],
    ] {
        let stderr = fails(&dir, &args, NOT_FOUND);
        assert_mentions(&stderr, &dir.join("oci-layout").display().to_string());
        assert_mentions(&stderr, "not an OCI image layout");
    }
    assert!(!out.exists());
}

/// A copy of oras-referrers whose index.json is replaced by `content`.
fn with_index(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = writable_fixture("oras-referrers");
    fs::write(dir.join("index.json"), content).unwrap();
    (tmp, dir)
}

fn truncated_index() -> Vec<u8> {
    let full = fs::read(fixture_dir("oras-referrers").join("layout/index.json")).unwrap();
    full[..full.len() / 2].to_vec()
}

const MANIFESTS_NOT_A_LIST: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}}"#;

/// Read and tag/untag commands on a layout with a broken index.json: exit 5, naming the file.
fn corrupt_index_read_and_tag_commands(content: &[u8], reason: &str) {
    let (tmp, dir) = with_index(content);
    let index = dir.join("index.json").display().to_string();
    let out = tmp.path().join("out");
    for args in [
        vec!["ls".into(), dir.display().to_string()],
        vec!["tags".into(), dir.display().to_string()],
        vec!["resolve".into(), r(&dir, ":", "v1")],
        vec!["resolve".into(), r(&dir, "@", ORAS_V1)],
        vec!["manifest".into(), "get".into(), r(&dir, ":", "v1")],
        vec![
            "pull".into(),
            r(&dir, ":", "v1"),
            "-o".into(),
            out.display().to_string(),
        ],
        vec!["tag".into(), r(&dir, ":", "v1"), "v2".into()],
        vec!["untag".into(), r(&dir, ":", "v1")],
    ] {
        let stderr = fails(&dir, &args, INTEGRITY);
        assert_mentions(&stderr, &index);
        assert_mentions(&stderr, reason);
    }
    assert!(!out.exists());
}

#[test]
fn truncated_index_json() {
    corrupt_index_read_and_tag_commands(&truncated_index(), "invalid JSON");
}

#[test]
fn index_json_manifests_not_a_list() {
    corrupt_index_read_and_tag_commands(MANIFESTS_NOT_A_LIST, "\"manifests\" is not a list");
}

/// `push` must notice the broken index.json before it stores anything.
fn push_into_corrupt_index(content: &[u8]) {
    let (_tmp, dir) = with_index(content);
    let input = fixture_dir("oras-referrers").join("inputs/file.txt");
    let stderr = fails(
        &dir,
        [
            "push".into(),
            r(&dir, ":", "v2"),
            format!("{}:text/plain", input.display()),
            "--artifact-type".into(),
            "application/vnd.example.other".into(),
        ],
        INTEGRITY,
    );
    assert_mentions(&stderr, &dir.join("index.json").display().to_string());
}

#[test]
fn push_into_layout_with_truncated_index_json_changes_nothing() {
    push_into_corrupt_index(&truncated_index());
}

#[test]
fn push_into_layout_with_manifests_not_a_list_changes_nothing() {
    push_into_corrupt_index(MANIFESTS_NOT_A_LIST);
}

#[test]
fn manifest_put_into_layout_with_truncated_index_json_changes_nothing() {
    let (tmp, dir) = with_index(&truncated_index());
    // A valid manifest whose blobs are all present, not stored yet.
    let manifest = tmp.path().join("m.json");
    fs::write(
        &manifest,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.new","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{EMPTY_JSON}","size":2}},"layers":[{{"mediaType":"text/plain","digest":"{FILE_TXT}","size":15}}]}}"#
        ),
    )
    .unwrap();
    let stderr = fails(
        &dir,
        [
            "manifest".into(),
            "put".into(),
            r(&dir, ":", "v2"),
            manifest.display().to_string(),
        ],
        INTEGRITY,
    );
    assert_mentions(&stderr, &dir.join("index.json").display().to_string());
}

// ---- damaged blobs -------------------------------------------------------------------------------

/// `pull` and `blob get` of a damaged layer: exit 5, naming the blob, and nothing pulled.
fn damaged_layer(replacement: &[u8], reason: &str) {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let blob = blob_path(&dir, FILE_TXT);
    fs::write(&blob, replacement).unwrap();
    let out = tmp.path().join("out");
    let stderr = fails(
        &dir,
        [
            "pull".into(),
            r(&dir, ":", "v1"),
            "-o".into(),
            out.display().to_string(),
        ],
        INTEGRITY,
    );
    // the blob at fault, by digest or by its file under blobs/ (both contain the hex)
    assert_mentions(&stderr, &FILE_TXT[7..]);
    assert_mentions(&stderr, reason);
    assert!(
        absent_or_empty(&out),
        "pull left files in {}",
        out.display()
    );

    let stderr = fails(
        &dir,
        ["blob".into(), "get".into(), r(&dir, "@", FILE_TXT)],
        INTEGRITY,
    );
    assert_mentions(&stderr, &FILE_TXT[7..]);
    assert_mentions(&stderr, "mismatch");

    let target = tmp.path().join("blob.out");
    let stderr = fails(
        &dir,
        [
            "blob".into(),
            "get".into(),
            r(&dir, "@", FILE_TXT),
            "-o".into(),
            target.display().to_string(),
        ],
        INTEGRITY,
    );
    assert_mentions(&stderr, &FILE_TXT[7..]);
    assert!(!target.exists(), "blob get -o wrote an unverified file");
    // and no temp file beside it
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "layout" && n != "out")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn truncated_blob() {
    damaged_layer(b"hello a", "size mismatch");
}

#[test]
fn blob_with_wrong_content_of_the_same_size() {
    let wrong = b"HELLO ARTIFACT\n";
    assert_eq!(wrong.len(), 15);
    damaged_layer(wrong, "digest mismatch");
}

// ---- invalid digests ---------------------------------------------------------------------------

#[test]
fn uppercase_hex_digest() {
    let (_tmp, dir) = writable_fixture("oras-referrers");
    let upper = FILE_TXT.replace(&FILE_TXT[7..], &FILE_TXT[7..].to_uppercase());
    for cmd in [vec!["blob", "get"], vec!["resolve"], vec!["blob", "exists"]] {
        let mut args: Vec<String> = cmd.iter().map(std::string::ToString::to_string).collect();
        args.push(r(&dir, "@", &upper));
        let stderr = fails(&dir, &args, USAGE);
        assert_mentions(&stderr, &upper);
        assert_mentions(&stderr, "lowercase hex");
    }
}

#[test]
fn wrong_length_digest() {
    let (_tmp, dir) = writable_fixture("oras-referrers");
    for bad in ["sha256:51bc0fc1", &format!("{FILE_TXT}00")] {
        for cmd in [vec!["blob", "get"], vec!["resolve"]] {
            let mut args: Vec<String> = cmd.iter().map(std::string::ToString::to_string).collect();
            args.push(r(&dir, "@", bad));
            let stderr = fails(&dir, &args, USAGE);
            assert_mentions(&stderr, bad);
            assert_mentions(&stderr, "64 hex characters");
        }
    }
}

/// `DIR@sha256:../../etc/passwd` would be `DIR/etc/passwd` if it reached the file system: put a
/// sentinel there and check that it is never read.
fn path_traversal(cmd: &[&str]) {
    let (_tmp, dir) = writable_fixture("oras-referrers");
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/passwd"), "SENTINEL-must-not-be-read\n").unwrap();
    let bad = "sha256:../../etc/passwd";
    let mut args: Vec<String> = cmd.iter().map(std::string::ToString::to_string).collect();
    args.push(r(&dir, "@", bad));
    let before = snapshot(&dir);
    let out = ocistow().args(&args).assert();
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(USAGE), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} printed something");
    assert!(!stderr.contains("SENTINEL"), "{stderr}");
    assert_mentions(&stderr, bad);
    assert_mentions(&stderr, "invalid digest");
    assert_eq!(before, snapshot(&dir));
}

#[test]
fn path_traversal_digest_in_blob_get() {
    path_traversal(&["blob", "get"]);
}

#[test]
fn path_traversal_digest_in_resolve() {
    path_traversal(&["resolve"]);
}

#[test]
fn unknown_algorithm_is_unsupported() {
    // `foo:abc` fits the digest grammar, but ocistow cannot verify it: the error must say so
    // (exit 2), not report a missing blob.
    let (_tmp, dir) = writable_fixture("oras-referrers");
    let stderr = fails(
        &dir,
        ["blob".into(), "get".into(), r(&dir, "@", "foo:abc")],
        USAGE,
    );
    assert_mentions(&stderr, "foo");
    assert_mentions(&stderr, "not supported");
}

// ---- references that do not resolve ------------------------------------------------------------

#[test]
fn missing_tag() {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let out = tmp.path().join("out");
    for args in [
        vec!["resolve".into(), r(&dir, ":", "nope")],
        vec![
            "pull".into(),
            r(&dir, ":", "nope"),
            "-o".into(),
            out.display().to_string(),
        ],
        vec!["untag".into(), r(&dir, ":", "nope")],
        vec!["tag".into(), r(&dir, ":", "nope"), "v2".into()],
        vec!["manifest".into(), "get".into(), r(&dir, ":", "nope")],
    ] {
        let stderr = fails(&dir, &args, NOT_FOUND);
        assert_mentions(&stderr, "\"nope\"");
        assert_mentions(&stderr, "not found");
    }
    assert!(!out.exists());
}

#[test]
fn tag_on_two_entries_with_different_digests_is_ambiguous() {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(index["manifests"][1]["digest"], ORAS_SBOM);
    index["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"] = "v1".into();
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    let out = tmp.path().join("out");
    for args in [
        vec!["resolve".into(), r(&dir, ":", "v1")],
        vec!["manifest".into(), "get".into(), r(&dir, ":", "v1")],
        vec![
            "pull".into(),
            r(&dir, ":", "v1"),
            "-o".into(),
            out.display().to_string(),
        ],
        vec!["tag".into(), r(&dir, ":", "v1"), "v2".into()],
    ] {
        let stderr = fails(&dir, &args, AMBIGUOUS);
        assert_mentions(&stderr, "\"v1\"");
        assert_mentions(&stderr, ORAS_V1);
        assert_mentions(&stderr, ORAS_SBOM);
    }
    assert!(!out.exists());
}

#[test]
fn plain_dir_with_several_entries_is_ambiguous() {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let out = tmp.path().join("out");
    for args in [
        vec!["resolve".into(), dir.display().to_string()],
        vec!["manifest".into(), "get".into(), dir.display().to_string()],
        vec![
            "pull".into(),
            dir.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ],
        vec!["tag".into(), dir.display().to_string(), "v2".into()],
    ] {
        let stderr = fails(&dir, &args, AMBIGUOUS);
        assert_mentions(&stderr, "ambiguous");
        // every entry is offered as a candidate
        assert_mentions(&stderr, &r(&dir, ":", "v1"));
        assert_mentions(&stderr, &r(&dir, "@", ORAS_SBOM));
        assert_mentions(
            &stderr,
            "sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d",
        );
        assert_mentions(
            &stderr,
            "sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9",
        );
    }
    assert!(!out.exists());
}

// ---- push and manifest put input -----------------------------------------------------------------

#[test]
fn push_of_a_file_that_does_not_exist() {
    // push must check its inputs before writing anything: not even a lock or ingest/ appears.
    let (tmp, dir) = writable_fixture("oras-referrers");
    let missing = tmp.path().join("does-not-exist.txt");
    let present = fixture_dir("oras-referrers").join("inputs/sbom.json");
    for files in [
        vec![format!("{}:text/plain", missing.display())],
        vec![missing.display().to_string()],
        // one good file first: it must not be stored either
        vec![
            format!("{}:application/json", present.display()),
            missing.display().to_string(),
        ],
    ] {
        let mut args = vec!["push".to_string(), r(&dir, ":", "v2")];
        args.extend(files);
        args.extend(["--artifact-type".into(), "application/vnd.example.x".into()]);
        let stderr = fails(&dir, &args, USAGE);
        assert_mentions(&stderr, &missing.display().to_string());
    }
    // a missing --config file too
    let stderr = fails(
        &dir,
        [
            "push".into(),
            r(&dir, ":", "v2"),
            present.display().to_string(),
            "--config".into(),
            missing.display().to_string(),
        ],
        USAGE,
    );
    assert_mentions(&stderr, &missing.display().to_string());
}

#[test]
fn annotation_without_equals_sign() {
    let (_tmp, dir) = writable_fixture("oras-referrers");
    let input = fixture_dir("oras-referrers").join("inputs/file.txt");
    let stderr = fails(
        &dir,
        [
            "push".into(),
            r(&dir, ":", "v2"),
            input.display().to_string(),
            "-a".into(),
            "org.example.no-value".into(),
        ],
        USAGE,
    );
    assert_mentions(&stderr, "org.example.no-value");
    assert_mentions(&stderr, "KEY=VALUE");
}

/// `manifest put DIR:x FILE` with `content`: exit 2, the layout unchanged, stderr giving
/// `reason` and naming the file at fault.
fn manifest_put_refuses(name: &str, content: &[u8], extra: &[&str], reason: &str) {
    let (tmp, dir) = writable_fixture("oras-referrers");
    let file = tmp.path().join(name);
    fs::write(&file, content).unwrap();
    let mut args = vec![
        "manifest".to_string(),
        "put".into(),
        r(&dir, ":", "x"),
        file.display().to_string(),
    ];
    args.extend(extra.iter().map(std::string::ToString::to_string));
    let stderr = fails(&dir, &args, USAGE);
    assert_mentions(&stderr, "not a valid");
    assert_mentions(&stderr, reason);
    // the file at fault is named
    assert_mentions(&stderr, name);
}

#[test]
fn manifest_put_of_json_that_is_not_a_manifest() {
    manifest_put_refuses(
        "hello.json",
        br#"{"hello":1}"#,
        &[],
        "not shaped like a manifest",
    );
}

#[test]
fn manifest_put_of_an_index_declared_as_a_manifest() {
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{ORAS_V1}","size":553}}]}}"#
    );
    manifest_put_refuses(
        "index-as-manifest.json",
        index.as_bytes(),
        &[],
        "this is an index",
    );
    // the same shape without mediaType, declared with --media-type
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{ORAS_V1}","size":553}}]}}"#
    );
    manifest_put_refuses(
        "index-no-mediatype.json",
        index.as_bytes(),
        &["--media-type", "application/vnd.oci.image.manifest.v1+json"],
        "this is an index",
    );
}

#[test]
fn manifest_put_of_malformed_json() {
    // The reason given must be the JSON syntax ("invalid JSON: ..."), not a missing mediaType.
    manifest_put_refuses(
        "malformed.json",
        br#"{"schemaVersion":2,"config":"#,
        &[],
        "invalid JSON",
    );
}

// ---- pull must not write outside OUTDIR ----------------------------------------------------------

/// A fresh layout holding one manifest whose only layer is titled `title`, tagged `esc`.
fn layout_with_title(tmp: &Path, title: &str) -> PathBuf {
    let dir = tmp.join("layout");
    ocistow().arg("init").arg(&dir).assert().success();
    let payload = tmp.join("payload.txt");
    fs::write(&payload, "payload").unwrap();
    let empty = tmp.join("empty.json");
    fs::write(&empty, "{}").unwrap();
    let blob = |file: &Path| {
        let out = ocistow()
            .arg("blob")
            .arg("put")
            .arg(&dir)
            .arg(file)
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .trim()
            .to_string()
    };
    let layer = blob(&payload);
    assert_eq!(blob(&empty), EMPTY_JSON);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.escape",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_JSON, "size": 2},
        "layers": [{
            "mediaType": "text/plain",
            "digest": layer,
            "size": 7,
            "annotations": {"org.opencontainers.image.title": title}
        }]
    });
    let file = tmp.join("manifest.json");
    fs::write(&file, serde_json::to_vec(&manifest).unwrap()).unwrap();
    ocistow()
        .args(["manifest", "put", &r(&dir, ":", "esc")])
        .arg(&file)
        .assert()
        .success();
    dir
}

/// `pull` of a layer titled `title`: exit 2 naming the title, and nothing written anywhere: not
/// OUTDIR, not beside it, not at `outside(work)` (the path the title would escape to; `work` is
/// the parent of OUTDIR).
fn pull_refuses_title(title: &str, outside: impl Fn(&Path) -> PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout_with_title(tmp.path(), title);
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    let out = work.join("out");
    let escaped = outside(&work);
    let names = |d: &Path| -> Vec<_> {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let tmp_before = names(tmp.path());
    let work_before = snapshot(&work);
    let stderr = fails(
        &dir,
        [
            "pull".into(),
            r(&dir, ":", "esc"),
            "-o".into(),
            out.display().to_string(),
        ],
        USAGE,
    );
    assert_mentions(&stderr, title);
    assert_mentions(&stderr, "refusing");
    assert_eq!(work_before, snapshot(&work));
    assert_eq!(tmp_before, names(tmp.path()));
    assert!(!out.exists());
    assert!(!escaped.exists(), "{} was written", escaped.display());
}

#[test]
fn pull_refuses_a_title_with_parent_dir() {
    pull_refuses_title("../escape.txt", |work| work.join("escape.txt"));
    // deeper inside OUTDIR, still escaping it
    pull_refuses_title("a/../../escape.txt", |work| work.join("escape.txt"));
}

#[test]
fn pull_refuses_an_absolute_title() {
    pull_refuses_title("/etc/x", |_| PathBuf::from("/etc/x"));
    let target = std::env::temp_dir().join(format!("ocistow-abs-title-{}", std::process::id()));
    let title = target.display().to_string();
    pull_refuses_title(&title, |_| target.clone());
}
