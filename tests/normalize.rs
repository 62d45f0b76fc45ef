//! `ocistow normalize`: on every fixture, status is clean afterwards, discover of every subject is
//! unchanged, a second normalize changes nothing, and blobs are never rewritten; what it cannot
//! decide is reported with exit 1.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{at, copy_tree, fixture_dir, layout_fixtures, ok, read_json, run, s, snapshot};

/// The subjects of a fixture's true graph.
fn subjects(fixture: &str) -> Vec<String> {
    let truth = read_json(&fixture_dir(fixture).join("expected-referrers.json"));
    truth.as_object().unwrap().keys().cloned().collect()
}

/// `discover --format json` of every subject: the whole tree of referrers, each with the
/// descriptor its blob gives. The root's own annotations are left out: they are those of its
/// `index.json` entry, and a subject that is itself a referrer gets its record there (the subject
/// annotation) or its manifest's annotations (a bare entry) by design.
fn discover_all(dir: &Path, subjects: &[String]) -> BTreeMap<String, serde_json::Value> {
    subjects
        .iter()
        .map(|d| {
            let out = ok(&["discover", &at(dir, d), "--format", "json"]);
            let mut tree: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
            tree.as_object_mut().unwrap().remove("annotations");
            assert!(tree["referrers"].is_array(), "{tree}");
            (d.clone(), tree)
        })
        .collect()
}

/// Sorts every level of a discover tree's referrers by digest.
fn sort_referrers(tree: &mut serde_json::Value) {
    if let Some(list) = tree["referrers"].as_array_mut() {
        list.iter_mut().for_each(sort_referrers);
        list.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    }
}

/// Every file under `blobs/` with its bytes.
fn blobs(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    snapshot(&dir.join("blobs"))
}

fn fresh(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    copy_tree(&fixture_dir(fixture).join("layout"), &dir);
    (tmp, dir)
}

#[test]
fn every_fixture_normalizes_to_a_clean_layout_with_the_same_referrers_and_a_fixed_point() {
    for fixture in layout_fixtures() {
        for to in [None, Some("annotation"), Some("response"), Some("tag")] {
            let what = format!("{fixture} --to {}", to.unwrap_or("(default)"));
            let (_tmp, dir) = fresh(fixture);
            let subjects = subjects(fixture);
            let before = discover_all(&dir, &subjects);
            let blobs_before = blobs(&dir);
            let mut args = vec!["normalize".to_string(), s(&dir)];
            if let Some(m) = to {
                args.extend(["--to".into(), m.into()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(&args);

            let status = ok(&["referrers", "status", &s(&dir), "--format", "json"]);
            let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
            assert_eq!(status["issues"], serde_json::json!([]), "{what}: {status}");
            if let Some(m) = to {
                assert_eq!(status["mode"], m, "{what}: every record in one mode");
            }
            let mut after = discover_all(&dir, &subjects);
            if matches!(to, Some("response" | "tag")) {
                // Response and fallback records list referrers sorted by digest (as registries
                // do), and discover shows them in record order: the same tree, in another order.
                after.values_mut().for_each(sort_referrers);
                let mut before = before.clone();
                before.values_mut().for_each(sort_referrers);
                assert_eq!(after, before, "{what}: discover");
            } else {
                assert_eq!(after, before, "{what}: discover, in the same order");
            }

            let blobs_after = blobs(&dir);
            for (path, bytes) in &blobs_before {
                assert_eq!(
                    blobs_after.get(path),
                    Some(bytes),
                    "{what}: {path:?} rewritten"
                );
            }

            let index = fs::read(dir.join("index.json")).unwrap();
            let again = ok(&args);
            assert!(
                again.stderr.contains("index.json unchanged"),
                "{what}: {}",
                again.stderr
            );
            assert_eq!(
                fs::read(dir.join("index.json")).unwrap(),
                index,
                "{what}: second run"
            );
        }
    }
}

#[test]
fn dry_run_prints_the_change_as_a_unified_diff_and_writes_nothing() {
    let (_tmp, dir) = fresh("oras-referrers");
    let before = snapshot(&dir);
    let out = ok(&["normalize", &s(&dir), "--dry-run"]);
    assert!(
        out.stdout
            .starts_with("--- index.json\n+++ index.json (normalized)\n@@ "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with('+') && l.contains("io.containerd.manifest.subject")),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("Would normalize"), "{}", out.stderr);
    assert_eq!(
        snapshot(&dir),
        before,
        "a dry run changes nothing, not even a lock file"
    );
    ok(&["normalize", &s(&dir)]);
    let quiet = ok(&["normalize", &s(&dir), "--dry-run"]);
    assert_eq!(quiet.stdout, "", "no diff once normalized");
}

/// Replaces `index.json` with `edit` applied to its JSON.
fn edit_index(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut index = read_json(&dir.join("index.json"));
    edit(&mut index);
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn bare_referrer_entries_get_their_manifests_artifact_type_and_annotations() {
    // What `oras cp` leaves: a referrer listed with mediaType, digest and size only.
    let (_tmp, dir) = fresh("oras-referrers");
    let full = read_json(&dir.join("index.json"))["manifests"][1].clone();
    edit_index(&dir, |index| {
        let e = index["manifests"][1].as_object_mut().unwrap();
        e.remove("artifactType");
        e.remove("annotations");
    });
    ok(&["normalize", &s(&dir)]);
    let e = &read_json(&dir.join("index.json"))["manifests"][1];
    assert_eq!(e["digest"], full["digest"]);
    assert_eq!(e["artifactType"], full["artifactType"]);
    assert_eq!(
        e["annotations"]["org.opencontainers.image.created"],
        full["annotations"]["org.opencontainers.image.created"]
    );
    assert!(e["annotations"]["io.containerd.manifest.subject"].is_string());
}

#[test]
fn identical_duplicates_are_merged_and_a_missing_media_type_is_added() {
    let (_tmp, dir) = fresh("regctl-referrers");
    edit_index(&dir, |index| {
        let first = index["manifests"][0].clone();
        index["manifests"].as_array_mut().unwrap().push(first);
        index.as_object_mut().unwrap().remove("mediaType");
    });
    let out = ok(&["normalize", &s(&dir)]);
    assert!(
        out.stderr.contains("1 duplicate entry merged"),
        "{}",
        out.stderr
    );
    let text = fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(
        text.starts_with(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","#
        ),
        "{text}"
    );
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
}

#[test]
fn a_superseded_response_record_is_dropped() {
    // olareg leaves the response it replaced: an older listing of the same subject.
    let (tmp, dir) = fresh("olareg-referrers");
    let index = read_json(&dir.join("index.json"));
    let current = &index["manifests"][1];
    let subject = current["annotations"]["org.olareg.referrer.subject"].clone();
    let listing = read_json(&crate::common::blob_path(
        &dir,
        current["digest"].as_str().unwrap(),
    ));
    let mut older = listing.clone();
    older["manifests"].as_array_mut().unwrap().truncate(1);
    let older_file = tmp.path().join("older.json");
    fs::write(&older_file, serde_json::to_vec(&older).unwrap()).unwrap();
    let put = ok(&["blob", "put", &s(&dir), &s(&older_file)]);
    let digest = put.stdout.trim().to_string();
    let size = fs::metadata(&older_file).unwrap().len();
    edit_index(&dir, |index| {
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest,
                "size": size,
                "annotations": {"org.olareg.referrer.subject": subject},
            }));
    });
    ok(&["normalize", &s(&dir)]);
    let after = read_json(&dir.join("index.json"));
    let records: Vec<&serde_json::Value> = after["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.olareg.referrer.subject"] == subject)
        .collect();
    assert_eq!(records.len(), 1, "{after}");
    assert_eq!(
        records[0]["digest"], current["digest"],
        "the complete record stays"
    );
    let status = ok(&["referrers", "status", &s(&dir), "--format", "json"]);
    assert!(
        status.stdout.contains(r#""issues": []"#),
        "{}",
        status.stdout
    );
}

#[test]
fn a_tag_on_two_digests_is_reported_with_exit_1_and_not_guessed() {
    let (_tmp, dir) = fresh("oras-referrers");
    edit_index(&dir, |index| {
        let mut other = index["manifests"][1].clone();
        other["annotations"]["org.opencontainers.image.ref.name"] = "v1".into();
        index["manifests"].as_array_mut().unwrap().push(other);
    });
    let out = run(&["normalize", &s(&dir)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"tag "v1" names 2 digests"#),
        "{}",
        out.stderr
    );
    let tagged: Vec<serde_json::Value> = read_json(&dir.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "v1")
        .cloned()
        .collect();
    assert_eq!(tagged.len(), 2, "both entries are left as they were");
}

#[test]
fn json_output_is_the_report_in_camel_case_with_the_diff() {
    let (_tmp, dir) = fresh("oras-referrers");
    let out = ok(&["normalize", &s(&dir), "--dry-run", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "mode",
            "responseKey",
            "mediaTypeAdded",
            "duplicatesMerged",
            "convert",
            "entriesDescribed",
            "ambiguousTags",
            "changed",
            "dryRun",
            "diff"
        ]
    );
    assert_eq!(v["mode"], "annotation");
    assert_eq!(v["convert"]["updated"], 3);
    assert!(v["diff"].as_str().unwrap().starts_with("--- index.json\n"));
}

/// Writes `value` as a new blob of `dir` (pretty-printed, as `BuildKit` writes manifests) and
/// gives its digest and size.
fn put_json_blob(dir: &Path, value: &serde_json::Value) -> (String, u64) {
    use ocistow_store::{Algorithm, Digest};
    let bytes = serde_json::to_vec_pretty(value).unwrap();
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    fs::write(dir.join("blobs/sha256").join(digest.encoded()), &bytes).unwrap();
    (digest.to_string(), bytes.len() as u64)
}

/// The `buildkit-attestations` fixture as `BuildKit` before 0.32 writes it: the attestation
/// manifests have no `subject` and no `artifactType` (only the index's annotations
/// `vnd.docker.reference.type` and `vnd.docker.reference.digest` tie them to their platform
/// manifests). New blobs, so new digests: the index and `index.json` are rewritten to match.
fn pre_032_buildkit() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = fresh("buildkit-attestations");
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let top = read_json(&dir.join("index.json"));
    let index_digest = top["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut index = read_json(&blob(&index_digest));
    let mut stripped = 0;
    for child in index["manifests"].as_array_mut().unwrap() {
        if child["annotations"]["vnd.docker.reference.type"] != "attestation-manifest" {
            continue;
        }
        let old = child["digest"].as_str().unwrap().to_string();
        let mut manifest = read_json(&blob(&old));
        let m = manifest.as_object_mut().unwrap();
        assert!(m.remove("subject").is_some() && m.remove("artifactType").is_some());
        let (digest, size) = put_json_blob(&dir, &manifest);
        fs::remove_file(blob(&old)).unwrap();
        child["digest"] = digest.into();
        child["size"] = size.into();
        stripped += 1;
    }
    assert_eq!(stripped, 2, "the fixture has one attestation per platform");
    let (digest, size) = put_json_blob(&dir, &index);
    fs::remove_file(blob(&index_digest)).unwrap();
    edit_index(&dir, |top| {
        top["manifests"][0]["digest"] = digest.into();
        top["manifests"][0]["size"] = size.into();
    });
    (tmp, dir)
}

#[test]
fn buildkit_attestations_without_a_subject_are_left_as_they_are_and_stay_reachable() {
    let (_tmp, dir) = pre_032_buildkit();
    ok(&["fsck", &s(&dir)]);
    let status = ok(&["referrers", "status", &s(&dir), "--format", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    // Without `subject` they are no referrers: nothing can be recorded (a record would contradict
    // the blob, and blobs are never rewritten), and nothing is reported as inconsistent.
    assert_eq!(status["referrers"], 0, "{status}");
    assert_eq!(status["issues"], serde_json::json!([]), "{status}");
    let state = |dir: &Path| (blobs(dir), fs::read(dir.join("index.json")).unwrap());
    let before = state(&dir);
    for to in ["annotation", "response", "tag"] {
        let out = ok(&["normalize", &s(&dir), "--to", to, "--format", "json"]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["changed"], false, "--to {to}: {report}");
        assert_eq!(report["convert"]["referrers"], 0, "--to {to}: {report}");
    }
    assert!(before == state(&dir), "normalize changed a pre-0.32 layout");
    // Still children of the image index: gc keeps them.
    let gc = ok(&[
        "gc",
        &s(&dir),
        "--dry-run",
        "--grace",
        "0",
        "--format",
        "json",
    ]);
    let gc: serde_json::Value = serde_json::from_str(&gc.stdout).unwrap();
    assert_eq!(gc["blobsRemoved"], 0, "{gc}");
    // With a subject (BuildKit 0.32 and later) the same layout's attestations are referrers.
    let (_tmp, current) = fresh("buildkit-attestations");
    let status = ok(&["referrers", "status", &s(&current), "--format", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["referrers"], 2, "{status}");
}
