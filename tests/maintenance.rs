//! `gc` and `fsck` end to end: referrers live and die with their subjects in every recording mode,
//! every fixture survives gc intact, gc never races a pinned writer, fsck finds each kind of
//! damage and repairs referrer records, and a dry run changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::common::{
    Out, at, blob_path, cmd, copy_fixture, entries, exec, layout_fixtures, ok, run, s, snapshot,
    tagged,
};
use ocistow_store::{Algorithm, Layout};
use serde_json::Value;

// ---- helpers -------------------------------------------------------------------------------

fn json_of(out: &Out, what: &str) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`ocistow {what}`: not JSON ({e}):\n{}", out.stdout))
}

fn ok_json(args: &[&str]) -> Value {
    json_of(&ok(args), &args.join(" "))
}

fn has_blob(dir: &Path, digest: &str) -> bool {
    blob_path(dir, digest).is_file()
}

fn blob_json(dir: &Path, digest: &str) -> Value {
    serde_json::from_slice(&fs::read(blob_path(dir, digest)).unwrap()).unwrap()
}

/// The manifest and the blobs it points to (config, layers), as digests.
fn manifest_and_blobs(dir: &Path, digest: &str) -> Vec<String> {
    let m = blob_json(dir, digest);
    let mut out = vec![digest.to_string()];
    out.push(m["config"]["digest"].as_str().unwrap().to_string());
    for l in m["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_string());
    }
    out
}

/// Every index.json entry names a blob that exists.
fn assert_entries_resolve(dir: &Path, context: &str) {
    for e in entries(dir) {
        let d = e["digest"].as_str().unwrap();
        assert!(
            has_blob(dir, d),
            "{context}: entry {e} points at a missing blob"
        );
    }
}

fn all_blobs(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for alg in fs::read_dir(dir.join("blobs")).unwrap() {
        let alg = alg.unwrap();
        for f in fs::read_dir(alg.path()).unwrap() {
            out.insert(format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// A file with `content`, named `name` in `tmp`.
fn file(tmp: &Path, name: &str, content: &str) -> String {
    let p = tmp.join(name);
    fs::write(&p, content).unwrap();
    s(&p)
}

fn push(dir: &Path, tag: &str, file: &str) -> String {
    ok(&[
        "push",
        &tagged(dir, tag),
        file,
        "--artifact-type",
        "application/vnd.example.app",
    ])
    .stdout
    .trim()
    .to_string()
}

fn attach(subject: &str, file: &str, artifact_type: &str, mode: &str) -> String {
    ok(&[
        "attach",
        subject,
        file,
        "--artifact-type",
        artifact_type,
        "--referrers-mode",
        mode,
    ])
    .stdout
    .trim()
    .to_string()
}

fn gc(dir: &Path, extra: &[&str]) -> Value {
    let d = s(dir);
    let mut args = vec!["gc", d.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    ok_json(&args)
}

fn removed_blobs(report: &Value) -> BTreeSet<String> {
    report["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

/// `fsck --format json` with extra flags: the report and the exit code.
fn fsck(dir: &Path, extra: &[&str]) -> (Value, i32) {
    let d = s(dir);
    let mut args = vec!["fsck", d.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(
        out.code == 0 || out.code == 1,
        "fsck exited {}: {}",
        out.code,
        out.stderr
    );
    let v = json_of(&out, &args.join(" "));
    for key in [
        "blobsChecked",
        "bytesHashed",
        "problems",
        "notes",
        "repaired",
    ] {
        assert!(v.get(key).is_some(), "fsck JSON lacks {key}: {v}");
    }
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(
        out.code == 0,
        problems.is_empty(),
        "exit code {} disagrees with the problems: {v}",
        out.code
    );
    (v, out.code)
}

fn assert_fsck_clean(dir: &Path, context: &str) {
    let (v, code) = fsck(dir, &[]);
    assert_eq!(code, 0, "{context}: fsck found problems: {v:#}");
}

fn kinds(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

fn discover(dir: &Path, tag: &str) -> Value {
    ok_json(&["discover", &tagged(dir, tag), "--format", "json"])
}

fn tags(dir: &Path) -> Vec<String> {
    ok_json(&["tags", &s(dir), "--format", "json"])["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Sets a file's modification time `age` in the past.
fn age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - age)
        .unwrap();
}

const HOURS_2: Duration = Duration::from_hours(2);

// ---- 1. referrers live with their subjects, in every mode -----------------------------------

#[test]
fn gc_keeps_referrers_of_live_subjects_and_removes_orphans_in_every_mode() {
    for mode in ["annotation", "response", "tag"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("layout");
        ok(&["init", &s(&dir)]);
        let v1 = push(&dir, "v1", &file(tmp.path(), "app1.txt", "app one\n"));
        let v2 = push(&dir, "v2", &file(tmp.path(), "app2.txt", "app two\n"));
        let sbom = attach(
            &tagged(&dir, "v1"),
            &file(tmp.path(), "sbom.json", "{\"sbom\":1}"),
            "application/vnd.example.sbom",
            mode,
        );
        let sig = attach(
            &tagged(&dir, "v1"),
            &file(tmp.path(), "sig.bin", "signature of v1"),
            "application/vnd.example.sig",
            mode,
        );
        // A chain: a scan result of the SBOM.
        let scan = attach(
            &at(&dir, &sbom),
            &file(tmp.path(), "scan.json", "{\"scan\":1}"),
            "application/vnd.example.scan",
            mode,
        );
        let sig2 = attach(
            &tagged(&dir, "v2"),
            &file(tmp.path(), "sig2.bin", "signature of v2"),
            "application/vnd.example.sig",
            mode,
        );
        let ctx = format!("mode {mode}");
        let discover_v1 = discover(&dir, "v1");
        let discover_v2 = discover(&dir, "v2");
        assert_eq!(
            discover_v1["referrers"].as_array().unwrap().len(),
            2,
            "{ctx}"
        );

        // Everything reachable stays (only superseded record indexes may go).
        let own = |d: &str| own_blobs(&dir, d);
        let v1_own = own(&v1);
        let orphans: BTreeSet<String> = [&sbom, &sig, &scan].iter().flat_map(|d| own(d)).collect();
        let v2_side: BTreeSet<String> = [&v2, &sig2]
            .iter()
            .flat_map(|d| manifest_and_blobs(&dir, d))
            .collect();
        let first = gc(&dir, &["--grace", "0s"]);
        for d in v1_own.iter().chain(&orphans).chain(&v2_side) {
            assert!(
                has_blob(&dir, d),
                "{ctx}: live blob {d} was removed: {first:#}"
            );
        }
        assert_eq!(discover(&dir, "v1"), discover_v1, "{ctx}");
        assert_entries_resolve(&dir, &ctx);
        assert_fsck_clean(&dir, &ctx);
        if mode == "annotation" {
            assert!(removed_blobs(&first).is_empty(), "{ctx}: {first:#}");
        }

        // The subject goes: with --keep-orphan-referrers only the subject's own blobs go.
        ok(&["untag", &tagged(&dir, "v1")]);
        let records_before = entries(&dir).len();
        let kept = gc(&dir, &["--grace", "0s", "--keep-orphan-referrers"]);
        assert_eq!(removed_blobs(&kept), v1_own, "{ctx}: {kept:#}");
        assert_eq!(
            entries(&dir).len(),
            records_before,
            "{ctx}: records removed"
        );
        for d in &orphans {
            assert!(
                has_blob(&dir, d),
                "{ctx}: orphan {d} removed despite the flag"
            );
        }
        assert_entries_resolve(&dir, &ctx);

        // Without it, the referrers (and the chain) follow their subject, records included.
        let report = gc(&dir, &["--grace", "0s"]);
        let gone = removed_blobs(&report);
        for d in &orphans {
            assert!(
                !has_blob(&dir, d),
                "{ctx}: {d} of an orphan survived: {report:#}"
            );
            assert!(gone.contains(d), "{ctx}: {d} not reported: {report:#}");
        }
        // Besides the orphans, only their record indexes.
        let records = gone.difference(&orphans).count();
        assert_eq!(
            records,
            if mode == "annotation" { 0 } else { 2 },
            "{ctx}: {report:#}"
        );
        let v1_hex = v1.split_once(':').unwrap().1;
        for e in entries(&dir) {
            let text = e.to_string();
            assert!(
                !text.contains(v1_hex) && !text.contains(&sbom) && !text.contains(&sig),
                "{ctx}: a record of the dead subject stayed in index.json: {e}"
            );
        }
        // annotation: one entry per referrer; response and tag: one record for v1, one for the
        // SBOM (the chain).
        let expected_entries = if mode == "annotation" { 3 } else { 2 };
        assert_eq!(
            report["entries"].as_array().unwrap().len(),
            expected_entries,
            "{ctx}: {report:#}"
        );
        for d in &v2_side {
            assert!(
                has_blob(&dir, d),
                "{ctx}: {d} of the live v2 side was removed"
            );
        }
        assert_eq!(discover(&dir, "v2"), discover_v2, "{ctx}");
        assert_entries_resolve(&dir, &ctx);
        assert_fsck_clean(&dir, &ctx);
        // Nothing left to do.
        let again = gc(&dir, &["--grace", "0s"]);
        assert_eq!(again["blobsRemoved"], 0, "{ctx}: {again:#}");
    }
}

/// A manifest and its layers: the blobs that are its alone (the empty config is shared).
fn own_blobs(dir: &Path, digest: &str) -> BTreeSet<String> {
    let m = blob_json(dir, digest);
    let mut out = BTreeSet::from([digest.to_string()]);
    for l in m["layers"].as_array().unwrap() {
        out.insert(l["digest"].as_str().unwrap().to_string());
    }
    out
}

// ---- 2. every fixture survives gc ----------------------------------------------------------

#[test]
fn gc_then_fsck_is_clean_on_every_fixture_and_discover_is_unchanged() {
    let mut referrers_seen = 0;
    for name in layout_fixtures() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_fixture(name, &tmp.path().join("layout"));
        assert_fsck_clean(&dir, name);
        let before: BTreeMap<String, Value> = tags(&dir)
            .into_iter()
            .map(|t| (t.clone(), discover(&dir, &t)))
            .collect();
        assert!(!before.is_empty(), "{name}: no tags");
        referrers_seen += before
            .values()
            .map(|v| v["referrers"].as_array().unwrap().len())
            .sum::<usize>();
        let report = gc(&dir, &["--grace", "0s"]);
        assert_eq!(
            report["entries"].as_array().unwrap().len(),
            0,
            "{name}: gc removed index.json entries: {report:#}"
        );
        assert_fsck_clean(&dir, name);
        assert_entries_resolve(&dir, name);
        let after: BTreeMap<String, Value> = tags(&dir)
            .into_iter()
            .map(|t| (t.clone(), discover(&dir, &t)))
            .collect();
        assert_eq!(before, after, "{name}: discover changed after gc");
        // Idempotent.
        assert_eq!(gc(&dir, &["--grace", "0s"])["blobsRemoved"], 0, "{name}");
    }
    assert!(
        referrers_seen >= 8,
        "fixtures lost their referrers? {referrers_seen}"
    );
}

// ---- 3. gc against concurrent writers ------------------------------------------------------

#[test]
fn gc_in_a_loop_never_deletes_what_concurrent_pushes_reference() {
    const WRITERS: usize = 4;
    const PUSHES: usize = 25;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    let files = tmp.path().join("files");
    fs::create_dir(&files).unwrap();
    let done = AtomicBool::new(false);
    let gc_runs = AtomicUsize::new(0);
    let gc_removed = AtomicUsize::new(0);
    let runs_during = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let d = s(&dir);
                let out = run(&["gc", &d, "--grace", "0s", "--format", "json"]);
                if out.code != 0 {
                    done.store(true, Ordering::SeqCst);
                    panic!(
                        "gc failed during the race (exit {}): {}",
                        out.code, out.stderr
                    );
                }
                let r = json_of(&out, "gc");
                gc_runs.fetch_add(1, Ordering::SeqCst);
                gc_removed.fetch_add(
                    r["blobsRemoved"].as_u64().unwrap() as usize,
                    Ordering::SeqCst,
                );
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (dir, files, gc_runs) = (&dir, &files, &gc_runs);
                sc.spawn(move || {
                    for i in 0..PUSHES {
                        if i == PUSHES / 2 {
                            // Halfway, make sure gc has really run among the writers, whatever
                            // the machine's load (bounded: a stuck gc fails below instead).
                            let deadline = Instant::now() + Duration::from_mins(2);
                            while gc_runs.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                        // A shared layer (the same blob in every push) and a unique one.
                        let shared = file(files, &format!("shared-{w}-{i}.txt"), "shared layer\n");
                        let unique = file(files, &format!("u-{w}-{i}.txt"), &format!("{w}/{i}\n"));
                        let tag = if i % 2 == 0 {
                            format!("w{w}-{i}")
                        } else {
                            // Moving tag: its previous manifest becomes garbage.
                            format!("w{w}-moving")
                        };
                        ok(&[
                            "push",
                            &tagged(dir, &tag),
                            &shared,
                            &unique,
                            "--artifact-type",
                            "application/vnd.example.app",
                        ]);
                        if i % 5 == 0 {
                            let sig = file(files, &format!("sig-{w}-{i}"), &format!("sig {w}/{i}"));
                            // Response records: index blobs written under the pin, the most gc-sensitive.
                            attach(
                                &tagged(dir, &tag),
                                &sig,
                                "application/vnd.example.sig",
                                "response",
                            );
                        }
                        // Writers that never pause starve gc (flock does not queue an exclusive
                        // request behind shared holders); CI jobs do pause.
                        std::thread::sleep(Duration::from_millis(15 + 7 * w as u64));
                    }
                })
            })
            .collect();
        // Stop the gc loop whatever happened to the writers, then report their failures.
        let results: Vec<_> = writers
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        runs_during.store(gc_runs.load(Ordering::SeqCst), Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let during = runs_during.load(Ordering::SeqCst);
    assert!(during >= 3, "only {during} gc runs overlapped the writers");
    // Every tag resolves, every blob of every entry exists and verifies.
    for w in 0..WRITERS {
        for i in (0..PUSHES).step_by(2) {
            let d = ok(&["resolve", &tagged(&dir, &format!("w{w}-{i}"))]).stdout;
            for b in manifest_and_blobs(&dir, d.trim()) {
                assert!(has_blob(&dir, &b), "w{w}-{i}: blob {b} is gone");
            }
            let out = tmp.path().join(format!("pull-{w}-{i}"));
            ok(&["pull", &tagged(&dir, &format!("w{w}-{i}")), "-o", &s(&out)]);
            assert_eq!(
                fs::read_to_string(out.join(format!("u-{w}-{i}.txt"))).unwrap(),
                format!("{w}/{i}\n")
            );
            if i % 5 == 0 {
                let d = discover(&dir, &format!("w{w}-{i}"));
                assert_eq!(d["referrers"].as_array().unwrap().len(), 1, "w{w}-{i}: {d}");
            }
        }
        ok(&["resolve", &tagged(&dir, &format!("w{w}-moving"))]);
    }
    assert_entries_resolve(&dir, "after the race");
    assert_fsck_clean(&dir, "after the race");
    // The moving tags left garbage behind, and a final gc collects what the loop has not.
    let last = gc(&dir, &["--grace", "0s"]);
    let total = gc_removed.load(Ordering::SeqCst) + last["blobsRemoved"].as_u64().unwrap() as usize;
    assert!(
        total >= WRITERS * (PUSHES / 2 - 1),
        "gc removed only {total} blobs"
    );
    assert_fsck_clean(&dir, "after the final gc");
}

#[test]
fn gc_waits_for_a_pinned_writer_and_times_out_instead_of_deleting() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    push(&dir, "v1", &file(tmp.path(), "a.txt", "a\n"));
    let layout = Layout::open(&dir).unwrap();
    // A writer mid-push: its blob is stored, its index.json update not made yet.
    let pin = layout.stage().unwrap();
    let blob = layout.write_blob_bytes(b"about to be referenced").unwrap();
    let before = snapshot(&dir);
    let start = Instant::now();
    let mut c = cmd();
    c.env("OCISTOW_LOCK_TIMEOUT", "1")
        .args(["gc", &s(&dir), "--grace", "0s"]);
    let out = exec(c, "gc");
    assert_eq!(out.code, 6, "gc should time out on the pin: {}", out.stderr);
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(out.stderr.contains(".ocistow-gc.lock"), "{}", out.stderr);
    assert_eq!(snapshot(&dir), before, "a timed-out gc changed the layout");
    // The writer finishes: its blob is now referenced, and gc keeps it.
    let config = layout.write_blob_bytes(b"{}").unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.digest(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": blob.digest(), "size": blob.size()}],
    });
    let desc = layout
        .put_manifest(&serde_json::to_vec(&manifest).unwrap(), None, false)
        .unwrap();
    layout.add_entry(&desc, &["pinned".into()]).unwrap();
    drop(pin);
    let report = gc(&dir, &["--grace", "0s"]);
    assert_eq!(report["blobsRemoved"], 0, "{report:#}");
    assert!(layout.blob_exists(blob.digest()).unwrap());
    assert_fsck_clean(&dir, "after the pinned write");
}

#[test]
fn gc_removes_stale_work_files_but_never_a_live_writers_or_another_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    push(&dir, "v1", &file(tmp.path(), "a.txt", "a\n"));
    let layout = Layout::open(&dir).unwrap();
    // A live writer, old enough to be stale by age alone.
    let mut writer = layout.blob_writer(Algorithm::Sha256).unwrap();
    writer.write_all(b"partial").unwrap();
    writer.flush().unwrap();
    let ingest = dir.join("ingest");
    let live: Vec<PathBuf> = fs::read_dir(&ingest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(live.len(), 1);
    age(&live[0], HOURS_2);
    let stale = ingest.join(".ocistow-killed.ingest");
    fs::write(&stale, "left by a killed writer").unwrap();
    age(&stale, HOURS_2);
    let fresh = ingest.join(".ocistow-recent.ingest");
    fs::write(&fresh, "recent").unwrap();
    let foreign = ingest.join("foo");
    fs::write(&foreign, "another tool's").unwrap();
    age(&foreign, HOURS_2);
    let tmpfile = dir.join(".ocistow-abc.tmp");
    fs::write(&tmpfile, "{}").unwrap();
    age(&tmpfile, HOURS_2);
    let lock = dir.join("index.json.lock");
    fs::write(&lock, "").unwrap();
    age(&lock, HOURS_2);

    // Default grace (1h): the stale and killed files go; the live, recent and foreign ones stay.
    let report = gc(&dir, &[]);
    let removed: BTreeSet<String> = report["workFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        removed,
        BTreeSet::from([
            "ingest/.ocistow-killed.ingest".to_string(),
            ".ocistow-abc.tmp".to_string()
        ]),
        "{report:#}"
    );
    assert!(!stale.exists() && !tmpfile.exists());
    assert!(live[0].exists() && fresh.exists() && foreign.exists() && lock.exists());
    // --grace 0s: the recent one goes too; the live writer's file still stays.
    gc(&dir, &["--grace", "0s"]);
    assert!(!fresh.exists());
    assert!(live[0].exists() && foreign.exists());
    // The writer can still finish.
    let (digest, _) = writer
        .commit(&ocistow_store::layout::Expected::default())
        .unwrap();
    assert!(layout.blob_exists(&digest).unwrap());
}

#[test]
fn gc_rejects_a_bad_grace_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    let loose = tmp.path().join("loose");
    fs::write(&loose, "loose").unwrap();
    ok(&["blob", "put", &s(&dir), &s(&loose)]);
    let before = snapshot(&dir);
    for bad in ["5x", "1h30m", "-1", "", "1.5h"] {
        let grace = format!("--grace={bad}");
        let out = run(&["gc", &s(&dir), &grace]);
        assert_eq!(out.code, 2, "--grace {bad:?}: {}", out.stderr);
        assert!(out.stderr.contains("duration"), "{}", out.stderr);
    }
    assert_eq!(snapshot(&dir), before);
    for good in ["0", "30s", "10m", "1h", "2d"] {
        ok(&["gc", &s(&dir), "--dry-run", "--grace", good]);
    }
}

// ---- 4. fsck -------------------------------------------------------------------------------

/// A layout with v1 (one layer) and v2; returns (dir, v1 digest, v1 layer digest, v2 digest).
fn two_images(tmp: &Path) -> (PathBuf, String, String, String) {
    let dir = tmp.join("layout");
    ok(&["init", &s(&dir)]);
    let v1 = push(&dir, "v1", &file(tmp, "one.txt", "the first layer\n"));
    let v2 = push(&dir, "v2", &file(tmp, "two.txt", "the second layer\n"));
    let layer = blob_json(&dir, &v1)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (dir, v1, layer, v2)
}

fn problem_mentions(report: &Value, kind: &str, needle: &str) -> bool {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == kind && p["message"].as_str().unwrap().contains(needle))
}

#[test]
fn fsck_detects_corrupt_and_truncated_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, layer, _) = two_images(tmp.path());
    assert_fsck_clean(&dir, "fresh");
    let path = blob_path(&dir, &layer);
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 1;
    fs::write(&path, &bad).unwrap();
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 1);
    assert!(
        problem_mentions(&report, "corrupt-blob", &layer),
        "{report:#}"
    );
    assert_eq!(
        kinds(&report["problems"]),
        BTreeSet::from(["corrupt-blob".into()])
    );
    // Text output says the same, with exit 1.
    let out = run(&["fsck", &s(&dir)]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("corrupt-blob") && out.stdout.contains(&layer),
        "{}",
        out.stdout
    );

    fs::write(&path, &good[..good.len() - 3]).unwrap();
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 1);
    assert!(
        problem_mentions(&report, "corrupt-blob", &layer),
        "{report:#}"
    );
    assert!(
        problem_mentions(&report, "size-mismatch", &layer),
        "{report:#}"
    );
    // Repair cannot invent content: still a problem.
    assert_eq!(fsck(&dir, &["--repair"]).1, 1);
}

#[test]
fn fsck_detects_a_missing_blob_and_remove_missing_drops_its_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, v1, _, v2) = two_images(tmp.path());
    fs::remove_file(blob_path(&dir, &v2)).unwrap();
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 1);
    assert!(problem_mentions(&report, "missing-blob", &v2), "{report:#}");
    assert!(
        problem_mentions(&report, "missing-blob", "\"v2\""),
        "{report:#}"
    );
    // --remove-missing needs --repair; --repair alone does not remove entries.
    assert_eq!(run(&["fsck", &s(&dir), "--remove-missing"]).code, 2);
    assert_eq!(fsck(&dir, &["--repair"]).1, 1);
    assert_eq!(entries(&dir).len(), 2);
    let (report, code) = fsck(&dir, &["--repair", "--remove-missing"]);
    assert_eq!(code, 0, "{report:#}");
    let repaired = report["repaired"].as_array().unwrap();
    assert_eq!(repaired.len(), 1, "{report:#}");
    assert!(repaired[0].as_str().unwrap().contains(&v2));
    let left = entries(&dir);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["digest"], v1.as_str());
    assert_fsck_clean(&dir, "after remove-missing");
}

#[test]
fn fsck_detects_a_manifest_that_does_not_parse_and_gc_refuses_to_guess() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, _, _) = two_images(tmp.path());
    let broken = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":"nope"}"#;
    let layout = Layout::open(&dir).unwrap();
    let stored = layout.write_blob_bytes(broken).unwrap();
    layout
        .edit_index(|index| {
            let mut d = ocistow_store::Descriptor::new(
                "application/vnd.oci.image.manifest.v1+json",
                stored.digest().clone(),
                stored.size(),
            );
            d.set_annotation("org.opencontainers.image.ref.name", "broken");
            index.manifests_mut().push(d);
            Ok(())
        })
        .unwrap();
    let digest = stored.digest().to_string();
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 1);
    assert!(
        problem_mentions(&report, "invalid-manifest", &digest),
        "{report:#}"
    );
    // gc cannot know what a broken manifest keeps alive: it stops before deleting anything.
    let loose = tmp.path().join("loose");
    fs::write(&loose, "loose").unwrap();
    ok(&["blob", "put", &s(&dir), &s(&loose)]);
    let before = snapshot(&dir);
    let out = run(&["gc", &s(&dir), "--grace", "0s"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains(&stored.digest().encoded().to_string()),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn fsck_detects_a_record_inconsistency_and_repair_fixes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("regctl-referrers", &tmp.path().join("layout"));
    let before = discover(&dir, "v1");
    let v1 = before["digest"].as_str().unwrap().to_string();
    assert_eq!(before["referrers"].as_array().unwrap().len(), 2);
    // Take the first referrer out of v1's fallback index, by hand.
    let layout = Layout::open(&dir).unwrap();
    let fallback = format!("sha256-{}", v1.split_once(':').unwrap().1);
    let entry = entries(&dir)
        .into_iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == fallback.as_str())
        .unwrap();
    let mut record = blob_json(&dir, entry["digest"].as_str().unwrap());
    let dropped = record["manifests"].as_array_mut().unwrap().remove(0);
    let dropped = dropped["digest"].as_str().unwrap().to_string();
    let stored = layout
        .write_blob_bytes(&serde_json::to_vec(&record).unwrap())
        .unwrap();
    layout
        .edit_index(|index| {
            for e in index.manifests_mut() {
                if e.ref_name() == Some(fallback.as_str()) {
                    e.set_digest_and_size(stored.digest().clone(), stored.size());
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(
        discover(&dir, "v1")["referrers"].as_array().unwrap().len(),
        1
    );

    // A referrer no record lists is what a killed attach leaves (issue 8): a note, and
    // `--repair` alone does not publish it.
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert!(report["notes"].to_string().contains(&dropped), "{report:#}");
    // gc keeps the unrecorded referrer of a live subject within the grace.
    gc(&dir, &["--grace", "1h"]);
    assert!(has_blob(&dir, &dropped));
    let (report, _) = fsck(&dir, &["--repair"]);
    assert!(report["notes"].to_string().contains(&dropped), "{report:#}");

    let (report, code) = fsck(&dir, &["--repair", "--record-unlisted"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(!report["repaired"].as_array().unwrap().is_empty());
    assert_fsck_clean(&dir, "after repair");
    assert_eq!(discover(&dir, "v1"), before);
    // Still the convention regctl reads.
    let status = ok_json(&["referrers", "status", &s(&dir), "--format", "json"]);
    assert_eq!(status["mode"], "tag", "{status:#}");
}

#[test]
fn fsck_notes_leftover_files_without_failing_or_deleting_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _, _, _) = two_images(tmp.path());
    fs::create_dir_all(dir.join("ingest")).unwrap();
    let leftovers = [
        dir.join("ingest/foo"),
        dir.join("index.json.lock"),
        dir.join("blobs/sha256/x.tmp"),
        dir.join("index.json.1234.tmp"),
        dir.join("oci-put-blob5678"),
        dir.join(".ocistow-dead.tmp"),
    ];
    for f in &leftovers {
        fs::write(f, "work in progress").unwrap();
    }
    fs::create_dir_all(dir.join(".umoci-xyz")).unwrap();
    fs::create_dir_all(dir.join("_uploads")).unwrap();
    let before = snapshot(&dir);
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 0, "{report:#}");
    let notes: Vec<String> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["kind"], "leftover-file", "{n}");
            n["message"].as_str().unwrap().to_string()
        })
        .collect();
    for path in [
        "ingest/foo",
        "index.json.lock",
        "blobs/sha256/x.tmp",
        "index.json.1234.tmp",
        "oci-put-blob5678",
        ".ocistow-dead.tmp",
        ".umoci-xyz",
        "_uploads",
    ] {
        assert!(
            notes.iter().any(|n| n.starts_with(&format!("{path}:"))),
            "no note for {path}: {notes:#?}"
        );
    }
    assert_eq!(notes.len(), 8, "{notes:#?}");
    // Neither fsck nor fsck --repair deletes them.
    fsck(&dir, &["--repair"]);
    assert_eq!(snapshot(&dir), before);
    let out = run(&["fsck", &s(&dir)]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("note leftover-file: ingest/foo"),
        "{}",
        out.stdout
    );
}

#[test]
fn fsck_notes_absent_non_distributable_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let foreign = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let cfg = tmp.path().join("cfg");
    fs::write(&cfg, "{}").unwrap();
    ok(&["blob", "put", &s(&dir), &s(&cfg)]);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": foreign, "size": 1234,
            "urls": ["https://example.invalid/layer"]
        }],
    });
    let m = tmp.path().join("m.json");
    fs::write(&m, serde_json::to_vec(&manifest).unwrap()).unwrap();
    ok(&[
        "manifest",
        "put",
        &tagged(&dir, "v1"),
        &s(&m),
        "--allow-sparse",
    ]);
    let (report, code) = fsck(&dir, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        kinds(&report["notes"]),
        BTreeSet::from(["non-distributable".into()])
    );
    assert!(
        report["notes"][0]["message"]
            .as_str()
            .unwrap()
            .contains(foreign)
    );
    // gc keeps the manifest and config; nothing to remove for the absent layer.
    assert_eq!(gc(&dir, &["--grace", "0s"])["blobsRemoved"], 0);
}

// ---- 5. dry run ----------------------------------------------------------------------------

#[test]
fn gc_dry_run_changes_nothing_and_predicts_the_real_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    ok(&["init", &s(&dir)]);
    push(&dir, "v1", &file(tmp.path(), "a.txt", "a\n"));
    push(&dir, "v2", &file(tmp.path(), "b.txt", "b\n"));
    attach(
        &tagged(&dir, "v1"),
        &file(tmp.path(), "sig", "sig"),
        "application/vnd.example.sig",
        "response",
    );
    ok(&["untag", &tagged(&dir, "v1")]);
    fs::create_dir_all(dir.join("ingest")).unwrap();
    let stale = dir.join("ingest/.ocistow-old.ingest");
    fs::write(&stale, "old").unwrap();
    age(&stale, HOURS_2);
    let leftover = dir.join(".ocistow-old.tmp");
    fs::write(&leftover, "old").unwrap();
    age(&leftover, HOURS_2);

    let before = snapshot(&dir);
    let dry = gc(&dir, &["--dry-run", "--grace", "0s"]);
    assert_eq!(snapshot(&dir), before, "gc --dry-run changed the layout");
    assert_eq!(dry["dryRun"], true);
    assert!(dry["blobsRemoved"].as_u64().unwrap() >= 5, "{dry:#}");
    assert_eq!(dry["entries"].as_array().unwrap().len(), 1, "{dry:#}");
    assert_eq!(dry["workFiles"].as_array().unwrap().len(), 2, "{dry:#}");
    let text = ok(&["gc", &s(&dir), "--dry-run", "--grace", "0s"]).stdout;
    assert!(
        text.contains("Would remove") && text.contains("would remove blob"),
        "{text}"
    );
    assert_eq!(snapshot(&dir), before, "gc --dry-run changed the layout");

    let blobs_before = all_blobs(&dir);
    let real = gc(&dir, &["--grace", "0s"]);
    assert_eq!(real["dryRun"], false);
    assert_eq!(removed_blobs(&real), removed_blobs(&dry));
    assert_eq!(real["entries"], dry["entries"]);
    assert_eq!(real["workFiles"], dry["workFiles"]);
    assert_eq!(real["bytesFreed"], dry["bytesFreed"]);
    let gone: BTreeSet<String> = blobs_before.difference(&all_blobs(&dir)).cloned().collect();
    assert_eq!(gone, removed_blobs(&real));
    assert!(!stale.exists() && !leftover.exists());
    assert_fsck_clean(&dir, "after gc");
}

/// Writers that push back to back, with no pause, must not starve gc: gc closes the pin gate,
/// waits for the pins already held, and runs. (Without the gate, flock lets new shared pins in
/// ahead of gc's exclusive request for as long as writers keep coming.)
#[test]
fn gc_is_not_starved_by_back_to_back_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    ok(&["init", layout.to_str().unwrap()]);
    let stop = AtomicBool::new(false);
    let pushed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (layout, stop, pushed, dir) = (&layout, &stop, &pushed, tmp.path());
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let file = dir.join(format!("w{w}-{i}.txt"));
                    fs::write(&file, format!("writer {w} push {i}")).unwrap();
                    ok(&[
                        "push",
                        &format!("{}:w{w}-{i}", layout.display()),
                        file.to_str().unwrap(),
                    ]);
                    pushed.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            });
        }
        // Let the writers get going, then gc while they keep pushing.
        while pushed.load(Ordering::SeqCst) < 8 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut gc = cmd();
        gc.env("OCISTOW_LOCK_TIMEOUT", "30");
        gc.args(["gc", layout.to_str().unwrap(), "--grace", "0s"]);
        let started = Instant::now();
        let out = exec(gc, "gc");
        stop.store(true, Ordering::SeqCst);
        assert_eq!(
            out.code,
            0,
            "gc did not get its turn in {:?}: {}",
            started.elapsed(),
            out.stderr
        );
    });
    // Every acknowledged push is intact after gc ran in the middle of them.
    let n = pushed.load(Ordering::SeqCst);
    let tags = ok(&["tags", layout.to_str().unwrap()]).stdout;
    assert_eq!(
        tags.lines().count(),
        n,
        "every acknowledged push keeps its tag"
    );
    let fsck = run(&["fsck", layout.to_str().unwrap()]);
    assert_eq!(
        fsck.code, 0,
        "fsck after gc: {}{}",
        fsck.stdout, fsck.stderr
    );
}
