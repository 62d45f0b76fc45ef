//! One run of a command measured as the kernel accounts it: wall time, CPU time and peak RSS of
//! that child alone (from `wait4`), with its stdout.

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
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        },
        out,
    ))
}
