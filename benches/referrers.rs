//! Benchmark (a report, not a test): referrers at scale. A layout holds one subject (tagged
//! `v1`) with N referrers plus 10,000 unrelated manifests; for each N this times `discover`,
//! `referrers convert` between every pair of modes, and one more `attach` in each mode, and
//! compares them with one rewrite of the same `index.json`.
//!
//! Run with `cargo bench --bench referrers`. Environment:
//! - `OCISTOW_BENCH_REFERRERS`: comma-separated referrer counts (default `1000,10000,100000`);
//! - `OCISTOW_BENCH_RUNS`: repetitions of each operation, the median is reported (default 3);
//! - `OCISTOW_BENCH_SLOW_SECS`: an operation whose first run takes longer than this is not
//!   repeated (default 10).
//!
//! Layouts are generated directly on disk (not through the CLI), in annotation mode, as ocistow
//! writes it: each referrer has an untagged top-level entry with its annotations,
//! `io.containerd.manifest.subject` and `artifactType`. The response and tag layouts are the
//! results of the first `convert` into those modes.
//!
//! Every measured operation starts from the layout in its source mode: `index.json` is put back
//! (untimed) to the saved bytes of that mode before each run. Blobs are content-addressed and
//! never rewritten, so this is the same layout as a fresh copy, except for record-index blobs
//! an earlier run left unreferenced, which no operation here reads. `sync` is called (untimed)
//! before every measured operation, and the page cache is warm.
//!
//! Baselines, measured on the same `index.json`:
//! - "read+parse index.json": `Layout::read_index` in process;
//! - "rewrite index.json": one `Layout::edit_index` transaction in process (lock, read, parse,
//!   change one annotation, serialize, write a temp file, fsync, rename, fsync the directory);
//! - "untag": the CLI's cheapest write (`ocistow untag`, after an untimed `tag`): process start,
//!   one read of index.json to check the tag, then one transaction;
//! - "read+hash+parse manifests": every manifest blob of the layout read, sha256-verified and
//!   parsed as JSON in process (what any scan of the whole layout must at least do).
//!
//! Each run is timed in wall-clock and in CPU (user + system, from `getrusage`) seconds: the
//! CPU time does not depend on what else the machine runs, the wall time includes fsync waits.
//!
//! Only failures make this exit non-zero; the ratios are printed, never asserted.

mod common;

use common::layout::{self, CONTAINERD_SUBJECT, REF_NAME};
use common::{Who, cpu_time, env_counts, env_number, run_cmd, sync};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ocistow_store::{Algorithm, Digest, Layout};
use serde_json::Value;

const OCISTOW: &str = env!("CARGO_BIN_EXE_ocistow");
const DEFAULT_SIZES: &[usize] = &[1_000, 10_000, 100_000];
const DEFAULT_RUNS: usize = 3;
const DEFAULT_SLOW_SECS: f64 = 10.0;
const UNRELATED: usize = 10_000;
/// Up to this many referrers, the first round also runs `discover` untimed and counts what it
/// prints.
const VERIFY_DISCOVER_MAX: usize = 10_000;

const RESPONSE_SUBJECT: &str = "org.opencontainers.image.referrer.subject";

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); this report takes no arguments.
    common::exit_of("referrers", run())
}

fn run() -> Result<(), String> {
    let sizes = env_counts("OCISTOW_BENCH_REFERRERS", DEFAULT_SIZES)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", DEFAULT_RUNS)?;
    let slow: f64 = env_number("OCISTOW_BENCH_SLOW_SECS", DEFAULT_SLOW_SECS)?;
    if runs == 0 {
        return Err("OCISTOW_BENCH_RUNS must be at least 1".into());
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("referrers-bench");
    remove_dir(&work)?;
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure_all(&work, &sizes, runs, slow);
    let _ = fs::remove_dir_all(&work);
    let results = result?;
    report(&sizes, runs, slow, &results);
    Ok(())
}

// ---- modes and operations -----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Annotation,
    Response,
    Tag,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Annotation, Mode::Response, Mode::Tag];

    fn as_str(self) -> &'static str {
        match self {
            Mode::Annotation => "annotation",
            Mode::Response => "response",
            Mode::Tag => "tag",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    ReadIndex(Mode),
    Rewrite(Mode),
    Untag(Mode),
    ReadManifests,
    Discover(Mode),
    Attach(Mode),
    Convert(Mode, Mode),
}

impl Op {
    fn name(self) -> String {
        match self {
            Op::ReadIndex(m) => format!("read+parse index.json [{}]", m.as_str()),
            Op::Rewrite(m) => format!("rewrite index.json [{}]", m.as_str()),
            Op::Untag(m) => format!("untag (CLI) [{}]", m.as_str()),
            Op::ReadManifests => "read+hash+parse manifests".into(),
            Op::Discover(m) => format!("discover --format json [{}]", m.as_str()),
            Op::Attach(m) => format!("attach [{}]", m.as_str()),
            Op::Convert(a, b) => format!("convert {} -> {}", a.as_str(), b.as_str()),
        }
    }

    /// The mode the layout must be in before the operation runs.
    fn source(self) -> Option<Mode> {
        match self {
            Op::ReadIndex(m)
            | Op::Rewrite(m)
            | Op::Untag(m)
            | Op::Discover(m)
            | Op::Attach(m)
            | Op::Convert(m, _) => Some(m),
            Op::ReadManifests => None,
        }
    }

    /// The baseline the operation is compared with: one rewrite of the index.json it reads.
    fn baseline(self) -> Op {
        Op::Rewrite(self.source().unwrap_or(Mode::Annotation))
    }
}

/// One round, in an order where every source mode exists before it is needed (the first
/// converts out of annotation mode produce the response and tag layouts).
fn round_order() -> Vec<Op> {
    use Mode::{Annotation, Response, Tag};
    vec![
        Op::ReadIndex(Annotation),
        Op::Rewrite(Annotation),
        Op::Untag(Annotation),
        Op::ReadManifests,
        Op::Discover(Annotation),
        Op::Attach(Annotation),
        Op::Convert(Annotation, Response),
        Op::Convert(Annotation, Tag),
        Op::ReadIndex(Response),
        Op::Rewrite(Response),
        Op::Untag(Response),
        Op::Discover(Response),
        Op::Attach(Response),
        Op::Convert(Response, Tag),
        Op::Convert(Response, Annotation),
        Op::ReadIndex(Tag),
        Op::Rewrite(Tag),
        Op::Untag(Tag),
        Op::Discover(Tag),
        Op::Attach(Tag),
        Op::Convert(Tag, Annotation),
        Op::Convert(Tag, Response),
    ]
}

// ---- generating a layout ------------------------------------------------------------------

struct Fixture {
    dir: PathBuf,
    n: usize,
    subject: Digest,
    /// Every manifest blob (subject, referrers, unrelated), as `blobs/sha256/<hex>` paths.
    manifests: Vec<PathBuf>,
    /// The saved `index.json` of each mode, once that mode's layout exists.
    index: [Option<Vec<u8>>; 3],
}

/// Writes the issue's layout (see [`layout::generate`]) in annotation mode.
fn generate(dir: &Path, n: usize) -> Result<Fixture, String> {
    let g = layout::generate(dir, n, UNRELATED)?;
    Ok(Fixture {
        dir: dir.to_path_buf(),
        n,
        subject: g.subject,
        manifests: g.manifests,
        index: [Some(g.index), None, None],
    })
}

// ---- checking a layout --------------------------------------------------------------------

/// Checks that the layout records exactly `expected` referrers of the subject in `mode`, and
/// nothing in the other modes. Returns the size of the record index (0 in annotation mode).
fn check_state(f: &Fixture, mode: Mode, expected: usize) -> Result<u64, String> {
    let index: Value = serde_json::from_slice(&read(&f.dir.join("index.json"))?)
        .map_err(|e| format!("index.json: {e}"))?;
    let entries = index["manifests"]
        .as_array()
        .ok_or("index.json has no manifests array")?;
    let ann = |e: &Value, k: &str| e["annotations"][k].as_str().map(str::to_string);
    let subject = f.subject.as_str();
    let fallback = format!("sha256-{}", f.subject.encoded());
    let annotated = entries
        .iter()
        .filter(|e| ann(e, CONTAINERD_SUBJECT).as_deref() == Some(subject))
        .count();
    let responses: Vec<&Value> = entries
        .iter()
        .filter(|e| ann(e, RESPONSE_SUBJECT).as_deref() == Some(subject))
        .collect();
    let fallbacks: Vec<&Value> = entries
        .iter()
        .filter(|e| ann(e, REF_NAME).as_deref() == Some(fallback.as_str()))
        .collect();
    let (want_entries, want_annotated, records) = match mode {
        Mode::Annotation => (1 + UNRELATED + expected, expected, (0, 0)),
        Mode::Response => (1 + UNRELATED + 1, 0, (1, 0)),
        Mode::Tag => (1 + UNRELATED + 1, 0, (0, 1)),
    };
    if entries.len() != want_entries
        || annotated != want_annotated
        || (responses.len(), fallbacks.len()) != records
    {
        return Err(format!(
            "{} layout with {expected} referrers: {} entries ({annotated} annotated, {} responses, \
             {} fallback tags), expected {want_entries} ({want_annotated}, {}, {})",
            mode.as_str(),
            entries.len(),
            responses.len(),
            fallbacks.len(),
            records.0,
            records.1
        ));
    }
    let Some(record) = responses.first().or(fallbacks.first()) else {
        return Ok(0);
    };
    let digest = record["digest"].as_str().ok_or("record without digest")?;
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or("record digest not sha256")?;
    let bytes = read(&f.dir.join("blobs").join("sha256").join(hex))?;
    let listing: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("record {digest}: {e}"))?;
    let listed = listing["manifests"].as_array().map_or(0, Vec::len);
    if listed != expected {
        return Err(format!(
            "the {} record lists {listed} referrers, expected {expected}",
            mode.as_str()
        ));
    }
    Ok(bytes.len() as u64)
}

/// `discover --format json` run untimed, its output parsed: the number of direct referrers.
fn discovered(f: &Fixture) -> Result<usize, String> {
    let out = run_cmd(
        Command::new(OCISTOW)
            .arg("--format")
            .arg("json")
            .arg("discover")
            .arg(format!("{}:v1", f.dir.display())),
    )?;
    let tree: Value =
        serde_json::from_str(&out).map_err(|e| format!("discover printed bad JSON: {e}"))?;
    Ok(tree["referrers"].as_array().map_or(0, Vec::len))
}

// ---- measuring ----------------------------------------------------------------------------

/// Times of every operation, by referrer count.
type Results = BTreeMap<(usize, Op), Vec<Sample>>;

struct Info {
    generate: Duration,
    index_bytes: [u64; 3],
    record_bytes: u64,
    total: Duration,
}

fn measure_all(
    work: &Path,
    sizes: &[usize],
    runs: usize,
    slow: f64,
) -> Result<(Results, BTreeMap<usize, Info>), String> {
    let mut results = Results::new();
    let mut infos = BTreeMap::new();
    let attach_file = work.join("attach.json");
    write(&attach_file, br#"{"bench":"one more referrer"}"#)?;
    for &n in sizes {
        let start = Instant::now();
        let dir = work.join(format!("layout-{n}"));
        remove_dir(&dir)?;
        eprintln!(
            "N = {n}: generating {} manifests in {}",
            n + UNRELATED + 1,
            dir.display()
        );
        let t = Instant::now();
        let mut f = generate(&dir, n)?;
        let generate_time = t.elapsed();
        sync();
        check_state(&f, Mode::Annotation, n)?;
        let mut record_bytes = 0;
        for round in 1..=runs {
            for op in round_order() {
                let times = results.entry((n, op)).or_default();
                if let Some(first) = times.first()
                    && first.wall.as_secs_f64() > slow
                {
                    continue;
                }
                let sample = measure(&mut f, op, round, &attach_file, &mut record_bytes)?;
                eprintln!(
                    "  round {round}/{runs} {:<36} {:>9.3} s wall {:>9.3} s cpu",
                    op.name(),
                    sample.wall.as_secs_f64(),
                    sample.cpu.as_secs_f64()
                );
                results.entry((n, op)).or_default().push(sample);
            }
        }
        let mut index_bytes = [0; 3];
        for m in Mode::ALL {
            index_bytes[m.slot()] = f.index[m.slot()].as_ref().map_or(0, |b| b.len() as u64);
        }
        remove_dir(&dir)?;
        infos.insert(
            n,
            Info {
                generate: generate_time,
                index_bytes,
                record_bytes,
                total: start.elapsed(),
            },
        );
    }
    Ok((results, infos))
}

/// Puts the layout in `mode` (its saved index.json), untimed.
fn restore(f: &Fixture, mode: Mode) -> Result<(), String> {
    let bytes = f.index[mode.slot()]
        .as_ref()
        .ok_or_else(|| format!("no {} layout yet", mode.as_str()))?;
    write(&f.dir.join("index.json"), bytes)?;
    sync();
    Ok(())
}

fn measure(
    f: &mut Fixture,
    op: Op,
    round: usize,
    attach_file: &Path,
    record_bytes: &mut u64,
) -> Result<Sample, String> {
    if let Some(m) = op.source() {
        restore(f, m)?;
    }
    let first = round == 1;
    let reference = format!("{}:v1", f.dir.display());
    let sample = match op {
        Op::ReadIndex(_) => {
            let clock = Clock::start(Who::Myself);
            let layout = Layout::open(&f.dir).map_err(|e| e.to_string())?;
            let index = layout.read_index().map_err(|e| e.to_string())?;
            let sample = clock.stop();
            if index.manifests().is_empty() {
                return Err("index.json has no entries".into());
            }
            sample
        }
        Op::Rewrite(_) => {
            sync();
            let clock = Clock::start(Who::Myself);
            let layout = Layout::open(&f.dir).map_err(|e| e.to_string())?;
            layout
                .edit_index(|index| {
                    index.set_annotation("com.example.bench.rewrite", &round.to_string());
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            clock.stop()
        }
        Op::Untag(_) => {
            run_cmd(
                Command::new(OCISTOW)
                    .arg("tag")
                    .arg(&reference)
                    .arg("bench-x"),
            )?;
            sync();
            timed(
                Command::new(OCISTOW)
                    .arg("untag")
                    .arg(format!("{}:bench-x", f.dir.display())),
            )?
        }
        Op::ReadManifests => {
            let clock = Clock::start(Who::Myself);
            let mut parsed = 0usize;
            for path in &f.manifests {
                let bytes = read(path)?;
                let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
                if Digest::of_bytes(Algorithm::Sha256, &bytes).encoded() != name {
                    return Err(format!("{}: digest mismatch", path.display()));
                }
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                parsed += usize::from(v.is_object());
            }
            if parsed != f.manifests.len() {
                return Err("a manifest blob is not a JSON object".into());
            }
            clock.stop()
        }
        Op::Discover(m) => {
            // Checked where it is cheap; at larger N the convert reports and record checks
            // (which come from the same scan) vouch for the layout.
            if first && f.n <= VERIFY_DISCOVER_MAX {
                let found = discovered(f)?;
                if found != f.n {
                    return Err(format!(
                        "discover in {} mode found {found} referrers, expected {}",
                        m.as_str(),
                        f.n
                    ));
                }
                restore(f, m)?;
            }
            timed(
                Command::new(OCISTOW)
                    .arg("--format")
                    .arg("json")
                    .arg("discover")
                    .arg(&reference)
                    .stdout(Stdio::null()),
            )?
        }
        Op::Attach(m) => {
            let sample = timed(
                Command::new(OCISTOW)
                    .arg("attach")
                    .arg(&reference)
                    .arg(format!("{}:application/json", attach_file.display()))
                    .arg("--artifact-type")
                    .arg("application/vnd.example.bench.attach")
                    .arg("-a")
                    .arg(format!(
                        "com.example.bench.run={}-{}-{round}",
                        f.n,
                        m.as_str()
                    ))
                    .arg("--referrers-mode")
                    .arg(m.as_str()),
            )?;
            if first {
                check_state(f, m, f.n + 1)?;
            }
            sample
        }
        Op::Convert(from, to) => {
            let (sample, out) = timed_output(
                Command::new(OCISTOW)
                    .arg("--format")
                    .arg("json")
                    .arg("referrers")
                    .arg("convert")
                    .arg(&f.dir)
                    .arg("--to")
                    .arg(to.as_str()),
            )?;
            let report: Value =
                serde_json::from_str(&out).map_err(|e| format!("convert report: {e}: {out}"))?;
            if report["referrers"].as_u64() != Some(f.n as u64) || report["changed"] != true {
                return Err(format!(
                    "convert {} -> {}: unexpected report {out}",
                    from.as_str(),
                    to.as_str()
                ));
            }
            if first || f.index[to.slot()].is_none() {
                let record = check_state(f, to, f.n)?;
                *record_bytes = (*record_bytes).max(record);
            }
            if f.index[to.slot()].is_none() {
                f.index[to.slot()] = Some(read(&f.dir.join("index.json"))?);
            }
            sample
        }
    };
    Ok(sample)
}

// ---- processes and files ------------------------------------------------------------------

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

fn timed(cmd: &mut Command) -> Result<Sample, String> {
    Ok(timed_output(cmd)?.0)
}

/// Runs a command after `sync`, timing it; returns its stdout too.
fn timed_output(cmd: &mut Command) -> Result<(Sample, String), String> {
    sync();
    let clock = Clock::start(Who::Children);
    let out = run_cmd(cmd.env_remove("OCISTOW_REFERRERS_MODE"))?;
    Ok((clock.stop(), out))
}

/// Wall-clock and CPU (user + system) time of one run. The CPU time is what the operation
/// costs whatever else the machine is doing; the wall time also counts fsync waits (and, on
/// a busy machine, waiting for a core).
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

struct Clock {
    who: Who,
    wall: Instant,
    cpu: Duration,
}

impl Clock {
    /// `who` is `Who::Myself` for work done in this process, `Who::Children` for a command
    /// (waited for before `stop`).
    fn start(who: Who) -> Clock {
        Clock {
            who,
            cpu: cpu_time(who),
            wall: Instant::now(),
        }
    }

    fn stop(&self) -> Sample {
        let wall = self.wall.elapsed();
        Sample {
            wall,
            cpu: cpu_time(self.who).saturating_sub(self.cpu),
        }
    }
}

// ---- report -------------------------------------------------------------------------------

fn median(times: impl Iterator<Item = Duration>) -> f64 {
    let mut secs: Vec<f64> = times.map(|t| t.as_secs_f64()).collect();
    secs.sort_by(f64::total_cmp);
    let n = secs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        secs[n / 2]
    } else {
        f64::midpoint(secs[n / 2 - 1], secs[n / 2])
    }
}

fn report(
    sizes: &[usize],
    runs: usize,
    slow: f64,
    (results, infos): &(Results, BTreeMap<usize, Info>),
) {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "referrers benchmark: one subject, N referrers, {UNRELATED} unrelated manifests; \
         median of {runs} run(s) (1 when the first took > {slow} s), warm page cache"
    );
    let _ = writeln!(out);
    for (n, info) in infos {
        let _ = writeln!(
            out,
            "N = {n}: generated in {:.1} s; index.json {:.1} MiB (annotation), {:.1} MiB \
             (response), {:.1} MiB (tag); record index {:.1} MiB; whole N took {:.0} s",
            info.generate.as_secs_f64(),
            mib(info.index_bytes[0]),
            mib(info.index_bytes[1]),
            mib(info.index_bytes[2]),
            mib(info.record_bytes),
            info.total.as_secs_f64()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "wall, cpu = medians of wall-clock and CPU (user+sys) seconds; x rewrite = wall / wall of \
         one index.json rewrite of the operation's source layout; growth = median / median at \
         the previous N (wall, then cpu)"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>7}  {:<36} {:>8} {:>8} {:>9} {:>17}   wall runs (s)",
        "N", "operation", "wall s", "cpu s", "x rewrite", "growth wall/cpu"
    );
    for op in round_order_sorted() {
        let mut prev: Option<(usize, f64, f64)> = None;
        for &n in sizes {
            let Some(samples) = results.get(&(n, op)) else {
                continue;
            };
            let wall = median(samples.iter().map(|s| s.wall));
            let cpu = median(samples.iter().map(|s| s.cpu));
            let base = results
                .get(&(n, op.baseline()))
                .map_or(f64::NAN, |b| median(b.iter().map(|s| s.wall)));
            let growth = match prev {
                Some((pn, pw, pc)) => {
                    format!("{:.1}/{:.1} ({}x N)", wall / pw, cpu / pc, n / pn.max(1))
                }
                None => "-".into(),
            };
            let runs: Vec<String> = samples
                .iter()
                .map(|s| format!("{:.3}", s.wall.as_secs_f64()))
                .collect();
            let _ = writeln!(
                out,
                "{n:>7}  {:<36} {wall:>8.3} {cpu:>8.3} {:>9.1} {growth:>17}   {}",
                op.name(),
                wall / base,
                runs.join(" ")
            );
            prev = Some((n, wall, cpu));
        }
    }
    print!("{out}");
}

/// Operations in report order: baselines first, then discover, attach, convert.
fn round_order_sorted() -> Vec<Op> {
    let mut ops = round_order();
    ops.sort();
    ops
}
