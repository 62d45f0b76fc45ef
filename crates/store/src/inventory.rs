//! The inventory of `blobs/`: what gc sweeps from and fsck hashes.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layout::{BLOBS_DIR, Layout};

/// A file under `blobs/<alg>/` whose name is a digest.
#[derive(Debug, Clone)]
pub(crate) struct BlobFile {
    pub(crate) digest: Digest,
    pub(crate) path: PathBuf,
    /// Known when the inventory was taken with sizes.
    pub(crate) size: Option<u64>,
}

/// Everything under `blobs/`: the blob files, and what is there but is not a blob.
#[derive(Debug, Default)]
pub(crate) struct Inventory {
    pub(crate) blobs: Vec<BlobFile>,
    /// Paths relative to the layout root of entries that are not `<alg>/<digest>` files.
    pub(crate) strays: Vec<String>,
}

impl Layout {
    /// Lists `blobs/`. File types come from the directory listing; `sizes` adds an `lstat`
    /// per blob (a large share of the cost with 100,000 blobs, so only when needed).
    pub(crate) fn inventory(&self, sizes: bool) -> Result<Inventory> {
        let root = self.root();
        let blobs_dir = root.join(BLOBS_DIR);
        let mut inv = Inventory::default();
        let algs = match fs::read_dir(&blobs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(inv),
            Err(e) => {
                return Err(Error::Io {
                    path: blobs_dir,
                    source: e,
                });
            }
        };
        for alg in algs {
            let alg = alg.at(&blobs_dir)?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            let kind = alg.file_type().at(alg.path())?;
            if !kind.is_dir() {
                inv.strays.push(format!("{BLOBS_DIR}/{alg_name}"));
                continue;
            }
            let dir = alg.path();
            for f in fs::read_dir(&dir).at(&dir)? {
                let f = f.at(&dir)?;
                let name = f.file_name().to_string_lossy().into_owned();
                let is_file = f.file_type().at(f.path())?.is_file();
                let digest = Digest::parse(&format!("{alg_name}:{name}")).ok();
                match digest {
                    // The name must map back to this very path (no odd spellings).
                    Some(d) if is_file && d.encoded() == name => {
                        let size = if sizes {
                            Some(f.metadata().at(f.path())?.len())
                        } else {
                            None
                        };
                        inv.blobs.push(BlobFile {
                            digest: d,
                            path: f.path(),
                            size,
                        });
                    }
                    _ => inv.strays.push(format!("{BLOBS_DIR}/{alg_name}/{name}")),
                }
            }
        }
        Ok(inv)
    }

    /// How many blob files `blobs/` holds and their total size, from one directory walk (what a
    /// progress bar for [`Layout::fsck`] needs up front).
    pub fn blob_usage(&self) -> Result<(usize, u64)> {
        let inv = self.inventory(true)?;
        Ok((
            inv.blobs.len(),
            inv.blobs.iter().filter_map(|b| b.size).sum(),
        ))
    }
}
