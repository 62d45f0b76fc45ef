//! Hashing every blob on all cores, and the sniffer that spots blobs a deep referrers scan
//! could take for referrers.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::digest::Digest;
use crate::inventory::BlobFile;
use crate::layout::Progress;

/// Read buffer of each hashing thread.
const HASH_BUFFER: usize = 1 << 20;
/// Hashing threads report progress at least every this many bytes.
const PROGRESS_STEP: u64 = 4 << 20;
/// Blobs larger than this are not manifests for a deep referrers scan (as in `referrers::scan`).
const SUBJECT_SCAN_MAX: u64 = crate::layout::MAX_MANIFEST_SIZE;

/// The outcome of hashing one blob file.
#[derive(Debug, Clone)]
pub(crate) enum Hashed {
    Ok {
        actual: Digest,
        size: u64,
        /// A deep referrers scan might take it for a referrer (see [`SubjectSniffer`]).
        suspect: bool,
    },
    Failed(String),
}

pub(crate) fn hashing_threads(requested: Option<NonZeroUsize>) -> usize {
    requested
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

/// Recognises content that a deep referrers scan could take for a referrer: a JSON object
/// (first non-blank byte `{`) of at most [`SUBJECT_SCAN_MAX`] bytes containing `"subject"`.
/// Fed chunk by chunk; a false positive only costs a deep scan.
#[derive(Default)]
pub(crate) struct SubjectSniffer {
    /// `None` until the first non-blank byte; then whether it was `{`.
    json: Option<bool>,
    found: bool,
    /// The end of the previous chunk, for a needle split across chunks.
    tail: Vec<u8>,
    seen: u64,
}

const SUBJECT_NEEDLE: &[u8] = b"\"subject\"";

impl SubjectSniffer {
    /// Feeds the next chunk; returns false once the answer is known (reading can stop).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        self.seen += chunk.len() as u64;
        if self.json.is_none()
            && let Some(&b) = chunk.iter().find(|b| !b.is_ascii_whitespace())
        {
            self.json = Some(b == b'{');
        }
        if self.json == Some(false) || self.found || self.seen > SUBJECT_SCAN_MAX {
            return false;
        }
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        if window
            .windows(SUBJECT_NEEDLE.len())
            .any(|w| w == SUBJECT_NEEDLE)
        {
            self.found = true;
            return false;
        }
        let keep = window.len().min(SUBJECT_NEEDLE.len() - 1);
        self.tail = window.split_off(window.len() - keep);
        true
    }

    pub(crate) fn suspect(&self) -> bool {
        self.found && self.json == Some(true) && self.seen <= SUBJECT_SCAN_MAX
    }
}

/// The blobs a deep referrers scan might take for referrers (see [`SubjectSniffer`]), read in
/// parallel; binary blobs cost one small read. Unreadable files are left to the scan itself.
pub(crate) fn subject_suspects(files: &[BlobFile], threads: usize) -> HashSet<Digest> {
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, files.len().max(1));
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let mut found = Vec::new();
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let Ok(mut file) = File::open(&f.path) else {
                            continue;
                        };
                        let mut sniffer = SubjectSniffer::default();
                        loop {
                            match file.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => {
                                    if !sniffer.feed(&buf[..n]) {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                                Err(_) => break,
                            }
                        }
                        if sniffer.suspect() {
                            found.push(f.digest.clone());
                        }
                    }
                    found
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// Messages from hashing threads to the thread that owns the progress reporter.
enum Msg {
    Progress(u64),
    /// A file is done; the bytes read since its last progress message.
    Done(usize, Hashed, u64),
}

/// Hashes `files` on `threads` threads; results in the order of `files`.
pub(crate) fn hash_files(
    files: &[&BlobFile],
    threads: usize,
    progress: &dyn Progress,
) -> Vec<Hashed> {
    let threads = threads.clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Hashed>> = vec![None; files.len()];
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || {
                let mut buf = vec![0u8; HASH_BUFFER];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let (outcome, unreported) = hash_file(file, &mut buf, &tx);
                    if tx.send(Msg::Done(i, outcome, unreported)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Msg::Progress(n) => progress.advance(n),
                Msg::Done(i, outcome, unreported) => {
                    if unreported > 0 {
                        progress.advance(unreported);
                    }
                    results[i] = Some(outcome);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Hashed::Failed("not hashed".into())))
        .collect()
}

/// Hashes one file, sending progress every [`PROGRESS_STEP`] bytes; returns the outcome and
/// the bytes read since the last progress message.
fn hash_file(file: &BlobFile, buf: &mut [u8], tx: &mpsc::Sender<Msg>) -> (Hashed, u64) {
    let alg = match file.digest.known_algorithm() {
        Ok(a) => a,
        Err(e) => return (Hashed::Failed(e.to_string()), 0),
    };
    let mut f = match File::open(&file.path) {
        Ok(f) => f,
        Err(e) => return (Hashed::Failed(e.to_string()), 0),
    };
    let mut hasher = alg.hasher();
    let mut sniffer = SubjectSniffer::default();
    let mut sniffing = true;
    let (mut size, mut unreported) = (0u64, 0u64);
    loop {
        match f.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                if sniffing {
                    sniffing = sniffer.feed(&buf[..n]);
                }
                size += n as u64;
                unreported += n as u64;
                if unreported >= PROGRESS_STEP {
                    let _ = tx.send(Msg::Progress(unreported));
                    unreported = 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Hashed::Failed(e.to_string()), unreported),
        }
    }
    let outcome = Hashed::Ok {
        actual: hasher.finish(),
        size,
        suspect: sniffer.suspect(),
    };
    (outcome, unreported)
}
