//! A coverage-free mutation fuzzer that runs on stable Rust (cargo-fuzz needs nightly).
//!
//! Each target starts from its seed corpus in `fuzz/corpus/<target>/`, mutates inputs with a
//! seeded generator (the same seed gives the same inputs), and runs each one under
//! `catch_unwind` with a watchdog: a panic, or an input that runs longer than the hang limit,
//! is saved under `fuzz/artifacts/<target>/` and fails the run. Where a parser has a
//! serializer, parse -> serialize -> parse must give the same bytes again.
//!
//! ```text
//! cargo run --release -p ocistow-fuzz -- --seconds 60 [--seed N] [--iterations N] [--target NAME]
//! ```

use std::fs;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod mutate;
mod targets;

use mutate::Rng;
use targets::{TARGETS, Target};

/// An input running longer than this is a hang.
const HANG_LIMIT: Duration = Duration::from_secs(10);
/// Inputs grow up to this size; larger mutants are cut.
const MAX_INPUT: usize = 256 << 10;

struct Options {
    seconds: u64,
    iterations: u64,
    seed: u64,
    target: Option<String>,
    dir: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        seconds: 10,
        iterations: u64::MAX,
        seed: 1,
        target: None,
        dir: Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--seconds" => o.seconds = number(&value("--seconds")?)?,
            "--iterations" => o.iterations = number(&value("--iterations")?)?,
            "--seed" => o.seed = number(&value("--seed")?)?,
            "--target" => o.target = Some(value("--target")?),
            "--dir" => o.dir = value("--dir")?.into(),
            "-h" | "--help" => {
                return Err(format!(
                    "usage: ocistow-fuzz [--seconds N] [--iterations N] [--seed N] [--target NAME] [--dir FUZZ_DIR]\ntargets: {}",
                    TARGETS
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(o)
}

fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("{s:?} is not a number"))
}

/// The input being run, for the watchdog to save if it hangs.
struct Current {
    target: Mutex<(&'static str, Vec<u8>)>,
    started_ms: AtomicU64,
    busy: AtomicBool,
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| options.target.as_deref().is_none_or(|n| n == t.name))
        .collect();
    if targets.is_empty() {
        eprintln!("no target named {:?}", options.target);
        return ExitCode::from(2);
    }
    let epoch = Instant::now();
    let current = Arc::new(Current {
        target: Mutex::new(("", Vec::new())),
        started_ms: AtomicU64::new(0),
        busy: AtomicBool::new(false),
    });
    watchdog(Arc::clone(&current), epoch, options.dir.join("artifacts"));
    // Panics are expected findings: report them once each, without the default hook's noise.
    panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));

    let budget = Duration::from_secs(options.seconds) / targets.len() as u32;
    let mut failures = 0;
    for target in targets {
        let seeds = load_corpus(&options.dir.join("corpus").join(target.name));
        if seeds.is_empty() {
            eprintln!(
                "{}: no seed corpus in fuzz/corpus/{}",
                target.name, target.name
            );
            return ExitCode::from(2);
        }
        let mut rng = Rng::new(options.seed ^ fnv(target.name.as_bytes()));
        let started = Instant::now();
        let mut runs = 0u64;
        let mut found = 0u64;
        while runs < options.iterations && started.elapsed() < budget {
            let input = if runs < seeds.len() as u64 {
                seeds[runs as usize].clone()
            } else {
                let base = &seeds[rng.below(seeds.len())];
                let other = &seeds[rng.below(seeds.len())];
                let mut m = mutate::mutate(&mut rng, base, other, target.text);
                m.truncate(MAX_INPUT);
                (target.fixup)(&mut m);
                m
            };
            if let Ok(mut c) = current.target.lock() {
                *c = (target.name, input.clone());
            }
            current
                .started_ms
                .store(epoch.elapsed().as_millis() as u64, Ordering::SeqCst);
            current.busy.store(true, Ordering::SeqCst);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
            current.busy.store(false, Ordering::SeqCst);
            if outcome.is_err() {
                found += 1;
                save(&options.dir.join("artifacts"), target.name, &input);
            }
            runs += 1;
        }
        println!(
            "{}: {runs} inputs ({} seeds) in {:.1} s, {found} failures",
            target.name,
            seeds.len(),
            started.elapsed().as_secs_f64()
        );
        failures += found;
    }
    if failures > 0 {
        eprintln!("{failures} failing inputs saved under fuzz/artifacts/");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Saves the running input and ends the process when one input runs past the hang limit.
fn watchdog(current: Arc<Current>, epoch: Instant, artifacts: PathBuf) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let started = Duration::from_millis(current.started_ms.load(Ordering::SeqCst));
            if current.busy.load(Ordering::SeqCst)
                && epoch.elapsed().saturating_sub(started) > HANG_LIMIT
            {
                if let Ok(c) = current.target.lock() {
                    eprintln!("hang: a {} input ran longer than {HANG_LIMIT:?}", c.0);
                    save(&artifacts, c.0, &c.1);
                }
                std::process::exit(1);
            }
        }
    });
}

fn save(artifacts: &Path, target: &str, input: &[u8]) {
    let dir = artifacts.join(target);
    let path = dir.join(format!("{:016x}", fnv(input)));
    let saved = fs::create_dir_all(&dir)
        .and_then(|()| fs::File::create(&path))
        .and_then(|mut f| f.write_all(input));
    match saved {
        Ok(()) => eprintln!("saved {}", path.display()),
        Err(e) => eprintln!("could not save {}: {e}", path.display()),
    }
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    // Sorted, so a seed gives the same run on every machine.
    names.sort();
    names
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .map(|mut v| {
            v.truncate(MAX_INPUT);
            v
        })
        .collect()
}

/// FNV-1a, for stable names and per-target seeds.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
