//! Many processes against one layout: no lost tags under concurrent pushes, a consistent layout
//! after a writer is `SIGKILLed` at any point, and a clear, harmless failure when the lock is held.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{at, ocistow_path, sha256_hex, snapshot, tagged};
use serde_json::Value;

const ARTIFACT_TYPE: &str = "application/vnd.ocistow.concurrency-test";

/// A `Command` for the binary under test, with a lock timeout that cannot come from the caller's
/// environment by accident.
fn cmd() -> Command {
    let mut c = Command::new(ocistow_path());
    c.env_remove("OCISTOW_LOCK_TIMEOUT");
    c
}

fn run(args: &[&str]) -> Output {
    cmd().args(args).output().unwrap()
}

fn run_ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "ocistow {args:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn init(layout: &Path) {
    run_ok(&["init", layout.to_str().unwrap()]);
}

/// Runs `f` over `items` on `threads` threads; a panic in any of them fails the caller.
fn par_for_each<T: Sync>(items: &[T], threads: usize, f: impl Fn(&T) + Sync) {
    if items.is_empty() {
        return;
    }
    let chunk = items.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let f = &f;
            s.spawn(move || part.iter().for_each(f));
        }
    });
}

/// `index.json` must parse and have a `manifests` array; returns its entries.
fn index_entries(layout: &Path) -> Vec<Value> {
    let bytes = fs::read(layout.join("index.json")).unwrap();
    let index: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "index.json is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(index["schemaVersion"], 2, "index.json: {index}");
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("index.json has no manifests array: {index}"))
        .clone()
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// Names of the files under `blobs/sha256`.
fn blob_names(layout: &Path) -> BTreeSet<String> {
    let dir = layout.join("blobs/sha256");
    if !dir.is_dir() {
        return BTreeSet::new();
    }
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Has `ocistow blob get` re-hash the blob (it fails when the content does not match the name).
fn verify_blob(layout: &Path, hex: &str) {
    let out = cmd()
        .args(["blob", "get"])
        .arg(at(layout, &format!("sha256:{hex}")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "blob sha256:{hex} does not verify ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ocistow temp files left behind: (in `ingest/`, `.ocistow-*.tmp` in the root).
fn leftovers(layout: &Path) -> (Vec<String>, Vec<String>) {
    let names = |dir: PathBuf| -> Vec<String> {
        match fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let ingest = names(layout.join("ingest"));
    let root_tmp = names(layout.to_path_buf())
        .into_iter()
        .filter(|n| {
            n.starts_with(".ocistow-") && Path::new(n).extension().is_some_and(|e| e == "tmp")
        })
        .collect();
    (ingest, root_tmp)
}

fn tags_json(layout: &Path) -> BTreeMap<String, String> {
    // `ls` lists each entry with its digest (`tags` prints oras's `{"tags": [...]}`).
    let out = run_ok(&["ls", layout.to_str().unwrap(), "--format", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().expect("ls --format json prints an array");
    let mut map = BTreeMap::new();
    for item in list.iter().filter(|i| i["ref"].is_string()) {
        let tag = item["ref"].as_str().unwrap().to_string();
        let digest = item["digest"].as_str().unwrap().to_string();
        assert!(
            map.insert(tag.clone(), digest).is_none(),
            "tag {tag} listed twice"
        );
    }
    map
}

/// Largest number of intervals that overlap at one instant.
fn max_overlap(intervals: &[(Instant, Instant)]) -> usize {
    let mut events: Vec<(Instant, i32)> = intervals
        .iter()
        .flat_map(|&(a, b)| [(a, 1), (b, -1)])
        .collect();
    // ends sort before starts at the same instant
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    usize::try_from(max).unwrap_or(0)
}

#[test]
fn eight_processes_push_200_distinct_tags() {
    const WORKERS: usize = 8;
    const PER_WORKER: usize = 25;
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    for w in 0..WORKERS {
        let dir = tmp.path().join(format!("in/w{w}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..PER_WORKER {
            fs::write(
                dir.join(format!("a-{i}.txt")),
                format!("worker {w} artifact {i}\n"),
            )
            .unwrap();
        }
    }

    let start = Arc::new(Barrier::new(WORKERS));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let start = Arc::clone(&start);
            let layout = layout.clone();
            let dir = tmp.path().join(format!("in/w{w}"));
            std::thread::spawn(move || {
                start.wait();
                let mut pushed = Vec::new();
                for i in 0..PER_WORKER {
                    let tag = format!("w{w}-{i}");
                    let began = Instant::now();
                    let out = cmd()
                        .arg("push")
                        .arg(tagged(&layout, &tag))
                        .arg(format!(
                            "{}:text/plain",
                            dir.join(format!("a-{i}.txt")).display()
                        ))
                        .args(["--artifact-type", ARTIFACT_TYPE, "-a"])
                        .arg(format!("worker={w}"))
                        .output()
                        .unwrap();
                    let ended = Instant::now();
                    assert!(
                        out.status.success(),
                        "push {tag} failed with {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
                    sha256_hex(&digest);
                    pushed.push((tag, digest, began, ended));
                }
                pushed
            })
        })
        .collect();
    let mut expected = BTreeMap::new();
    let mut intervals = Vec::new();
    for worker in workers {
        for (tag, digest, began, ended) in worker.join().unwrap() {
            intervals.push((began, ended));
            assert!(expected.insert(tag, digest).is_none());
        }
    }
    let in_flight = max_overlap(&intervals);
    eprintln!(
        "{} pushes by {WORKERS} workers in {:.2?}; at most {in_flight} ocistow processes ran at once",
        expected.len(),
        t0.elapsed()
    );
    assert_eq!(expected.len(), WORKERS * PER_WORKER);
    assert!(
        in_flight >= 4,
        "the pushes barely overlapped (max {in_flight} at once)"
    );
    let distinct: BTreeSet<&String> = expected.values().collect();
    assert_eq!(
        distinct.len(),
        expected.len(),
        "distinct content, distinct manifests"
    );

    // index.json: exactly one entry per push, each naming the digest that push printed
    let entries = index_entries(&layout);
    assert_eq!(entries.len(), WORKERS * PER_WORKER);
    let mut from_index = BTreeMap::new();
    for e in &entries {
        let tag = ref_name(e).expect("every entry is tagged").to_string();
        assert_eq!(e["artifactType"], ARTIFACT_TYPE);
        assert!(
            from_index
                .insert(tag.clone(), e["digest"].as_str().unwrap().to_string())
                .is_none(),
            "tag {tag} appears twice in index.json"
        );
    }
    assert_eq!(from_index, expected, "index.json lost or changed a tag");
    assert_eq!(tags_json(&layout), expected, "ocistow tags --format json");

    // every tag resolves to what its push printed; its manifest holds that worker's file
    let tags: Vec<(&String, &String)> = expected.iter().collect();
    par_for_each(&tags, 4, |(tag, digest)| {
        let out = run_ok(&["resolve", &tagged(&layout, tag)]);
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), *digest);
        let manifest: Value = serde_json::from_slice(
            &fs::read(layout.join("blobs/sha256").join(sha256_hex(digest))).unwrap(),
        )
        .unwrap();
        let (w, i) = tag[1..].split_once('-').unwrap();
        let layer = &manifest["layers"][0];
        assert_eq!(
            layer["annotations"]["org.opencontainers.image.title"],
            format!("a-{i}.txt")
        );
        assert_eq!(manifest["annotations"]["worker"], w);
        let body = fs::read(
            layout
                .join("blobs/sha256")
                .join(sha256_hex(layer["digest"].as_str().unwrap())),
        )
        .unwrap();
        assert_eq!(body, format!("worker {w} artifact {i}\n").as_bytes());
    });

    // every blob verifies: 200 manifests + 200 layers + the shared empty config, nothing else
    let blobs: Vec<String> = blob_names(&layout).into_iter().collect();
    assert_eq!(blobs.len(), 2 * WORKERS * PER_WORKER + 1, "{blobs:?}");
    par_for_each(&blobs, 4, |hex| {
        sha256_hex(&format!("sha256:{hex}"));
        verify_blob(&layout, hex);
    });

    // nothing left behind
    let (ingest, root_tmp) = leftovers(&layout);
    assert!(ingest.is_empty(), "left in ingest/: {ingest:?}");
    assert!(root_tmp.is_empty(), "left in the layout root: {root_tmp:?}");
    let mut root: Vec<String> = fs::read_dir(&layout)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    root.sort();
    assert_eq!(
        root,
        [
            ".ocistow-gc-gate.lock",
            ".ocistow-gc.lock",
            ".ocistow.lock",
            "blobs",
            "index.json",
            "ingest",
            "oci-layout"
        ]
    );
    eprintln!("verified in {:.2?} total", t0.elapsed());
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&xorshift(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn sigkill_during_push_leaves_a_consistent_layout() {
    const ITERATIONS: u64 = 50;
    const PART: usize = 1 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let input = tmp.path().join("in");
    fs::create_dir(&input).unwrap();
    // Two 1 MiB layers and a small one: kills land while hashing or fsyncing a layer, between
    // layers, around the manifest, around the index update, or after the process finished.
    let write_inputs = |seed: u64| -> Vec<String> {
        let mut files = Vec::new();
        for (name, len) in [("part1.bin", PART), ("part2.bin", PART), ("note.txt", 64)] {
            let path = input.join(name);
            fs::write(&path, pseudo_random_bytes(seed * 3 + len as u64, len)).unwrap();
            files.push(path.to_str().unwrap().to_string());
        }
        files
    };
    let push = |tag: &str, files: &[String]| -> Command {
        let mut c = cmd();
        c.arg("push")
            .arg(tagged(&layout, tag))
            .args(files)
            .args(["--artifact-type", ARTIFACT_TYPE])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };

    // How long a push takes here, now (median of three).
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    let mut durations = Vec::new();
    for n in 0..3 {
        let files = write_inputs(1_000 + n);
        let tag = format!("warmup{n}");
        let began = Instant::now();
        let out = push(&tag, &files).output().unwrap();
        durations.push(began.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        acknowledged.insert(tag, String::from_utf8(out.stdout).unwrap().trim().into());
    }
    durations.sort();
    let typical = durations[1];
    // delays spread over [0, 1.2 * typical): most kills hit a running push, some come too late
    let window_us = (typical.as_micros() as u64 * 6 / 5).max(1);

    let mut verified: BTreeMap<String, u64> = BTreeMap::new(); // blob name -> size
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (mut completed, mut killed) = (0u32, 0u32);
    // how far a killed push had come: new blobs it had committed (part1, part2, note, manifest;
    // the empty config exists already) -> kills; then kills that landed after the index update
    let mut k_by_blobs: BTreeMap<usize, u32> = BTreeMap::new();
    let (mut k_mid_blob, mut k_tagged) = (0u32, 0u32);
    let t0 = Instant::now();
    for iter in 0..ITERATIONS {
        let files = write_inputs(iter);
        let tag = format!("k{iter}");
        let blobs_before = blob_names(&layout).len();
        let ingest_before = leftovers(&layout).0.len();
        let delay = Duration::from_micros(xorshift(&mut rng) % window_us);

        let mut child = push(&tag, &files).spawn().unwrap();
        std::thread::sleep(delay);
        // SIGKILL (a no-op when the process has already exited but is not yet reaped)
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();

        let entries = index_entries(&layout);
        let tagged: Vec<&Value> = entries
            .iter()
            .filter(|e| ref_name(e) == Some(tag.as_str()))
            .collect();
        assert!(tagged.len() <= 1, "tag {tag} appears twice: {entries:?}");
        if out.status.success() {
            completed += 1;
            let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
            acknowledged.insert(tag.clone(), digest);
        } else if out.status.signal() == Some(rustix::process::Signal::KILL.as_raw()) {
            killed += 1;
            if tagged.is_empty() {
                let new = blob_names(&layout).len() - blobs_before;
                *k_by_blobs.entry(new).or_default() += 1;
                if leftovers(&layout).0.len() > ingest_before {
                    k_mid_blob += 1;
                }
            } else {
                k_tagged += 1;
            }
        } else {
            panic!(
                "push {tag} failed on its own ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }

        // every blob visible under blobs/ is complete: new ones are re-hashed, old ones unchanged
        let mut new_blobs = Vec::new();
        for name in blob_names(&layout) {
            let size = fs::metadata(layout.join("blobs/sha256").join(&name))
                .unwrap()
                .len();
            match verified.get(&name) {
                Some(&old) => assert_eq!(old, size, "blob {name} changed size after a kill"),
                None => new_blobs.push((name, size)),
            }
        }
        par_for_each(&new_blobs, 2, |(name, _)| verify_blob(&layout, name));
        verified.extend(new_blobs);

        // every index entry names a present, verified manifest whose blobs are present too
        for e in &entries {
            let digest = e["digest"].as_str().unwrap();
            let hex = sha256_hex(digest);
            let size = verified
                .get(hex)
                .unwrap_or_else(|| panic!("index entry {digest} has no blob (after {tag})"));
            assert_eq!(Some(*size), e["size"].as_u64(), "entry {e}");
            let manifest: Value =
                serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
                    .unwrap();
            let children = manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .chain([&manifest["config"]]);
            for child in children {
                let hex = sha256_hex(child["digest"].as_str().unwrap());
                assert_eq!(
                    verified.get(hex).copied(),
                    child["size"].as_u64(),
                    "manifest {digest} refers to blob {hex}, missing or of the wrong size"
                );
            }
        }

        // every acknowledged write is there, and the readers still work
        let tags = tags_json(&layout);
        for (t, d) in &acknowledged {
            assert_eq!(
                tags.get(t),
                Some(d),
                "acknowledged tag {t} lost after killing the push of {tag}"
            );
        }
        run_ok(&["ls", layout.to_str().unwrap()]);
    }
    let (ingest, root_tmp) = leftovers(&layout);
    eprintln!(
        "{ITERATIONS} pushes, delays in [0, {:.1?}) (typical push {typical:.1?}), {:.2?}: \
         {killed} killed while running, {completed} had already finished; \
         of the killed, by new blobs committed before the kill: {k_by_blobs:?} \
         ({k_mid_blob} in the middle of a blob write), {k_tagged} after the index update; \
         left behind: {} ingest file(s), {} index temp file(s)",
        Duration::from_micros(window_us),
        t0.elapsed(),
        ingest.len(),
        root_tmp.len()
    );
    assert!(
        killed >= 5,
        "only {killed} of {ITERATIONS} kills hit a running push"
    );

    // the layout stays writable: no lock is left held by a killed process
    let files = write_inputs(9_999);
    let out = push("after", &files)
        .env("OCISTOW_LOCK_TIMEOUT", "10")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    acknowledged.insert(
        "after".into(),
        String::from_utf8(out.stdout).unwrap().trim().into(),
    );
    let tags = tags_json(&layout);
    for (t, d) in &acknowledged {
        assert_eq!(tags.get(t), Some(d), "acknowledged tag {t} lost");
    }
}

#[test]
fn writers_time_out_with_a_clear_error_when_the_lock_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let file = tmp.path().join("a.txt");
    fs::write(&file, "a\n").unwrap();
    let out = run_ok(&[
        "push",
        &tagged(&layout, "t1"),
        file.to_str().unwrap(),
        "--artifact-type",
        ARTIFACT_TYPE,
    ]);
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let before = snapshot(&layout);
    let index_before = fs::read(layout.join("index.json")).unwrap();

    let lock = File::options()
        .write(true)
        .open(layout.join(".ocistow.lock"))
        .unwrap();
    lock.lock().unwrap();

    let began = Instant::now();
    let out = cmd()
        .args(["tag", &tagged(&layout, "t1"), "t2"])
        .env("OCISTOW_LOCK_TIMEOUT", "0.3")
        .output()
        .unwrap();
    let waited = began.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "tag under a held lock: {stderr}"
    );
    assert!(stderr.contains("lock"), "{stderr}");
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    assert_eq!(
        snapshot(&layout),
        before,
        "a timed-out tag changed the layout"
    );

    // a push gives up the same way and leaves index.json alone
    let out = cmd()
        .args(["push", &tagged(&layout, "t3"), file.to_str().unwrap()])
        .env("OCISTOW_LOCK_TIMEOUT", "0.3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(6),
        "push under a held lock: {stderr}"
    );
    assert!(stderr.contains("lock"), "{stderr}");
    assert_eq!(fs::read(layout.join("index.json")).unwrap(), index_before);
    let (ingest, root_tmp) = leftovers(&layout);
    assert!(
        ingest.is_empty() && root_tmp.is_empty(),
        "{ingest:?} {root_tmp:?}"
    );

    // readers take no lock
    let out = run_ok(&["resolve", &tagged(&layout, "t1")]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), digest);
    run_ok(&["ls", layout.to_str().unwrap()]);

    // once the lock is free the same command works
    lock.unlock().unwrap();
    let out = cmd()
        .args(["tag", &tagged(&layout, "t1"), "t2"])
        .env("OCISTOW_LOCK_TIMEOUT", "0.3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tags = tags_json(&layout);
    assert_eq!(tags.get("t2"), Some(&digest));
    assert!(!tags.contains_key("t3"));
}

#[test]
fn eight_processes_attach_200_referrers_in_each_mode() {
    const WORKERS: usize = 8;
    const PER_WORKER: usize = 25;
    const OCI_RESPONSE_SUBJECT: &str = "org.opencontainers.image.referrer.subject";
    const CONTAINERD_SUBJECT: &str = "io.containerd.manifest.subject";
    let t_all = Instant::now();
    for mode in ["annotation", "response", "tag"] {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        init(&layout);
        let subject_file = tmp.path().join("subject.txt");
        fs::write(&subject_file, "the subject\n").unwrap();
        let out = run_ok(&[
            "push",
            &tagged(&layout, "v1"),
            subject_file.to_str().unwrap(),
            "--artifact-type",
            ARTIFACT_TYPE,
        ]);
        let subject = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let subject_hex = sha256_hex(&subject).to_string();
        for w in 0..WORKERS {
            let dir = tmp.path().join(format!("in/w{w}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..PER_WORKER {
                fs::write(
                    dir.join(format!("r-{i}.json")),
                    format!("{{\"mode\":\"{mode}\",\"worker\":{w},\"attach\":{i}}}\n"),
                )
                .unwrap();
            }
        }

        let start = Arc::new(Barrier::new(WORKERS));
        let t0 = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let start = Arc::clone(&start);
                let layout = layout.clone();
                let dir = tmp.path().join(format!("in/w{w}"));
                std::thread::spawn(move || {
                    start.wait();
                    let mut attached = Vec::new();
                    for i in 0..PER_WORKER {
                        let began = Instant::now();
                        let out = cmd()
                            .arg("attach")
                            .arg(tagged(&layout, "v1"))
                            .arg(format!(
                                "{}:application/json",
                                dir.join(format!("r-{i}.json")).display()
                            ))
                            .arg("--artifact-type")
                            .arg(format!("application/vnd.example.w{w}"))
                            .arg("-a")
                            .arg(format!("n={w}-{i}"))
                            .args(["--referrers-mode", mode])
                            .output()
                            .unwrap();
                        let ended = Instant::now();
                        assert!(
                            out.status.success(),
                            "{mode}: attach w{w}-{i} failed with {}: {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr)
                        );
                        let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
                        sha256_hex(&digest);
                        attached.push((format!("{w}-{i}"), digest, began, ended));
                    }
                    attached
                })
            })
            .collect();
        // digest -> "w-i" of the attach that printed it
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        let mut intervals = Vec::new();
        for worker in workers {
            for (name, digest, began, ended) in worker.join().unwrap() {
                intervals.push((began, ended));
                if let Some(other) = expected.insert(digest.clone(), name.clone()) {
                    panic!("{mode}: attaches {other} and {name} both printed {digest}");
                }
            }
        }
        let attached_in = t0.elapsed();
        let in_flight = max_overlap(&intervals);
        assert_eq!(expected.len(), WORKERS * PER_WORKER, "{mode}");
        assert!(
            in_flight >= 4,
            "{mode}: the attaches barely overlapped (max {in_flight} at once)"
        );
        let expected_set: BTreeSet<&String> = expected.keys().collect();
        let describe = |digests: &BTreeSet<&String>| -> Vec<String> {
            digests
                .iter()
                .map(|d| match expected.get(*d) {
                    Some(n) => format!("{d} (attach {n})"),
                    None => format!("{d} (printed by no attach)"),
                })
                .collect()
        };

        // discover: exactly the 200 as direct referrers of v1, none nested
        let out = run_ok(&["discover", &tagged(&layout, "v1"), "--format", "json"]);
        let tree: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(tree["digest"], subject.as_str(), "{mode}: discover root");
        let referrers = tree["referrers"]
            .as_array()
            .unwrap_or_else(|| panic!("{mode}: discover json has no referrers array: {tree}"));
        let mut discovered: BTreeSet<&String> = BTreeSet::new();
        let mut discovered_list = Vec::new();
        for r in referrers {
            let digest = r["digest"].as_str().unwrap().to_string();
            if let Some(n) = expected.get(&digest) {
                let (w, _) = n.split_once('-').unwrap();
                assert_eq!(
                    r["artifactType"],
                    format!("application/vnd.example.w{w}"),
                    "{mode}: {r}"
                );
                assert_eq!(r["annotations"]["n"], n.as_str(), "{mode}: {r}");
            }
            assert_eq!(
                r["referrers"].as_array().map(Vec::len),
                Some(0),
                "{mode}: referrer {digest} has referrers of its own: {r}"
            );
            discovered_list.push(digest);
        }
        for d in &discovered_list {
            if let Some((k, _)) = expected.get_key_value(d) {
                discovered.insert(k);
            }
        }
        let missing: BTreeSet<&String> = expected_set.difference(&discovered).copied().collect();
        let unknown: Vec<&String> = discovered_list
            .iter()
            .filter(|d| !expected.contains_key(*d))
            .collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "{mode}: discover lost {} of {} referrers: {:?}; and lists {} it should not: {unknown:?}",
            missing.len(),
            expected.len(),
            describe(&missing),
            unknown.len()
        );
        assert_eq!(
            discovered_list.len(),
            expected.len(),
            "{mode}: discover lists a referrer twice"
        );

        // referrers status: 200, clean
        let out = run(&[
            "referrers",
            "status",
            layout.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{mode}: referrers status printed no JSON ({e}; {}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            status["issues"],
            Value::Array(Vec::new()),
            "{mode}: referrers status: {status:#}"
        );
        assert_eq!(
            status["referrers"],
            WORKERS * PER_WORKER,
            "{mode}: referrers status: {status:#}"
        );
        assert!(
            out.status.success(),
            "{mode}: referrers status exited {}: {status:#}",
            out.status
        );

        // index.json: one record for the subject (response, tag) or 200 annotated entries
        let entries = index_entries(&layout);
        let fallback = format!("sha256-{subject_hex}");
        let records: Vec<&Value> = entries
            .iter()
            .filter(|e| match mode {
                "response" => e["annotations"][OCI_RESPONSE_SUBJECT] == subject.as_str(),
                "tag" => ref_name(e) == Some(fallback.as_str()),
                _ => e["annotations"][CONTAINERD_SUBJECT].is_string(),
            })
            .collect();
        if mode == "annotation" {
            assert_eq!(
                records.len(),
                WORKERS * PER_WORKER,
                "{mode}: entries with {CONTAINERD_SUBJECT}"
            );
            let listed: BTreeSet<&String> = records
                .iter()
                .filter(|e| e["annotations"][CONTAINERD_SUBJECT] == subject.as_str())
                .filter_map(|e| expected.get_key_value(e["digest"].as_str().unwrap()))
                .map(|(k, _)| k)
                .collect();
            let missing: BTreeSet<&String> = expected_set.difference(&listed).copied().collect();
            assert!(
                missing.is_empty(),
                "{mode}: index.json lost {} annotated entries: {:?}",
                missing.len(),
                describe(&missing)
            );
        } else {
            assert_eq!(
                records.len(),
                1,
                "{mode}: record entries for {subject}: {records:?}"
            );
            let record = records[0];
            let blob: Value = serde_json::from_slice(
                &fs::read(
                    layout
                        .join("blobs/sha256")
                        .join(sha256_hex(record["digest"].as_str().unwrap())),
                )
                .unwrap(),
            )
            .unwrap();
            let listed: BTreeSet<&String> = blob["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| expected.get_key_value(d["digest"].as_str().unwrap()))
                .map(|(k, _)| k)
                .collect();
            let missing: BTreeSet<&String> = expected_set.difference(&listed).copied().collect();
            assert!(
                missing.is_empty(),
                "{mode}: the record index {} lost {} referrers: {:?}",
                record["digest"],
                missing.len(),
                describe(&missing)
            );
            assert_eq!(
                blob["manifests"].as_array().unwrap().len(),
                WORKERS * PER_WORKER,
                "{mode}: record index {}",
                record["digest"]
            );
        }
        eprintln!(
            "{mode}: {} attaches by {WORKERS} workers in {attached_in:.2?} \
             (at most {in_flight} ocistow processes at once), verified in {:.2?}",
            expected.len(),
            t0.elapsed()
        );
    }
    eprintln!("three modes in {:.2?}", t_all.elapsed());
}

/// A writer that must wait says once, on stderr, who holds the lock (the holder wrote its pid
/// and note into the lock file) and how long it will wait; it then times out as before.
#[test]
fn a_waiting_writer_says_who_holds_the_lock_and_for_how_long() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    init(&dir);
    let file = tmp.path().join("a.txt");
    fs::write(&file, "a\n").unwrap();
    run_ok(&["push", &tagged(&dir, "t1"), file.to_str().unwrap()]);
    let layout = ocistow_store::Layout::open(&dir)
        .unwrap()
        .with_lock_holder("the test holding the lock");
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        layout
            .edit_index(|_| {
                held_tx.send(()).unwrap();
                // Held until the writer has given up (bounded, should the test fail first).
                let _ = done_rx.recv_timeout(Duration::from_secs(30));
                Ok(())
            })
            .unwrap();
    });
    held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let out = cmd()
        .args(["tag", &tagged(&dir, "t1"), "t2"])
        .env("OCISTOW_LOCK_TIMEOUT", "0.5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    let line = format!(
        "ocistow: {} is held by \"pid {}: the test holding the lock\"; waiting up to 0.5s for it",
        dir.join(".ocistow.lock").display(),
        std::process::id()
    );
    assert_eq!(stderr.matches(&line).count(), 1, "{stderr}");
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    // The error it gives up with names the other process the same way.
    let held_by = format!(
        "held by another process (\"pid {}: the test holding the lock\")",
        std::process::id()
    );
    assert!(stderr.contains(&held_by), "{stderr}");
    // Released: the note went with the hold.
    assert_eq!(fs::read(dir.join(".ocistow.lock")).unwrap(), b"");
}

/// gc in a tight loop on one thread and a writer on another thread of the same process: every
/// write gets its turn (the threads of a process take a lock in the order they asked).
#[test]
fn an_in_process_gc_loop_does_not_starve_a_writer() {
    use ocistow_store::maintenance::GcOptions;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    let layout = ocistow_store::Layout::init(&dir)
        .unwrap()
        .with_lock_timeout(Duration::from_secs(3));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let (layout, stop) = (layout.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                layout.gc(&GcOptions::default()).unwrap();
                runs += 1;
            }
            runs
        })
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let layout = layout.clone();
        std::thread::spawn(move || {
            for i in 0..30u32 {
                let staged = layout.stage();
                let result = staged.and_then(|staged| {
                    let d = staged
                        .layout()
                        .write_blob_bytes(format!("blob {i}").as_bytes())?;
                    staged.commit(&d, &[format!("t{i}")])
                });
                tx.send(result.map_err(|e| e.to_string())).unwrap();
            }
        })
    };
    for i in 0..30 {
        let got = rx.recv_timeout(Duration::from_secs(20));
        assert!(
            matches!(got, Ok(Ok(()))),
            "write {i} under an in-process gc loop: {got:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let runs = gc.join().unwrap();
    assert!(runs > 0);
    let tags: Vec<String> = layout.tags().unwrap().into_iter().map(|t| t.0).collect();
    assert_eq!(tags.len(), 30, "{tags:?}");
}
