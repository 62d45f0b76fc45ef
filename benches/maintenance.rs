//! Benchmark (a report, not a test): `ocistow gc` and `ocistow fsck` on a layout of many small
//! blobs, and fsck's hashing throughput on one large blob against the machine's sha256 limit
//! (`openssl dgst -sha256`).
//!
//! Run with `cargo bench --bench maintenance`. Environment:
//! - `OCISTOW_BENCH_BLOBS`: blobs in the many-blobs layout (default 100000);
//! - `OCISTOW_BENCH_SIZE_MIB`: size of the large blob in MiB (default 1024);
//! - `OCISTOW_BENCH_RUNS`: repetitions of each repeatable measurement, median reported (default 3).
//!
//! The many-blobs layout is generated with the library's digests but written straight to
//! `blobs/sha256/` (no fsync per file), so that making 100,000 blobs takes seconds: 1% of the
//! blobs are image manifests of 89 small layers each (nine in ten of them tagged), plus
//! referrers recorded as subject annotations on live and on dead subjects, plus loose blobs, so
//! that gc has both marking and sweeping to do (about 19% of the blobs are garbage). Everything is
//! measured with a warm page cache (each layout is read once, untimed, before measuring).
//!
//! Only failures (a command failing, a result that is wrong) make this exit non-zero; figures are
//! printed, never asserted.

mod common;

use common::{env_number, sync};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ocistow_store::layout::NoProgress;
use ocistow_store::maintenance::FsckOptions;
use ocistow_store::model::media;
use ocistow_store::{Algorithm, Descriptor, Digest, Layout};

const OCISTOW: &str = env!("CARGO_BIN_EXE_ocistow");
const LAYERS_PER_MANIFEST: usize = 89;

fn main() -> ExitCode {
    common::exit_of("maintenance", run())
}

fn run() -> Result<(), String> {
    let blobs: usize = env_number("OCISTOW_BENCH_BLOBS", 100_000)?;
    let size_mib: u64 = env_number("OCISTOW_BENCH_SIZE_MIB", 1024)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", 3)?;
    if blobs < 1_000 || size_mib == 0 || runs == 0 {
        return Err("OCISTOW_BENCH_BLOBS >= 1000, SIZE_MIB and RUNS >= 1 please".into());
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("maintenance-bench");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure(&work, blobs, size_mib << 20, runs);
    let _ = fs::remove_dir_all(&work);
    result
}

fn measure(work: &Path, blobs: usize, big: u64, runs: usize) -> Result<(), String> {
    print_machine();

    // ---- many small blobs
    let many = work.join("many");
    let start = Instant::now();
    let expect = generate_many(&many, blobs).map_err(|e| format!("generating: {e}"))?;
    eprintln!(
        "generated {} blobs ({} MB) in {:.1}s; {} unreachable",
        expect.total,
        expect.bytes / 1_000_000,
        start.elapsed().as_secs_f64(),
        expect.dead
    );
    sync();
    warm_tree(&many).map_err(|e| format!("warming: {e}"))?;

    let fsck_cli = median_of(runs, || {
        timed(Command::new(OCISTOW).arg("fsck").arg(&many), &[0])
    })?;
    let layout = Layout::open(&many).map_err(|e| e.to_string())?;
    let fsck_lib = |threads: usize| {
        median_of(runs, || {
            let start = Instant::now();
            let report = layout
                .fsck(
                    &FsckOptions::default().threads(NonZeroUsize::new(threads)),
                    &NoProgress,
                )
                .map_err(|e| e.to_string())?;
            if !report.is_clean() || report.blobs_checked != expect.total {
                return Err(format!("fsck found problems: {:?}", report.problems));
            }
            Ok(start.elapsed())
        })
    };
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let fsck_1 = fsck_lib(1)?;
    let fsck_n = fsck_lib(cores)?;
    let dry = median_of(runs, || {
        timed(
            Command::new(OCISTOW)
                .args(["gc", "--dry-run", "--grace", "0s"])
                .arg(&many),
            &[0],
        )
    })?;
    let gc = timed(
        Command::new(OCISTOW)
            .args(["gc", "--grace", "0s"])
            .arg(&many),
        &[0],
    )?;
    let (left, _) = layout.blob_usage().map_err(|e| e.to_string())?;
    if left != expect.total - expect.dead {
        return Err(format!(
            "gc left {left} blobs, expected {}",
            expect.total - expect.dead
        ));
    }
    let after = layout
        .fsck(&FsckOptions::default(), &NoProgress)
        .map_err(|e| e.to_string())?;
    if !after.is_clean() {
        return Err(format!("fsck after gc: {:?}", after.problems));
    }
    let fsck_after = median_of(runs, || {
        timed(Command::new(OCISTOW).arg("fsck").arg(&many), &[0])
    })?;
    let _ = fs::remove_dir_all(&many);
    // The machine's own cost of deleting that many small files.
    let doomed = work.join("doomed");
    fs::create_dir_all(&doomed).map_err(|e| format!("{}: {e}", doomed.display()))?;
    let mut rng = Rng(7);
    for i in 0..expect.dead {
        let n = 256 + (rng.next() % 1792) as usize;
        fs::write(doomed.join(i.to_string()), rng.bytes(n)).map_err(|e| e.to_string())?;
    }
    let rm = timed(Command::new("rm").arg("-rf").arg(&doomed), &[0])?;

    // ---- one large blob
    let large = work.join("large");
    let (blob_path, hex) = generate_large(&large, big).map_err(|e| format!("generating: {e}"))?;
    sync();
    warm_file(&blob_path).map_err(|e| format!("warming: {e}"))?;
    let ours = openssl_hex(&blob_path)?;
    if ours != hex {
        return Err(format!("openssl says {ours}, we computed {hex}"));
    }
    let mut openssl = Vec::new();
    let mut sha256sum = Vec::new();
    let mut fsck_big = Vec::new();
    for _ in 0..runs {
        openssl.push(timed(
            Command::new("openssl")
                .args(["dgst", "-sha256"])
                .arg(&blob_path),
            &[0],
        )?);
        sha256sum.push(timed(Command::new("sha256sum").arg(&blob_path), &[0])?);
        fsck_big.push(timed(Command::new(OCISTOW).arg("fsck").arg(&large), &[0])?);
    }
    let (openssl, sha256sum, fsck_big) = (median(openssl), median(sha256sum), median(fsck_big));

    let mb = |bytes: u64, t: Duration| bytes as f64 / 1e6 / t.as_secs_f64();
    println!();
    println!(
        "gc and fsck, {} blobs ({} MB, {} unreachable), warm page cache, median of {runs}",
        expect.total,
        expect.bytes / 1_000_000,
        expect.dead
    );
    println!();
    println!("{:<44} {:>9} {:>12}", "measurement", "seconds", "blobs/s");
    let row = |name: &str, t: Duration, n: usize| {
        println!(
            "{name:<44} {:>9.3} {:>12.0}",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64()
        );
    };
    row("ocistow fsck (CLI)", fsck_cli, expect.total);
    row("fsck, library, 1 hashing thread", fsck_1, expect.total);
    row(
        &format!("fsck, library, {cores} hashing threads"),
        fsck_n,
        expect.total,
    );
    row("ocistow gc --dry-run (mark only)", dry, expect.total);
    row("ocistow gc (mark + sweep), one run", gc, expect.total);
    row(
        &format!("rm -rf of {} small files (reference)", expect.dead),
        rm,
        expect.dead,
    );
    row(
        "ocistow fsck after gc",
        fsck_after,
        expect.total - expect.dead,
    );
    println!(
        "parallel speed-up of fsck hashing: {:.2}x on {cores} threads",
        fsck_1.as_secs_f64() / fsck_n.as_secs_f64()
    );
    println!(
        "gc sweep (gc - dry run) / rm -rf of as many files: {:.2}",
        (gc.as_secs_f64() - dry.as_secs_f64()).max(0.0) / rm.as_secs_f64()
    );
    println!();
    println!("one {} MiB blob, median of {runs}", big >> 20);
    println!("{:<44} {:>9} {:>12}", "measurement", "seconds", "MB/s");
    println!(
        "{:<44} {:>9.3} {:>12.0}",
        "openssl dgst -sha256 (the limit)",
        openssl.as_secs_f64(),
        mb(big, openssl)
    );
    println!(
        "{:<44} {:>9.3} {:>12.0}",
        "sha256sum (reference)",
        sha256sum.as_secs_f64(),
        mb(big, sha256sum)
    );
    println!(
        "{:<44} {:>9.3} {:>12.0}",
        "ocistow fsck",
        fsck_big.as_secs_f64(),
        mb(big, fsck_big)
    );
    println!(
        "fsck throughput / openssl throughput: {:.2}",
        openssl.as_secs_f64() / fsck_big.as_secs_f64()
    );
    Ok(())
}

struct Expect {
    total: usize,
    dead: usize,
    bytes: u64,
}

/// xorshift64*: incompressible, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

struct Writer<'a> {
    dir: &'a Path,
    count: usize,
    bytes: u64,
}

impl Writer<'_> {
    /// Writes a blob straight to its place under blobs/ (no temp file, no fsync: a fixture).
    fn put(&mut self, bytes: &[u8], media_type: &str) -> io::Result<Descriptor> {
        let d = Digest::of_bytes(Algorithm::Sha256, bytes);
        let path = self.dir.join(d.blob_path());
        if !path.exists() {
            fs::write(&path, bytes)?;
            self.count += 1;
            self.bytes += bytes.len() as u64;
        }
        Ok(Descriptor::new(media_type, d, bytes.len() as u64))
    }

    fn manifest(
        &mut self,
        config: &Descriptor,
        layers: &[Descriptor],
        subject: Option<&Descriptor>,
        artifact_type: Option<&str>,
    ) -> io::Result<Descriptor> {
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::IMAGE_MANIFEST,
            "config": config,
            "layers": layers,
            "annotations": {"org.opencontainers.image.created": "2020-01-01T00:00:00Z"},
        });
        if let Some(at) = artifact_type {
            m["artifactType"] = at.into();
        }
        if let Some(s) = subject {
            m["subject"] = serde_json::to_value(s.plain()).map_err(io::Error::other)?;
        }
        let bytes = serde_json::to_vec(&m).map_err(io::Error::other)?;
        let mut d = self.put(&bytes, media::IMAGE_MANIFEST)?;
        if let Some(at) = artifact_type {
            d.set_artifact_type(at);
        }
        Ok(d)
    }
}

fn generate_many(dir: &Path, total: usize) -> io::Result<Expect> {
    let layout = Layout::init(dir).map_err(io::Error::other)?;
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut w = Writer {
        dir,
        count: 0,
        bytes: 0,
    };
    let config = w.put(b"{}", media::EMPTY)?;
    let manifests = total / 100;
    let tagged = manifests * 9 / 10;
    let live_referrers = manifests / 10;
    let dead_referrers = manifests / 20;
    let mut entries = Vec::new();
    let mut subjects = Vec::new();
    let mut dead = 0;
    for i in 0..manifests {
        let layers: Vec<Descriptor> = (0..LAYERS_PER_MANIFEST)
            .map(|_| {
                let n = 256 + (rng.next() % 1792) as usize;
                w.put(&rng.bytes(n), media::LAYER_TAR)
            })
            .collect::<io::Result<_>>()?;
        let m = w.manifest(&config, &layers, None, None)?;
        if i < tagged {
            let mut e = m.clone();
            e.set_annotation("org.opencontainers.image.ref.name", &format!("t{i}"));
            entries.push(e);
        } else {
            dead += 1 + LAYERS_PER_MANIFEST;
        }
        subjects.push(m);
    }
    // Referrers on live subjects (kept) and on unreferenced ones (collected, entries removed).
    let mut add_referrer = |w: &mut Writer, subject: &Descriptor, n: usize| -> io::Result<()> {
        let layer = w.put(
            format!("signature {n}").as_bytes(),
            "application/octet-stream",
        )?;
        let at = "application/vnd.example.sig";
        let r = w.manifest(&config, &[layer], Some(subject), Some(at))?;
        let mut e = r.clone();
        e.set_annotation("io.containerd.manifest.subject", subject.digest().as_str());
        entries.push(e);
        Ok(())
    };
    for (n, s) in subjects.iter().take(live_referrers).enumerate() {
        add_referrer(&mut w, s, n)?;
    }
    for (n, s) in subjects[tagged..].iter().take(dead_referrers).enumerate() {
        add_referrer(&mut w, s, live_referrers + n)?;
        dead += 2;
    }
    // Loose blobs up to the total.
    while w.count < total {
        let n = 256 + (rng.next() % 1792) as usize;
        w.put(&rng.bytes(n), "application/octet-stream")?;
        dead += 1;
    }
    layout
        .edit_index(|index| {
            index.manifests_mut().extend(entries);
            Ok(())
        })
        .map_err(io::Error::other)?;
    Ok(Expect {
        total: w.count,
        dead,
        bytes: w.bytes,
    })
}

/// A layout whose one blob is `size` bytes of pseudo-random data; returns its path and hex.
fn generate_large(dir: &Path, size: u64) -> io::Result<(std::path::PathBuf, String)> {
    Layout::init(dir).map_err(io::Error::other)?;
    fs::create_dir_all(dir.join("blobs/sha256"))?;
    let temp = dir.join("big.tmp-bench");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&temp)?);
    let mut hasher = Algorithm::Sha256.hasher();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut left = size;
    let mut chunk = vec![0u8; 1 << 20];
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        hasher.update(&chunk[..n]);
        left -= n as u64;
    }
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    let digest = hasher.finish();
    let path = dir.join(digest.blob_path());
    fs::rename(&temp, &path)?;
    Ok((path, digest.encoded().to_string()))
}

fn warm_file(path: &Path) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf)? != 0 {}
    Ok(())
}

fn warm_tree(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            warm_tree(&e.path())?;
        } else {
            warm_file(&e.path())?;
        }
    }
    Ok(())
}

fn timed(cmd: &mut Command, ok_codes: &[i32]) -> Result<Duration, String> {
    sync();
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", cmd.get_program().display()))?;
    let elapsed = start.elapsed();
    if !out.status.code().is_some_and(|c| ok_codes.contains(&c)) {
        return Err(format!(
            "{cmd:?} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(elapsed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn median_of(
    runs: usize,
    mut f: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        v.push(f()?);
    }
    Ok(median(v))
}

fn openssl_hex(path: &Path) -> Result<String, String> {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(path)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.rsplit(' ')
        .next()
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() == 64)
        .ok_or_else(|| format!("unexpected openssl output: {text:?}"))
}

fn print_machine() {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    eprintln!("machine: {cpu}, {cores} threads available");
    println!("machine: {cpu}, {cores} threads available");
}
