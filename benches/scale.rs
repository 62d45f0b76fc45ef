//! Benchmark (a report, not a test): issue 13's table, speed at scale. Every row is a ratio to
//! its reference measured in the same run, on the same files, with the peak RSS of the ocistow
//! process (from `wait4`).
//!
//! Run with `cargo bench --bench scale`. Environment:
//! - `OCISTOW_BENCH_SCALE`: comma-separated referrer counts (default `1000`, under 2 minutes;
//!   the issue's sizes are `1000,10000,100000`);
//! - `OCISTOW_BENCH_UNRELATED`: unrelated manifests beside the referrers (default 10,000);
//! - `OCISTOW_BENCH_RUNS`: rounds per row, the median is reported (default 3);
//! - `OCISTOW_BENCH_SLOW_SECS`: a row whose first round takes longer than this runs once
//!   (default 10);
//! - `OCISTOW_BENCH_COPY_MAX`: `copy -r` runs only up to this many referrers (default 10,000:
//!   it fsyncs every copied blob);
//! - `OCISTOW_BENCH_BIG_MIB`: size of the file for the push and export rows (default 256; the
//!   issue's is 1024);
//! - `OCISTOW_BENCH_KEEP=1`: leave the layouts in `target/tmp/scale-bench/` (to profile them);
//! - `OCISTOW_BENCH_BIN`: the ocistow binary to measure instead of this build's (a copy of
//!   main's, say: the before of a change; the in-process rewrite row always runs this build);
//! - `OCISTOW_BENCH_ROWS=read`: only the read rows (discover, ls, status, convert), to measure a
//!   read-path change at 100k without the write rows' quarter of an hour.
//!
//! The layouts are written straight to disk (`common::layout`). Rows that change the layout put
//! `index.json` back (untimed) after each round. Each ocistow command and each reference is a
//! separate process, run in alternation within a round; `sync` runs (untimed) before each; the
//! page cache is warm. Only failures make this exit non-zero; ratios are printed, never asserted.
//!
//! At 100,000 referrers discover also gets the issue's absolute goals as rows (under 1 s, at
//! most 150 MB peak RSS); with copy -r measured at two or more sizes the report ends with its
//! linearity verdict (how its time grows from N to kN, beside the copy without referrers).
//! The programs the rows run (python3, openssl, cp, tar, sync, /usr/bin/time) are checked
//! first: a missing one fails the run, named, before anything is generated.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use common::layout::{self, BlobDir, MANIFEST, REF_NAME};
use common::process::{Run, measure};
use common::{Who, cpu_time, env_counts, env_number, generate, load_average, remove_path, sync};
use ocistow_store::Layout;
use serde_json::Value;

/// The ocistow binary measured: this build's, or `OCISTOW_BENCH_BIN`'s (another build, such as
/// main's, to compare before and after against the same references in one run).
static OCISTOW: LazyLock<std::ffi::OsString> = LazyLock::new(|| {
    std::env::var_os("OCISTOW_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_ocistow").into())
});
const NAIVE_READER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/naive_reader.py");
const JSON_LOAD: &str = "import json, sys\nwith open(sys.argv[1]) as f: json.load(f)";

fn main() -> ExitCode {
    common::exit_of("scale", run())
}

struct Settings {
    sizes: Vec<usize>,
    unrelated: usize,
    runs: usize,
    slow: f64,
    copy_max: usize,
    big_mib: u64,
    keep: bool,
    /// Only discover, ls, status and convert.
    read_only: bool,
}

fn settings() -> Result<Settings, String> {
    let sizes = env_counts("OCISTOW_BENCH_SCALE", &[1_000])?;
    let s = Settings {
        sizes,
        unrelated: env_number("OCISTOW_BENCH_UNRELATED", 10_000)?,
        runs: env_number("OCISTOW_BENCH_RUNS", 3)?,
        slow: env_number("OCISTOW_BENCH_SLOW_SECS", 10.0)?,
        copy_max: env_number("OCISTOW_BENCH_COPY_MAX", 10_000)?,
        big_mib: env_number("OCISTOW_BENCH_BIG_MIB", 256)?,
        keep: std::env::var_os("OCISTOW_BENCH_KEEP").is_some_and(|v| v == "1"),
        read_only: match std::env::var("OCISTOW_BENCH_ROWS") {
            Err(_) => false,
            Ok(v) if v == "read" => true,
            Ok(v) => return Err(format!("OCISTOW_BENCH_ROWS: {v:?} is not \"read\"")),
        },
    };
    if s.runs == 0 {
        return Err("OCISTOW_BENCH_RUNS must be at least 1".into());
    }
    Ok(s)
}

/// One line of the report.
struct Row {
    work: String,
    n: String,
    ours: Vec<Run>,
    reference: String,
    theirs: Vec<Run>,
    goal: Goal,
}

/// What the issue asks of a row: ours / reference at most this ratio, or an absolute bound.
#[derive(Clone, Copy)]
enum Goal {
    Ratio(f64),
    /// Seconds per 100,000 of something (gc of 100k blobs in at most 1 s).
    PerHundredK {
        secs: f64,
        count: usize,
    },
    /// The median wall time at most this many seconds (discover at 100k in under 1 s).
    UnderSecs(f64),
    /// The median peak RSS at most this many MB (10^6 bytes; discover at 100k in 150 MB).
    RssMb(f64),
}

/// The size at which the issue states its absolute goals for discover.
const ABSOLUTE_GOALS_AT: usize = 100_000;

/// The `work` of the copy -r rows, whose times across sizes give the linearity verdict.
const COPY_WORK: &str = "copy -r (subject + referrers)";

/// Fails, naming what is missing, unless every program the selected rows run is there.
fn check_tools(s: &Settings) -> Result<(), String> {
    let mut needed = vec![("python3", "the naive reader and json.load (discover, ls)")];
    if !s.read_only {
        needed.extend([
            ("openssl", "sha256 throughput (the push row's reference)"),
            ("cp", "the plain copy (the push row's reference)"),
            ("tar", "the export row's reference"),
            (
                "sync",
                "the cp and tar references, which sync what they wrote",
            ),
        ]);
    }
    let mut missing: Vec<String> = needed
        .into_iter()
        .filter(|(tool, _)| !common::tool_on_path(tool))
        .map(|(tool, why)| format!("{tool} (for {why})"))
        .collect();
    if !Path::new("/usr/bin/time").is_file() {
        missing.push("/usr/bin/time (GNU time, for every command's peak RSS)".into());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing on this machine: {}; install them or choose fewer rows (OCISTOW_BENCH_ROWS=read needs only python3 and /usr/bin/time)",
            missing.join(", ")
        ))
    }
}

fn run() -> Result<(), String> {
    let s = settings()?;
    check_tools(&s)?;
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scale-bench");
    remove_path(&work)?;
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let started = Instant::now();
    let load_before = load_average();
    let mut rows = Vec::new();
    let result = (|| {
        for &n in &s.sizes {
            measure_size(&s, &work, n, &mut rows)?;
        }
        if s.read_only {
            return Ok(());
        }
        measure_big(&s, &work, &mut rows)
    })();
    if !s.keep {
        let _ = fs::remove_dir_all(&work);
    }
    result?;
    report(&s, &rows, &load_before, started.elapsed());
    Ok(())
}

// ---- one size -----------------------------------------------------------------------------

fn measure_size(s: &Settings, work: &Path, n: usize, rows: &mut Vec<Row>) -> Result<(), String> {
    let dir = work.join(format!("n{n}"));
    let generating = Instant::now();
    let generated = layout::generate(&dir, n, s.unrelated)?;
    eprintln!(
        "N={n}: generated {} manifests, index.json {:.1} MiB, in {:.1} s",
        generated.manifests.len(),
        generated.index.len() as f64 / f64::from(1 << 20),
        generating.elapsed().as_secs_f64()
    );
    let index_path = dir.join("index.json");
    let restore = || write(&index_path, &generated.index);
    let err = work.join("stderr");
    // A command that changes index.json, measured, then the layout put back (untimed).
    let measured_then_restored = |cmd: &mut Command| -> Result<Run, String> {
        let run = measure(cmd, &err)?.0;
        restore()?;
        Ok(run)
    };
    let label = n.to_string();
    let subject_ref = format!("{}:v1", dir.display());

    // discover against the naive reader; the first round checks both found the same referrers.
    let mut checked = false;
    let (discover, naive) = pair(
        s,
        || {
            let (r, out) = measure(
                Command::new(&*OCISTOW).args(["--format", "json", "discover", &subject_ref]),
                &err,
            )?;
            if !checked {
                let found = digests(&out, "referrers")?;
                let (_, naive_out) = measure(
                    Command::new("python3").args([NAIVE_READER, dir_str(&dir), "v1"]),
                    &err,
                )?;
                let naive = digests(&naive_out, "referrers")?;
                if found.len() != n || found != naive {
                    return Err(format!(
                        "discover found {} referrers, the naive reader {}, expected {n}",
                        found.len(),
                        naive.len()
                    ));
                }
                checked = true;
            }
            Ok(r)
        },
        || {
            Ok(measure(
                Command::new("python3").args([NAIVE_READER, dir_str(&dir), "v1"]),
                &err,
            )?
            .0)
        },
    )?;
    rows.push(Row {
        work: "discover --format json".into(),
        n: label.clone(),
        ours: discover.clone(),
        reference: "naive Python reader".into(),
        theirs: naive,
        goal: Goal::Ratio(0.4),
    });
    if n >= ABSOLUTE_GOALS_AT {
        rows.push(Row {
            work: "discover --format json, wall time".into(),
            n: label.clone(),
            ours: discover.clone(),
            reference: String::new(),
            theirs: Vec::new(),
            goal: Goal::UnderSecs(1.0),
        });
        rows.push(Row {
            work: "discover --format json, peak RSS".into(),
            n: label.clone(),
            ours: discover.clone(),
            reference: String::new(),
            theirs: Vec::new(),
            goal: Goal::RssMb(150.0),
        });
    }

    let (ls, json_load) = pair(
        s,
        || Ok(measure(Command::new(&*OCISTOW).args(["ls", dir_str(&dir)]), &err)?.0),
        || {
            Ok(measure(
                Command::new("python3")
                    .args(["-c", JSON_LOAD])
                    .arg(&index_path),
                &err,
            )?
            .0)
        },
    )?;
    println!(
        "machine limits: Python json.load of index.json ({:.1} MB) {:.0} MB/s (process start included)",
        generated.index.len() as f64 / 1e6,
        generated.index.len() as f64 / 1e6 / median_wall(&json_load)
    );
    rows.push(Row {
        work: "ls".into(),
        n: label.clone(),
        ours: ls,
        reference: "Python json.load of index.json".into(),
        theirs: json_load,
        goal: Goal::Ratio(0.5),
    });

    // Before attach, whose unlisted manifest a status's deep scan would report.
    let status = repeat(s, || {
        Ok(measure(
            Command::new(&*OCISTOW).args(["referrers", "status", dir_str(&dir)]),
            &err,
        )?
        .0)
    })?;
    rows.push(Row {
        work: "referrers status".into(),
        n: label.clone(),
        ours: status,
        reference: "discover (above)".into(),
        theirs: discover.clone(),
        goal: Goal::Ratio(2.0),
    });
    let convert = repeat(s, || {
        measured_then_restored(Command::new(&*OCISTOW).args([
            "referrers",
            "convert",
            dir_str(&dir),
            "--to",
            "tag",
        ]))
    })?;
    rows.push(Row {
        work: "referrers convert --to tag".into(),
        n: label.clone(),
        ours: convert,
        reference: "discover (above)".into(),
        theirs: discover.clone(),
        goal: Goal::Ratio(2.0),
    });
    if s.read_only {
        return if s.keep { Ok(()) } else { remove_path(&dir) };
    }

    // One index.json transaction in process, against writing the bytes it wrote with fsync.
    let handle = Layout::open(&dir).map_err(|e| e.to_string())?;
    let mut round = 0u64;
    let rewritten = dir.join("rewritten.json");
    let (rewrite, plain_write) = pair(
        s,
        || {
            round += 1;
            sync();
            let clock = InProcess::start();
            handle
                .edit_index(|i| {
                    i.set_annotation("com.example.bench.rewrite", &round.to_string());
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            let r = clock.stop();
            let bytes = read(&index_path)?;
            write(&rewritten, &bytes)?;
            restore()?;
            Ok(r)
        },
        || {
            let bytes = read(&rewritten)?;
            sync();
            let clock = InProcess::start();
            write_synced(&dir.join("plain-write.json"), &bytes)?;
            Ok(clock.stop())
        },
    )?;
    rows.push(Row {
        work: "index.json rewrite (library)".into(),
        n: label.clone(),
        ours: rewrite.clone(),
        reference: "the same bytes written, fsync, rename".into(),
        theirs: plain_write,
        goal: Goal::Ratio(2.0),
    });

    let payload = work.join("payload.txt");
    write(&payload, b"one more referrer\n")?;
    let attach = repeat(s, || {
        measured_then_restored(
            Command::new(&*OCISTOW)
                .args(["attach", &subject_ref])
                .arg(&payload)
                .args([
                    "--artifact-type",
                    "application/vnd.example.bench",
                    "--referrers-mode",
                    "annotation",
                ]),
        )
    })?;
    rows.push(Row {
        work: "attach (annotation mode)".into(),
        n: label.clone(),
        ours: attach,
        reference: "one index.json rewrite (above)".into(),
        theirs: rewrite,
        goal: Goal::Ratio(1.1),
    });

    if n <= s.copy_max {
        rows.push(copy_row(s, &dir, &generated, &err)?);
    }

    // Last, as it deletes what the earlier rows left unreferenced (records, copy's index).
    let blobs = fs::read_dir(dir.join("blobs/sha256"))
        .map_err(|e| e.to_string())?
        .count();
    let gc = repeat(s, || {
        Ok(measure(Command::new(&*OCISTOW).args(["gc", dir_str(&dir)]), &err)?.0)
    })?;
    rows.push(Row {
        work: format!("gc ({blobs} blobs)"),
        n: label,
        ours: gc,
        reference: String::new(),
        theirs: Vec::new(),
        goal: Goal::PerHundredK {
            secs: 1.0,
            count: blobs,
        },
    });
    if s.keep {
        return Ok(());
    }
    remove_path(&dir)
}

/// `copy -r` of the subject and its N referrers, against `copy` of an index listing the same N
/// manifests (the same blobs, without referrers).
fn copy_row(s: &Settings, dir: &Path, g: &layout::Generated, err: &Path) -> Result<Row, String> {
    let blobs = BlobDir {
        path: dir.join("blobs/sha256"),
    };
    let children: Vec<String> = g
        .referrers
        .iter()
        .map(|(d, size)| format!(r#"{{"mediaType":"{MANIFEST}","digest":"{d}","size":{size}}}"#))
        .collect();
    let all = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        children.join(",")
    );
    let (all_digest, all_size, _) = blobs.put(all.as_bytes())?;
    let all_index = layout::index_of(&[format!(
        r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{all_digest}","size":{all_size},"annotations":{{"{REF_NAME}":"all"}}}}"#
    )]);
    let plain = dir.with_extension("plain");
    fs::create_dir_all(plain.join("blobs")).map_err(|e| e.to_string())?;
    write(
        &plain.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write(&plain.join("index.json"), &all_index)?;
    // The same blob files, without a second copy on disk.
    std::os::unix::fs::symlink(dir.join("blobs/sha256"), plain.join("blobs/sha256"))
        .map_err(|e| e.to_string())?;
    let dst = dir.with_extension("dst");
    let (ours, theirs) = pair(
        s,
        || {
            remove_path(&dst)?;
            let r = measure(
                Command::new(&*OCISTOW)
                    .args(["copy", "-r", &format!("{}:v1", dir.display())])
                    .arg(&dst),
                err,
            )?
            .0;
            remove_path(&dst)?;
            Ok(r)
        },
        || {
            remove_path(&dst)?;
            let r = measure(
                Command::new(&*OCISTOW)
                    .args(["copy", &format!("{}:all", plain.display())])
                    .arg(&dst),
                err,
            )?
            .0;
            remove_path(&dst)?;
            Ok(r)
        },
    )?;
    remove_path(&plain)?;
    Ok(Row {
        work: COPY_WORK.into(),
        n: g.referrers.len().to_string(),
        ours,
        reference: "copy of an index of the same manifests".into(),
        theirs,
        goal: Goal::Ratio(2.0),
    })
}

// ---- one big file -------------------------------------------------------------------------

fn measure_big(s: &Settings, work: &Path, rows: &mut Vec<Row>) -> Result<(), String> {
    let err = work.join("stderr");
    let file = work.join("big.bin");
    generate(&file, s.big_mib << 20, 13).map_err(|e| format!("{}: {e}", file.display()))?;
    let _ = fs::read(&file);
    let label = format!("{} MiB", s.big_mib);
    let big = work.join("big");
    let copy = work.join("big.copy");
    let (push, openssl) = pair(
        s,
        || {
            remove_path(&big)?;
            measure(Command::new(&*OCISTOW).arg("init").arg(&big), &err)?;
            Ok(measure(
                Command::new(&*OCISTOW)
                    .arg("push")
                    .arg(format!("{}:v1", big.display()))
                    .arg(&file),
                &err,
            )?
            .0)
        },
        || {
            Ok(measure(
                Command::new("openssl").args(["dgst", "-sha256"]).arg(&file),
                &err,
            )?
            .0)
        },
    )?;
    let cp = repeat(s, || {
        remove_path(&copy)?;
        let r = measure(
            Command::new("sh")
                .args(["-c", r#"cp "$1" "$2" && sync "$2""#, "sh"])
                .arg(&file)
                .arg(&copy),
            &err,
        )?
        .0;
        remove_path(&copy)?;
        Ok(r)
    })?;
    let mb = (s.big_mib << 20) as f64 / 1e6;
    println!(
        "machine limits: sha256 (openssl dgst) {:.0} MB/s, cp + sync {:.0} MB/s",
        mb / median_wall(&openssl),
        mb / median_wall(&cp)
    );
    let (limit, reference) = if median_wall(&cp) > median_wall(&openssl) {
        (cp, "cp + sync (larger than openssl dgst -sha256)")
    } else {
        (openssl, "openssl dgst -sha256 (larger than cp + sync)")
    };
    rows.push(Row {
        work: "push of one file".into(),
        n: label.clone(),
        ours: push,
        reference: reference.into(),
        theirs: limit,
        goal: Goal::Ratio(1.1),
    });

    let tar = work.join("big.tar");
    let (export, tar_cf) = pair(
        s,
        || {
            remove_path(&tar)?;
            let r = measure(
                Command::new(&*OCISTOW)
                    .args(["export", &format!("{}:v1", big.display()), "-o"])
                    .arg(&tar),
                &err,
            )?
            .0;
            remove_path(&tar)?;
            Ok(r)
        },
        || {
            remove_path(&tar)?;
            let r = measure(
                Command::new("sh")
                    .args([
                        "-c",
                        r#"tar cf "$1" -C "$2" oci-layout index.json blobs && sync "$1""#,
                        "sh",
                    ])
                    .arg(&tar)
                    .arg(&big),
                &err,
            )?
            .0;
            remove_path(&tar)?;
            Ok(r)
        },
    )?;
    rows.push(Row {
        work: "export, verifying every byte".into(),
        n: label,
        ours: export,
        reference: "tar cf + sync of the tarball".into(),
        theirs: tar_cf,
        goal: Goal::Ratio(0.7),
    });
    Ok(())
}

// ---- measuring ----------------------------------------------------------------------------

/// Rounds of `ours` and `theirs` in alternation; one round when the first takes long.
fn pair(
    s: &Settings,
    mut ours: impl FnMut() -> Result<Run, String>,
    mut theirs: impl FnMut() -> Result<Run, String>,
) -> Result<(Vec<Run>, Vec<Run>), String> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..s.runs {
        sync();
        a.push(ours()?);
        sync();
        b.push(theirs()?);
        if round == 0 && a[0].wall.as_secs_f64() > s.slow {
            break;
        }
    }
    Ok((a, b))
}

fn repeat(s: &Settings, mut f: impl FnMut() -> Result<Run, String>) -> Result<Vec<Run>, String> {
    let mut out = Vec::new();
    for round in 0..s.runs {
        sync();
        out.push(f()?);
        if round == 0 && out[0].wall.as_secs_f64() > s.slow {
            break;
        }
    }
    Ok(out)
}

/// Work done in this process (RSS is not per operation here, so it is not reported).
struct InProcess {
    wall: Instant,
    cpu: Duration,
}

impl InProcess {
    fn start() -> Self {
        InProcess {
            cpu: cpu_time(Who::Myself),
            wall: Instant::now(),
        }
    }

    fn stop(&self) -> Run {
        Run {
            wall: self.wall.elapsed(),
            cpu: cpu_time(Who::Myself).saturating_sub(self.cpu),
            max_rss_kib: 0,
        }
    }
}

/// The `digest`s of the objects listed under `key` in a command's JSON output.
fn digests(out: &[u8], key: &str) -> Result<BTreeSet<String>, String> {
    let v: Value = serde_json::from_slice(out).map_err(|e| format!("bad JSON output: {e}"))?;
    Ok(v[key]
        .as_array()
        .ok_or_else(|| format!("no {key:?} list in the output"))?
        .iter()
        .filter_map(|r| r["digest"].as_str().map(str::to_string))
        .collect())
}

fn dir_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// What a careful writer does with the same bytes: a temp file, fsync, rename, fsync the directory.
fn write_synced(target: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp: PathBuf = target.with_extension("tmp");
    let e = |err: std::io::Error| format!("{}: {err}", temp.display());
    let mut f = File::create(&temp).map_err(e)?;
    f.write_all(bytes).map_err(e)?;
    f.sync_all().map_err(e)?;
    fs::rename(&temp, target).map_err(e)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(e)
}

// ---- report -------------------------------------------------------------------------------

fn median_by(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

fn median_wall(runs: &[Run]) -> f64 {
    median_by(runs, |r| r.wall.as_secs_f64())
}

fn report(s: &Settings, rows: &[Row], load_before: &str, took: Duration) {
    println!(
        "\nscale benchmark: sizes {:?} referrers + {} unrelated, {} rounds (median), big file {} MiB; \
         load average {load_before} before, {} after; {:.0} s in all\n",
        s.sizes,
        s.unrelated,
        s.runs,
        s.big_mib,
        load_average(),
        took.as_secs_f64()
    );
    println!(
        "| work | N | ocistow wall s (cpu s) | peak RSS MiB | reference | reference wall s (cpu s) | ratio wall (cpu) | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (w, c) = (
            median_wall(&r.ours),
            median_by(&r.ours, |x| x.cpu.as_secs_f64()),
        );
        let rss = median_by(&r.ours, |x| x.max_rss_kib as f64) / 1024.0;
        let rss = if rss > 0.0 {
            format!("{rss:.0}")
        } else {
            "(in process)".into()
        };
        let (reference, ratio, goal) = match r.goal {
            Goal::Ratio(goal) => {
                let (tw, tc) = (
                    median_wall(&r.theirs),
                    median_by(&r.theirs, |x| x.cpu.as_secs_f64()),
                );
                let ratio = w / tw;
                let met = if ratio <= goal { "met" } else { "not met" };
                (
                    format!("{} | {tw:.3} ({tc:.3})", r.reference),
                    // CPU time comes in clock ticks: a reference under one tick has no ratio.
                    if tc > 0.0 {
                        format!("**{ratio:.2}** ({:.2})", c / tc)
                    } else {
                        format!("**{ratio:.2}** (-)")
                    },
                    format!("<= {goal}x ({met})"),
                )
            }
            Goal::PerHundredK { secs, count } => {
                let per = w * 100_000.0 / count.max(1) as f64;
                let met = if per <= secs { "met" } else { "not met" };
                (
                    "- | -".into(),
                    format!("**{per:.2} s per 100k**"),
                    format!("<= {secs} s per 100k ({met})"),
                )
            }
            Goal::UnderSecs(secs) => {
                let met = if w <= secs { "met" } else { "not met" };
                (
                    "- | -".into(),
                    format!("**{w:.3} s**"),
                    format!("<= {secs} s ({met})"),
                )
            }
            Goal::RssMb(mb) => {
                let peak = median_by(&r.ours, |x| x.max_rss_kib as f64) * 1024.0 / 1e6;
                let met = if peak <= mb { "met" } else { "not met" };
                (
                    "- | -".into(),
                    format!("**{peak:.0} MB**"),
                    format!("<= {mb} MB ({met})"),
                )
            }
        };
        println!(
            "| {} | {} | {w:.3} ({c:.3}) | {rss} | {reference} | {ratio} | {goal} |",
            r.work, r.n
        );
    }
    linearity(rows);
}

/// The largest growth exponent of copy -r's time that still counts as linear: from N to 4N, a
/// time 4.7x (fsyncs and directory sizes add a little per blob); quadratic work shows 16x.
const LINEAR_EXPONENT: f64 = 1.12;

/// copy -r's verdict: for each pair of sizes measured (N, then kN), the time ratio t(kN)/t(N)
/// and its exponent log(ratio)/log(k) beside the reference's (the same blobs without
/// referrers), linear when the exponent is at most [`LINEAR_EXPONENT`].
fn linearity(rows: &[Row]) {
    let copies: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter(|r| r.work == COPY_WORK)
        .filter_map(|r| {
            let n: f64 = r.n.parse().ok()?;
            Some((n, median_wall(&r.ours), median_wall(&r.theirs)))
        })
        .collect();
    if copies.len() < 2 {
        println!(
            "\ncopy -r linearity: needs copy -r at two sizes (OCISTOW_BENCH_SCALE with two \
             sizes up to OCISTOW_BENCH_COPY_MAX)"
        );
        return;
    }
    println!();
    for pair in copies.windows(2) {
        let ((n1, t1, r1), (n2, t2, r2)) = (pair[0], pair[1]);
        let k = n2 / n1;
        let exponent = (t2 / t1).ln() / k.ln();
        let reference = (r2 / r1).ln() / k.ln();
        let verdict = if exponent <= LINEAR_EXPONENT {
            "linear"
        } else {
            "NOT linear"
        };
        println!(
            "copy -r linearity, {n1:.0} -> {n2:.0} referrers ({k:.1}x): time {:.2}x, exponent {exponent:.2} \
             (the copy without referrers: {:.2}x, exponent {reference:.2}): **{verdict}** (exponent <= {LINEAR_EXPONENT})",
            t2 / t1,
            r2 / r1
        );
    }
}
