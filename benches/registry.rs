//! Benchmark (a report, not a test): push and pull of a large single-blob artifact between a
//! layout and a loopback registry (distribution 2.8, `docker-registry`), against `skopeo copy`
//! of the same image in the same run, with peak memory.
//!
//! Run with `cargo bench --bench registry`. Environment:
//! - `OCISTOW_BENCH_SIZE_MIB`: size of the blob in MiB (default 1024);
//! - `OCISTOW_BENCH_RUNS`: rounds, the median is reported (default 3);
//! - `OCISTOW_BENCH_CONCURRENCY`: blobs at once for ocistow (default the library's).
//!
//! Each push goes into a registry started fresh for it (its own port and storage), so neither
//! tool finds the blob already there or mounts it from a repository the other one filled. Pulls
//! read from a registry that holds the image and write into a fresh directory. `sync` runs
//! (untimed) before every timed command; contenders alternate within each round.
//!
//! ocistow runs in this process through the library (the code the CLI calls); its peak RSS is
//! this process's `ru_maxrss` after each phase, so it includes the benchmark's own small
//! footprint. skopeo's peak RSS is measured per child with `wait4`. Ratios are printed, never
//! asserted: the registry's own work dominates both tools' times.

mod common;
#[path = "../tests/common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

// The registry helper asks its parent module for the rule on missing tools.
use common::process;
use common::tool_on_path as have_tool;
use common::{big_blob_layout, env_number, exit_of, median, remove_path, sync};
use ocistow_registry::RegistryRef;
use ocistow_registry::client::{Client, ClientOptions};
use ocistow_registry::copy::{self, CopyOptions, PullInto};
use ocistow_store::artifact;
use ocistow_store::{Descriptor, Layout};
use registry::Registry;

const DEFAULT_SIZE_MIB: u64 = 1024;
const DEFAULT_RUNS: usize = 3;
const TARGET_RATIO: f64 = 0.7;

fn main() -> ExitCode {
    exit_of("registry", run())
}

fn run() -> Result<(), String> {
    let size_mib: u64 = env_number("OCISTOW_BENCH_SIZE_MIB", DEFAULT_SIZE_MIB)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", DEFAULT_RUNS)?;
    let concurrency: usize = env_number(
        "OCISTOW_BENCH_CONCURRENCY",
        ocistow_registry::copy::DEFAULT_CONCURRENCY,
    )?;
    if size_mib == 0 || runs == 0 || concurrency == 0 {
        return Err("size, runs and concurrency must be at least 1".into());
    }
    for tool in ["docker-registry", "skopeo"] {
        if !have_tool(tool) {
            return Err(format!("{tool} is not installed"));
        }
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("registry-bench");
    remove_path(&work)?;
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure(&work, size_mib << 20, runs, concurrency);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure(work: &Path, size: u64, runs: usize, concurrency: usize) -> Result<(), String> {
    let (layout_dir, layout, root) = big_blob_layout(work, size, 1)?;
    let options = CopyOptions::default().concurrency(concurrency);
    println!(
        "registry benchmark: {} MiB blob, {runs} rounds, ocistow concurrency {concurrency}; \
         peak RSS of this process before the first copy: {} MiB",
        size >> 20,
        self_peak_rss_kib() >> 10
    );

    let (mut push_ours, mut push_skopeo, mut pull_ours, mut pull_skopeo) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut rss_push, mut rss_pull) = (0u64, 0u64);
    let (mut rss_skopeo_push, mut rss_skopeo_pull) = (0u64, 0u64);
    for round in 0..runs {
        // Push: a fresh registry for each tool.
        let reg = start()?;
        let t = timed(|| push_once(&layout, &root, &reg, &options))?;
        push_ours.push(t);
        rss_push = rss_push.max(self_peak_rss_kib());
        drop(reg);

        let reg = start()?;
        let (t, rss) = skopeo(
            work,
            &[
                "copy".into(),
                "--dest-tls-verify=false".into(),
                format!("oci:{}:big", layout_dir.display()),
                reg_ref(&reg, "skopeo:big"),
            ],
        )?;
        push_skopeo.push(t);
        rss_skopeo_push = rss_skopeo_push.max(rss);

        // Pull: from the registry skopeo just filled, into fresh directories.
        let ours = work.join(format!("pulled-ocistow-{round}"));
        let t = timed(|| pull_once(&reg, &ours, &options))?;
        pull_ours.push(t);
        rss_pull = rss_pull.max(self_peak_rss_kib());
        remove_path(&ours)?;
        let theirs = work.join(format!("pulled-skopeo-{round}"));
        let (t, rss) = skopeo(
            work,
            &[
                "copy".into(),
                "--src-tls-verify=false".into(),
                reg_ref(&reg, "skopeo:big"),
                format!("oci:{}:big", theirs.display()),
            ],
        )?;
        pull_skopeo.push(t);
        rss_skopeo_pull = rss_skopeo_pull.max(rss);
        remove_path(&theirs)?;
        println!(
            "  round {}: push {:.2}s vs skopeo {:.2}s; pull {:.2}s vs skopeo {:.2}s",
            round + 1,
            push_ours[round].as_secs_f64(),
            push_skopeo[round].as_secs_f64(),
            pull_ours[round].as_secs_f64(),
            pull_skopeo[round].as_secs_f64()
        );
    }
    let report = |what: &str, ours: &[Duration], theirs: &[Duration], rss: u64, rss_s: u64| {
        let (o, s) = (median(ours), median(theirs));
        println!(
            "{what}: ocistow {o:.2}s, skopeo copy {s:.2}s, ratio {:.2} (goal <= {TARGET_RATIO}); \
             peak RSS ocistow {} MiB (process so far), skopeo {} MiB",
            o / s,
            rss >> 10,
            rss_s >> 10
        );
    };
    report("push", &push_ours, &push_skopeo, rss_push, rss_skopeo_push);
    report("pull", &pull_ours, &pull_skopeo, rss_pull, rss_skopeo_pull);
    Ok(())
}

fn start() -> Result<Registry, String> {
    Registry::start().ok_or_else(|| "docker-registry did not start".to_string())
}

fn reg_ref(reg: &Registry, rest: &str) -> String {
    reg.reference(rest)
}

fn client(reg: &Registry) -> Result<Client, String> {
    let options = ClientOptions::default().plain_http(true);
    Client::new(&reg.host(), &options).map_err(|e| e.to_string())
}

fn push_once(
    layout: &Layout,
    root: &Descriptor,
    reg: &Registry,
    options: &CopyOptions,
) -> Result<(), String> {
    let c = client(reg)?;
    let dest = RegistryRef::parse(&reg_ref(reg, "ocistow:big")).map_err(|e| e.to_string())?;
    copy::push(layout, root, &c, &dest, options, &artifact::no_progress)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn pull_once(reg: &Registry, dir: &Path, options: &CopyOptions) -> Result<(), String> {
    let c = client(reg)?;
    let layout = Layout::init(dir).map_err(|e| e.to_string())?;
    let from = RegistryRef::parse(&reg_ref(reg, "skopeo:big")).map_err(|e| e.to_string())?;
    let into = PullInto::default().tags(vec!["big".into()]);
    copy::pull(&c, &from, &layout, options, &into, &artifact::no_progress)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn timed(f: impl FnOnce() -> Result<(), String>) -> Result<Duration, String> {
    sync();
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// Runs skopeo, returning its wall time and its own peak RSS in KiB (the one measuring helper,
/// benches/common/process.rs; its stderr lands in `work`).
fn skopeo(work: &Path, args: &[String]) -> Result<(Duration, u64), String> {
    sync();
    let (run, _) = process::measure(
        Command::new("skopeo").args(args),
        &work.join("skopeo.stderr"),
    )?;
    Ok((run.wall, run.max_rss_kib))
}

/// This process's peak resident set so far, in KiB.
fn self_peak_rss_kib() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &raw mut usage);
        usage
    };
    u64::try_from(usage.ru_maxrss).unwrap_or(0)
}
