//! The one verified writer: blobs are written under `ingest/`, hashed, checked and only then
//! placed into `blobs/`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tempfile::TempPath;

use super::sys::start_writeback;
use super::{
    BLOBS_DIR, COPY_BUFFER, Expected, INGEST_DIR, Layout, NoProgress, Progress, TEMP_PREFIX,
    sync_dir,
};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, IoContext, Result, Subject};
use crate::model::Descriptor;

impl Layout {
    /// Writes a blob from `reader` through `ingest/`, returning its digest and size.
    /// The algorithm is that of the expected digest, else sha256.
    pub fn write_blob(&self, reader: &mut dyn Read, expected: Expected) -> Result<(Digest, u64)> {
        self.write_blob_with_progress(reader, expected, &NoProgress)
    }

    /// Writes `bytes` as a sha256 blob, leaving the fsync of the directory the rename changed
    /// to `dirs` (a push syncs `blobs/sha256` once for all its blobs).
    pub(crate) fn write_bytes_batched(
        &self,
        bytes: &[u8],
        dirs: &mut DirSyncs,
    ) -> Result<(Digest, u64)> {
        let expected = Expected::default();
        let mut writer = self.blob_writer(Algorithm::Sha256)?;
        writer.fill_from(&mut &bytes[..], &expected, &NoProgress)?;
        writer.commit_batched(&expected, dirs)
    }

    /// [`Layout::write_blob`] with progress reports.
    ///
    /// When the expected digest is given and the blob already exists, the input is still read
    /// and verified, but the existing file is kept untouched.
    // By value, like `write_blob`, so callers can build the expectation inline.
    #[allow(clippy::needless_pass_by_value)]
    pub fn write_blob_with_progress(
        &self,
        reader: &mut dyn Read,
        expected: Expected,
        progress: &dyn Progress,
    ) -> Result<(Digest, u64)> {
        let alg = expected.algorithm()?;
        if let Some(d) = &expected.digest
            && self.blob_exists(d)?
        {
            return copy_verified(
                reader,
                &mut io::sink(),
                &expected,
                // A sink cannot fail to write; the name is only for the type.
                &Subject::Blob(d.clone()),
                progress,
            );
        }
        let mut writer = self.blob_writer(alg)?;
        writer.fill_from(reader, &expected, progress)?;
        writer.commit(&expected)
    }

    /// Writes a blob whose bytes are in memory.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<Descriptor> {
        let (digest, size) = self.write_blob(&mut &bytes[..], Expected::default())?;
        Ok(Descriptor::new("application/octet-stream", digest, size))
    }

    /// A writer into `ingest/` for content produced on the fly (a tarball, say).
    pub fn blob_writer(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let ingest = self.root.join(INGEST_DIR);
        fs::create_dir_all(&ingest).at(&ingest)?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".ingest")
            .tempfile_in(&ingest)
            .at(&ingest)?;
        // A held lock tells `gc` this ingest file belongs to a live writer.
        temp.as_file().lock().at(temp.path())?;
        Ok(BlobWriter {
            layout: self.clone(),
            out: io::BufWriter::with_capacity(COPY_BUFFER, temp),
            hasher: algorithm.hasher(),
            count: 0,
        })
    }
}

/// A blob being written into `ingest/`. Nothing is visible under `blobs/` until [`commit`].
///
/// [`commit`]: BlobWriter::commit
pub struct BlobWriter {
    layout: Layout,
    out: io::BufWriter<tempfile::NamedTempFile>,
    hasher: crate::digest::Hasher,
    count: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Copies all of `reader` in through the library's one copy loop (that of every verified
    /// copy), starting writeback every few MiB so the final fsync has little left to do. More
    /// than `expected.size` bytes is an error (a stream cannot outgrow what was declared);
    /// errors name `expected`'s subject. The digest is checked by [`BlobWriter::commit`].
    pub fn fill_from(
        &mut self,
        reader: &mut dyn Read,
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let what = expected.subject();
        let ingest = self.layout.root.join(INGEST_DIR);
        self.out.flush().at(&ingest)?;
        let path = self.out.get_ref().path().to_path_buf();
        let hasher = std::mem::replace(&mut self.hasher, Algorithm::Sha256.hasher());
        let mut out = Writeback::new(self.out.get_mut().as_file_mut(), self.count);
        let (hasher, copied) = copy_hashed(
            reader,
            &mut out,
            hasher,
            expected.size.map(|size| (size, &what)),
            &|e| what.stream_error(e),
            &|source| Error::Io {
                path: path.clone(),
                source,
            },
            progress,
        )?;
        self.hasher = hasher;
        self.count += copied;
        Ok(copied)
    }

    /// [`BlobWriter::fill_from`] for a file: the kernel copies its bytes into the ingest file
    /// (`copy_file_range`: shared extents where the file system has reflinks, else a copy
    /// that stays in the kernel), and a second thread hashes what landed there. So the digest
    /// is that of the bytes stored, whatever happens to `src` meanwhile, and the bytes cross
    /// into user space once, to be hashed. Falls back to [`BlobWriter::fill_from`] when the
    /// kernel refuses the first copy (a pipe, a file system without it).
    pub fn fill_from_file(
        &mut self,
        src: &File,
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<u64> {
        // Small enough that hashing follows right behind the copy (one 16 MiB chunk left a
        // 16 MiB file copied whole before its first byte was hashed), large enough to cost
        // few system calls.
        const CHUNK: u64 = 2 * COPY_BUFFER as u64;
        let what = expected.subject();
        let ingest = self.layout.root.join(INGEST_DIR);
        self.out.flush().at(&ingest)?;
        let path = self.out.get_ref().path().to_path_buf();
        let hasher = std::mem::replace(&mut self.hasher, Algorithm::Sha256.hasher());
        let start = self.count;
        let file = self.out.get_ref().as_file();
        let (copied, hashed) = std::thread::scope(|scope| {
            let (ranges, ranges_rx) = mpsc::sync_channel::<(u64, usize)>(4);
            let hashing = scope.spawn(move || -> io::Result<Hasher> {
                let mut hasher = hasher;
                let mut buf = vec![0u8; COPY_BUFFER];
                for (offset, len) in ranges_rx {
                    let mut done = 0;
                    while done < len {
                        let n = (len - done).min(buf.len());
                        file.read_exact_at(&mut buf[..n], offset + done as u64)?;
                        hasher.update(&buf[..n]);
                        done += n;
                    }
                }
                Ok(hasher)
            });
            let mut total = 0u64;
            let mut synced = 0u64;
            let copied = loop {
                // Never past the declared size and one byte, so a growing file cannot fill
                // the disk.
                let want = expected
                    .size
                    .map_or(CHUNK, |size| CHUNK.min(size + 1 - total.min(size)));
                let n = match rustix::fs::copy_file_range(
                    src,
                    None,
                    file,
                    None,
                    usize::try_from(want).unwrap_or(usize::MAX),
                ) {
                    Ok(0) => break Ok(Some(total)),
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) if total == 0 => break Ok(None),
                    Err(e) => break Err(what.stream_error(e.into())),
                };
                let offset = start + total;
                total += n as u64;
                if let Some(size) = expected.size
                    && total > size
                {
                    break Err(Error::SizeMismatch {
                        what: what.clone().into(),
                        expected: size,
                        actual: total,
                    });
                }
                if total - synced >= WRITEBACK_EVERY {
                    start_writeback(file, start + synced, total - synced);
                    synced = total;
                }
                progress.advance(n as u64);
                if ranges.send((offset, n)).is_err() {
                    break Err(Error::Io {
                        path: path.clone(),
                        source: io::Error::other("the hashing thread stopped"),
                    });
                }
            };
            drop(ranges);
            (copied, hashing.join())
        });
        let hasher = match hashed {
            Ok(Ok(hasher)) => hasher,
            Ok(Err(source)) => {
                return Err(Error::Io {
                    path: path.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(Error::Io {
                    path,
                    source: io::Error::other("the hashing thread panicked"),
                });
            }
        };
        self.hasher = hasher;
        match copied? {
            Some(copied) => {
                self.count += copied;
                Ok(copied)
            }
            // The kernel copied nothing: the plain loop reads the file from where it is.
            None => self.fill_from(&mut &*src, expected, progress),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.count
    }

    /// Checks the content against `expected`, makes it durable and moves it into `blobs/`.
    /// On any failure the temp file is removed and `blobs/` is untouched.
    pub fn commit(self, expected: &Expected) -> Result<(Digest, u64)> {
        self.commit_in(expected, None)
    }

    /// [`BlobWriter::commit`] that leaves the fsync of the directory the rename changed to
    /// `batch` (a push syncs `blobs/sha256` once for all its blobs, before anything names them).
    pub(crate) fn commit_batched(
        self,
        expected: &Expected,
        batch: &mut DirSyncs,
    ) -> Result<(Digest, u64)> {
        self.commit_in(expected, Some(batch))
    }

    fn commit_in(self, expected: &Expected, batch: Option<&mut DirSyncs>) -> Result<(Digest, u64)> {
        let BlobWriter {
            layout,
            out,
            hasher,
            count,
        } = self;
        let actual = hasher.finish();
        check_expected(expected, &actual, count)?;
        let temp = out.into_inner().map_err(|e| Error::Io {
            path: layout.root.join(INGEST_DIR),
            source: e.into_error(),
        })?;
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .at(temp.path())?;
        let (file, path) = temp.into_parts();
        layout.place_blob(Placement::Ingest { path, file: &file }, &actual, batch)?;
        Ok((actual, count))
    }
}

/// Checks what was read (`actual`, `count` bytes) against `expected`; errors name its subject.
fn check_expected(expected: &Expected, actual: &Digest, count: u64) -> Result<()> {
    if let Some(size) = expected.size
        && size != count
    {
        return Err(Error::SizeMismatch {
            what: expected.subject().into(),
            expected: size,
            actual: count,
        });
    }
    if let Some(d) = &expected.digest
        && actual != d
    {
        return Err(Error::DigestMismatch {
            what: expected.subject().into(),
            expected: d.clone(),
            actual: actual.clone(),
        });
    }
    Ok(())
}

/// Verified copy: copies `reader` into `out` through the one copy loop ([`copy_hashed`]),
/// hashing with the expected digest's algorithm (else sha256) and reporting progress; stops as
/// soon as more bytes arrive than the expected size (so a hostile stream cannot fill the disk
/// past what was declared), then checks the size and digest that were expected. Returns the
/// digest and size of what was copied; on error the caller discards what `out` received.
/// Read, size and digest failures name `expected`'s subject (a blob, a source file, an archive
/// member); write failures name `output` (the archive being written, the temp file filled).
pub(crate) fn copy_verified(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    expected: &Expected,
    output: &Subject,
    progress: &dyn Progress,
) -> Result<(Digest, u64)> {
    let what = expected.subject();
    let (hasher, total) = copy_hashed(
        reader,
        out,
        expected.algorithm()?.hasher(),
        expected.size.map(|size| (size, &what)),
        &|e| what.stream_error(e),
        &|e| output.stream_error(e),
        progress,
    )?;
    let actual = hasher.finish();
    check_expected(expected, &actual, total)?;
    Ok((actual, total))
}

/// A chunk read and written, on its way to the hashing thread: the buffer and its filled length.
type Chunk = (Vec<u8>, usize);

/// Where the copy loop hashes: the first chunk here (most blobs are one chunk, and a thread
/// per small blob would cost more than it saves), every later one on a second core while this
/// one reads and writes the next.
enum Hashing<'scope> {
    Here(Hasher),
    There {
        full: mpsc::SyncSender<Chunk>,
        empty: mpsc::Receiver<Vec<u8>>,
        thread: std::thread::ScopedJoinHandle<'scope, Hasher>,
    },
}

/// Reads into `buf` until it is full or the input ends (retrying interrupted reads); returns
/// how many bytes it holds.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The one copy loop: copies `reader` into `out` in chunks of [`COPY_BUFFER`], feeding
/// `hasher`, and fails as soon as more than `limit`'s size arrives (naming its subject).
/// `read_error` and `write_error` say what a failed read or write names. Returns the hasher
/// (to finish or keep feeding) and the number of bytes copied.
pub(crate) fn copy_hashed(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    hasher: Hasher,
    limit: Option<(u64, &Subject)>,
    read_error: &dyn Fn(io::Error) -> Error,
    write_error: &dyn Fn(io::Error) -> Error,
    progress: &dyn Progress,
) -> Result<(Hasher, u64)> {
    std::thread::scope(|scope| {
        let mut hashing = Hashing::Here(hasher);
        // A blob of known size smaller than a chunk gets a buffer of its size (and one byte to
        // see the end): a zeroed 1 MiB buffer for each of thousands of small manifests (an
        // import's members) cost a 1 MiB memset each.
        let first = limit
            .and_then(|(size, _)| usize::try_from(size).ok())
            .map_or(COPY_BUFFER, |size| size.saturating_add(1).min(COPY_BUFFER));
        let mut buf = vec![0u8; first];
        let mut total = 0u64;
        let copied = loop {
            // Whole chunks: fewer writes, and fewer hand-offs to the hashing thread.
            let n = read_full(reader, &mut buf).map_err(read_error)?;
            if n == 0 {
                break Ok(total);
            }
            total += n as u64;
            if let Some((size, what)) = limit
                && total > size
            {
                break Err(Error::SizeMismatch {
                    what: what.clone().into(),
                    expected: size,
                    actual: total,
                });
            }
            if let Err(e) = out.write_all(&buf[..n]) {
                break Err(write_error(e));
            }
            progress.advance(n as u64);
            hashing = match hashing {
                Hashing::Here(mut hasher) if total == n as u64 => {
                    hasher.update(&buf[..n]);
                    Hashing::Here(hasher)
                }
                Hashing::Here(hasher) => {
                    let (full, full_rx) = mpsc::sync_channel::<Chunk>(4);
                    let (empty_tx, empty) = mpsc::channel();
                    let thread = scope.spawn(move || {
                        let mut hasher = hasher;
                        for (chunk, len) in full_rx {
                            hasher.update(&chunk[..len]);
                            // The copier may have finished; a lost buffer is fine.
                            let _ = empty_tx.send(chunk);
                        }
                        hasher
                    });
                    Hashing::There {
                        full,
                        empty,
                        thread,
                    }
                }
                there @ Hashing::There { .. } => there,
            };
            if let Hashing::There { full, empty, .. } = &hashing {
                let next = empty.try_recv().unwrap_or_else(|_| vec![0u8; COPY_BUFFER]);
                let chunk = std::mem::replace(&mut buf, next);
                if full.send((chunk, n)).is_err() {
                    break Err(write_error(io::Error::other("the hashing thread stopped")));
                }
            }
        };
        let hasher = match hashing {
            Hashing::Here(hasher) => hasher,
            Hashing::There { full, thread, .. } => {
                drop(full);
                thread
                    .join()
                    .map_err(|_| write_error(io::Error::other("the hashing thread panicked")))?
            }
        };
        copied.map(|total| (hasher, total))
    })
}

/// A file being filled from its start offset on, with writeback started every
/// [`WRITEBACK_EVERY`] bytes, so the fsync at the end finds most of a large file on disk.
pub(crate) struct Writeback<'a> {
    file: &'a File,
    written: u64,
    synced: u64,
}

/// How much a [`Writeback`] lets accumulate before it starts writing it back.
const WRITEBACK_EVERY: u64 = 16 << 20;

impl<'a> Writeback<'a> {
    /// Writes to `file`, whose first `offset` bytes are already there.
    pub(crate) fn new(file: &'a File, offset: u64) -> Self {
        Writeback {
            file,
            written: offset,
            synced: offset,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.synced >= WRITEBACK_EVERY {
            start_writeback(self.file, self.synced, self.written - self.synced);
            self.synced = self.written;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the verified file that [`Layout::place_blob`] puts under `blobs/` is now.
pub(crate) enum Placement<'a> {
    /// A temp file under the layout's `ingest/` (written there, or hard-linked there by
    /// [`Layout::link_into_ingest`]), with a handle open on it. Its mode is kept: a hard link
    /// shares the inode with its source.
    Ingest {
        /// The temp file; removed if the placement fails.
        path: TempPath,
        /// Open on it, to make its content durable.
        file: &'a File,
    },
    /// A file verified and made durable in a private directory on the layout's file system
    /// (import's staging area). Renamed as is; when that directory is on another file system
    /// the file is copied in through the verified writer instead.
    Staged {
        /// The file.
        path: &'a Path,
        /// Its verified size.
        size: u64,
    },
}

/// Directories whose entries changed, to fsync once each after a batch of placements.
#[derive(Debug, Default)]
pub(crate) struct DirSyncs(BTreeSet<PathBuf>);

impl DirSyncs {
    /// Makes every recorded directory durable.
    pub(crate) fn finish(self) -> Result<()> {
        for d in &self.0 {
            sync_dir(d)?;
        }
        Ok(())
    }
}

impl Layout {
    /// The one blob placement: makes a verified file durable and renames it to
    /// `blobs/<alg>/<encoded>`, creating (and fsyncing) the algorithm directory when needed, then
    /// fsyncs the directory the rename changed (at once, or in `batch` when the caller places
    /// many blobs and syncs each directory once). The caller has checked the content against
    /// `digest`. Returns false when the blob was there already (same digest, same content: the
    /// file already there is kept and the new one dropped).
    pub(crate) fn place_blob(
        &self,
        from: Placement<'_>,
        digest: &Digest,
        batch: Option<&mut DirSyncs>,
    ) -> Result<bool> {
        let target = self.blob_path(digest);
        if target.is_file() {
            return Ok(false);
        }
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let mut changed = vec![dir.clone()];
        let ensure_dir = |changed: &mut Vec<PathBuf>| -> Result<()> {
            if !dir.is_dir() {
                fs::create_dir_all(&dir).at(&dir)?;
                changed.push(self.root.join(BLOBS_DIR));
            }
            Ok(())
        };
        match from {
            Placement::Ingest { path, file } => {
                file.sync_all().at(&*path)?;
                ensure_dir(&mut changed)?;
                path.persist(&target).map_err(|e| Error::Io {
                    path: target.clone(),
                    source: e.error,
                })?;
            }
            Placement::Staged { path, size } => {
                ensure_dir(&mut changed)?;
                match fs::rename(path, &target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                        let mut f = File::open(path).at(path)?;
                        self.write_blob(
                            &mut f,
                            Expected {
                                digest: Some(digest.clone()),
                                size: Some(size),
                                input: Some(Subject::Path(path.to_path_buf())),
                            },
                        )?;
                        return Ok(true);
                    }
                    Err(e) => {
                        return Err(Error::Io {
                            path: target,
                            source: e,
                        });
                    }
                }
            }
        }
        match batch {
            Some(batch) => batch.0.extend(changed),
            None => {
                for d in changed.iter().rev() {
                    sync_dir(d)?;
                }
            }
        }
        Ok(true)
    }

    /// Hard-links `source` (another layout's blob) into this layout's `ingest/`, locked as a
    /// live writer's file, for the caller to verify and then [`Layout::place_blob`]. `None` when
    /// no link can be made (another file system, say): the caller copies instead.
    pub(crate) fn link_into_ingest(&self, source: &Path) -> Result<Option<(TempPath, File)>> {
        let ingest = self.root.join(INGEST_DIR);
        fs::create_dir_all(&ingest).at(&ingest)?;
        let Ok(temp) = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".ingest")
            .make_in(&ingest, |p| fs::hard_link(source, p))
        else {
            return Ok(None);
        };
        let path = temp.into_temp_path();
        let file = File::open(&path).at(&*path)?;
        // A held lock tells `gc` this ingest file belongs to a live writer.
        file.lock().at(&*path)?;
        Ok(Some((path, file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::NoProgress;

    /// A reader that hands out at most `step` bytes per call, so chunks are filled by several
    /// reads.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Sizes around the chunk boundary (hashed here, then on the hashing thread) and reads of
    /// odd sizes: the digest and the bytes written are those of the input, in order.
    #[test]
    fn copies_and_hashes_across_chunks() {
        for len in [
            0,
            1,
            COPY_BUFFER - 1,
            COPY_BUFFER,
            COPY_BUFFER + 1,
            3 * COPY_BUFFER + 12_345,
        ] {
            let data = content(len);
            let mut out = Vec::new();
            let (digest, n) = copy_verified(
                &mut Trickle {
                    data: &data,
                    step: 300_007,
                },
                &mut out,
                &Expected {
                    digest: Some(Digest::of_bytes(Algorithm::Sha256, &data)),
                    size: Some(len as u64),
                    input: None,
                },
                &Subject::Path("out".into()),
                &NoProgress,
            )
            .unwrap();
            assert_eq!(n, len as u64);
            assert_eq!(digest, Digest::of_bytes(Algorithm::Sha256, &data));
            assert!(out == data, "the bytes written differ at length {len}");
        }
    }

    /// A stream longer than declared stops at the first chunk past the size, on either side of
    /// the hand-off to the hashing thread, and reports how much had arrived.
    #[test]
    fn stops_past_the_declared_size() {
        for (declared, len) in [(10, 20), (COPY_BUFFER as u64 * 2 + 1, 5 * COPY_BUFFER)] {
            let data = content(len);
            let mut out = Vec::new();
            let err = copy_verified(
                &mut &data[..],
                &mut out,
                &Expected {
                    size: Some(declared),
                    ..Expected::default()
                },
                &Subject::Path("out".into()),
                &NoProgress,
            )
            .unwrap_err();
            match err {
                Error::SizeMismatch {
                    expected, actual, ..
                } => {
                    assert_eq!(expected, declared);
                    assert!(actual > declared && actual <= declared + COPY_BUFFER as u64);
                }
                other => panic!("{other:?}"),
            }
            assert!(out.len() as u64 <= declared, "wrote {} bytes", out.len());
        }
    }

    /// A file is copied by the kernel and hashed from what landed in `ingest/`, across a
    /// chunk boundary; a pipe, which the kernel will not copy that way, takes the plain loop;
    /// both give the same blob as `write_blob`.
    #[test]
    fn fill_from_file_copies_files_and_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l")).unwrap();
        let data = content((WRITEBACK_EVERY as usize) + 12_345);
        let src = dir.path().join("src");
        fs::write(&src, &data).unwrap();
        let want = Digest::of_bytes(Algorithm::Sha256, &data);
        let mut w = layout.blob_writer(Algorithm::Sha256).unwrap();
        w.write_all(b"").unwrap();
        let n = w
            .fill_from_file(
                &File::open(&src).unwrap(),
                &Expected::default(),
                &NoProgress,
            )
            .unwrap();
        assert_eq!(n, data.len() as u64);
        let (digest, size) = w.commit(&Expected::default()).unwrap();
        assert_eq!((digest.clone(), size), (want.clone(), data.len() as u64));
        assert!(fs::read(layout.blob_path(&digest)).unwrap() == data);

        let other = Layout::init(dir.path().join("m")).unwrap();
        let (reader, mut writer) = io::pipe().unwrap();
        let feed = data.clone();
        let feeder = std::thread::spawn(move || writer.write_all(&feed));
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        let mut w = other.blob_writer(Algorithm::Sha256).unwrap();
        w.fill_from_file(&pipe, &Expected::default(), &NoProgress)
            .unwrap();
        feeder.join().unwrap().unwrap();
        assert_eq!(w.commit(&Expected::default()).unwrap().0, want);
    }

    /// A file longer than declared: the copy stops one byte past the size, and nothing
    /// reaches `blobs/`.
    #[test]
    fn fill_from_file_stops_past_the_declared_size() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l")).unwrap();
        let src = dir.path().join("src");
        fs::write(&src, content(100_000)).unwrap();
        let mut w = layout.blob_writer(Algorithm::Sha256).unwrap();
        let expected = Expected {
            size: Some(1000),
            ..Expected::default()
        };
        let err = w
            .fill_from_file(&File::open(&src).unwrap(), &expected, &NoProgress)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SizeMismatch {
                    expected: 1000,
                    actual: 1001,
                    ..
                }
            ),
            "{err:?}"
        );
        let temp_len = fs::metadata(w.out.get_ref().path()).unwrap().len();
        assert_eq!(temp_len, 1001);
        drop(w);
        let placed =
            fs::read_dir(layout.root().join(BLOBS_DIR).join("sha256")).map_or(0, Iterator::count);
        assert_eq!(placed, 0);
    }

    /// The one copy loop: no other library file feeds a hasher (import's staging had a loop of
    /// its own). fsck's hashing, which copies nothing and runs on every core, is the exception.
    #[test]
    fn one_copy_loop() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&src).unwrap().display().to_string();
                if ["digest.rs", "layout/ingest.rs", "fsck/hash.rs"].contains(&rel.as_str()) {
                    continue;
                }
                let text = fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line
                        .split("//")
                        .next()
                        .unwrap_or("")
                        .contains("hasher.update(")
                    {
                        found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "copy loops outside layout/ingest.rs:\n{}",
            found.join("\n")
        );
    }
}
