//! Referrers end to end: discover against every fixture's true graph and against oras's own
//! output, convert round trips between the three write modes, tool-rule readers (oras,
//! containerd, regctl, olareg) that read only their own convention straight from index.json and
//! blobs, attach / push --subject / manifest delete, and bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    at, blob_path, cmd, entries, exec, fixture_dir, index_json, layout_fixtures, ok, read_json,
    run, s, sha256_hex, snapshot, tagged, writable_fixture,
};
use serde_json::{Value, json};

const MODES: [&str; 3] = ["annotation", "response", "tag"];

const ORAS_V1: &str = "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08";
const MULTI_INDEX: &str = "sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239";
const MULTI_ARM64: &str = "sha256:089951e64311bfa9b1c4e34382765867e0c49e93f03cd1f1e0ed384d0904704b";
const REGCTL_V1: &str = "sha256:27f1f751817422972d13028a01edcfa732b50a764f546fc63583ffe11d08126e";
const REGCTL_SBOM: &str = "sha256:a77f96a7f36bef3be972622da2163f5ecc6b6756dadf99f8213afdc8f92078c9";
const REGCTL_SCAN: &str = "sha256:7f91a63f1fef2cad4207d774d94aaa795967b0c656f63968b44f3f339b041f05";
const OLAREG_SBOM: &str = "sha256:e391755cdff45578b245314fac6197babf6422e87d582c633810fb765468d045";
const OLAREG_SCAN: &str = "sha256:e9033979b20b0a4b7094071e57708132520e9fc7e29b609db60513470e09fd72";
const EMPTY: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

const OCI_SUBJECT: &str = "org.opencontainers.image.referrer.subject";
const OCI_CONVERT: &str = "org.opencontainers.image.referrer.convert";
const OLAREG_SUBJECT: &str = "org.olareg.referrer.subject";
const OLAREG_CONVERT: &str = "org.olareg.referrer.convert";
const CONTAINERD_SUBJECT: &str = "io.containerd.manifest.subject";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// (subject, referrer digest, artifactType, mediaType).
type Edge = (String, String, String, String);

// ---- running the binary -------------------------------------------------------------------------

fn ok_json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`ocistow {}`: not JSON ({e}):\n{}",
            args.join(" "),
            out.stdout
        )
    })
}

/// `referrers status DIR --format json`: the JSON, and the exit code (1 when inconsistent).
fn status(dir: &Path) -> (Value, i32) {
    let out = run(&["referrers", "status", &s(dir), "--format", "json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status of {}: not JSON ({e}): {}\n{}",
            dir.display(),
            out.stdout,
            out.stderr
        )
    });
    let expected_code = i32::from(!issues(&v).is_empty());
    assert_eq!(
        out.code, expected_code,
        "status exit code disagrees with its issues: {v:#}"
    );
    (v, out.code)
}

fn issues(status: &Value) -> Vec<(String, String)> {
    status["issues"]
        .as_array()
        .unwrap_or_else(|| panic!("status without issues array: {status:#}"))
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or_default().to_string(),
                i["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn issue_kinds(status: &Value) -> BTreeSet<String> {
    issues(status).into_iter().map(|(k, _)| k).collect()
}

/// `referrers convert DIR --to MODE [extra]` with --format json.
fn convert(dir: &Path, to: &str, extra: &[&str]) -> Value {
    let d = s(dir);
    let mut args = vec!["referrers", "convert", &d, "--to", to, "--format", "json"];
    args.extend_from_slice(extra);
    ok_json(&args)
}

/// The direct referrers of `subject` per `discover DIR@SUBJECT --format json --depth 1`, as
/// (digest, artifactType, mediaType).
fn direct_referrers(dir: &Path, subject: &str, deep: bool) -> BTreeSet<(String, String, String)> {
    let r = at(dir, subject);
    let mut args = vec!["discover", &r, "--format", "json", "--depth", "1"];
    if deep {
        args.push("--deep");
    }
    let v = ok_json(&args);
    assert_eq!(v["digest"], subject, "discover root of {subject}: {v:#}");
    let list = v["referrers"]
        .as_array()
        .unwrap_or_else(|| panic!("no referrers array: {v:#}"));
    let mut out = BTreeSet::new();
    for r in list {
        assert_eq!(
            r["referrers"],
            json!([]),
            "--depth 1 must not descend: {v:#}"
        );
        out.insert((
            str_of(&r["digest"]),
            str_of(&r["artifactType"]),
            str_of(&r["mediaType"]),
        ));
    }
    out
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

// ---- fixtures and the true graph ----------------------------------------------------------------

/// Fixtures with a ground-truth graph.
fn graph_fixtures() -> Vec<&'static str> {
    layout_fixtures()
        .into_iter()
        .filter(|n| fixture_dir(n).join("expected-referrers.json").exists())
        .collect()
}

fn expected_edges(name: &str) -> BTreeSet<Edge> {
    let v = read_json(&fixture_dir(name).join("expected-referrers.json"));
    let mut out = BTreeSet::new();
    for (subject, list) in v.as_object().unwrap() {
        for r in list.as_array().unwrap() {
            out.insert((
                subject.clone(),
                str_of(&r["digest"]),
                str_of(&r["artifactType"]),
                str_of(&r["mediaType"]),
            ));
        }
    }
    out
}

fn subjects_of(edges: &BTreeSet<Edge>) -> BTreeSet<String> {
    edges.iter().map(|e| e.0.clone()).collect()
}

/// Every edge discover finds from the given subjects (depth 1 each).
fn discovered_edges(dir: &Path, subjects: &BTreeSet<String>) -> BTreeSet<Edge> {
    let mut out = BTreeSet::new();
    for subject in subjects {
        for (d, t, m) in direct_referrers(dir, subject, false) {
            out.insert((subject.clone(), d, t, m));
        }
    }
    out
}

/// The layout's graph is exactly `expected`: discover on each expected subject lists exactly its
/// referrers, and status counts no referrer or subject beyond them.
fn assert_graph(dir: &Path, expected: &BTreeSet<Edge>, context: &str) {
    let subjects = subjects_of(expected);
    let found = discovered_edges(dir, &subjects);
    assert_eq!(
        &found,
        expected,
        "{context}: discovered graph differs\n  missing: {:?}\n  extra: {:?}",
        expected.difference(&found).collect::<Vec<_>>(),
        found.difference(expected).collect::<Vec<_>>()
    );
    let (st, _) = status(dir);
    assert_eq!(
        st["referrers"],
        json!(expected.len()),
        "{context}: status counts other referrers: {st:#}"
    );
    assert_eq!(
        st["subjects"],
        json!(subjects.len()),
        "{context}: status counts other subjects: {st:#}"
    );
}

/// Paths that differ between two snapshots.
fn snapshot_diff(
    a: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    b: &BTreeMap<PathBuf, Option<Vec<u8>>>,
) -> Vec<String> {
    let keys: BTreeSet<&PathBuf> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(_), Some(_)) => Some(format!("changed {}", k.display())),
            (Some(_), None) => Some(format!("removed {}", k.display())),
            (None, _) => Some(format!("added {}", k.display())),
        })
        .collect()
}

fn assert_unchanged(dir: &Path, before: &BTreeMap<PathBuf, Option<Vec<u8>>>, context: &str) {
    let after = snapshot(dir);
    let diff = snapshot_diff(before, &after);
    assert!(diff.is_empty(), "{context}: the layout changed: {diff:?}");
}

/// Runs `f` on every item in parallel threads and fails once, naming every item that failed.
fn check_all<T: Sync>(items: &[T], name: impl Fn(&T) -> String + Sync, f: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism()
        .map_or(4, std::num::NonZero::get)
        .clamp(2, 8);
    let mut failed = Vec::new();
    for chunk in items.chunks(threads) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|item| (name(item), scope.spawn(|| f(item))))
                .collect();
            for (n, h) in handles {
                if let Err(e) = h.join() {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| {
                            e.downcast_ref::<&str>()
                                .map(std::string::ToString::to_string)
                        })
                        .unwrap_or_default();
                    failed.push(format!("[{n}] {msg}"));
                }
            }
        });
    }
    assert!(
        failed.is_empty(),
        "{} case(s) failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

// ---- reading a layout directly, as other tools do -----------------------------------------------

fn blob_json(dir: &Path, digest: &str) -> Option<Value> {
    let bytes = fs::read(blob_path(dir, digest)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn annotation<'a>(desc: &'a Value, key: &str) -> Option<&'a str> {
    desc["annotations"][key].as_str()
}

/// A manifest's artifactType as a referrers response lists it.
fn effective_artifact_type(manifest: &Value) -> Option<String> {
    manifest["artifactType"]
        .as_str()
        .or_else(|| {
            if manifest["config"].is_object() {
                manifest["config"]["mediaType"].as_str()
            } else {
                None
            }
        })
        .map(String::from)
}

fn edge_of(subject: &str, desc: &Value) -> Edge {
    (
        subject.to_string(),
        str_of(&desc["digest"]),
        str_of(&desc["artifactType"]),
        str_of(&desc["mediaType"]),
    )
}

/// oras's rule (the part that index.json alone shows): a top-level untagged entry whose blob
/// has a `subject` is a referrer of that subject.
fn reader_oras(dir: &Path) -> BTreeSet<Edge> {
    let mut out = BTreeSet::new();
    for e in entries(dir) {
        if annotation(&e, REF_NAME).is_some() {
            continue;
        }
        let Some(blob) = blob_json(dir, e["digest"].as_str().unwrap()) else {
            continue;
        };
        if let Some(subject) = blob["subject"]["digest"].as_str() {
            out.insert(edge_of(subject, &e));
        }
    }
    out
}

/// containerd's / docker load's rule: a top-level entry annotated io.containerd.manifest.subject.
fn reader_containerd(dir: &Path) -> BTreeSet<Edge> {
    entries(dir)
        .iter()
        .filter_map(|e| annotation(e, CONTAINERD_SUBJECT).map(|s| edge_of(s, e)))
        .collect()
}

fn listed(dir: &Path, entry: &Value) -> Vec<Value> {
    blob_json(dir, entry["digest"].as_str().unwrap())
        .and_then(|b| b["manifests"].as_array().cloned())
        .unwrap_or_default()
}

/// regctl's rule: an entry tagged `sha256-<64 hex>` is the fallback index of `sha256:<hex>`.
fn reader_regctl(dir: &Path) -> BTreeSet<Edge> {
    let mut out = BTreeSet::new();
    for e in entries(dir) {
        let Some(tag) = annotation(&e, REF_NAME) else {
            continue;
        };
        let Some(hex) = tag.strip_prefix("sha256-") else {
            continue;
        };
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            continue;
        }
        let subject = format!("sha256:{hex}");
        for d in listed(dir, &e) {
            out.insert(edge_of(&subject, &d));
        }
    }
    out
}

/// olareg's rule (or PR #1171's, by `key`): an entry annotated `key` is the referrers response
/// of the annotated subject. Also checks that each listed descriptor is what a referrers response
/// must carry: the referrer's artifactType and a copy of its manifest's annotations, and that the
/// response is a plain index without a subject.
fn reader_response(dir: &Path, key: &str) -> BTreeSet<Edge> {
    let mut out = BTreeSet::new();
    for e in entries(dir) {
        let Some(subject) = annotation(&e, key) else {
            continue;
        };
        assert_eq!(
            e["mediaType"], "application/vnd.oci.image.index.v1+json",
            "response entry is not an index: {e}"
        );
        let response = blob_json(dir, e["digest"].as_str().unwrap())
            .unwrap_or_else(|| panic!("response blob of {e} is missing or not JSON"));
        assert!(
            response.get("subject").is_none(),
            "a referrers response has no subject: {response}"
        );
        for d in listed(dir, &e) {
            let digest = str_of(&d["digest"]);
            let manifest = blob_json(dir, &digest)
                .unwrap_or_else(|| panic!("response lists {digest}, whose blob is missing"));
            assert_eq!(
                d["artifactType"].as_str().map(String::from),
                effective_artifact_type(&manifest),
                "response for {subject}: artifactType of {digest}"
            );
            let empty = json!({});
            let listed_ann = d.get("annotations").unwrap_or(&empty);
            let blob_ann = manifest.get("annotations").unwrap_or(&empty);
            assert_eq!(
                listed_ann, blob_ann,
                "response for {subject}: annotations of {digest} must copy the manifest's"
            );
            out.insert(edge_of(subject, &d));
        }
    }
    out
}

// ---- 1. discover ------------------------------------------------------------------------------

#[test]
fn discover_lists_exactly_the_true_referrers_of_every_fixture() {
    let fixtures = graph_fixtures();
    assert!(
        fixtures.len() >= 6,
        "expected-referrers.json missing: {fixtures:?}"
    );
    check_all(&fixtures, std::string::ToString::to_string, |name| {
        let (_t, dir) = writable_fixture(name);
        let before = snapshot(&dir);
        let expected = expected_edges(name);
        for subject in subjects_of(&expected) {
            let want: BTreeSet<(String, String, String)> = expected
                .iter()
                .filter(|e| e.0 == subject)
                .map(|e| (e.1.clone(), e.2.clone(), e.3.clone()))
                .collect();
            assert_eq!(
                direct_referrers(&dir, &subject, false),
                want,
                "{name}: referrers of {subject}"
            );
            assert_eq!(
                direct_referrers(&dir, &subject, true),
                want,
                "{name}: referrers of {subject} with --deep"
            );
        }
        assert_graph(&dir, &expected, name);
        let (st, _) = status(&dir);
        assert!(
            issues(&st).is_empty(),
            "{name}: a layout written by the tool is consistent: {st:#}"
        );
        assert_unchanged(&dir, &before, &format!("{name}: discover/status"));
    });
}

/// Removes every "reference" key, recursively (it holds the tool's own name for the layout).
fn without_reference(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "reference")
                .map(|(k, v)| (k.clone(), without_reference(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_reference).collect()),
        other => other.clone(),
    }
}

/// Compares with key order (`serde_json` preserves it in this workspace).
fn assert_same_json(ours: &Value, theirs: &Value, context: &str) {
    let a = serde_json::to_string_pretty(&without_reference(ours)).unwrap();
    let b = serde_json::to_string_pretty(&without_reference(theirs)).unwrap();
    assert!(a == b, "{context}: ours\n{a}\noras\n{b}");
}

fn oras_output(name: &str, file: &str) -> PathBuf {
    fixture_dir(name).join("outputs").join(file)
}

#[test]
fn discover_json_and_tree_match_oras_output() {
    // (fixture, args after DIR:TAG, saved oras output), per the fixtures' README.txt.
    let cases: &[(&str, &str, &[&str], &str)] = &[
        ("oras-referrers", "v1", &[], "discover.json"),
        (
            "oras-referrers",
            "v1",
            &["--depth", "1"],
            "discover-depth1.json",
        ),
        ("oras-multiplatform", "multi", &[], "discover-multi.json"),
        (
            "oras-multiplatform",
            "multi",
            &["--platform", "linux/amd64"],
            "discover-multi-platform-amd64.json",
        ),
        (
            "oras-multiplatform",
            "linux-amd64",
            &[],
            "discover-amd64.json",
        ),
    ];
    for (name, tag, extra, file) in cases {
        let (_t, dir) = writable_fixture(name);
        let r = tagged(&dir, tag);
        let mut args = vec!["discover", r.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        let ours = ok_json(&args);
        let theirs = read_json(&oras_output(name, file));
        assert_same_json(&ours, &theirs, &format!("{name} {args:?} vs {file}"));
        // our reference names the digest in the layout we were given
        assert_eq!(
            ours["reference"],
            format!("{}@{}", dir.display(), theirs["digest"].as_str().unwrap())
        );
    }

    let trees: &[(&str, &str, &str)] = &[
        ("oras-referrers", "v1", "discover-tree.txt"),
        ("oras-multiplatform", "multi", "discover-multi-tree.txt"),
        // olareg's layout holds the same relations; oras drew this tree from the registry.
        ("olareg-referrers", "v1", "discover-tree.txt"),
    ];
    for (name, tag, file) in trees {
        let (_t, dir) = writable_fixture(name);
        let theirs = fs::read_to_string(oras_output(name, file)).unwrap();
        for format in [None, Some("tree")] {
            let r = tagged(&dir, tag);
            let mut args = vec!["discover", r.as_str()];
            if let Some(f) = format {
                args.extend(["--format", f]);
            }
            let ours = ok(&args).stdout;
            let (ours_first, theirs_first) = (
                ours.lines().next().unwrap_or_default(),
                theirs.lines().next().unwrap(),
            );
            let digest = theirs_first.rsplit('@').next().unwrap();
            assert_eq!(ours_first, format!("{}@{digest}", dir.display()));
            let a: Vec<&str> = ours.lines().skip(1).collect();
            let b: Vec<&str> = theirs.lines().skip(1).collect();
            assert_eq!(
                a, b,
                "{name} {args:?} vs {file}:\nours:\n{ours}\noras:\n{theirs}"
            );
        }
    }
}

// ---- 2. convert round trips ---------------------------------------------------------------------

#[test]
fn convert_round_trips_keep_the_graph_and_create_no_issues() {
    let mut cases = Vec::new();
    for name in graph_fixtures() {
        for x in MODES {
            for y in MODES {
                cases.push((name, x, y));
            }
        }
    }
    check_all(
        &cases,
        |(n, x, y)| format!("{n}: {x} -> {y} -> {x}"),
        |&(name, x, y)| {
            let (_t, dir) = writable_fixture(name);
            let expected = expected_edges(name);
            let (original, _) = status(&dir);
            let original_issues: BTreeSet<(String, String)> =
                issues(&original).into_iter().collect();
            for (step, to) in [x, y, x].into_iter().enumerate() {
                let report = convert(&dir, to, &[]);
                assert_eq!(report["mode"], to, "{report:#}");
                assert_eq!(report["dryRun"], false, "{report:#}");
                let ctx = format!("{name}: after step {} (--to {to})", step + 1);
                assert_graph(&dir, &expected, &ctx);
                let (st, _) = status(&dir);
                let now: BTreeSet<(String, String)> = issues(&st).into_iter().collect();
                assert!(
                    now.is_subset(&original_issues),
                    "{ctx}: new issues {:?}",
                    now.difference(&original_issues).collect::<Vec<_>>()
                );
                assert_eq!(st["mode"], to, "{ctx}: status mode: {st:#}");
                // converting again to the same mode changes nothing at all
                let before = snapshot(&dir);
                let again = convert(&dir, to, &[]);
                assert_eq!(again["changed"], false, "{ctx}: second convert: {again:#}");
                assert_unchanged(&dir, &before, &format!("{ctx}: second --to {to}"));
            }
        },
    );
}

#[test]
fn convert_to_the_mode_in_place_leaves_index_json_byte_identical() {
    for (name, to, key) in [
        ("regctl-referrers", "tag", "oci"),
        ("olareg-referrers", "response", "olareg"),
        ("containerd-subject-annotation", "annotation", "oci"),
    ] {
        let (_t, dir) = writable_fixture(name);
        let index = fs::read(dir.join("index.json")).unwrap();
        let blobs = snapshot(&dir.join("blobs"));
        let report = convert(&dir, to, &["--response-key", key]);
        assert_eq!(report["changed"], false, "{name}: {report:#}");
        assert_eq!(
            fs::read(dir.join("index.json")).unwrap(),
            index,
            "{name}: --to {to} rewrote index.json"
        );
        assert_unchanged(&dir.join("blobs"), &blobs, &format!("{name}: --to {to}"));
        assert_graph(&dir, &expected_edges(name), name);
    }
}

#[test]
fn convert_dry_run_writes_nothing_and_reports_whether_it_would_change() {
    let mut cases = Vec::new();
    for name in graph_fixtures() {
        for to in MODES {
            for key in ["oci", "olareg"] {
                if to == "response" || key == "oci" {
                    cases.push((name, to, key));
                }
            }
        }
    }
    check_all(
        &cases,
        |(n, to, key)| format!("{n}: --dry-run --to {to} --response-key {key}"),
        |&(name, to, key)| {
            let (_t, dir) = writable_fixture(name);
            let before = snapshot(&dir);
            let report = convert(&dir, to, &["--response-key", key, "--dry-run"]);
            assert_eq!(report["dryRun"], true, "{report:#}");
            assert_unchanged(&dir, &before, &format!("{name}: --dry-run --to {to}"));
            // the real convert on another copy: did index.json change?
            let (_t2, real) = writable_fixture(name);
            let index = fs::read(real.join("index.json")).unwrap();
            let done = convert(&real, to, &["--response-key", key]);
            let changed = fs::read(real.join("index.json")).unwrap() != index;
            assert_eq!(
                report["changed"],
                json!(changed),
                "{name}: dry run says {report:#}, the real convert changed index.json: {changed}"
            );
            assert_eq!(done["changed"], json!(changed), "{done:#}");
            for k in ["referrers", "added", "updated", "removed"] {
                assert_eq!(report[k], done[k], "{name}: dry run vs real: {k}");
            }
        },
    );
}

// ---- 3. tool-rule readers ---------------------------------------------------------------------

#[test]
fn each_tool_reads_every_referrer_after_converting_to_its_convention() {
    let mut cases = Vec::new();
    for name in graph_fixtures() {
        for target in ["annotation", "tag", "response-olareg", "response-oci"] {
            cases.push((name, target));
        }
    }
    check_all(
        &cases,
        |(n, t)| format!("{n} --to {t}"),
        |&(name, target)| {
            let (_t, dir) = writable_fixture(name);
            let expected = expected_edges(name);
            let none = BTreeSet::new();
            // every convert below is done twice: the second must change nothing at all
            let convert = |dir: &Path, to: &str, extra: &[&str]| {
                let first = convert(dir, to, extra);
                let before = snapshot(dir);
                let again = convert(dir, to, extra);
                assert_eq!(
                    again["changed"], false,
                    "{name}: second --to {to}: {again:#}"
                );
                assert_unchanged(dir, &before, &format!("{name}: second --to {to} {extra:?}"));
                first
            };
            match target {
                "annotation" => {
                    convert(&dir, "annotation", &[]);
                    assert_eq!(reader_oras(&dir), expected, "{name}: oras-style reader");
                    assert_eq!(
                        reader_containerd(&dir),
                        expected,
                        "{name}: containerd-style reader"
                    );
                    assert_eq!(reader_regctl(&dir), none, "{name}: fallback tags left");
                    assert_eq!(reader_response(&dir, OLAREG_SUBJECT), none);
                    assert_eq!(reader_response(&dir, OCI_SUBJECT), none);
                }
                "tag" => {
                    convert(&dir, "tag", &[]);
                    assert_eq!(reader_regctl(&dir), expected, "{name}: regctl-style reader");
                    assert_eq!(reader_containerd(&dir), none, "{name}: annotations left");
                    assert_eq!(reader_response(&dir, OLAREG_SUBJECT), none);
                    assert_eq!(reader_response(&dir, OCI_SUBJECT), none);
                }
                "response-olareg" => {
                    convert(&dir, "response", &["--response-key", "olareg"]);
                    assert_eq!(
                        reader_response(&dir, OLAREG_SUBJECT),
                        expected,
                        "{name}: olareg-style reader"
                    );
                    assert_eq!(reader_response(&dir, OCI_SUBJECT), none);
                    assert_eq!(reader_regctl(&dir), none);
                    assert_eq!(reader_containerd(&dir), none);
                    let index = index_json(&dir);
                    assert_eq!(index["annotations"][OLAREG_CONVERT], "true", "{index:#}");
                    assert!(index["annotations"].get(OCI_CONVERT).is_none(), "{index:#}");
                }
                _ => {
                    convert(&dir, "response", &[]);
                    assert_eq!(
                        reader_response(&dir, OCI_SUBJECT),
                        expected,
                        "{name}: PR #1171-style reader"
                    );
                    assert_eq!(reader_response(&dir, OLAREG_SUBJECT), none);
                    assert_eq!(reader_regctl(&dir), none);
                    assert_eq!(reader_containerd(&dir), none);
                    let index = index_json(&dir);
                    assert_eq!(index["annotations"][OCI_CONVERT], "true", "{index:#}");
                    assert!(
                        index["annotations"].get(OLAREG_CONVERT).is_none(),
                        "{index:#}"
                    );
                }
            }
            // the readers see the fixture's own records before any convert
            let (_t2, original) = writable_fixture(name);
            let own = match name {
                "regctl-referrers" => Some(reader_regctl(&original)),
                "olareg-referrers" => Some(reader_response(&original, OLAREG_SUBJECT)),
                "containerd-subject-annotation" => Some(reader_containerd(&original)),
                "oras-referrers" | "oras-multiplatform" => Some(reader_oras(&original)),
                _ => None,
            };
            if let Some(own) = own {
                assert_eq!(
                    own, expected,
                    "{name}: the test's own reader on the fixture"
                );
            }
        },
    );
}

#[test]
fn convert_keep_leaves_the_other_conventions_records() {
    let (_t, dir) = writable_fixture("regctl-referrers");
    let expected = expected_edges("regctl-referrers");
    convert(&dir, "annotation", &["--keep"]);
    assert_eq!(reader_regctl(&dir), expected);
    assert_eq!(reader_containerd(&dir), expected);
    let (st, _) = status(&dir);
    assert!(issues(&st).is_empty(), "{st:#}");
    assert_graph(&dir, &expected, "regctl --to annotation --keep");
}

// ---- 4. attach, push --subject, manifest delete -----------------------------------------------

fn fresh_layout(tmp: &Path) -> (PathBuf, String, PathBuf) {
    let dir = tmp.join("layout");
    ok(&["init", &s(&dir)]);
    let file = tmp.join("file.txt");
    fs::write(&file, "hello referrers\n").unwrap();
    let f = format!("{}:text/plain", file.display());
    let v1 = ok(&[
        "push",
        &tagged(&dir, "v1"),
        &f,
        "--artifact-type",
        "application/vnd.example.thing",
        "-a",
        "org.opencontainers.image.created=2020-01-01T00:00:00Z",
    ])
    .stdout
    .trim()
    .to_string();
    (dir, v1, file)
}

fn attach(reference: &str, file: &Path, artifact_type: &str, extra: &[&str]) -> String {
    let f = s(file);
    let mut args = vec![
        "attach",
        reference,
        f.as_str(),
        "--artifact-type",
        artifact_type,
    ];
    args.extend_from_slice(extra);
    let out = ok(&args).stdout.trim().to_string();
    sha256_hex(&out);
    out
}

/// The `subject` of a referrer's blob is exactly {mediaType, digest, size} of the subject blob.
fn assert_plain_subject(dir: &Path, referrer: &str, subject: &str, media_type: &str) {
    let blob = blob_json(dir, referrer).unwrap();
    let size = fs::metadata(blob_path(dir, subject)).unwrap().len();
    let want = json!({"mediaType": media_type, "digest": subject, "size": size});
    assert_eq!(
        serde_json::to_string(&blob["subject"]).unwrap(),
        serde_json::to_string(&want).unwrap(),
        "subject of {referrer}"
    );
}

#[test]
fn attach_records_in_every_mode_and_is_discovered() {
    let manifest = "application/vnd.oci.image.manifest.v1+json";
    for mode in MODES {
        for via_env in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (dir, v1, file) = fresh_layout(tmp.path());
            let at_type = format!("application/vnd.example.{mode}");
            let mut c = cmd();
            c.arg("attach").arg(tagged(&dir, "v1")).arg(&file).args([
                "--artifact-type",
                &at_type,
                "-a",
                "k=v",
            ]);
            if via_env {
                c.env("OCISTOW_REFERRERS_MODE", mode);
            } else {
                c.args(["--referrers-mode", mode]);
            }
            let out = exec(c, "attach");
            assert_eq!(out.code, 0, "{}", out.stderr);
            let digest = out.stdout.trim().to_string();
            let ctx = format!("attach in {mode} (env: {via_env})");
            assert!(
                out.stderr.contains(&format!("recorded as {mode} referrer")),
                "{ctx}: {}",
                out.stderr
            );
            let edge = (v1.clone(), digest.clone(), at_type.clone(), manifest.into());
            assert_eq!(
                discovered_edges(&dir, &BTreeSet::from([v1.clone()])),
                BTreeSet::from([edge.clone()]),
                "{ctx}"
            );
            let (st, _) = status(&dir);
            assert!(issues(&st).is_empty(), "{ctx}: {st:#}");
            assert_eq!(st["mode"], mode, "{ctx}: {st:#}");
            assert_eq!(st["referrers"], 1, "{ctx}: {st:#}");
            let found = match mode {
                "annotation" => reader_containerd(&dir),
                "tag" => reader_regctl(&dir),
                _ => reader_response(&dir, OCI_SUBJECT),
            };
            assert_eq!(found, BTreeSet::from([edge]), "{ctx}: the tool's reader");
            assert_plain_subject(&dir, &digest, &v1, manifest);
            // the referrer's annotations are on the record too
            let d = ok_json(&["discover", &at(&dir, &v1), "--format", "json"]);
            assert_eq!(d["referrers"][0]["annotations"]["k"], "v", "{ctx}: {d:#}");
        }
    }

    // the flag wins over the environment
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _v1, file) = fresh_layout(tmp.path());
    let mut c = cmd();
    c.env("OCISTOW_REFERRERS_MODE", "tag")
        .arg("attach")
        .arg(tagged(&dir, "v1"))
        .arg(&file)
        .args(["--artifact-type", "a/b", "--referrers-mode", "response"]);
    assert_eq!(exec(c, "attach").code, 0);
    assert_eq!(status(&dir).0["mode"], "response");
}

#[test]
fn attach_chains_platforms_and_writes_a_plain_subject() {
    let manifest = "application/vnd.oci.image.manifest.v1+json";
    let index = "application/vnd.oci.image.index.v1+json";
    let tmp = tempfile::tempdir().unwrap();
    let (dir, v1, file) = fresh_layout(tmp.path());
    // the v1 entry has annotations and artifactType; the subject must not copy them
    let entry = entries(&dir)
        .into_iter()
        .find(|e| e["digest"] == v1.as_str())
        .unwrap();
    assert!(entry.get("annotations").is_some(), "{entry}");
    let sbom = attach(
        &tagged(&dir, "v1"),
        &file,
        "application/vnd.example.sbom",
        &[],
    );
    assert_plain_subject(&dir, &sbom, &v1, manifest);
    // a chain: a referrer of the referrer
    let scan = attach(&at(&dir, &sbom), &file, "application/vnd.example.scan", &[]);
    assert_plain_subject(&dir, &scan, &sbom, manifest);
    let tree = ok_json(&["discover", &tagged(&dir, "v1"), "--format", "json"]);
    assert_eq!(tree["referrers"][0]["digest"], sbom.as_str(), "{tree:#}");
    assert_eq!(
        tree["referrers"][0]["referrers"][0]["digest"],
        scan.as_str(),
        "{tree:#}"
    );
    let shallow = ok_json(&[
        "discover",
        &tagged(&dir, "v1"),
        "--format",
        "json",
        "--depth",
        "1",
    ]);
    assert_eq!(shallow["referrers"][0]["referrers"], json!([]));
    let only_scan = ok_json(&[
        "discover",
        &tagged(&dir, "v1"),
        "--format",
        "json",
        "--artifact-type",
        "application/vnd.example.scan",
    ]);
    assert_eq!(only_scan["referrers"], json!([]), "{only_scan:#}");
    let (st, _) = status(&dir);
    assert!(issues(&st).is_empty(), "{st:#}");

    // oras-referrers: the v1 entry carries annotations and artifactType
    let (_t, oras) = writable_fixture("oras-referrers");
    let d = attach(
        &tagged(&oras, "v1"),
        &file,
        "application/vnd.example.new",
        &[],
    );
    assert_plain_subject(&oras, &d, ORAS_V1, manifest);
    let (st, _) = status(&oras);
    assert!(issues(&st).is_empty(), "{st:#}");

    // --platform on an index attaches to the child
    let (_t, multi) = writable_fixture("oras-multiplatform");
    let out = {
        let mut c = cmd();
        c.arg("attach")
            .arg(tagged(&multi, "multi"))
            .arg(&file)
            .args([
                "--artifact-type",
                "application/vnd.example.arm-sig",
                "--platform",
                "linux/arm64",
            ]);
        exec(c, "attach --platform")
    };
    assert_eq!(out.code, 0, "{}", out.stderr);
    let arm = out.stdout.trim().to_string();
    assert_plain_subject(&multi, &arm, MULTI_ARM64, manifest);
    let arm_refs = direct_referrers(&multi, MULTI_ARM64, false);
    assert!(
        arm_refs.iter().any(|r| r.0 == arm),
        "arm64 child: {arm_refs:?}"
    );
    let index_refs = direct_referrers(&multi, MULTI_INDEX, false);
    assert!(
        !index_refs.iter().any(|r| r.0 == arm),
        "not on the index: {index_refs:?}"
    );
    let via_platform = ok_json(&[
        "discover",
        &tagged(&multi, "multi"),
        "--platform",
        "linux/arm64",
        "--format",
        "json",
    ]);
    assert_eq!(via_platform["digest"], MULTI_ARM64);
    assert_eq!(via_platform["referrers"][0]["digest"], arm.as_str());
    // and without --platform, to the index itself (its entry has a ref.name annotation)
    let on_index = attach(
        &tagged(&multi, "multi"),
        &file,
        "application/vnd.example.index-note",
        &[],
    );
    assert_plain_subject(&multi, &on_index, MULTI_INDEX, index);
    let (st, _) = status(&multi);
    assert!(issues(&st).is_empty(), "{st:#}");
    assert_eq!(st["referrers"], 5, "{st:#}");
}

#[test]
fn attach_without_a_mode_uses_the_convention_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.txt");
    fs::write(&file, "x").unwrap();

    // regctl: fallback tags
    let (_t, dir) = writable_fixture("regctl-referrers");
    let mut expected = expected_edges("regctl-referrers");
    let d = attach(
        &tagged(&dir, "v1"),
        &file,
        "application/vnd.example.new",
        &[],
    );
    // and to a subject that had no fallback tag yet
    let sig = "sha256:e4443ce3475c61c731df4bf6c305d369923e241c654328b824f90680997da252";
    let d2 = attach(&at(&dir, sig), &file, "application/vnd.example.new2", &[]);
    let manifest = "application/vnd.oci.image.manifest.v1+json".to_string();
    expected.insert((
        REGCTL_V1.into(),
        d,
        "application/vnd.example.new".into(),
        manifest.clone(),
    ));
    expected.insert((
        sig.into(),
        d2,
        "application/vnd.example.new2".into(),
        manifest.clone(),
    ));
    let (st, _) = status(&dir);
    assert_eq!(st["mode"], "tag", "{st:#}");
    assert!(issues(&st).is_empty(), "{st:#}");
    assert_eq!(
        reader_regctl(&dir),
        expected,
        "regctl reads the new referrers"
    );
    assert_eq!(reader_containerd(&dir), BTreeSet::new());
    assert_graph(&dir, &expected, "regctl + attach");

    // olareg: responses under the olareg key
    let (_t, dir) = writable_fixture("olareg-referrers");
    let mut expected = expected_edges("olareg-referrers");
    let d = attach(
        &tagged(&dir, "v1"),
        &file,
        "application/vnd.example.new",
        &[],
    );
    expected.insert((
        ORAS_V1.into(),
        d,
        "application/vnd.example.new".into(),
        manifest.clone(),
    ));
    let (st, _) = status(&dir);
    assert_eq!(st["mode"], "response", "{st:#}");
    assert!(issues(&st).is_empty(), "{st:#}");
    assert_eq!(reader_response(&dir, OLAREG_SUBJECT), expected);
    assert_eq!(reader_response(&dir, OCI_SUBJECT), BTreeSet::new());
    assert_graph(&dir, &expected, "olareg + attach");

    // push --subject records too (fresh layout: annotation; regctl: tag)
    let (dir, v1, file) = fresh_layout(&tmp.path().join("fresh"));
    let pushed = ok(&[
        "push",
        &tagged(&dir, "v1-sbom"),
        &s(&file),
        "--artifact-type",
        "application/vnd.example.pushed",
        "--subject",
        &tagged(&dir, "v1"),
    ])
    .stdout
    .trim()
    .to_string();
    let refs = direct_referrers(&dir, &v1, false);
    assert_eq!(
        refs,
        BTreeSet::from([(
            pushed.clone(),
            "application/vnd.example.pushed".into(),
            manifest.clone()
        )])
    );
    assert_plain_subject(&dir, &pushed, &v1, &manifest);
    let (st, _) = status(&dir);
    assert!(issues(&st).is_empty(), "{st:#}");

    let (_t, dir) = writable_fixture("regctl-referrers");
    let pushed = ok(&[
        "push",
        &s(&dir),
        &s(&file),
        "--artifact-type",
        "application/vnd.example.pushed",
        "--subject",
        &tagged(&dir, "v1"),
    ])
    .stdout
    .trim()
    .to_string();
    assert!(
        reader_regctl(&dir)
            .iter()
            .any(|e| e.0 == REGCTL_V1 && e.1 == pushed),
        "push --subject into a regctl layout updates the fallback tag"
    );
    let (st, _) = status(&dir);
    assert!(issues(&st).is_empty(), "{st:#}");
}

#[test]
fn manifest_delete_removes_every_record_and_refuses_subjects_with_referrers() {
    for (name, v1, sbom, scan) in [
        ("regctl-referrers", REGCTL_V1, REGCTL_SBOM, REGCTL_SCAN),
        ("olareg-referrers", ORAS_V1, OLAREG_SBOM, OLAREG_SCAN),
    ] {
        let (_t, dir) = writable_fixture(name);
        // refused: v1 has referrers; and the sbom has the scan
        for (target, listed) in [(tagged(&dir, "v1"), sbom), (at(&dir, sbom), scan)] {
            let before = snapshot(&dir);
            let out = run(&["manifest", "delete", &target]);
            assert_eq!(out.code, 7, "{name}: delete {target}: {}", out.stderr);
            assert!(
                out.stderr.contains(listed) && out.stderr.contains("--with-referrers"),
                "{name}: the refusal lists the referrers: {}",
                out.stderr
            );
            assert_unchanged(&dir, &before, &format!("{name}: refused delete"));
        }

        ok(&["manifest", "delete", &at(&dir, sbom), "--with-referrers"]);
        let remaining: BTreeSet<Edge> = expected_edges(name)
            .into_iter()
            .filter(|e| e.1 != sbom && e.1 != scan)
            .collect();
        assert_eq!(remaining.len(), 1);
        let refs = direct_referrers(&dir, v1, false);
        assert!(
            !refs.iter().any(|r| r.0 == sbom),
            "{name}: discover still lists the deleted sbom: {refs:?}"
        );
        assert_eq!(
            discovered_edges(&dir, &BTreeSet::from([v1.to_string()])),
            remaining
        );
        let (st, code) = status(&dir);
        assert_eq!(code, 0, "{name}: {st:#}");
        assert!(issues(&st).is_empty(), "{name}: {st:#}");
        assert_eq!(st["referrers"], 1, "{name}: {st:#}");
        for d in [sbom, scan] {
            assert!(!blob_path(&dir, d).exists(), "{name}: blob {d} is left");
        }
        // no record anywhere still names them
        let records = match name {
            "regctl-referrers" => reader_regctl(&dir),
            _ => reader_response(&dir, OLAREG_SUBJECT),
        };
        assert_eq!(records, remaining, "{name}: records after delete");
        let text = fs::read_to_string(dir.join("index.json")).unwrap();
        for d in [sbom, scan] {
            assert!(
                !text.contains(sha256_hex(d)),
                "{name}: index.json still names {d}"
            );
        }
    }
}

// ---- 5. bad input -----------------------------------------------------------------------------

#[test]
fn attach_rejects_bad_arguments_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _v1, file) = fresh_layout(tmp.path());
    let f = s(&file);
    let cases: &[(&[&str], i32, &[&str])] = &[
        (
            &[
                "attach",
                &tagged(&dir, "nope"),
                &f,
                "--artifact-type",
                "a/b",
            ],
            3,
            &["nope", "not found"],
        ),
        (
            &["attach", &tagged(&dir, "v1"), &f],
            2,
            &["--artifact-type"],
        ),
        (
            &[
                "attach",
                &tagged(&dir, "v1"),
                &f,
                "--artifact-type",
                "a/b",
                "-a",
                "novalue",
            ],
            2,
            &["novalue", "KEY=VALUE"],
        ),
    ];
    for (args, code, says) in cases {
        let before = snapshot(&dir);
        let out = run(args);
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        for word in *says {
            assert!(out.stderr.contains(word), "{args:?}: {}", out.stderr);
        }
        assert_unchanged(&dir, &before, &format!("{args:?}"));
    }
}

/// Edits a copy's index.json by hand (compact, as the tools write it).
fn edit_index(dir: &Path, f: impl FnOnce(&mut Value)) {
    let mut index = index_json(dir);
    f(&mut index);
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Status reports `kind` (exit 1), discover of v1 still works and neither changes anything.
fn assert_reported_and_readable(dir: &Path, kind: &str, v1: &str, want: &BTreeSet<Edge>) {
    let before = snapshot(dir);
    let (st, code) = status(dir);
    assert_eq!(code, 1, "{st:#}");
    assert!(issue_kinds(&st).contains(kind), "want {kind}: {st:#}");
    let msg = issues(&st).into_iter().find(|(k, _)| k == kind).unwrap().1;
    assert!(msg.len() > 20, "a clear message: {msg:?}");
    let text = run(&["referrers", "status", &s(dir)]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains(kind), "{}", text.stdout);
    assert_eq!(
        discovered_edges(dir, &BTreeSet::from([v1.to_string()])),
        want.iter().filter(|e| e.0 == v1).cloned().collect(),
    );
    ok(&["discover", &tagged(dir, "v1"), "--deep"]);
    ok(&["discover", &tagged(dir, "v1"), "--format", "table"]);
    assert_unchanged(dir, &before, &format!("status/discover with {kind}"));
}

#[test]
fn response_entry_that_is_not_an_index_is_reported() {
    let (_t, dir) = writable_fixture("olareg-referrers");
    edit_index(&dir, |index| {
        let v1 = &mut index["manifests"][0];
        assert_eq!(v1["digest"], ORAS_V1);
        v1["annotations"][OLAREG_SUBJECT] = json!(OLAREG_SBOM);
    });
    assert_reported_and_readable(
        &dir,
        "response-not-index",
        ORAS_V1,
        &expected_edges("olareg-referrers"),
    );
}

#[test]
fn fallback_tag_on_a_non_index_is_reported() {
    let (_t, dir) = writable_fixture("oras-referrers");
    let tag = format!("sha256-{}", sha256_hex(ORAS_V1));
    ok(&["--layout", &s(&dir), "tag", "v1", &tag]);
    assert_reported_and_readable(
        &dir,
        "fallback-not-index",
        ORAS_V1,
        &expected_edges("oras-referrers"),
    );
}

fn artifact_with_subject(artifact_type: &str, subject: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY, "size": 2}],
        "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2020-01-01T00:00:00Z"}
    }))
    .unwrap()
}

#[test]
fn a_subject_with_an_invalid_digest_is_rejected_or_reported() {
    let (_t, dir) = writable_fixture("oras-referrers");
    let bad = artifact_with_subject(
        "application/vnd.example.bad",
        &json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:XYZ", "size": 553}),
    );
    let file = dir.parent().unwrap().join("bad.json");
    fs::write(&file, &bad).unwrap();
    // manifest put validates: the bad subject is refused, nothing written
    for sparse in [false, true] {
        let before = snapshot(&dir);
        let mut args = vec![
            "manifest".to_string(),
            "put".into(),
            tagged(&dir, "bad"),
            s(&file),
        ];
        if sparse {
            args.push("--allow-sparse".into());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&a);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("subject") && out.stderr.contains("sha256:XYZ"),
            "{}",
            out.stderr
        );
        assert_unchanged(&dir, &before, "manifest put of a bad subject");
    }
    // such a blob can still arrive by other means
    let digest = ok(&["blob", "put", &s(&dir), &s(&file)])
        .stdout
        .trim()
        .to_string();
    edit_index(&dir, |index| {
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": bad.len(),
        }));
    });
    assert_reported_and_readable(
        &dir,
        "bad-subject",
        ORAS_V1,
        &expected_edges("oras-referrers"),
    );
    let before = snapshot(&dir);
    let d = ok_json(&["discover", &at(&dir, &digest), "--format", "json", "--deep"]);
    assert_eq!(d["referrers"], json!([]));
    let (st, _) = status(&dir);
    assert_eq!(
        st["referrers"], 3,
        "the bad manifest is no referrer: {st:#}"
    );
    assert_unchanged(&dir, &before, "discover of the bad manifest");
}

// ---- 6. missing subjects and unreachable referrers ----------------------------------------------

#[test]
fn referrer_of_a_missing_subject_and_referrer_reachable_from_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, v1, _file) = fresh_layout(tmp.path());
    let absent = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let orphan = artifact_with_subject(
        "application/vnd.example.orphan-subject",
        &json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": absent, "size": 123}),
    );
    let file = tmp.path().join("orphan.json");
    fs::write(&file, &orphan).unwrap();
    // the subject need not exist: no --allow-sparse needed
    let orphan_digest = ok(&["manifest", "put", &s(&dir), &s(&file)])
        .stdout
        .trim()
        .to_string();
    let manifest = "application/vnd.oci.image.manifest.v1+json".to_string();
    assert_eq!(
        direct_referrers(&dir, absent, false),
        BTreeSet::from([(
            orphan_digest.clone(),
            "application/vnd.example.orphan-subject".into(),
            manifest.clone()
        )])
    );
    let d = ok_json(&["discover", &at(&dir, absent), "--format", "json"]);
    assert_eq!(d["digest"], absent);
    let tree = ok(&["discover", &at(&dir, absent)]).stdout;
    assert!(tree.contains(&orphan_digest), "{tree}");
    let (st, _) = status(&dir);
    assert!(issue_kinds(&st).contains("subject-missing"), "{st:#}");
    let msg = issues(&st)
        .into_iter()
        .find(|(k, _)| k == "subject-missing")
        .unwrap()
        .1;
    assert!(msg.contains(absent), "{msg}");

    // a referrer of v1 stored as a blob only: nothing in index.json reaches it
    let size = fs::metadata(blob_path(&dir, &v1)).unwrap().len();
    let hidden = artifact_with_subject(
        "application/vnd.example.hidden",
        &json!({"mediaType": manifest, "digest": v1, "size": size}),
    );
    let hfile = tmp.path().join("hidden.json");
    fs::write(&hfile, &hidden).unwrap();
    let hidden_digest = ok(&["blob", "put", &s(&dir), &s(&hfile)])
        .stdout
        .trim()
        .to_string();
    let before = snapshot(&dir);
    assert_eq!(direct_referrers(&dir, &v1, false), BTreeSet::new());
    assert_eq!(
        direct_referrers(&dir, &v1, true),
        BTreeSet::from([(
            hidden_digest.clone(),
            "application/vnd.example.hidden".into(),
            manifest.clone()
        )])
    );
    let (st, code) = status(&dir);
    assert_eq!(code, 1);
    let kinds = issue_kinds(&st);
    assert!(kinds.contains("only-deep-scan"), "{st:#}");
    assert!(kinds.contains("subject-missing"), "{st:#}");
    let msg = issues(&st)
        .into_iter()
        .find(|(k, _)| k == "only-deep-scan")
        .unwrap()
        .1;
    assert!(msg.contains(&hidden_digest), "{msg}");
    assert_unchanged(&dir, &before, "discover/status");
}
