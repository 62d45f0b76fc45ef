//! Benchmark (a report, not a test): `ocistow export` and `ocistow import` of a large layout,
//! compared with GNU tar on the same files: `tar cf` / `tar xf` for plain tarballs, `tar czf` /
//! `tar xzf` for tar+gzip, and (for reference) `tar -I zstd` for tar+zstd.
//!
//! Run with `cargo bench --bench transfer`. Environment:
//! - `OCISTOW_BENCH_SIZE_MIB`: total size of the layout's blobs in MiB (default 1024);
//! - `OCISTOW_BENCH_BLOBS`: how many layer blobs the data is spread over (default 4);
//! - `OCISTOW_BENCH_RUNS`: repetitions of each command, the median is reported (default 3);
//! - `OCISTOW_BENCH_ZSTD`: `0` to skip the zstd rows (default: run them when `zstd` is installed).
//!
//! The data is incompressible pseudo-random bytes (the worst case for gzip, and the usual case
//! for layers that are compressed already). Every command reads from a warm page cache; `sync` is
//! called (untimed) before each timed command so none pays for write-back left by another, and
//! the contenders alternate round by round. What ocistow does on top of tar is part of its time:
//! export hashes every blob while streaming it and writes through a temp file that is fsynced and
//! renamed; import hashes every blob, fsyncs it, and validates the whole archive before anything
//! becomes visible. tar does none of that.
//!
//! Only process failures make this exit non-zero; ratios are printed, never asserted.

mod common;

use common::tool_on_path as have;
use common::{env_number, generate, load_average, median, remove_path, run_cmd, sync};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const OCISTOW: &str = env!("CARGO_BIN_EXE_ocistow");

fn main() -> ExitCode {
    common::exit_of("transfer", run())
}

fn run() -> Result<(), String> {
    let size_mib: u64 = env_number("OCISTOW_BENCH_SIZE_MIB", 1024)?;
    let blobs: u64 = env_number("OCISTOW_BENCH_BLOBS", 4)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", 3)?;
    if size_mib == 0 || blobs == 0 || runs == 0 {
        return Err("OCISTOW_BENCH_SIZE_MIB, _BLOBS and _RUNS must be at least 1".into());
    }
    let zstd = std::env::var("OCISTOW_BENCH_ZSTD").map_or(true, |v| v != "0") && have("zstd");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("transfer-bench");
    remove_path(&work)?;
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = measure(&work, size_mib << 20, blobs, runs, zstd);
    // Leave no GiB-sized files behind, whatever happened.
    let _ = fs::remove_dir_all(&work);
    result
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    ExportTar,
    ExportGzip,
    ExportZstd,
    ImportTar,
    ImportGzip,
    ImportZstd,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::ExportTar => "export tar",
            Op::ExportGzip => "export tar+gzip",
            Op::ExportZstd => "export tar+zstd",
            Op::ImportTar => "import tar",
            Op::ImportGzip => "import tar+gzip",
            Op::ImportZstd => "import tar+zstd",
        }
    }

    fn tar_name(self) -> &'static str {
        match self {
            Op::ExportTar => "tar cf",
            Op::ExportGzip => "tar czf",
            Op::ExportZstd => "tar -I zstd -cf",
            Op::ImportTar => "tar xf",
            Op::ImportGzip => "tar xzf",
            Op::ImportZstd => "tar -I zstd -xf",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Op::ExportTar | Op::ImportTar => "tar",
            Op::ExportGzip | Op::ImportGzip => "tar.gz",
            Op::ExportZstd | Op::ImportZstd => "tar.zst",
        }
    }

    fn flag(self) -> Option<&'static str> {
        match self {
            Op::ExportGzip | Op::ImportGzip => Some("--gzip"),
            Op::ExportZstd | Op::ImportZstd => Some("--zstd"),
            _ => None,
        }
    }

    fn tar_compress(self) -> Option<&'static str> {
        match self {
            Op::ExportGzip | Op::ImportGzip => Some("-z"),
            Op::ExportZstd | Op::ImportZstd => Some("--zstd"),
            _ => None,
        }
    }

    fn is_export(self) -> bool {
        matches!(self, Op::ExportTar | Op::ExportGzip | Op::ExportZstd)
    }
}

struct Bench<'a> {
    work: &'a Path,
    layout: PathBuf,
}

impl Bench<'_> {
    /// The tarball an import reads: ocistow's own export, made once per format (untimed).
    fn input(&self, op: Op) -> PathBuf {
        self.work.join(format!("input.{}", op.ext()))
    }

    /// One timed run of ocistow (`ours`) or of tar for `op`; with `then_sync`, tar followed by
    /// `sync` (ocistow fsyncs what it writes, tar does not).
    fn once(&self, op: Op, ours: bool, then_sync: bool) -> Result<Duration, String> {
        let out = self.work.join(format!("out-{}", op.ext()));
        remove_path(&out)?;
        let mut cmd;
        if op.is_export() {
            if ours {
                cmd = Command::new(OCISTOW);
                cmd.arg("export").arg(&self.layout).arg("-o").arg(&out);
                cmd.args(op.flag());
            } else {
                cmd = Command::new("tar");
                cmd.arg("-c").args(op.tar_compress()).arg("-f").arg(&out);
                cmd.arg("-C")
                    .arg(&self.layout)
                    .args(["oci-layout", "index.json", "blobs"]);
            }
        } else if ours {
            cmd = Command::new(OCISTOW);
            cmd.arg("import").arg(self.input(op)).arg(&out);
        } else {
            fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            cmd = Command::new("tar");
            cmd.arg("-x")
                .args(op.tar_compress())
                .arg("-f")
                .arg(self.input(op))
                .arg("-C")
                .arg(&out);
        }
        sync();
        let start = Instant::now();
        run_cmd(&mut cmd)?;
        if then_sync {
            sync();
        }
        let elapsed = start.elapsed();
        remove_path(&out)?;
        Ok(elapsed)
    }
}

fn measure(work: &Path, size: u64, blobs: u64, runs: usize, zstd: bool) -> Result<(), String> {
    let layout = work.join("layout");
    eprintln!(
        "generating a layout of {} MiB in {blobs} blobs in {}",
        size >> 20,
        layout.display()
    );
    run_cmd(Command::new(OCISTOW).arg("init").arg(&layout))?;
    let mut push = Command::new(OCISTOW);
    push.arg("push").arg(format!("{}:bench", layout.display()));
    let mut files = Vec::new();
    for i in 0..blobs {
        let f = work.join(format!("layer-{i}.bin"));
        let part = size / blobs + u64::from(i < size % blobs);
        generate(&f, part, i).map_err(|e| format!("{}: {e}", f.display()))?;
        push.arg(&f);
        files.push(f);
    }
    run_cmd(&mut push)?;
    for f in &files {
        remove_path(f)?;
    }
    let bench = Bench {
        work,
        layout: layout.clone(),
    };
    let mut ops = vec![Op::ExportTar, Op::ExportGzip];
    if zstd {
        ops.push(Op::ExportZstd);
    }
    let imports: Vec<Op> = ops
        .iter()
        .map(|op| match op {
            Op::ExportTar => Op::ImportTar,
            Op::ExportGzip => Op::ImportGzip,
            _ => Op::ImportZstd,
        })
        .collect();
    for op in &imports {
        let mut cmd = Command::new(OCISTOW);
        cmd.arg("export")
            .arg(&layout)
            .arg("-o")
            .arg(bench.input(*op))
            .args(op.flag());
        run_cmd(&mut cmd)?;
    }
    ops.extend(imports);
    // Warm the page cache with everything the commands read.
    warm_tree(&layout).map_err(|e| format!("{}: {e}", layout.display()))?;
    let load_before = load_average();
    let mut ours: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
    let mut theirs: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
    let mut synced: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
    for round in 1..=runs {
        eprintln!("round {round}/{runs}");
        for (i, op) in ops.iter().enumerate() {
            theirs[i].push(bench.once(*op, false, false)?);
            ours[i].push(bench.once(*op, true, false)?);
            synced[i].push(bench.once(*op, false, true)?);
        }
    }
    let mb = size as f64 / 1e6;
    println!();
    println!(
        "transfer benchmark: layout of {} MiB in {blobs} incompressible blobs, {runs} run(s) \
         each, median reported",
        size >> 20
    );
    println!();
    println!(
        "{:<17} {:>9} {:>6}   {:<16} {:>9} {:>6} {:>6}   {:>11} {:>6}",
        "ocistow", "median s", "MB/s", "tar", "median s", "MB/s", "ratio", "+sync s", "ratio"
    );
    for (i, op) in ops.iter().enumerate() {
        let a = median(&ours[i]);
        let b = median(&theirs[i]);
        let c = median(&synced[i]);
        println!(
            "{:<17} {:>9.3} {:>6.0}   {:<16} {:>9.3} {:>6.0} {:>6.2}   {:>11.3} {:>6.2}",
            op.name(),
            a,
            mb / a,
            op.tar_name(),
            b,
            mb / b,
            a / b,
            c,
            a / c
        );
    }
    println!();
    println!(
        "ratio = ocistow median / tar median (lower is better; 1.00 = as fast as tar); \
         +sync: tar followed by sync(1), as ocistow makes its output durable"
    );
    println!(
        "load average (1 min) before/after: {load_before} / {}",
        load_average()
    );
    Ok(())
}

fn warm_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            warm_tree(&entry.path())?;
        } else {
            let mut f = File::open(entry.path())?;
            let mut buf = vec![0u8; 1 << 20];
            while f.read(&mut buf)? != 0 {}
        }
    }
    Ok(())
}
