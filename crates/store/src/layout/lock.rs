//! The layout lock and the pins that keep gc away from a writer's blobs.
//!
//! Every lock is an advisory `flock` on a file of the layout, so processes exclude each other.
//! Within one process the locks also pass through a registry of who holds and who waits:
//! - a thread asking for a lock it already holds in a conflicting mode (gc called while the same
//!   thread holds a push pin, say) would wait for itself until the timeout: it fails at once
//!   with [`Error::LockHeldByThisProcess`];
//! - the threads of one process take a lock file in the order they asked for it (shared
//!   requests after shared ones go together), so a thread running gc in a tight loop cannot
//!   starve a writer of the same process, which a release-and-retake between two polls would.
//!
//! An exclusive holder writes who it is (pid and the note given with
//! [`Layout::with_lock_holder`], else the program's name) into the lock file, so a waiter can say
//! who it waits for. That note is only for people: nothing decides anything by it. A waiter that
//! gives up says whether the holder was another thread of this process or another process.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use super::{Layout, PIN_FILE, PIN_GATE_FILE};
use crate::error::{Error, IoContext, Result};

/// The most of a lock file's holder note a waiter reads (the note is one short line).
const MAX_HOLDER_NOTE: usize = 4 << 10;

/// Who held a lock a writer gave up waiting for ([`Error::Locked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockHolder {
    /// Another thread of this process (a second open of the lock file conflicts with the
    /// first even within one process).
    ThisProcess,
    /// Another process, or something outside ocistow's view.
    OtherProcess {
        /// The first line of the lock file, as the holder wrote it (`pid 1234: ocistow gc /l`);
        /// `None` when it left none (a shared holder, another tool, an older ocistow).
        note: Option<String>,
    },
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockHolder::ThisProcess => f.write_str("another thread of this process"),
            LockHolder::OtherProcess { note: Some(note) } => {
                write!(f, "another process ({note:?})")
            }
            LockHolder::OtherProcess { note: None } => f.write_str("another process"),
        }
    }
}

/// What a writer that has to wait for a lock is told, once per wait.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LockWait<'a> {
    /// The lock file.
    pub path: &'a Path,
    /// Who holds it, as its holder wrote it (`pid 1234: ocistow gc /l`); `None` when the holder
    /// left no note (a shared holder, another tool, an older ocistow).
    pub holder: Option<&'a str>,
    /// How long the writer waits before it fails with [`Error::Locked`].
    pub timeout: Duration,
}

/// A callback told when a writer starts to wait for a lock.
#[derive(Clone)]
pub(crate) struct WaitNotice(pub(crate) Arc<dyn Fn(&LockWait<'_>) + Send + Sync>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

impl Layout {
    /// Takes the layout's exclusive lock, waiting up to the lock timeout.
    pub(crate) fn lock(&self) -> Result<LayoutLock> {
        self.lock_file(&self.lock_path(), false)
    }

    /// Pins blobs against garbage collection: hold the returned guard from the first blob a
    /// writer stores until its `index.json` update names them. Many writers may pin at once.
    pub(crate) fn pin(&self) -> Result<LayoutLock> {
        // Passing through the gate (held exclusively by a waiting gc) keeps a stream of writers
        // from starving gc: flock does not queue an exclusive request ahead of new shared ones.
        let _gate = self.lock_file(&self.root.join(PIN_GATE_FILE), true)?;
        self.lock_file(&self.root.join(PIN_FILE), true)
    }

    /// Excludes every writer's pin: what garbage collection holds while it marks and sweeps.
    /// Closes the gate first, so no new pin starts while the existing ones finish. (No deadlock:
    /// a writer holds the gate only while it takes its pin, which needs no exclusive holder.)
    ///
    /// Fails at once with [`Error::LockHeldByThisProcess`] when the calling thread holds a pin
    /// itself (it would wait for itself).
    pub fn exclusive_pin(&self) -> Result<LayoutLock> {
        let gate = self.lock_file(&self.root.join(PIN_GATE_FILE), false)?;
        let mut pin = self.lock_file(&self.root.join(PIN_FILE), false)?;
        Ok(LayoutLock {
            held: pin.held.take(),
            gate: Some(Box::new(gate)),
        })
    }

    /// A note an exclusive holder of this handle's locks writes into the lock file (after its
    /// pid), for the messages of whoever waits: the CLI gives its command line.
    #[must_use]
    pub fn with_lock_holder(mut self, note: impl Into<String>) -> Self {
        self.lock_holder = Some(Arc::from(note.into()));
        self
    }

    /// Calls `notice` once each time a writer of this handle starts to wait for a lock (the CLI
    /// prints who holds it and how long it will wait). The library itself prints nothing.
    #[must_use]
    pub fn with_lock_wait_notice(
        mut self,
        notice: impl Fn(&LockWait<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_lock_wait = Some(WaitNotice(Arc::new(notice)));
        self
    }

    fn lock_file(&self, path: &Path, shared: bool) -> Result<LayoutLock> {
        let path = path.to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let meta = file.metadata().at(&path)?;
        let key = (meta.dev(), meta.ino());
        let me = std::thread::current().id();
        let ticket = {
            let mut files = registry();
            let state = files.entry(key).or_default();
            if state
                .held
                .iter()
                .any(|h| h.thread == me && !(h.shared && shared))
            {
                return Err(Error::LockHeldByThisProcess { path });
            }
            state.next_ticket += 1;
            let ticket = state.next_ticket;
            state.waiting.push((ticket, shared));
            ticket
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut told = false;
        loop {
            let mut files = registry();
            let state = files.entry(key).or_default();
            // Only when no earlier request of this process conflicts with ours; a thread that
            // holds the file shared already takes it again at once (queued behind a waiting
            // exclusive request, it would wait for itself).
            let again = shared && state.held.iter().any(|h| h.thread == me);
            let my_turn = again
                || !state
                    .waiting
                    .iter()
                    .any(|&(t, s)| t < ticket && !(s && shared));
            let attempt = if my_turn {
                Some(if shared {
                    file.try_lock_shared()
                } else {
                    file.try_lock()
                })
            } else {
                None
            };
            let failed = match attempt {
                Some(Ok(())) => {
                    state.waiting.retain(|&(t, _)| t != ticket);
                    state.held.push(Holder {
                        thread: me,
                        shared,
                        ticket,
                    });
                    drop(files);
                    if !shared {
                        self.write_holder_note(&file);
                    }
                    return Ok(LayoutLock {
                        held: Some(Held {
                            file,
                            key,
                            ticket,
                            shared,
                        }),
                        gate: None,
                    });
                }
                Some(Err(TryLockError::Error(e))) => Some(Error::Io {
                    path: path.clone(),
                    source: e,
                }),
                Some(Err(TryLockError::WouldBlock)) | None => {
                    if start.elapsed() >= self.lock_timeout {
                        // A hold of this process blocks us whether it conflicts in the kernel
                        // or only in the queue; with none, the file is held elsewhere.
                        let holder = if state.held.is_empty() {
                            LockHolder::OtherProcess {
                                note: holder_note(&file),
                            }
                        } else {
                            LockHolder::ThisProcess
                        };
                        Some(Error::Locked {
                            path: path.clone(),
                            waited: self.lock_timeout,
                            holder,
                        })
                    } else {
                        None
                    }
                }
            };
            if let Some(error) = failed {
                state.waiting.retain(|&(t, _)| t != ticket);
                drop(files);
                REGISTRY.changed.notify_all();
                return Err(error);
            }
            if !told {
                told = true;
                drop(files);
                self.tell_wait(&path, &file);
                continue;
            }
            // Woken early by a release in this process; other processes are polled.
            let _unused = REGISTRY
                .changed
                .wait_timeout(files, pause)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Records who holds the lock, best effort: the note is for messages only. Without a note
    /// from [`Layout::with_lock_holder`], the program's name says who (a library user's
    /// program as much as the CLI).
    fn write_holder_note(&self, file: &File) {
        let note = match self.lock_holder.as_deref().or(PROGRAM.as_deref()) {
            Some(n) => format!("pid {}: {n}\n", std::process::id()),
            None => format!("pid {}\n", std::process::id()),
        };
        let _ = file.set_len(0);
        let _ = file.write_all_at(note.as_bytes(), 0);
    }

    fn tell_wait(&self, path: &Path, file: &File) {
        let Some(notice) = &self.on_lock_wait else {
            return;
        };
        let note = holder_note(file);
        (notice.0)(&LockWait {
            path,
            holder: note.as_deref(),
            timeout: self.lock_timeout,
        });
    }
}

/// The name of this program's executable (no environment variable is read: the kernel says
/// where the executable is), for the default holder note.
static PROGRAM: LazyLock<Option<String>> = LazyLock::new(|| {
    let exe = std::env::current_exe().ok()?;
    Some(exe.file_name()?.to_string_lossy().into_owned())
});

/// The first line of a lock file: the holder's note, if it left one. Read from the start
/// whatever the file's cursor, and bounded (the holder might be anything).
fn holder_note(file: &File) -> Option<String> {
    let mut buf = vec![0; MAX_HOLDER_NOTE];
    let (mut len, mut offset) = (0, 0);
    while len < buf.len() {
        match file.read_at(&mut buf[len..], offset) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                len += n;
                offset += n as u64;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf[..len]);
    let line = text
        .lines()
        .next()
        .map(str::trim)
        .filter(|l| !l.is_empty())?;
    Some(line.to_string())
}

/// One thread's hold on a lock file.
struct Holder {
    thread: ThreadId,
    shared: bool,
    ticket: u64,
}

/// The locks of one lock file in this process.
#[derive(Default)]
struct FileState {
    held: Vec<Holder>,
    /// Requests not yet granted, by ticket, with whether they are shared.
    waiting: Vec<(u64, bool)>,
    next_ticket: u64,
}

struct Registry {
    files: Mutex<HashMap<(u64, u64), FileState>>,
    changed: Condvar,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    files: Mutex::new(HashMap::new()),
    changed: Condvar::new(),
});

fn registry() -> MutexGuard<'static, HashMap<(u64, u64), FileState>> {
    // The registry's state stays consistent under a panic (each change is one statement).
    REGISTRY
        .files
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A lock this process holds on a lock file.
struct Held {
    file: File,
    key: (u64, u64),
    ticket: u64,
    shared: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.shared {
            // The holder note goes with the hold (best effort, it is only for messages).
            let _ = self.file.set_len(0);
        }
        // Released before the registry says so, so a woken waiter finds the file free.
        let _ = self.file.unlock();
        let mut files = registry();
        if let Some(state) = files.get_mut(&self.key) {
            state.held.retain(|h| h.ticket != self.ticket);
            if state.held.is_empty() && state.waiting.is_empty() {
                files.remove(&self.key);
            }
        }
        drop(files);
        REGISTRY.changed.notify_all();
    }
}

/// Proof that the layout lock is held; dropping it releases the lock.
pub struct LayoutLock {
    /// Always set; an `Option` only so the gate can be released after the pin.
    held: Option<Held>,
    /// The gate lock held with it (gc's exclusive pin only).
    gate: Option<Box<LayoutLock>>,
}

impl Drop for LayoutLock {
    fn drop(&mut self) {
        // The pin first, then the gate: a writer let through the gate finds the pin free.
        drop(self.held.take());
        drop(self.gate.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &Path) -> Layout {
        Layout::init(dir)
            .unwrap()
            .with_lock_timeout(Duration::from_millis(200))
    }

    /// A library user that gives no note still leaves its pid and program name for waiters.
    #[test]
    fn a_holder_without_a_note_names_its_program() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let held = layout.lock().unwrap();
        let note = std::fs::read_to_string(layout.lock_path()).unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy();
        assert_eq!(note, format!("pid {}: {name}\n", std::process::id()));
        drop(held);
        let layout = layout.with_lock_holder("my tool sync");
        let _held = layout.lock().unwrap();
        let note = std::fs::read_to_string(layout.lock_path()).unwrap();
        assert_eq!(note, format!("pid {}: my tool sync\n", std::process::id()));
    }

    #[test]
    fn a_wait_on_another_thread_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let _held = layout.lock().unwrap();
        let other = layout.clone();
        let err = std::thread::spawn(move || other.lock().err())
            .join()
            .unwrap();
        let Some(err @ Error::Locked { holder, .. }) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*holder, LockHolder::ThisProcess);
        assert!(
            err.to_string()
                .ends_with("held by another thread of this process"),
            "{err}"
        );
    }

    /// A hold this process's registry does not know of is another process's (the lock is
    /// taken here on a file handle of its own, as another process would, with its note).
    #[test]
    fn a_wait_on_another_process_names_it_and_its_note() {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path());
        let foreign = OpenOptions::new()
            .write(true)
            .open(layout.lock_path())
            .unwrap();
        foreign.lock().unwrap();
        foreign.write_all_at(b"pid 1: someone else\n", 0).unwrap();
        let err = layout.lock().err();
        let Some(err @ Error::Locked { holder, .. }) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            *holder,
            LockHolder::OtherProcess {
                note: Some("pid 1: someone else".into())
            }
        );
        assert!(
            err.to_string()
                .ends_with("held by another process (\"pid 1: someone else\")"),
            "{err}"
        );
        // Without a note (another tool), it is just another process.
        foreign.set_len(0).unwrap();
        let err = layout.lock().err();
        assert!(
            matches!(
                &err,
                Some(Error::Locked {
                    holder: LockHolder::OtherProcess { note: None },
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
