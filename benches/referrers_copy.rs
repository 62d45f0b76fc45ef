//! Benchmark (a report, not a test): `copy -r` and `import` of a subject with N referrers,
//! each as a ratio to moving the same blobs without referrers, measured in the same run.
//!
//! For each N (default 1,000 and 4,000) two layouts hold the same N + 3 blobs (the empty
//! config, the subject `v1` and N referrer manifests of it):
//! - "with referrers": `v1` is the subject; its referrers are recorded as subject annotations
//!   (what ocistow writes), so `copy -r` and `export --referrers` find and record all N;
//! - "plain": `v1` is an image index listing the subject and the N manifests as children, so a
//!   plain `copy` and `export` move the same manifests (plus that one index) with no referrer
//!   to find or record.
//!
//! Timed, the median of `OCISTOW_BENCH_RUNS` runs (default 3), each into a fresh destination:
//! `copy -r SRC:v1 DST:v1` against `copy PLAIN:v1 DST:v1`, and `import` of an archive exported
//! (untimed) from each. The ratios printed: with/plain per operation and N (the cost of finding
//! and recording the referrers), and N=4000/N=1000 for each (4.0 is linear). `sync` runs
//! (untimed) before every measured command; the page cache is warm.
//!
//! Run with `cargo bench --bench referrers_copy`; `OCISTOW_BENCH_REFERRERS` takes other counts
//! (comma-separated, the first and last give the linearity ratio). Only failures make this exit
//! non-zero; the ratios are printed, never asserted.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use common::layout::{self, MANIFEST, REF_NAME};
use common::{env_counts, env_number, load_average, median, remove_path, run_cmd, sync};

const OCISTOW: &str = env!("CARGO_BIN_EXE_ocistow");
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn main() -> ExitCode {
    common::exit_of("referrers_copy", run())
}

fn run() -> Result<(), String> {
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", 3)?;
    let sizes = env_counts("OCISTOW_BENCH_REFERRERS", &[1_000, 4_000])?;
    if runs == 0 {
        return Err("OCISTOW_BENCH_RUNS must be at least 1".into());
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("referrers-copy-bench");
    remove_path(&work)?;
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure_all(&work, &sizes, runs);
    let _ = fs::remove_dir_all(&work);
    result
}

/// Median seconds of each operation for one N.
struct Row {
    n: usize,
    copy_r: f64,
    copy_plain: f64,
    import_r: f64,
    import_plain: f64,
}

fn measure_all(work: &Path, sizes: &[usize], runs: usize) -> Result<(), String> {
    println!(
        "referrers_copy: {runs} runs per operation, median wall seconds (load average {})",
        load_average()
    );
    let mut rows = Vec::new();
    for &n in sizes {
        rows.push(measure(work, n, runs)?);
    }
    println!();
    println!(
        "| referrers | copy -r | plain copy | copy -r / plain | import (with referrers) | plain import | import ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.3} s | {:.3} s | {:.2} | {:.3} s | {:.3} s | {:.2} |",
            r.n,
            r.copy_r,
            r.copy_plain,
            r.copy_r / r.copy_plain,
            r.import_r,
            r.import_plain,
            r.import_r / r.import_plain
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.n != first.n
    {
        println!();
        println!(
            "linearity, N={} / N={} (x{:.1} referrers): copy -r {:.2}, plain copy {:.2}, import {:.2}, plain import {:.2}",
            last.n,
            first.n,
            last.n as f64 / first.n as f64,
            last.copy_r / first.copy_r,
            last.copy_plain / first.copy_plain,
            last.import_r / first.import_r,
            last.import_plain / first.import_plain
        );
    }
    Ok(())
}

fn measure(work: &Path, n: usize, runs: usize) -> Result<Row, String> {
    let with = work.join(format!("with-{n}"));
    let plain = work.join(format!("plain-{n}"));
    let generated = layout::generate(&with, n, 0)?;
    write_plain(&plain, &with, &generated)?;
    let s = |p: &Path| p.display().to_string();
    let with_tar = work.join(format!("with-{n}.tar"));
    let plain_tar = work.join(format!("plain-{n}.tar"));
    run_cmd(Command::new(OCISTOW).args([
        "export",
        "--referrers",
        &format!("{}:v1", s(&with)),
        "-o",
        &s(&with_tar),
    ]))?;
    run_cmd(Command::new(OCISTOW).args([
        "export",
        &format!("{}:v1", s(&plain)),
        "-o",
        &s(&plain_tar),
    ]))?;
    let dst = work.join("dst");
    let copy_r = time(runs, &dst, || {
        let mut c = Command::new(OCISTOW);
        c.args([
            "copy",
            "-r",
            &format!("{}:v1", s(&with)),
            &format!("{}:v1", s(&dst)),
        ])
        .env_remove("OCISTOW_REFERRERS_MODE");
        c
    })?;
    check_referrers(&dst, n)?;
    let copy_plain = time(runs, &dst, || {
        let mut c = Command::new(OCISTOW);
        c.args([
            "copy",
            &format!("{}:v1", s(&plain)),
            &format!("{}:v1", s(&dst)),
        ]);
        c
    })?;
    let import_r = time(runs, &dst, || {
        let mut c = Command::new(OCISTOW);
        c.args(["import", &s(&with_tar), &s(&dst)]);
        c
    })?;
    check_referrers(&dst, n)?;
    let import_plain = time(runs, &dst, || {
        let mut c = Command::new(OCISTOW);
        c.args(["import", &s(&plain_tar), &s(&dst)]);
        c
    })?;
    for p in [&with, &plain, &with_tar, &plain_tar, &dst] {
        remove_path(p)?;
    }
    let row = Row {
        n,
        copy_r,
        copy_plain,
        import_r,
        import_plain,
    };
    println!(
        "N={n}: copy -r {copy_r:.3} s, plain copy {copy_plain:.3} s, import {import_r:.3} s, plain import {import_plain:.3} s"
    );
    Ok(row)
}

/// The "plain" layout: the same blobs (hard links, or copies across file systems) and one more,
/// an index tagged `v1` listing the subject and every referrer manifest as a child.
fn write_plain(plain: &Path, with: &Path, generated: &layout::Generated) -> Result<(), String> {
    let blobs = plain.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
    let src = with.join("blobs").join("sha256");
    for entry in fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let to = blobs.join(entry.file_name());
        if fs::hard_link(entry.path(), &to).is_err() {
            fs::copy(entry.path(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    fs::write(
        plain.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(|e| e.to_string())?;
    let subject_size = fs::metadata(src.join(generated.subject.encoded()))
        .map_err(|e| e.to_string())?
        .len();
    let mut children = vec![format!(
        r#"{{"mediaType":"{MANIFEST}","digest":"{}","size":{subject_size}}}"#,
        generated.subject
    )];
    for (d, size) in &generated.referrers {
        children.push(format!(
            r#"{{"mediaType":"{MANIFEST}","digest":"{d}","size":{size}}}"#
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{}]}}"#,
        children.join(",")
    );
    let block = layout::BlobDir { path: blobs };
    let (digest, size, _) = block.put(index.as_bytes())?;
    fs::write(
        plain.join("index.json"),
        layout::index_of(&[format!(
            r#"{{"mediaType":"{INDEX}","digest":"{digest}","size":{size},"annotations":{{"{REF_NAME}":"v1"}}}}"#
        )]),
    )
    .map_err(|e| e.to_string())
}

/// The median wall time of `runs` runs of the command, each into a fresh `dst`.
fn time(runs: usize, dst: &Path, command: impl Fn() -> Command) -> Result<f64, String> {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        remove_path(dst)?;
        sync();
        let mut c = command();
        let start = Instant::now();
        run_cmd(&mut c)?;
        times.push(start.elapsed());
    }
    Ok(median(&times))
}

/// The destination lists every referrer (a benchmark of a copy that lost them would mislead).
fn check_referrers(dst: &Path, n: usize) -> Result<(), String> {
    let out = run_cmd(Command::new(OCISTOW).args([
        "discover",
        "--format",
        "json",
        &format!("{}:v1", dst.display()),
    ]))?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    let found = v["referrers"].as_array().map_or(0, Vec::len);
    if found == n {
        Ok(())
    } else {
        Err(format!(
            "{}: {found} referrers, expected {n}",
            dst.display()
        ))
    }
}
