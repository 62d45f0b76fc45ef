//! ocistow against layouts written by real tools (testdata/fixtures): listing, tags, resolving,
//! pulling, byte-exact manifests and blobs, lossless tag/untag round trips, and a push that must
//! reproduce oras's bytes exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    fixture_dir, json_of, layout_fixtures, ocistow, read_json, snapshot, stdout_of,
    writable_fixture,
};
use serde_json::Value;

const ORAS_V1: &str = "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08";
const FILE_TXT: &str = "sha256:51bc0fc1f19104fa6e89ce50be9aa1f57c3346c1ca51ab49f5f00e14ce8f8076";
const MULTI_INDEX: &str = "sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239";
const MULTI_AMD64: &str = "sha256:b7ef1ab818cd74500834da9af00d1bf75606f3a093a3a85b7a2427903c8d5581";
const MULTI_ARM64: &str = "sha256:089951e64311bfa9b1c4e34382765867e0c49e93f03cd1f1e0ed384d0904704b";
const LAYER_AMD64: &str = "sha256:b4e4814ae66bbd877d9579499896963cea50685794f8182e9e0133222b86e2a8";
const REGCTL_V1: &str = "sha256:27f1f751817422972d13028a01edcfa732b50a764f546fc63583ffe11d08126e";

/// `DIR:TAG` (or `DIR@DIGEST` when `sep` is "@").
fn r(dir: &Path, sep: &str, what: &str) -> String {
    format!("{}{sep}{what}", dir.display())
}

/// `ocistow resolve REF [--platform P]`, trimmed.
fn resolve(reference: &str, platform: Option<&str>) -> String {
    let mut cmd = ocistow();
    cmd.arg("resolve").arg(reference);
    if let Some(p) = platform {
        cmd.args(["--platform", p]);
    }
    stdout_of(&cmd.assert().success()).trim().to_string()
}

/// A tool's own tag listing, one tag a line.
fn tool_tags(name: &str, file: &str) -> BTreeSet<String> {
    fs::read_to_string(fixture_dir(name).join("outputs").join(file))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn ocistow_tags(dir: &Path) -> Vec<String> {
    let out = ocistow().arg("tags").arg(dir).assert().success();
    stdout_of(&out).lines().map(String::from).collect()
}

/// `ls --format json` has one row per index.json entry, in order, with the entry's fields.
fn check_ls_matches_index(name: &str) -> Vec<Value> {
    let (_tmp, dir) = writable_fixture(name);
    let index = read_json(&dir.join("index.json"));
    let entries = index["manifests"].as_array().unwrap();
    let rows = json_of(
        &ocistow()
            .arg("ls")
            .arg(&dir)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    let rows = rows.as_array().unwrap().clone();
    assert_eq!(rows.len(), entries.len(), "{name}: one row per entry");
    for (i, (row, entry)) in rows.iter().zip(entries).enumerate() {
        let ref_name = &entry["annotations"]["org.opencontainers.image.ref.name"];
        assert_eq!(row["ref"], *ref_name, "{name}[{i}] ref");
        assert_eq!(row["digest"], entry["digest"], "{name}[{i}] digest");
        assert_eq!(
            row["mediaType"], entry["mediaType"],
            "{name}[{i}] mediaType"
        );
        assert_eq!(
            row["artifactType"], entry["artifactType"],
            "{name}[{i}] artifactType"
        );
        assert_eq!(row["size"], entry["size"], "{name}[{i}] size");
    }
    // The text table works too: a header plus one line per entry.
    let text = ocistow().arg("ls").arg(&dir).assert().success();
    assert_eq!(
        stdout_of(&text).lines().count(),
        entries.len() + 1,
        "{name}"
    );
    rows
}

/// Every tag in index.json resolves to its entry's digest.
fn check_every_tag_resolves(name: &str) {
    let (_tmp, dir) = writable_fixture(name);
    let index = read_json(&dir.join("index.json"));
    let mut seen = 0;
    for entry in index["manifests"].as_array().unwrap() {
        if let Some(tag) = entry["annotations"]["org.opencontainers.image.ref.name"].as_str() {
            let got = if tag.contains([':', '/']) {
                let out = ocistow()
                    .arg("--layout")
                    .arg(&dir)
                    .args(["resolve", tag])
                    .assert()
                    .success();
                stdout_of(&out).trim().to_string()
            } else {
                resolve(&r(&dir, ":", tag), None)
            };
            assert_eq!(got, entry["digest"].as_str().unwrap(), "{name}: {tag}");
            seen += 1;
        }
    }
    assert!(seen > 0, "{name} has tags");
}

// ---- listing ---------------------------------------------------------------------------------

#[test]
fn ls_oras_referrers() {
    let rows = check_ls_matches_index("oras-referrers");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["ref"], "v1");
    assert_eq!(rows[0]["digest"], ORAS_V1);
    assert_eq!(rows[0]["size"], 553);
    assert_eq!(rows[0]["artifactType"], "application/vnd.example.thing");
    assert_eq!(
        rows[0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // the referrers oras added are untagged entries
    let untagged: BTreeMap<String, String> = rows[1..]
        .iter()
        .map(|r| {
            assert!(r["ref"].is_null());
            (
                r["digest"].as_str().unwrap().to_string(),
                r["artifactType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        untagged[&"sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7"
            .to_string()],
        "application/vnd.example.sbom"
    );
}

#[test]
fn ls_oras_multiplatform() {
    let rows = check_ls_matches_index("oras-multiplatform");
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["ref"], "multi");
    assert_eq!(rows[0]["digest"], MULTI_INDEX);
    assert_eq!(
        rows[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(rows[0]["artifactType"].is_null());
    assert_eq!(rows[0]["size"], 565);
}

#[test]
fn ls_regctl_referrers() {
    let rows = check_ls_matches_index("regctl-referrers");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["ref"], "v1");
    assert_eq!(rows[0]["digest"], REGCTL_V1);
    assert_eq!(rows[0]["size"], 539);
    assert_eq!(
        rows[1]["ref"],
        "sha256-27f1f751817422972d13028a01edcfa732b50a764f546fc63583ffe11d08126e"
    );
}

#[test]
fn ls_olareg_containerd_buildkit() {
    for name in [
        "olareg-referrers",
        "containerd-subject-annotation",
        "buildkit-attestations",
    ] {
        check_ls_matches_index(name);
    }
}

// ---- tags --------------------------------------------------------------------------------------

#[test]
fn tags_equal_the_tools_own_listing() {
    for (name, file) in [
        ("oras-referrers", "repo-tags.txt"),
        ("oras-multiplatform", "repo-tags.txt"),
        ("olareg-referrers", "repo-tags.txt"),
        ("regctl-referrers", "tag-ls.txt"),
    ] {
        let (_tmp, dir) = writable_fixture(name);
        let ours: BTreeSet<String> = ocistow_tags(&dir).into_iter().collect();
        assert_eq!(ours, tool_tags(name, file), "{name}");
    }
}

// ---- resolving ---------------------------------------------------------------------------------

#[test]
fn resolve_gives_the_digests_the_tools_reported() {
    let (_t1, oras) = writable_fixture("oras-referrers");
    assert_eq!(resolve(&r(&oras, ":", "v1"), None), ORAS_V1);

    let (_t2, multi) = writable_fixture("oras-multiplatform");
    assert_eq!(resolve(&r(&multi, ":", "linux-amd64"), None), MULTI_AMD64);
    assert_eq!(resolve(&r(&multi, ":", "linux-arm64"), None), MULTI_ARM64);
    assert_eq!(resolve(&r(&multi, ":", "multi"), None), MULTI_INDEX);

    let (_t3, regctl) = writable_fixture("regctl-referrers");
    assert_eq!(resolve(&r(&regctl, ":", "v1"), None), REGCTL_V1);

    let (_t4, olareg) = writable_fixture("olareg-referrers");
    assert_eq!(resolve(&r(&olareg, ":", "v1"), None), ORAS_V1);
}

#[test]
fn resolve_platform_picks_the_child_of_an_index() {
    let (_tmp, multi) = writable_fixture("oras-multiplatform");
    let reference = r(&multi, ":", "multi");
    assert_eq!(resolve(&reference, Some("linux/arm64")), MULTI_ARM64);
    assert_eq!(resolve(&reference, Some("linux/amd64")), MULTI_AMD64);
    let out = ocistow()
        .args([
            "resolve",
            &reference,
            "--platform",
            "linux/arm64",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let desc = json_of(&out);
    assert_eq!(desc["digest"], MULTI_ARM64);
    assert_eq!(desc["size"], 539);
    assert_eq!(desc["platform"]["architecture"], "arm64");

    // containerd and BuildKit images are indexes too
    let (_t2, containerd) = writable_fixture("containerd-subject-annotation");
    assert_eq!(
        resolve(&r(&containerd, ":", "1.0"), Some("linux/amd64")),
        "sha256:aa985fef5a79c54e37fc5c771cf3141e921fd168ee44601d4b884d104cd36ca5"
    );
    let (_t3, buildkit) = writable_fixture("buildkit-attestations");
    assert_eq!(
        resolve(&r(&buildkit, ":", "latest"), Some("linux/arm64")),
        "sha256:066515664978863663abb89a13854a723772c6939e31bd9e4d932f93d8c78d05"
    );
}

#[test]
fn resolve_by_digest_of_manifests_not_in_index_json() {
    // regctl's referrers are only listed in its fallback-tag indexes; regctl's own
    // `artifact list` reported their descriptors.
    let (_tmp, regctl) = writable_fixture("regctl-referrers");
    let index = fs::read_to_string(regctl.join("index.json")).unwrap();
    let mut checked = 0;
    for file in ["artifact-list.json", "artifact-list-sbom.json"] {
        let listed = read_json(&fixture_dir("regctl-referrers").join("outputs").join(file));
        for d in listed["descriptors"].as_array().unwrap() {
            let digest = d["digest"].as_str().unwrap();
            assert!(!index.contains(digest), "{digest} is not in index.json");
            let out = ocistow()
                .args(["resolve", &r(&regctl, "@", digest), "--format", "json"])
                .assert()
                .success();
            let got = json_of(&out);
            assert_eq!(got["digest"], d["digest"]);
            assert_eq!(got["size"], d["size"]);
            assert_eq!(got["mediaType"], d["mediaType"]);
            assert_eq!(got["artifactType"], d["artifactType"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 3);

    // a platform manifest that is only a child of the image index
    let (_t2, containerd) = writable_fixture("containerd-subject-annotation");
    let child = "sha256:aa985fef5a79c54e37fc5c771cf3141e921fd168ee44601d4b884d104cd36ca5";
    assert_eq!(resolve(&r(&containerd, "@", child), None), child);
    let (_t3, buildkit) = writable_fixture("buildkit-attestations");
    let child = "sha256:9534db53c3c5e6de474d4cb14365600e6eecfaeb0adfaa4ce0cd0c322fad91bb";
    assert_eq!(resolve(&r(&buildkit, "@", child), None), child);
}

#[test]
fn every_tag_of_olareg_containerd_and_buildkit_resolves() {
    for name in [
        "olareg-referrers",
        "containerd-subject-annotation",
        "buildkit-attestations",
        "regctl-referrers",
        "oras-multiplatform",
    ] {
        check_every_tag_resolves(name);
    }
}

// ---- pulling, manifests, blobs -----------------------------------------------------------------

#[test]
fn pull_writes_the_original_file() {
    for name in ["oras-referrers", "regctl-referrers", "olareg-referrers"] {
        let (tmp, dir) = writable_fixture(name);
        let out_dir = tmp.path().join("out");
        let before = snapshot(&dir);
        let out = ocistow()
            .arg("pull")
            .arg(r(&dir, ":", "v1"))
            .arg("-o")
            .arg(&out_dir)
            .assert()
            .success();
        assert!(stdout_of(&out).contains("file.txt"), "{name}");
        assert_eq!(
            fs::read(out_dir.join("file.txt")).unwrap(),
            fs::read(fixture_dir(name).join("inputs/file.txt")).unwrap(),
            "{name}"
        );
        // only the file: no temp files left behind
        let names: Vec<_> = fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.txt"], "{name}");
        // pulling is read-only
        assert_eq!(before, snapshot(&dir), "{name}");
    }
}

#[test]
fn manifest_get_prints_the_exact_bytes() {
    // regctl printed the raw body: byte-identical.
    let (_t1, regctl) = writable_fixture("regctl-referrers");
    let out = ocistow()
        .args(["manifest", "get", &r(&regctl, ":", "v1")])
        .assert()
        .success();
    assert_eq!(
        out.get_output().stdout,
        fs::read(fixture_dir("regctl-referrers").join("outputs/manifest-v1.json")).unwrap()
    );

    // oras printed with --pretty: same JSON, and our bytes are the blob's bytes.
    let (_t2, oras) = writable_fixture("oras-referrers");
    let out = ocistow()
        .args(["manifest", "get", &r(&oras, ":", "v1")])
        .assert()
        .success();
    let bytes = out.get_output().stdout.clone();
    assert_eq!(
        bytes,
        fs::read(oras.join("blobs/sha256").join(&ORAS_V1[7..])).unwrap()
    );
    let ours: Value = serde_json::from_slice(&bytes).unwrap();
    let theirs = read_json(&fixture_dir("oras-referrers").join("outputs/manifest-v1.json"));
    assert_eq!(
        serde_json::to_string(&ours).unwrap(),
        serde_json::to_string(&theirs).unwrap()
    );

    let (_t3, multi) = writable_fixture("oras-multiplatform");
    let out = ocistow()
        .args(["manifest", "get", &r(&multi, ":", "multi")])
        .assert()
        .success();
    let bytes = out.get_output().stdout.clone();
    assert_eq!(
        bytes,
        fs::read(multi.join("blobs/sha256").join(&MULTI_INDEX[7..])).unwrap()
    );
    let ours: Value = serde_json::from_slice(&bytes).unwrap();
    let theirs = read_json(&fixture_dir("oras-multiplatform").join("outputs/manifest-multi.json"));
    assert_eq!(
        serde_json::to_string(&ours).unwrap(),
        serde_json::to_string(&theirs).unwrap()
    );
    let out = ocistow()
        .args([
            "manifest",
            "get",
            &r(&multi, ":", "multi"),
            "--platform",
            "linux/arm64",
        ])
        .assert()
        .success();
    assert_eq!(
        out.get_output().stdout,
        fs::read(multi.join("blobs/sha256").join(&MULTI_ARM64[7..])).unwrap()
    );
}

#[test]
fn blob_get_of_a_layer_verifies_and_returns_the_input() {
    let (tmp, oras) = writable_fixture("oras-referrers");
    let out = ocistow()
        .args(["blob", "get", &r(&oras, "@", FILE_TXT)])
        .assert()
        .success();
    let original = fs::read(fixture_dir("oras-referrers").join("inputs/file.txt")).unwrap();
    assert_eq!(out.get_output().stdout, original);
    let target = tmp.path().join("copy.txt");
    ocistow()
        .args(["blob", "get", &r(&oras, "@", FILE_TXT), "-o"])
        .arg(&target)
        .assert()
        .success();
    assert_eq!(fs::read(&target).unwrap(), original);

    let (_t2, multi) = writable_fixture("oras-multiplatform");
    let out = ocistow()
        .args(["blob", "get", &r(&multi, "@", LAYER_AMD64)])
        .assert()
        .success();
    assert_eq!(
        out.get_output().stdout,
        fs::read(fixture_dir("oras-multiplatform").join("inputs/layer-amd64.tar")).unwrap()
    );
    ocistow()
        .args(["blob", "exists", &r(&multi, "@", LAYER_AMD64)])
        .assert()
        .success();
}

// ---- lossless index.json edits -----------------------------------------------------------------

/// The layout's files except `index.json`, the lock file `.ocistow.lock` (created by any write)
/// and an empty `ingest/` directory (which a write may create): all of these must stay
/// byte-identical across a tag/untag round trip. A non-empty `ingest/` is not ignored.
fn snapshot_without_index(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut snap = snapshot(dir);
    snap.remove(Path::new("index.json"));
    snap.remove(Path::new(".ocistow.lock"));
    if snap.get(Path::new("ingest")) == Some(&None) {
        snap.remove(Path::new("ingest"));
    }
    snap
}

#[test]
fn tag_then_untag_leaves_every_fixture_lossless() {
    for name in layout_fixtures() {
        let (_tmp, dir) = writable_fixture(name);
        let before_index = read_json(&dir.join("index.json"));
        let before_files = snapshot_without_index(&dir);
        let tags = ocistow_tags(&dir);
        assert!(!tags.is_empty(), "{name} has a tag");
        for tag in &tags {
            let expected = if tag.contains([':', '/']) {
                let out = ocistow()
                    .arg("--layout")
                    .arg(&dir)
                    .args(["resolve", tag])
                    .assert()
                    .success();
                stdout_of(&out).trim().to_string()
            } else {
                resolve(&r(&dir, ":", tag), None)
            };
            if tag.contains([':', '/']) {
                ocistow()
                    .arg("--layout")
                    .arg(&dir)
                    .args(["tag", tag, "ocistow-test-tag"])
                    .assert()
                    .success();
            } else {
                ocistow()
                    .args(["tag", &r(&dir, ":", tag), "ocistow-test-tag"])
                    .assert()
                    .success();
            }
            assert_eq!(
                resolve(&r(&dir, ":", "ocistow-test-tag"), None),
                expected,
                "{name}: new tag resolves like {tag}"
            );
            ocistow()
                .args(["untag", &r(&dir, ":", "ocistow-test-tag")])
                .assert()
                .success();
            let after_index = read_json(&dir.join("index.json"));
            // Value maps keep key order (serde_json's preserve_order), so the strings compare
            // entries, their order, their fields and the fields' order.
            assert_eq!(
                serde_json::to_string(&after_index).unwrap(),
                serde_json::to_string(&before_index).unwrap(),
                "{name}: index.json after tag/untag of {tag}"
            );
            assert_eq!(
                snapshot_without_index(&dir),
                before_files,
                "{name}: other files after tag/untag of {tag}"
            );
        }
    }
}

// ---- pushing like oras -------------------------------------------------------------------------

#[test]
fn push_reproduces_oras_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ocistow().arg("init").arg(&dir).assert().success();
    let input = fixture_dir("oras-referrers").join("inputs/file.txt");
    let out = ocistow()
        .arg("push")
        .arg(r(&dir, ":", "v1"))
        .arg(format!("{}:text/plain", input.display()))
        .args([
            "--artifact-type",
            "application/vnd.example.thing",
            "-a",
            "org.opencontainers.image.created=2020-01-01T00:00:00Z",
        ])
        .assert()
        .success();
    assert_eq!(stdout_of(&out).trim(), ORAS_V1);

    // The manifest blob and the layer are oras's bytes.
    let oras = fixture_dir("oras-referrers").join("layout");
    for digest in [ORAS_V1, FILE_TXT] {
        let rel = Path::new("blobs/sha256").join(&digest[7..]);
        assert_eq!(
            fs::read(dir.join(&rel)).unwrap(),
            fs::read(oras.join(&rel)).unwrap(),
            "{digest}"
        );
    }

    // index.json: oras's, with only its first entry (the pushed one), byte for byte.
    let mut expected = read_json(&oras.join("index.json"));
    let first = expected["manifests"][0].clone();
    assert_eq!(first["digest"], ORAS_V1);
    expected["manifests"] = Value::Array(vec![first.clone()]);
    let ours = fs::read(dir.join("index.json")).unwrap();
    assert_eq!(
        String::from_utf8(ours.clone()).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    // and the whole entry, compared on its own
    let ours: Value = serde_json::from_slice(&ours).unwrap();
    assert_eq!(
        serde_json::to_string(&ours["manifests"][0]).unwrap(),
        serde_json::to_string(&first).unwrap()
    );
}
