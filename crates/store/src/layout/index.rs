//! The only writer of `index.json`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::blobs::read_limited;
use super::{FileId, Layout, MAX_INDEX_SIZE, TEMP_PREFIX, sync_dir};
use crate::error::{Corruption, Error, IoContext, Result};
use crate::model::ImageIndex;

/// What `index.json` held before an edit, as text.
enum Before {
    /// The text read (the index writes it back unchanged).
    Text(Arc<String>),
    /// The index as read, serialized.
    Bytes(Vec<u8>),
}

impl Before {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Before::Text(t) => t.as_bytes(),
            Before::Bytes(b) => b,
        }
    }
}

impl Layout {
    /// Reads `index.json` without locking (replacements are atomic, so this sees a whole file).
    pub fn read_index(&self) -> Result<ImageIndex> {
        let (bytes, id) = self.read_index_bytes()?;
        self.parse_index(bytes, id)
    }

    /// The content of `index.json` and the identity of the file it was read from.
    fn read_index_bytes(&self) -> Result<(Vec<u8>, FileId)> {
        let path = self.index_path();
        // Identity and content from one open file, so they describe the same version.
        let (bytes, file) = read_limited(&path, MAX_INDEX_SIZE, "")?.ok_or_else(|| Error::Io {
            path: path.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        let id = FileId::of(&file.metadata().at(&path)?);
        Ok((bytes, id))
    }

    /// Parses `bytes`, read from the version `id` of `index.json`, noting that it parses.
    fn parse_index(&self, bytes: Vec<u8>, id: FileId) -> Result<ImageIndex> {
        // The entries keep their place in the text read, not a copy each.
        let parsed = match String::from_utf8(bytes) {
            Ok(text) => ImageIndex::parse_string(text),
            Err(e) => ImageIndex::parse(e.as_bytes()),
        };
        let index = parsed.map_err(|e| Error::Corrupt {
            path: self.index_path(),
            reason: Corruption::Index(e),
        })?;
        self.note_index_ok(id);
        Ok(index)
    }

    /// Remembers that version `id` of `index.json` parses (see [`Layout::check_index`]).
    fn note_index_ok(&self, id: FileId) {
        if let Ok(mut ok) = self.index_ok.lock() {
            *ok = Some(id);
        }
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
        self.read_index().map(|_| ())
    }

    /// The one way to change `index.json`: under the layout lock, read it, let `change` edit it,
    /// and, when it changed, atomically replace the file. An error from `change` leaves the file
    /// as it was.
    pub fn edit_index<T>(&self, change: impl FnOnce(&mut ImageIndex) -> Result<T>) -> Result<T> {
        self.edit_index_from(None, change)
    }

    /// [`Layout::edit_index`] starting from `read`, `index.json` as the caller read it without
    /// the lock (to resolve a reference, say): used as is when the file still holds exactly
    /// what `read` writes, so a command that already parsed it does not parse it again; read
    /// again when anything changed it since (or when it is not in ocistow's compact form).
    pub fn edit_index_from<T>(
        &self,
        read: Option<ImageIndex>,
        change: impl FnOnce(&mut ImageIndex) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock()?;
        let index = match read {
            Some(index) => {
                let (bytes, id) = self.read_index_bytes()?;
                // A read that still is the file's text (compared as text: cheaper than a parse).
                let same = match index.pristine() {
                    Some(text) => bytes == text.as_bytes(),
                    None => bytes == index.to_vec(),
                };
                if same {
                    self.note_index_ok(id);
                    index
                } else {
                    self.parse_index(bytes, id)?
                }
            }
            None => self.read_index()?,
        };
        let mut index = index;
        // The text of the unchanged index, to tell an edit from none: the text read when the
        // index writes it back as it was, else the index serialized.
        let before = match index.pristine() {
            Some(text) => Before::Text(Arc::clone(text)),
            None => Before::Bytes(index.to_vec()),
        };
        let out = change(&mut index)?;
        let after = index.to_vec();
        // Equal text is an equal index (the model writes what it read, field for field); an
        // edit that only reorders keys is written, as it changes the text.
        if after != before.as_bytes() {
            let mode = fs::metadata(self.index_path())
                .ok()
                .map(|m| m.permissions().mode());
            self.write_file_atomically(&self.index_path(), &after, mode)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Digest};
    use crate::model::Descriptor;

    fn entry(n: u8) -> Descriptor {
        Descriptor::new("a/b", Digest::of_bytes(Algorithm::Sha256, &[n]), 1)
    }

    /// A transaction given an index read earlier starts from what is on disk when another
    /// writer changed the file in between: the other writer's entry is kept.
    #[test]
    fn edit_from_a_stale_read_keeps_what_changed_since() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let stale = layout.read_index().unwrap();
        Layout::open(dir.path())
            .unwrap()
            .edit_index(|i| {
                i.manifests_mut().push(entry(1));
                Ok(())
            })
            .unwrap();
        layout
            .edit_index_from(Some(stale), |i| {
                assert_eq!(
                    i.manifests().len(),
                    1,
                    "the transaction saw the stale index"
                );
                i.manifests_mut().push(entry(2));
                Ok(())
            })
            .unwrap();
        let now = layout.read_index().unwrap();
        assert_eq!(now.manifests(), &[entry(1), entry(2)]);
    }

    /// An unchanged file is used from the read; a file in another form (pretty-printed by
    /// another tool) is read again, and left as it is when the edit changes nothing.
    #[test]
    fn edit_from_a_read_writes_only_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let pretty = b"{\n  \"schemaVersion\": 2,\n  \"manifests\": []\n}\n";
        fs::write(layout.index_path(), pretty).unwrap();
        let read = layout.read_index().unwrap();
        layout.edit_index_from(Some(read), |_| Ok(())).unwrap();
        assert_eq!(fs::read(layout.index_path()).unwrap(), pretty);
        let read = layout.read_index().unwrap();
        layout
            .edit_index_from(Some(read), |i| {
                i.manifests_mut().push(entry(3));
                Ok(())
            })
            .unwrap();
        let compact = fs::read(layout.index_path()).unwrap();
        assert_eq!(
            ImageIndex::parse(&compact).unwrap().manifests(),
            &[entry(3)]
        );
        let read = layout.read_index().unwrap();
        layout
            .edit_index_from(Some(read), |i| {
                i.set_annotation("k", "v");
                Ok(())
            })
            .unwrap();
        let after = layout.read_index().unwrap();
        assert_eq!(after.annotation("k"), Some("v"));
        assert_eq!(after.manifests(), &[entry(3)]);
    }

    /// "Nothing changed" is told from the text: setting a value to what it was writes nothing.
    #[test]
    fn an_edit_to_the_same_value_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        layout
            .edit_index(|i| {
                i.set_annotation("k", "v");
                Ok(())
            })
            .unwrap();
        let id = fs::metadata(layout.index_path()).unwrap();
        layout
            .edit_index(|i| {
                i.set_annotation("k", "v");
                Ok(())
            })
            .unwrap();
        let again = fs::metadata(layout.index_path()).unwrap();
        assert_eq!(
            FileId::of(&id),
            FileId::of(&again),
            "index.json was replaced"
        );
    }
}
