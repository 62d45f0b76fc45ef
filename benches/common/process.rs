//! One run of a command measured as the kernel accounts it: wall time and CPU time (from
//! `wait4`) and peak RSS, with its stdout.
//!
//! The peak RSS comes from `/usr/bin/time -f %M` around the command, not from `wait4`: a child
//! spawned with `vfork` semantics shares this process's memory until it execs, and Linux folds
//! that memory's high-water mark into the child's `ru_maxrss`, so `wait4` would report at least
//! this (large) benchmark process's own peak.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run of a command cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    pub wall: Duration,
    /// User plus system time of the child.
    pub cpu: Duration,
    /// The child's peak resident set, in KiB.
    pub max_rss_kib: u64,
}

/// Runs `cmd` to its end (stdin empty, stderr into `stderr_file`), returns what it cost and
/// what it printed. A non-zero exit is an error quoting its stderr.
pub fn measure(cmd: &mut Command, stderr_file: &Path) -> Result<(Run, Vec<u8>), String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let err = File::create(stderr_file).map_err(|e| format!("{}: {e}", stderr_file.display()))?;
    let rss_file = stderr_file.with_extension("rss");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let cmd = &mut timed;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_end(&mut out)
            .map_err(|e| format!("{name}: reading its output: {e}"))?;
    }
    let pid = i32::try_from(child.id()).map_err(|_| format!("{name}: pid out of range"))?;
    let mut status = 0;
    // SAFETY: wait4 writes only the status and the zeroed rusage it is given, for our own
    // child, which nothing else waits for (the Child handle is never waited on).
    #[allow(unsafe_code)]
    let (rc, usage) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let rc = libc::wait4(pid, &raw mut status, 0, &raw mut usage);
        (rc, usage)
    };
    let wall = start.elapsed();
    if rc != pid {
        return Err(format!("{name}: wait4 failed"));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = std::fs::read_to_string(stderr_file).unwrap_or_default();
        let stdout = String::from_utf8_lossy(&out[..out.len().min(2000)]).into_owned();
        return Err(format!(
            "{cmd:?} failed ({status}): {} {}",
            stderr.trim(),
            stdout.trim()
        ));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok((
        Run {
            wall,
            cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
            max_rss_kib: std::fs::read_to_string(&rss_file)
                .ok()
                .and_then(|t| t.lines().last()?.trim().parse().ok())
                .unwrap_or(0),
        },
        out,
    ))
}
