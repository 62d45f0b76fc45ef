//! Filling a new file with `O_DIRECT` on a second thread, for output that is written once and
//! never read back here (an export's tarball).
//!
//! Through the page cache, a large archive costs a copy into the cache, then dirty pages that
//! the kernel writes back while the next blobs are read, and a final fsync that waits for the
//! rest. With `O_DIRECT` the disk reads straight from our buffers, so the copying thread only
//! fills them (a memcpy it would do into the page cache anyway), and the writing thread waits on
//! the disk while the next buffer fills and the hashing thread hashes. The last, unaligned
//! piece goes through the page cache. When the file system refuses `O_DIRECT` (tmpfs on older
//! kernels, some FUSE and network file systems: `EINVAL` from `fcntl` or from the first write),
//! the same buffers are written through the page cache, with writeback started as they go.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

use super::sys::start_writeback;

/// The alignment `O_DIRECT` asks of buffers, offsets and lengths: the largest logical block
/// size in use (4 KiB sectors); a 512-byte-sector disk accepts it too.
const ALIGN: usize = 4096;

/// One buffer's worth of file: large writes keep the disk busy with few system calls.
const BUFFER: usize = 8 << 20;

/// Buffers in flight at most: one filling, one being written, one waiting to be.
const BUFFERS: usize = 3;

/// A zeroed buffer of [`BUFFER`] bytes starting at an [`ALIGN`]ed address, made without
/// `unsafe`: a `Vec` one alignment longer, of which the aligned window is used. A `Vec`'s heap
/// block does not move when the `Vec` does, so the window stays aligned as it travels.
struct Aligned {
    raw: Vec<u8>,
    start: usize,
}

impl Aligned {
    fn new() -> Self {
        let raw = vec![0u8; BUFFER + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        Aligned { raw, start }
    }

    fn window(&self) -> &[u8] {
        &self.raw[self.start..self.start + BUFFER]
    }

    fn window_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + BUFFER]
    }
}

/// A filled buffer for the writing thread: the buffer, how much of it is data, and the file
/// offset it goes to.
type Filled = (Aligned, usize, u64);

/// A writer filling `file` from offset 0, handing full buffers to a writing thread. Obtained
/// inside [`with_direct_writer`].
pub(crate) struct DirectWriter<'scope> {
    buf: Aligned,
    filled: usize,
    offset: u64,
    allocated: usize,
    full: Option<mpsc::SyncSender<Filled>>,
    empty: mpsc::Receiver<Aligned>,
    thread: Option<ScopedJoinHandle<'scope, io::Result<()>>>,
}

/// Runs `fill` with a writer into `file` (new and empty, opened for writing), then writes what
/// is left and waits for the writing thread. `direct` false writes through the page cache
/// (what a refused `O_DIRECT` falls back to). The file is complete when this returns `Ok`;
/// the caller makes it durable. A failure of `fill` is returned as is, and what the writer
/// still held is dropped.
pub(crate) fn with_direct_writer<R, E>(
    file: &File,
    direct: bool,
    fill: impl FnOnce(&mut DirectWriter<'_>) -> Result<R, E>,
    write_error: impl Fn(io::Error) -> E,
) -> Result<R, E> {
    std::thread::scope(|scope| {
        let mut writer = DirectWriter::start(scope, file, direct);
        // On failure the writer is dropped: the thread writes what it was sent and ends.
        let value = fill(&mut writer)?;
        writer.finish().map_err(write_error)?;
        Ok(value)
    })
}

impl<'scope> DirectWriter<'scope> {
    fn start<'env>(scope: &'scope Scope<'scope, 'env>, file: &'env File, direct: bool) -> Self {
        let (full, full_rx) = mpsc::sync_channel::<Filled>(BUFFERS - 1);
        let (empty_tx, empty) = mpsc::channel();
        let thread = scope.spawn(move || {
            let mut direct = direct && set_direct(file, true).is_ok();
            for (buf, len, offset) in full_rx {
                write_at(file, &mut direct, &buf.window()[..len], offset)?;
                // The filling side may be gone already; a lost buffer is fine.
                let _ = empty_tx.send(buf);
            }
            Ok(())
        });
        DirectWriter {
            buf: Aligned::new(),
            filled: 0,
            offset: 0,
            allocated: 1,
            full: Some(full),
            empty,
            thread: Some(thread),
        }
    }

    /// Hands the current buffer (`filled` bytes of it) to the writing thread and takes an
    /// empty one: a returned one, a new one while fewer than [`BUFFERS`] exist, else the next
    /// to come back.
    fn hand_off(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < BUFFERS => {
                self.allocated += 1;
                Aligned::new()
            }
            Err(_) => match self.empty.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.stopped()),
            },
        };
        let buf = std::mem::replace(&mut self.buf, next);
        let len = std::mem::take(&mut self.filled);
        let offset = self.offset;
        self.offset += len as u64;
        let sent = self.full.as_ref().map_or(Err(()), |full| {
            full.send((buf, len, offset)).map_err(|_| ())
        });
        sent.map_err(|()| self.stopped())
    }

    /// The writing thread's error, once it has stopped.
    fn stopped(&mut self) -> io::Error {
        self.full = None;
        match self.thread.take().map(ScopedJoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the writing thread panicked"),
            Some(Ok(Ok(()))) | None => io::Error::other("the writing thread stopped"),
        }
    }

    /// Writes what is buffered and waits for the writing thread.
    fn finish(mut self) -> io::Result<()> {
        if self.filled > 0 {
            self.hand_off()?;
        }
        self.full = None;
        match self.thread.take().map(ScopedJoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
            None => Err(io::Error::other("the writing thread stopped")),
        }
    }
}

impl Write for DirectWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.thread.is_none() {
            return Err(io::Error::other("the writing thread stopped"));
        }
        let n = data.len().min(BUFFER - self.filled);
        self.buf.window_mut()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == BUFFER {
            self.hand_off()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Buffers are written when full and by `finish`: a flush in between (tar's, the
        // compressor's) must not send a short, unaligned buffer that would end direct writes.
        Ok(())
    }
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags.difference(OFlags::DIRECT)
    };
    fcntl_setfl(file, flags)?;
    Ok(())
}

/// Writes `data` at `offset` (a multiple of [`ALIGN`]): its aligned part directly while
/// `direct` holds, the rest (the file's last bytes) through the page cache. A refused direct
/// write turns `direct` off for good and is done through the page cache.
fn write_at(file: &File, direct: &mut bool, data: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    if *direct {
        let aligned = data.len() - data.len() % ALIGN;
        match file.write_all_at(&data[..aligned], offset) {
            Ok(()) => done = aligned,
            // The whole range is written again below: bytes that landed before a short
            // write are the same bytes at the same offsets.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
        if done < data.len() {
            set_direct(file, false)?;
            *direct = false;
        }
    }
    if done < data.len() {
        let rest = &data[done..];
        let at = offset + done as u64;
        file.write_all_at(rest, at)?;
        start_writeback(file, at, rest.len() as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 % 251) as u8).collect()
    }

    /// Lengths around the alignment and the buffer, written in odd pieces, direct and through
    /// the page cache: the file holds exactly the bytes, in order.
    #[test]
    fn the_file_holds_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        for direct in [true, false] {
            for len in [
                0,
                1,
                ALIGN - 1,
                ALIGN,
                BUFFER - 1,
                BUFFER,
                BUFFER + 1,
                BUFFERS * BUFFER + ALIGN + 17,
            ] {
                let data = content(len);
                let path = dir.path().join(format!("{direct}-{len}"));
                let file = File::create(&path).unwrap();
                with_direct_writer(
                    &file,
                    direct,
                    |w| {
                        for piece in data.chunks(300_007) {
                            w.write_all(piece)?;
                            w.flush()?;
                        }
                        Ok(())
                    },
                    |e: io::Error| e,
                )
                .unwrap();
                file.sync_all().unwrap();
                drop(file);
                assert!(std::fs::read(&path).unwrap() == data, "{direct} {len}");
            }
        }
    }

    /// A direct write the kernel refuses with EINVAL (here: from a misaligned buffer, as a
    /// file system with a larger block would refuse an aligned one) is done through the page
    /// cache, and direct writes stay off.
    #[test]
    fn a_refused_direct_write_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        if set_direct(&file, true).is_err() {
            // This file system has no O_DIRECT at all: the fallback is the other test's.
            return;
        }
        let mut buf = Aligned::new();
        // Whole blocks: only a refusal turns direct writes off (a tail would too).
        let data = content(2 * ALIGN);
        buf.window_mut()[1..=data.len()].copy_from_slice(&data);
        let mut direct = true;
        write_at(&file, &mut direct, &buf.window()[1..=data.len()], 0).unwrap();
        assert!(!direct);
        assert!(!fcntl_getfl(&file).unwrap().contains(OFlags::DIRECT));
        drop(file);
        assert!(std::fs::read(&path).unwrap() == data);
    }

    /// A write the disk refuses (a file opened read-only) is reported by `finish`, and a
    /// failure of the filling side is returned as it is.
    #[test]
    fn errors_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        let err = with_direct_writer(
            &file,
            true,
            |w| w.write_all(&content(2 * BUFFER + 5)),
            |e: io::Error| e,
        )
        .unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(rustix::io::Errno::BADF.raw_os_error())
        );
        let err = with_direct_writer(
            &file,
            true,
            |_| Err::<(), _>(io::Error::other("filling failed")),
            |e: io::Error| e,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "filling failed");
    }
}
