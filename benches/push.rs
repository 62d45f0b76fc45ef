//! Benchmark (a report, not a test): how long `ocistow push` takes to store a large file,
//! compared with hashing it (`openssl dgst -sha256`) plus copying it (`cp`).
//!
//! Run with `cargo bench --bench push`. Environment:
//! - `OCISTOW_BENCH_SIZE_MIB`: size of the input file in MiB (default 1024);
//! - `OCISTOW_BENCH_RUNS`: repetitions of each command, the median is reported (default 3);
//! - `OCISTOW_BENCH_WARMUP`: 1 (default) runs each command once, untimed, right before its timed
//!   run and deletes that output just before timing, so the timed run's page cache gets freshly
//!   freed memory; 0 skips this;
//! - `OCISTOW_BENCH_SETTLE_SECS`: seconds to wait before each timed run (default 0). With
//!   `WARMUP=0` this shows the cost of writing into memory left idle (large in VMs that hand idle
//!   memory back to their host).
//!
//! The input is incompressible pseudo-random data. The page cache is warmed by reading the file
//! once before any measurement, and `sync` is called (untimed) before every measured command so
//! that none of them pays for write-back left over by another. Contenders are interleaved round
//! by round so that slow drifts of the machine hit all of them alike. Wall and CPU (user+sys of
//! the child, from `getrusage`) times are printed, with the load average before and after.
//!
//! Only process failures make this exit non-zero; the ratio against the target is printed, never
//! asserted.

mod common;

use common::{
    Who, cpu_time, env_number, generate, load_average, median, remove_path, run_cmd, sync,
};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const OCISTOW: &str = env!("CARGO_BIN_EXE_ocistow");
const DEFAULT_SIZE_MIB: u64 = 1024;
const DEFAULT_RUNS: usize = 3;
const TARGET_RATIO: f64 = 1.0;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); this report takes no arguments.
    common::exit_of("push", run())
}

fn run() -> Result<(), String> {
    let size_mib: u64 = env_number("OCISTOW_BENCH_SIZE_MIB", DEFAULT_SIZE_MIB)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", DEFAULT_RUNS)?;
    if size_mib == 0 || runs == 0 {
        return Err("OCISTOW_BENCH_SIZE_MIB and OCISTOW_BENCH_RUNS must be at least 1".into());
    }
    let warmup: u8 = env_number("OCISTOW_BENCH_WARMUP", 1)?;
    let settle: f64 = env_number("OCISTOW_BENCH_SETTLE_SECS", 0.0)?;
    if !settle.is_finite() || settle < 0.0 {
        return Err("OCISTOW_BENCH_SETTLE_SECS must be a number of seconds".into());
    }
    let opts = Options {
        size: size_mib << 20,
        runs,
        warmup: warmup != 0,
        settle: Duration::from_secs_f64(settle),
    };

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("push-bench");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure(&work, &opts);
    // Leave no GiB-sized files behind, whatever happened.
    let _ = fs::remove_dir_all(&work);
    result
}

/// The commands compared. The first three make the target ratio; the others are for reference.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Openssl,
    Cp,
    Push,
    BlobPut,
    CpFsync,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Openssl,
        Kind::Cp,
        Kind::Push,
        Kind::BlobPut,
        Kind::CpFsync,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Openssl => "openssl dgst -sha256",
            Kind::Cp => "cp",
            Kind::Push => "ocistow push",
            Kind::BlobPut => "ocistow blob put",
            Kind::CpFsync => "cp + fsync(copy)",
        }
    }

    fn reference_only(self) -> bool {
        matches!(self, Kind::BlobPut | Kind::CpFsync)
    }

    /// Where this command writes, in slot `slot` (the timed run and the warm-up use two slots).
    fn output(self, work: &Path, slot: &str) -> Option<PathBuf> {
        match self {
            Kind::Openssl => None,
            Kind::Cp | Kind::CpFsync => Some(work.join(format!("copy-{slot}.bin"))),
            Kind::Push | Kind::BlobPut => Some(work.join(format!("layout-{slot}"))),
        }
    }

    /// Clears the output and, for ocistow, creates the empty layout (untimed).
    fn prepare(self, out: Option<&Path>) -> Result<(), String> {
        if let Some(out) = out {
            remove_path(out)?;
            if matches!(self, Kind::Push | Kind::BlobPut) {
                run_cmd(Command::new(OCISTOW).arg("init").arg(out))?;
            }
        }
        Ok(())
    }

    /// Runs the command itself: what is timed.
    fn exec(self, input: &Path, out: Option<&Path>) -> Result<(), String> {
        let out = || out.expect("writers have an output");
        match self {
            Kind::Openssl => run_cmd(
                Command::new("openssl")
                    .arg("dgst")
                    .arg("-sha256")
                    .arg(input),
            ),
            Kind::Cp => run_cmd(Command::new("cp").arg(input).arg(out())),
            Kind::CpFsync => {
                run_cmd(Command::new("cp").arg(input).arg(out()))?;
                File::open(out())
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("fsync {}: {e}", out().display()))?;
                Ok(String::new())
            }
            Kind::Push => run_cmd(
                Command::new(OCISTOW)
                    .arg("push")
                    .arg(format!("{}:bench", out().display()))
                    .arg(input),
            ),
            Kind::BlobPut => run_cmd(
                Command::new(OCISTOW)
                    .arg("blob")
                    .arg("put")
                    .arg(out())
                    .arg(input),
            ),
        }
        .map(drop)
    }

    /// Checks what was written: the copy's size, or the blob under its digest.
    fn verify(self, out: Option<&Path>, hex: &str, size: u64) -> Result<(), String> {
        let path = match (self, out) {
            (Kind::Openssl, _) | (_, None) => return Ok(()),
            (Kind::Cp | Kind::CpFsync, Some(out)) => out.to_path_buf(),
            (Kind::Push | Kind::BlobPut, Some(out)) => out.join("blobs").join("sha256").join(hex),
        };
        let len = fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if len != size {
            return Err(format!("{}: {len} bytes, expected {size}", path.display()));
        }
        Ok(())
    }
}

struct Options {
    size: u64,
    runs: usize,
    warmup: bool,
    settle: Duration,
}

/// One timed run of `kind`, set up as the options say.
fn run_once(
    kind: Kind,
    work: &Path,
    input: &Path,
    hex: &str,
    opts: &Options,
) -> Result<(Duration, Duration), String> {
    let out = kind.output(work, "timed");
    let scratch = kind.output(work, "warmup");
    kind.prepare(out.as_deref())?;
    if opts.warmup {
        // An untimed run whose output is deleted just before the timed one: the timed run then
        // gets freshly freed, already touched memory for its page cache, as on a machine that
        // has been busy. (In a VM that returns free memory to its host, memory left idle for
        // a few seconds costs a host page fault per page when the guest touches it again.)
        kind.prepare(scratch.as_deref())?;
        kind.exec(input, scratch.as_deref())?;
    }
    sync();
    if let Some(scratch) = &scratch {
        remove_path(scratch)?;
    }
    if !opts.settle.is_zero() {
        std::thread::sleep(opts.settle);
    }
    let cpu_before = cpu_time(Who::Children);
    let start = Instant::now();
    kind.exec(input, out.as_deref())?;
    let elapsed = start.elapsed();
    let cpu = cpu_time(Who::Children).saturating_sub(cpu_before);
    kind.verify(out.as_deref(), hex, opts.size)?;
    if let Some(out) = &out {
        remove_path(out)?;
    }
    Ok((elapsed, cpu))
}

fn measure(work: &Path, opts: &Options) -> Result<(), String> {
    let input = work.join("input.bin");
    eprintln!(
        "generating {} MiB of pseudo-random data in {}",
        opts.size >> 20,
        input.display()
    );
    generate(&input, opts.size, 0).map_err(|e| format!("{}: {e}", input.display()))?;
    sync();
    // Warm the page cache: every contender then reads the input from memory.
    warm(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let hex = openssl_hex(&input)?;

    let load_before = load_average();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); Kind::ALL.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); Kind::ALL.len()];
    for round in 1..=opts.runs {
        eprintln!("round {round}/{}", opts.runs);
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let (wall, used) = run_once(kind, work, &input, &hex, opts)?;
            times[i].push(wall);
            cpu[i].push(used);
        }
    }
    report(opts, &times, &cpu);
    // Other work on the machine skews the figures; show how busy it was.
    println!(
        "load average (1 min) before/after: {load_before} / {}",
        load_average()
    );
    Ok(())
}

fn warm(path: &Path) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? != 0 {}
    Ok(())
}

/// The hex sha256 of `path` as openssl prints it (`SHA2-256(path)= hex`).
fn openssl_hex(path: &Path) -> Result<String, String> {
    let out = run_cmd(Command::new("openssl").arg("dgst").arg("-sha256").arg(path))?;
    out.rsplit(' ')
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() == 64)
        .ok_or_else(|| format!("unexpected openssl output: {out:?}"))
}

fn report(opts: &Options, times: &[Vec<Duration>], cpu: &[Vec<Duration>]) {
    let mb = opts.size as f64 / 1e6;
    let med = |kind: Kind| {
        Kind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(f64::NAN, |i| median(&times[i]))
    };
    println!();
    println!(
        "push benchmark: {} MiB input, {} run(s) each, median reported; warm page cache for the \
         input; warm-up run before each timed run: {}; settle before each timed run: {:.1} s",
        opts.size >> 20,
        opts.runs,
        if opts.warmup { "yes" } else { "no" },
        opts.settle.as_secs_f64()
    );
    println!();
    println!(
        "{:<22} {:>9} {:>8} {:>9}   wall time of each run (s)",
        "command", "median s", "MB/s", "cpu s"
    );
    for ((kind, runs), cpu) in Kind::ALL.into_iter().zip(times).zip(cpu) {
        let m = median(runs);
        let each: Vec<String> = runs
            .iter()
            .map(|t| format!("{:.3}", t.as_secs_f64()))
            .collect();
        println!(
            "{:<22} {:>9.3} {:>8.0} {:>9.3}   {}{}",
            kind.name(),
            m,
            mb / m,
            median(cpu),
            each.join(" "),
            if kind.reference_only() {
                "  (reference)"
            } else {
                ""
            }
        );
    }
    let openssl = med(Kind::Openssl);
    let cp = med(Kind::Cp);
    let push = med(Kind::Push);
    let cp_fsync = med(Kind::CpFsync);
    let ratio = push / (openssl + cp);
    let per_round: Vec<String> = (0..opts.runs)
        .map(|r| {
            let t = |k: Kind| times[k as usize][r].as_secs_f64();
            format!("{:.3}", t(Kind::Push) / (t(Kind::Openssl) + t(Kind::Cp)))
        })
        .collect();
    println!();
    println!(
        "machine limit (openssl sha256 throughput): {:.0} MB/s",
        mb / openssl
    );
    println!(
        "ratio push / (openssl + cp):          {ratio:.3}  (target <= {TARGET_RATIO:.1}: {}; per round: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        },
        per_round.join(" ")
    );
    println!("ratio push / cp:                      {:.3}", push / cp);
    println!(
        "ratio push / openssl:                 {:.3}",
        push / openssl
    );
    println!(
        "ratio push / (openssl + cp + fsync):  {:.3}  (cp followed by fsync of the copy, as push does)",
        push / (openssl + cp_fsync)
    );
}
