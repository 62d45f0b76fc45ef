//! The one verified writer: blobs are written under `ingest/`, hashed, checked and only then
//! placed into `blobs/`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempPath;

use super::sys::start_writeback;
use super::{
    BLOBS_DIR, COPY_BUFFER, Expected, INGEST_DIR, Layout, NoProgress, Progress, TEMP_PREFIX,
    sync_dir,
};
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, IoContext, Result, Subject};
use crate::model::Descriptor;

impl Layout {
    /// Writes a blob from `reader` through `ingest/`, returning its digest and size.
    /// The algorithm is that of the expected digest, else sha256.
    pub fn write_blob(&self, reader: &mut dyn Read, expected: Expected) -> Result<(Digest, u64)> {
        self.write_blob_with_progress(reader, expected, &NoProgress)
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
    /// Copies all of `reader` in, hashing on a second thread so the hash overlaps the reads and
    /// writes, and starting writeback every few MiB so the final fsync has little left to do.
    /// More than `expected.size` bytes is an error (a stream cannot outgrow what was declared);
    /// errors name `expected`'s subject.
    pub fn fill_from(
        &mut self,
        reader: &mut dyn Read,
        expected: &Expected,
        progress: &dyn Progress,
    ) -> Result<u64> {
        const CHUNK: usize = 1 << 20;
        const WRITEBACK_EVERY: u64 = 16 << 20;
        let limit = expected.size;
        let what = expected.subject();
        let ingest = self.layout.root.join(INGEST_DIR);
        self.out.flush().at(&ingest)?;
        let path = self.out.get_ref().path().to_path_buf();
        let hasher = std::mem::replace(&mut self.hasher, Algorithm::Sha256.hasher());
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let file = self.out.get_mut().as_file_mut();
        let (copied, hasher) = std::thread::scope(|scope| {
            let hashing = scope.spawn(move || {
                let mut hasher = hasher;
                for chunk in full_rx {
                    hasher.update(&chunk);
                    // The copier may have finished; a lost buffer is fine.
                    let _ = empty_tx.send(chunk);
                }
                hasher
            });
            let copied = (|| -> Result<u64> {
                let mut total = 0u64;
                let mut synced = 0u64;
                loop {
                    let mut buf = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                    buf.resize(CHUNK, 0);
                    let n = loop {
                        match reader.read(&mut buf) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                return Err(Error::Stream {
                                    what: what.clone(),
                                    source: e,
                                });
                            }
                        }
                    };
                    if n == 0 {
                        return Ok(total);
                    }
                    total += n as u64;
                    if let Some(limit) = limit
                        && total > limit
                    {
                        return Err(Error::SizeMismatch {
                            what: what.clone().into(),
                            expected: limit,
                            actual: total,
                        });
                    }
                    buf.truncate(n);
                    file.write_all(&buf).at(&path)?;
                    progress.advance(n as u64);
                    if total - synced >= WRITEBACK_EVERY {
                        start_writeback(file, synced, total - synced);
                        synced = total;
                    }
                    if full_tx.send(buf).is_err() {
                        return Err(Error::Io {
                            path: path.clone(),
                            source: io::Error::other("hashing thread stopped"),
                        });
                    }
                }
            })();
            drop(full_tx);
            let hasher = hashing.join();
            (copied, hasher)
        });
        let hasher = hasher.map_err(|_| Error::Io {
            path: path.clone(),
            source: io::Error::other("hashing thread panicked"),
        })?;
        self.hasher = hasher;
        let copied = copied?;
        self.count += copied;
        Ok(copied)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.count
    }

    /// Checks the content against `expected`, makes it durable and moves it into `blobs/`.
    /// On any failure the temp file is removed and `blobs/` is untouched.
    pub fn commit(self, expected: &Expected) -> Result<(Digest, u64)> {
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
        layout.place_blob(Placement::Ingest { path, file: &file }, &actual, None)?;
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

/// The one verified copy loop: copies `reader` into `out` with one large buffer, hashing as it
/// goes (with the expected digest's algorithm, else sha256) and reporting progress; stops as
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
    let mut hasher = expected.algorithm()?.hasher();
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Stream {
                    what: expected.subject(),
                    source: e,
                });
            }
        };
        total += n as u64;
        if let Some(limit) = expected.size
            && total > limit
        {
            return Err(Error::SizeMismatch {
                what: expected.subject().into(),
                expected: limit,
                actual: total,
            });
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|source| Error::Stream {
            what: output.clone(),
            source,
        })?;
        progress.advance(n as u64);
    }
    let actual = hasher.finish();
    check_expected(expected, &actual, total)?;
    Ok((actual, total))
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
