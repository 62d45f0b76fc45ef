//! Helpers shared by the benchmarks: running commands, timing summaries, machine state,
//! generated layouts.

#![allow(dead_code)]

pub mod layout;
pub mod process;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// True when `tool` is on PATH. A benchmark needs its peers: the caller reports a missing one
/// as an error.
pub fn tool_on_path(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A benchmark's exit: its error on stderr, named, and a failure code.
pub fn exit_of(name: &str, result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A layout under `work` with one incompressible blob of `size` bytes (from `seed`) pushed as
/// an artifact tagged `big`: its directory, the layout and the tagged manifest's descriptor.
pub fn big_blob_layout(
    work: &Path,
    size: u64,
    seed: u64,
) -> Result<
    (
        std::path::PathBuf,
        ocistow_store::Layout,
        ocistow_store::Descriptor,
    ),
    String,
> {
    use ocistow_store::artifact::{self, FileSpec, PushRequest};
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let input = work.join("blob.bin");
    generate(&input, size, seed).map_err(|e| err(&e))?;
    let layout_dir = work.join("layout");
    let layout = ocistow_store::Layout::init(&layout_dir).map_err(|e| err(&e))?;
    let pushed = artifact::push(
        &layout,
        &PushRequest::new(vec![
            FileSpec::new(input.clone()).media_type(Some("application/octet-stream".into())),
        ])
        .artifact_type(Some("application/vnd.example.bench".into())),
        &artifact::no_progress,
    )
    .map_err(|e| err(&e))?;
    pushed
        .staged
        .commit(&pushed.descriptor, &["big".into()])
        .map_err(|e| err(&e))?;
    let root = layout
        .resolve(&ocistow_store::Target::Tag("big".into()))
        .map_err(|e| err(&e))?;
    Ok((layout_dir, layout, root))
}

/// The median of some timings, in seconds.
pub fn median(times: &[Duration]) -> f64 {
    let mut secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    let n = secs.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        secs[n / 2]
    } else {
        f64::midpoint(secs[n / 2 - 1], secs[n / 2])
    }
}

/// The 1-minute load average, or "?" where /proc/loadavg is unavailable.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Flushes every dirty page, so no measured command pays for another's writeback.
pub fn sync() {
    rustix::fs::sync();
}

/// Whose CPU time [`cpu_time`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// This process.
    Myself,
    /// Every child process waited for so far.
    Children,
}

/// User plus system CPU time, from `/proc/self/stat` (in clock ticks: 10 ms resolution,
/// plenty for runs of seconds); zero where it cannot be read.
pub fn cpu_time(who: Who) -> Duration {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name (field 2) may hold spaces; the fields after its `)` are plain numbers:
    // state (field 3) first, utime and stime are fields 14 and 15, cutime and cstime 16 and 17.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let (user, system) = match who {
        Who::Myself => (10, 11),
        Who::Children => (12, 13),
    };
    let ticks = fields.get(user).copied().unwrap_or(0) + fields.get(system).copied().unwrap_or(0);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// Removes a file or a directory tree; absent is fine.
pub fn remove_path(path: &Path) -> Result<(), String> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a command with its output captured; a failure becomes an error with its stderr.
pub fn run_cmd(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", cmd.get_program().display()))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A number from the environment, or `default` when the variable is unset.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{name}={s:?} is not a positive number")),
        Err(_) => Ok(default),
    }
}

/// A comma-separated list of positive counts from the environment (`1000,10_000`), or `default`
/// when the variable is unset.
pub fn env_counts(name: &str, default: &[usize]) -> Result<Vec<usize>, String> {
    let Ok(list) = std::env::var(name) else {
        return Ok(default.to_vec());
    };
    let counts = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.replace('_', "")
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: {p:?} is not a positive count"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if counts.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(counts)
}

/// Writes `size` bytes of xorshift64* output (a different stream per seed): incompressible, fast to produce.
pub fn generate(path: &Path, size: u64, seed: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}
