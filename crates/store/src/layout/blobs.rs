//! Reading, verifying and deleting blobs under `blobs/`.

use std::fs::{self, File};
use std::io::{self, Read, Write};

use super::ingest::{check_matches, copy_with_progress};
use super::{Layout, Progress, sync_dir};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};

impl Layout {
    /// The size of a blob on disk, or `None` when it is absent.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(Error::Corrupt {
                path,
                reason: "blob path is not a regular file".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }

    /// True when the blob is present (an error when its path is not a regular file).
    pub fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_size(digest)?.is_some())
    }

    /// Opens a blob for reading (unverified; see [`Layout::verify_blob`]).
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::not_found(format!("blob {digest}"))
            } else {
                Error::Io { path, source: e }
            }
        })
    }

    /// Reads a whole blob and verifies it against its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?.read_to_end(&mut bytes).at(&path)?;
        digest.verify_bytes(&bytes, &path.display().to_string())?;
        Ok(bytes)
    }

    /// Streams a blob through its hash and checks digest and, if given, size.
    pub fn verify_blob(&self, digest: &Digest, size: Option<u64>) -> Result<()> {
        let alg = digest.known_algorithm()?;
        let path = self.blob_path(digest);
        let mut reader = HashingReader::new(self.open_blob(digest)?, alg);
        io::copy(&mut reader, &mut io::sink()).at(&path)?;
        let (actual, count) = reader.finish();
        check_matches(&path.display().to_string(), digest, size, &actual, count)
    }

    /// Copies a blob to `out`, verifying its digest and size as it goes. The caller must discard
    /// what was written if this fails.
    pub fn copy_blob_to(
        &self,
        digest: &Digest,
        size: Option<u64>,
        out: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<u64> {
        let alg = digest.known_algorithm()?;
        let path = self.blob_path(digest);
        let mut reader = HashingReader::new(self.open_blob(digest)?, alg);
        copy_with_progress(&mut reader, out, progress, &path)?;
        let (actual, count) = reader.finish();
        check_matches(&path.display().to_string(), digest, size, &actual, count)?;
        Ok(count)
    }

    /// Deletes a blob. Deleting an absent blob is `NotFound`.
    pub fn delete_blob(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::not_found(format!("blob {digest}")))
            }
            Err(e) => Err(Error::Io { path, source: e }),
        }
    }
}
