//! The one verified writer: blobs are written under `ingest/`, hashed, checked and only then
//! placed into `blobs/`.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::sys::start_writeback;
use super::{
    BLOBS_DIR, COPY_BUFFER, Expected, INGEST_DIR, Layout, NoProgress, Progress, TEMP_PREFIX,
    sync_dir,
};
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
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
        let alg = match &expected.digest {
            Some(d) => d.known_algorithm()?,
            None => Algorithm::Sha256,
        };
        if let Some(d) = &expected.digest
            && self.blob_exists(d)?
        {
            let mut hashing = HashingReader::new(reader, alg);
            copy_limited(
                &mut hashing,
                &mut io::sink(),
                progress,
                expected.size,
                "input",
            )?;
            let (actual, count) = hashing.finish();
            check_matches("input", d, expected.size, &actual, count)?;
            return Ok((actual, count));
        }
        let mut writer = self.blob_writer(alg)?;
        writer.fill_from(reader, expected.size, progress)?;
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
            root: self.root.clone(),
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
    root: PathBuf,
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
    /// More than `limit` bytes is an error (a stream cannot outgrow what was declared).
    pub fn fill_from(
        &mut self,
        reader: &mut dyn Read,
        limit: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<u64> {
        const CHUNK: usize = 1 << 20;
        const WRITEBACK_EVERY: u64 = 16 << 20;
        let ingest = self.root.join(INGEST_DIR);
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
                                return Err(Error::Io {
                                    path: "input".into(),
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
                            what: "input".into(),
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
            root,
            out,
            hasher,
            count,
        } = self;
        let actual = hasher.finish();
        if let Some(d) = &expected.digest {
            check_matches("input", d, expected.size, &actual, count)?;
        } else if let Some(size) = expected.size
            && size != count
        {
            return Err(Error::SizeMismatch {
                what: "input".into(),
                expected: size,
                actual: count,
            });
        }
        let temp = out.into_inner().map_err(|e| Error::Io {
            path: root.join(INGEST_DIR),
            source: e.into_error(),
        })?;
        let target = root.join(actual.blob_path());
        if target.is_file() {
            // Same digest, same content: keep the file already there.
            return Ok((actual, count));
        }
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .at(temp.path())?;
        temp.as_file().sync_all().at(temp.path())?;
        let dir = target.parent().unwrap_or(&root).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).at(&dir)?;
            sync_dir(&root.join(BLOBS_DIR))?;
        }
        temp.persist(&target).map_err(|e| Error::Io {
            path: target.clone(),
            source: e.error,
        })?;
        sync_dir(&dir)?;
        Ok((actual, count))
    }
}

pub(super) fn check_matches(
    what: &str,
    expected: &Digest,
    size: Option<u64>,
    actual: &Digest,
    count: u64,
) -> Result<()> {
    if let Some(size) = size
        && size != count
    {
        return Err(Error::SizeMismatch {
            what: what.into(),
            expected: size,
            actual: count,
        });
    }
    if actual != expected {
        return Err(Error::DigestMismatch {
            what: what.into(),
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    Ok(())
}

/// Copies with one large buffer, reporting progress, and stops as soon as more than `limit`
/// bytes arrive (so a hostile stream cannot fill the disk past what was declared).
pub(super) fn copy_limited(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    progress: &dyn Progress,
    limit: Option<u64>,
    what: &str,
) -> Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io {
                    path: what.into(),
                    source: e,
                });
            }
        };
        total += n as u64;
        if let Some(limit) = limit
            && total > limit
        {
            return Err(Error::SizeMismatch {
                what: what.into(),
                expected: limit,
                actual: total,
            });
        }
        out.write_all(&buf[..n]).map_err(|e| Error::Io {
            path: what.into(),
            source: e,
        })?;
        progress.advance(n as u64);
    }
    Ok(total)
}
