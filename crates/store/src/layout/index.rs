//! The only writer of `index.json`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::blobs::read_limited;
use super::{FileId, Layout, MAX_INDEX_SIZE, TEMP_PREFIX, sync_dir};
use crate::error::{Corruption, Error, IoContext, Result};
use crate::model::ImageIndex;

impl Layout {
    /// Reads `index.json` without locking (replacements are atomic, so this sees a whole file).
    pub fn read_index(&self) -> Result<ImageIndex> {
        Ok(self.read_index_with_bytes()?.1)
    }

    fn read_index_with_bytes(&self) -> Result<(Vec<u8>, ImageIndex)> {
        let path = self.index_path();
        // Identity and content from one open file, so they describe the same version.
        let (bytes, file) = read_limited(&path, MAX_INDEX_SIZE, "")?.ok_or_else(|| Error::Io {
            path: path.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let id = FileId::of(&file.metadata().at(&path)?);
        let index = ImageIndex::parse(&bytes).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: Corruption::Index(e),
        })?;
        if let Ok(mut ok) = self.index_ok.lock() {
            *ok = Some(id);
        }
        Ok((bytes, index))
    }

    /// Checks that `index.json` parses, without parsing it again when this handle already
    /// parsed the same version. Writers call it before their first blob, so a corrupt
    /// `index.json` fails the command before anything is written.
    pub fn check_index(&self) -> Result<()> {
        let path = self.index_path();
        let id = FileId::of(&fs::metadata(&path).at(&path)?);
        if self.index_ok.lock().is_ok_and(|ok| *ok == Some(id)) {
            return Ok(());
        }
        self.read_index_with_bytes().map(|_| ())
    }

    /// The one way to change `index.json`: under the layout lock, read it, let `change` edit it,
    /// and, when it changed, atomically replace the file. An error from `change` leaves the file
    /// as it was.
    pub fn edit_index<T>(&self, change: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let (_, before) = self.read_index_with_bytes()?;
        let mut index = before.clone();
        let out = change(&mut index)?;
        if index != before {
            let mode = fs::metadata(self.index_path())
                .ok()
                .map(|m| m.permissions().mode());
            self.write_file_atomically(&self.index_path(), &index.to_vec(), mode)?;
        }
        Ok(out)
    }

    /// Temp file beside `target`, fsync, rename over `target`, fsync the directory.
    pub(super) fn write_file_atomically(
        &self,
        target: &Path,
        bytes: &[u8],
        mode: Option<u32>,
    ) -> Result<()> {
        let dir = target.parent().unwrap_or(&self.root);
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".tmp")
            .tempfile_in(dir)
            .at(dir)?;
        temp.write_all(bytes).at(temp.path())?;
        let perms = fs::Permissions::from_mode(mode.unwrap_or(0o644) & 0o7777);
        temp.as_file().set_permissions(perms).at(temp.path())?;
        temp.as_file().sync_all().at(temp.path())?;
        temp.persist(target).map_err(|e| Error::Io {
            path: target.to_path_buf(),
            source: e.error,
        })?;
        sync_dir(dir)
    }
}
