//! The layout lock and the pins that keep gc away from a writer's blobs.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Layout, PIN_FILE, PIN_GATE_FILE};
use crate::error::{Error, IoContext, Result};

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
    pub fn exclusive_pin(&self) -> Result<LayoutLock> {
        let gate = self.lock_file(&self.root.join(PIN_GATE_FILE), false)?;
        let pin = self.lock_file(&self.root.join(PIN_FILE), false)?;
        Ok(LayoutLock {
            file: pin.file,
            gate: Some(gate.file),
        })
    }

    fn lock_file(&self, path: &Path, shared: bool) -> Result<LayoutLock> {
        let path = path.to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let attempt = if shared {
                file.try_lock_shared()
            } else {
                file.try_lock()
            };
            match attempt {
                Ok(()) => {
                    return Ok(LayoutLock { file, gate: None });
                }
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(Error::Io { path, source: e }),
            }
            if start.elapsed() >= self.lock_timeout {
                return Err(Error::Locked {
                    path,
                    waited: self.lock_timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// Proof that the layout lock is held; dropping it releases the lock.
pub struct LayoutLock {
    #[allow(dead_code)] // held for its lock, never read
    file: File,
    /// The gate file held with it (gc's exclusive pin only).
    #[allow(dead_code)] // held for its lock, never read
    gate: Option<File>,
}
