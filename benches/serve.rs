//! Benchmark (a report, not a test) of `ocistow serve`:
//! - one large blob pulled through `serve` and through the loopback `docker-registry`
//!   (distribution 2.8) holding the same blob, in the same run, as a ratio (goal: at most 1.0);
//! - the referrers API at 10,000 referrers of one subject: the first (scanning) answer, then the
//!   median and worst of the cached answers (goal: under 10 ms).
//!
//! Run with `cargo bench --bench serve`. Environment:
//! - `OCISTOW_BENCH_SIZE_MIB`: size of the blob in MiB (default 64; the figure is 1024);
//! - `OCISTOW_BENCH_RUNS`: rounds, the median is reported (default 5);
//! - `OCISTOW_BENCH_REFERRERS`: referrers of the one subject (default 10,000).
//!
//! Both servers run on this machine and are read by the same client: a plain HTTP/1.1 GET over
//! a fresh loopback connection, the body counted into a sink, so what is timed is the server.
//! The servers alternate within each round; the blob is in the page cache for both (it is the
//! same file content, read once untimed through each server first).

mod common;
#[path = "../tests/common/registry.rs"]
mod registry;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

// The registry helper asks its parent module for the rule on missing tools.
use common::tool_on_path as have_tool;
use common::{big_blob_layout, env_number, exit_of, median, remove_path};
use ocistow_registry::RegistryRef;
use ocistow_registry::client::{Client, ClientOptions};
use ocistow_registry::copy::{self, CopyOptions};
use ocistow_serve::{LogLevel, Options, Server};
use ocistow_store::artifact;
use registry::Registry;

const DEFAULT_SIZE_MIB: u64 = 64;
const DEFAULT_RUNS: usize = 5;
const DEFAULT_REFERRERS: usize = 10_000;
const CACHED_REQUESTS: usize = 50;

fn main() -> ExitCode {
    exit_of("serve", run())
}

fn run() -> Result<(), String> {
    let size_mib: u64 = env_number("OCISTOW_BENCH_SIZE_MIB", DEFAULT_SIZE_MIB)?;
    let runs: usize = env_number("OCISTOW_BENCH_RUNS", DEFAULT_RUNS)?;
    let referrers: usize = env_number("OCISTOW_BENCH_REFERRERS", DEFAULT_REFERRERS)?;
    if size_mib == 0 || runs == 0 || referrers == 0 {
        return Err("size, runs and referrers must be at least 1".into());
    }
    if !have_tool("docker-registry") {
        return Err("docker-registry is not installed".into());
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-bench");
    remove_path(&work)?;
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result =
        blob_pull(&work, size_mib << 20, runs).and_then(|()| referrers_api(&work, referrers));
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn err(e: &dyn std::fmt::Display) -> String {
    e.to_string()
}

/// Starts `ocistow serve` in this process on a free port; it runs until the process exits.
fn serve(root: &Path, name: &str) -> Result<u16, String> {
    let mut options = Options::new(root);
    options.name = Some(name.into());
    options.log_level = LogLevel::Error;
    let server =
        Server::bind("127.0.0.1:0".parse().map_err(|e| err(&e))?, options).map_err(|e| err(&e))?;
    let port = server.local_addr().map_err(|e| err(&e))?.port();
    std::thread::spawn(move || server.run_until(std::future::pending()));
    Ok(port)
}

/// GETs `path` and counts the body into a sink; the time and the byte count.
fn pull(port: u16, path: &str) -> Result<(Duration, u64), String> {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| err(&e))?;
    s.set_read_timeout(Some(Duration::from_mins(5)))
        .map_err(|e| err(&e))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| err(&e))?;
    let mut reader = BufReader::with_capacity(1 << 20, s);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| err(&e))?;
    if !status.contains(" 200 ") {
        return Err(format!("GET {path}: {}", status.trim()));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| err(&e))?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<u64>().ok();
        }
    }
    let length = length.ok_or_else(|| format!("GET {path}: no Content-Length"))?;
    let got = std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())
        .map_err(|e| err(&e))?;
    if got != length {
        return Err(format!("GET {path}: {got} of {length} bytes"));
    }
    Ok((start.elapsed(), got))
}

fn blob_pull(work: &Path, size: u64, runs: usize) -> Result<(), String> {
    let (layout_dir, layout, root) = big_blob_layout(work, size, 7)?;
    let (_, manifest) = layout.read_manifest(&root).map_err(|e| err(&e))?;
    let blob = manifest
        .children()
        .into_iter()
        .find(|d| d.size() == size)
        .ok_or("the pushed manifest lists no blob of the generated size")?
        .digest()
        .clone();

    let reg = Registry::start().ok_or("docker-registry did not start")?;
    let client = Client::new(&reg.host(), &ClientOptions::default().plain_http(true))
        .map_err(|e| err(&e))?;
    let dest = RegistryRef::parse(&reg.reference("bench:big")).map_err(|e| err(&e))?;
    copy::push(
        &layout,
        &root,
        &client,
        &dest,
        &CopyOptions::default(),
        &artifact::no_progress,
    )
    .map_err(|e| err(&e))?;
    let port = serve(&layout_dir, "bench")?;
    let path = format!("/v2/bench/blobs/{blob}");
    // Untimed: both read the blob once, so both start from the page cache.
    pull(port, &path)?;
    pull(reg.port, &path)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..runs {
        // Alternate which server goes first.
        if round % 2 == 0 {
            ours.push(pull(port, &path)?.0);
            theirs.push(pull(reg.port, &path)?.0);
        } else {
            theirs.push(pull(reg.port, &path)?.0);
            ours.push(pull(port, &path)?.0);
        }
    }
    let (o, t) = (median(&ours), median(&theirs));
    let mib = size as f64 / f64::from(1 << 20);
    println!(
        "blob pull, {} MiB, median of {runs}: ocistow serve {o:.3} s ({:.0} MiB/s), \
         docker-registry {t:.3} s ({:.0} MiB/s), ratio serve/registry {:.2} (goal <= 1.0)",
        size >> 20,
        mib / o,
        mib / t,
        o / t
    );
    Ok(())
}

fn referrers_api(work: &Path, n: usize) -> Result<(), String> {
    let dir = work.join("referrers");
    let generated = common::layout::generate(&dir, n, 0)?;
    let port = serve(&dir, "many")?;
    let path = format!("/v2/many/referrers/{}", generated.subject);
    let (first, bytes) = pull(port, &path)?;
    let mut cached = Vec::with_capacity(CACHED_REQUESTS);
    for _ in 0..CACHED_REQUESTS {
        cached.push(pull(port, &path)?.0);
    }
    let worst = cached.iter().max().copied().unwrap_or_default();
    println!(
        "referrers API, {n} referrers of one subject ({} KiB answer): first answer {:.1} ms \
         (scans the layout), then median {:.2} ms, worst {:.2} ms of {CACHED_REQUESTS} \
         (goal < 10 ms)",
        bytes >> 10,
        first.as_secs_f64() * 1000.0,
        median(&cached) * 1000.0,
        worst.as_secs_f64() * 1000.0
    );
    Ok(())
}
