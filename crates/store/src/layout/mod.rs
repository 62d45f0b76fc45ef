//! An OCI image layout on disk: `oci-layout`, `index.json`, `blobs/`.
//!
//! Durability rules, kept by every write in this module:
//! - a blob is written to a temp file under `ingest/`, hashed while written, checked against the
//!   expected size and digest, fsynced, and only then renamed into `blobs/<alg>/<encoded>` (and the
//!   directory fsynced), so a blob visible under `blobs/` is always complete and verified;
//! - `index.json` is changed only through [`Layout::edit_index`], which holds an exclusive lock on
//!   `.ocistow.lock` (a file never replaced or deleted) from the read of `index.json` to the rename
//!   of its fsynced replacement. Readers need no lock because the replacement is atomic.

mod blobs;
mod direct;
mod index;
mod ingest;
mod lock;
mod manifests;
mod sys;

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Conflict, Error, IoContext, LayoutProblem, Result, Subject};
use crate::model::ImageIndex;

pub(crate) use blobs::{open_regular, read_limited};
pub(crate) use direct::with_direct_writer;
pub use ingest::BlobWriter;
pub(crate) use ingest::{DirSyncs, Placement, Writeback, copy_hashed, copy_verified, read_full};
pub use lock::{LayoutLock, LockHolder, LockWait};

/// File names inside a layout.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// The file listing the layout's manifests.
pub const INDEX_FILE: &str = "index.json";
/// The directory of blobs, `blobs/<alg>/<encoded>`.
pub const BLOBS_DIR: &str = "blobs";
/// The directory of blobs being written (ocistow's and other tools').
pub const INGEST_DIR: &str = "ingest";
/// The lock file shared by all ocistow processes. Never replaced or deleted.
pub const LOCK_FILE: &str = ".ocistow.lock";
/// Writers hold a shared lock on this file from their first blob to their `index.json` update;
/// garbage collection holds it exclusively, so it never deletes a blob a writer is about to list.
pub const PIN_FILE: &str = ".ocistow-gc.lock";
/// Writers pass through this gate (a brief shared lock) to take their pin; gc holds it
/// exclusively while it waits for the pins to drain, so writers cannot starve it.
pub const PIN_GATE_FILE: &str = ".ocistow-gc-gate.lock";
/// Prefix of ocistow's temp files (in `ingest/` for blobs, in the root for `index.json`).
pub const TEMP_PREFIX: &str = ".ocistow-";

pub(crate) const LAYOUT_VERSION: &str = "1.0.0";
const COPY_BUFFER: usize = 1 << 20;
/// Manifests larger than this are refused when read into memory (registries cap them at 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// `index.json` larger than this is refused (100,000 entries take about 30 MiB).
pub const MAX_INDEX_SIZE: u64 = 512 << 20;
/// `oci-layout` larger than this is refused (the real one is 30 bytes).
pub const MAX_OCI_LAYOUT_SIZE: u64 = 64 << 10;
/// How long a writer waits for another process's lock, unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_mins(1);

/// Reports progress of a long copy. The CLI draws a bar; the library only counts.
pub trait Progress {
    /// Counts `bytes` more as done.
    fn advance(&self, bytes: u64);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn advance(&self, _: u64) {}
}

/// What a blob write must match. Unset fields are not checked.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Expected {
    /// The digest the content must hash to.
    pub digest: Option<Digest>,
    /// The exact size the content must have.
    pub size: Option<u64>,
    /// What the content is (a file, a source blob), named in errors. Unset: the blob it must
    /// be when the digest is given, else the stream given.
    pub input: Option<Subject>,
}

setters!(Expected {
    digest: Option<Digest>,
    size: Option<u64>,
    input: Option<Subject>,
});

impl Expected {
    /// What errors about the content name.
    pub(crate) fn subject(&self) -> Subject {
        match (&self.input, &self.digest) {
            (Some(s), _) => s.clone(),
            (None, Some(d)) => Subject::Blob(d.clone()),
            (None, None) => Subject::Input {
                name: "the stream given".into(),
            },
        }
    }
}

impl Expected {
    /// The algorithm to hash with: the expected digest's, else sha256.
    pub(crate) fn algorithm(&self) -> Result<crate::digest::Algorithm> {
        match &self.digest {
            Some(d) => d.known_algorithm(),
            None => Ok(crate::digest::Algorithm::Sha256),
        }
    }
}

/// An open OCI image layout.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ocistow_store::{Layout, Expected};
/// let layout = Layout::init(dir.path()).unwrap();
/// let (digest, size) = layout.write_blob(&mut &b"hello"[..], Expected::default()).unwrap();
/// assert_eq!(size, 5);
/// assert_eq!(layout.read_blob(&digest).unwrap(), b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    lock_timeout: Duration,
    /// Identity of the last `index.json` this handle parsed without error. Only
    /// [`Layout::check_index`] uses it, to skip a second parse of an unchanged file; every read
    /// of the content parses the file again.
    index_ok: std::sync::Arc<std::sync::Mutex<Option<FileId>>>,
    /// Written by an exclusive holder into the lock file (see [`Layout::with_lock_holder`]).
    lock_holder: Option<std::sync::Arc<str>>,
    /// Told when a writer starts to wait (see [`Layout::with_lock_wait_notice`]).
    on_lock_wait: Option<lock::WaitNotice>,
}

/// What identifies one version of a file: replaced by rename (new inode) or rewritten in place
/// (new size or mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

impl Layout {
    /// Opens an existing layout, validating `oci-layout` and that `index.json` exists.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let meta = fs::metadata(&root).map_err(|e| Error::NotALayout {
            path: root.clone(),
            reason: LayoutProblem::Unreadable(e),
        })?;
        if !meta.is_dir() {
            return Err(Error::NotALayout {
                path: root,
                reason: LayoutProblem::NotADirectory,
            });
        }
        let layout = Layout {
            root,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            index_ok: std::sync::Arc::default(),
            lock_holder: None,
            on_lock_wait: None,
        };
        layout.check_oci_layout_file()?;
        let index = layout.index_path();
        if !index.is_file() {
            return Err(Error::NotALayout {
                path: index,
                reason: LayoutProblem::NoIndex,
            });
        }
        Ok(layout)
    }

    /// Creates a layout at `root` (and the directory, if needed). An existing valid layout is
    /// opened as is; a directory with other content but no `oci-layout` is refused.
    ///
    /// Takes the layout lock before it writes anything but the lock file, so an `init` racing
    /// another writer (or another `init`) never replaces an `index.json`: whoever comes second
    /// opens the layout the first one made.
    pub fn init(root: impl AsRef<Path>) -> Result<Self> {
        Layout::init_with_lock_timeout(root, DEFAULT_LOCK_TIMEOUT)
    }

    /// [`Layout::init`] waiting up to `timeout` for the lock (and the layout it returns waits
    /// that long too).
    pub fn init_with_lock_timeout(root: impl AsRef<Path>, timeout: Duration) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if root.join(OCI_LAYOUT_FILE).exists() {
            return Ok(Layout::open(&root)?.with_lock_timeout(timeout));
        }
        if !root.exists() {
            fs::create_dir_all(&root).at(&root)?;
        }
        let layout = Layout {
            root,
            lock_timeout: timeout,
            index_ok: std::sync::Arc::default(),
            lock_holder: None,
            on_lock_wait: None,
        };
        // Checked before the lock file is created, so a refused init leaves the directory as it was.
        // A racing init may finish (and its writers add `ingest/`, say) between the check for
        // `oci-layout` above and this one: `oci-layout` is written last and never removed, so what
        // sits beside it belongs to a layout, which is then opened instead of refused.
        if layout.refuse_foreign_content_unless_a_layout()? {
            return Ok(Layout::open(&layout.root)?.with_lock_timeout(timeout));
        }
        let _lock = layout.lock()?;
        // Checked again under the lock (another init may have finished in between).
        if layout.refuse_foreign_content_unless_a_layout()? {
            return Ok(Layout::open(&layout.root)?.with_lock_timeout(timeout));
        }
        fs::create_dir_all(layout.root.join(BLOBS_DIR)).at(layout.root.join(BLOBS_DIR))?;
        for f in [PIN_FILE, PIN_GATE_FILE] {
            let path = layout.root.join(f);
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .at(&path)?;
        }
        // Never over an existing index.json (one left by an init that was killed, say).
        if !layout.index_path().exists() {
            layout.write_file_atomically(
                &layout.index_path(),
                &ImageIndex::new().to_vec(),
                None,
            )?;
        }
        // oci-layout last: its presence is what marks the directory as a layout.
        layout.write_file_atomically(
            &layout.oci_layout_path(),
            format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
            None,
        )?;
        sync_dir(&layout.root)?;
        Ok(layout)
    }

    /// [`Self::refuse_foreign_content`], except that a directory that has become a layout in the
    /// meantime is no refusal: `Ok(true)` says "open it". `oci-layout` is written last and never
    /// removed, so what was seen beside it (a racing writer's `ingest/`, say) is a layout's.
    fn refuse_foreign_content_unless_a_layout(&self) -> Result<bool> {
        if self.oci_layout_path().exists() {
            return Ok(true);
        }
        match self.refuse_foreign_content() {
            Ok(()) => Ok(false),
            Err(_) if self.oci_layout_path().exists() => Ok(true),
            Err(refused) => Err(refused),
        }
    }

    /// An init turns only an empty directory into a layout (or one that holds what an init
    /// writes before `oci-layout`: the lock files, `blobs/`, `index.json` and its temp file).
    fn refuse_foreign_content(&self) -> Result<()> {
        let ours = [LOCK_FILE, PIN_FILE, PIN_GATE_FILE, BLOBS_DIR, INDEX_FILE];
        for entry in fs::read_dir(&self.root).at(&self.root)? {
            let name = entry.at(&self.root)?.file_name();
            // A racing init's index.json temp file (or one a killed init left) is ours too.
            let temp = name.to_string_lossy().starts_with(TEMP_PREFIX);
            if !temp && !ours.iter().any(|o| name == *o) {
                return Err(Error::Conflict(Conflict::NotEmpty {
                    dir: self.root.clone(),
                    import: false,
                }));
            }
        }
        Ok(())
    }

    /// Overrides how long writers wait for another process's lock.
    #[must_use]
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `index.json` is.
    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// Where `oci-layout` is.
    pub fn oci_layout_path(&self) -> PathBuf {
        self.root.join(OCI_LAYOUT_FILE)
    }

    /// Where the layout lock file is.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    fn check_oci_layout_file(&self) -> Result<()> {
        let path = self.oci_layout_path();
        let Some((bytes, _)) = blobs::read_limited(&path, MAX_OCI_LAYOUT_SIZE, "")? else {
            return Err(Error::NotALayout {
                path,
                reason: LayoutProblem::NoOciLayout,
            });
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::NotALayout {
            path: path.clone(),
            reason: LayoutProblem::OciLayoutNotJson(e),
        })?;
        match value.get("imageLayoutVersion") {
            Some(Value::String(v)) if v == LAYOUT_VERSION => Ok(()),
            Some(v) => Err(Error::NotALayout {
                path,
                reason: LayoutProblem::UnsupportedVersion {
                    found: v.to_string(),
                },
            }),
            None => Err(Error::NotALayout {
                path,
                reason: LayoutProblem::NoVersion,
            }),
        }
    }
}

/// fsync a directory so a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Opens a file for buffered reading with the path in any error.
pub(crate) fn open_buffered(path: &Path) -> Result<BufReader<File>> {
    Ok(BufReader::with_capacity(
        COPY_BUFFER,
        File::open(path).at(path)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use crate::error::InputProblem;
    use crate::model::Descriptor;

    #[test]
    fn init_then_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new");
        Layout::init(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        let layout = Layout::open(&root).unwrap();
        assert!(layout.read_index().unwrap().manifests().is_empty());
        // init on an existing layout is a no-op
        Layout::init(&root).unwrap();
    }

    /// A directory that became a layout while an init looked at it (a racing init finished and
    /// its writer made `ingest/`) is opened, never refused as foreign; foreign content is.
    #[test]
    fn init_opens_what_a_racing_init_made_and_refuses_foreign_content() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("l");
        let raced = Layout::init(&root).unwrap();
        fs::create_dir(root.join("ingest")).unwrap();
        let probe = Layout {
            root: root.clone(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            index_ok: std::sync::Arc::default(),
            lock_holder: None,
            on_lock_wait: None,
        };
        assert!(probe.refuse_foreign_content_unless_a_layout().unwrap());
        assert!(Layout::init(&root).is_ok());
        drop(raced);
        let foreign = dir.path().join("f");
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            Layout::init(&foreign),
            Err(Error::Conflict(Conflict::NotEmpty { .. }))
        ));
        assert_eq!(
            fs::read_dir(&foreign).unwrap().count(),
            1,
            "a refused init writes nothing"
        );
        let empty = Layout {
            root: dir.path().join("e"),
            ..probe
        };
        fs::create_dir(&empty.root).unwrap();
        assert!(!empty.refuse_foreign_content_unless_a_layout().unwrap());
    }

    #[test]
    fn open_rejects_non_layouts() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Layout::open(dir.path()),
            Err(Error::NotALayout { .. })
        ));
        fs::write(dir.path().join("oci-layout"), "{").unwrap();
        assert!(matches!(
            Layout::open(dir.path()),
            Err(Error::NotALayout { .. })
        ));
        fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let err = Layout::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("2.0.0") && err.contains("oci-layout"), "{err}");
    }

    #[test]
    fn blob_write_checks_expectations() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let good = Digest::of_bytes(Algorithm::Sha256, b"abc");
        let wrong = Digest::of_bytes(Algorithm::Sha256, b"abd");
        let err = layout
            .write_blob(
                &mut &b"abc"[..],
                Expected {
                    digest: Some(wrong.clone()),
                    size: None,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert!(!layout.blob_exists(&wrong).unwrap());
        assert!(!layout.blob_exists(&good).unwrap());
        let err = layout
            .write_blob(
                &mut &b"abc"[..],
                Expected {
                    digest: Some(good.clone()),
                    size: Some(2),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }));
        layout
            .write_blob(
                &mut &b"abc"[..],
                Expected {
                    digest: Some(good.clone()),
                    size: Some(3),
                    ..Default::default()
                },
            )
            .unwrap();
        // existing blob: input verified, file kept
        let err = layout
            .write_blob(
                &mut &b"xyz"[..],
                Expected {
                    digest: Some(good.clone()),
                    size: None,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }));
        assert_eq!(layout.read_blob(&good).unwrap(), b"abc");
        // nothing left in ingest/
        assert_eq!(
            fs::read_dir(dir.path().join(INGEST_DIR)).unwrap().count(),
            0
        );
    }

    #[test]
    fn sha512_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let d = Digest::of_bytes(Algorithm::Sha512, b"abc");
        layout
            .write_blob(
                &mut &b"abc"[..],
                Expected {
                    digest: Some(d.clone()),
                    size: None,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(dir.path().join("blobs/sha512").join(d.encoded()).is_file());
        layout.verify_blob(&d, Some(3)).unwrap();
    }

    #[test]
    fn corrupt_blob_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let desc = layout.write_blob_bytes(b"hello").unwrap();
        fs::write(layout.blob_path(desc.digest()), b"hellO").unwrap();
        assert!(matches!(
            layout.read_blob(desc.digest()),
            Err(Error::DigestMismatch { .. })
        ));
        fs::write(layout.blob_path(desc.digest()), b"hell").unwrap();
        assert!(matches!(
            layout.verify_blob(desc.digest(), Some(5)),
            Err(Error::SizeMismatch { .. })
        ));
    }

    #[test]
    fn edit_index_is_skipped_when_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let pretty = b"{\n  \"schemaVersion\": 2,\n  \"manifests\": []\n}\n";
        fs::write(layout.index_path(), pretty).unwrap();
        layout.edit_index(|_| Ok(())).unwrap();
        assert_eq!(fs::read(layout.index_path()).unwrap(), pretty);
        let err = layout
            .edit_index(|idx| {
                idx.manifests_mut().push(Descriptor::new(
                    "a/b",
                    Digest::of_bytes(Algorithm::Sha256, b""),
                    0,
                ));
                Err::<(), _>(Error::InvalidInput(InputProblem::NothingToExport))
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)));
        assert_eq!(fs::read(layout.index_path()).unwrap(), pretty);
    }

    #[test]
    fn check_index_notices_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        layout.read_index().unwrap();
        layout.check_index().unwrap();
        // Rewritten in place (as oras does) with broken JSON: the identity changes, so it is parsed.
        fs::write(layout.index_path(), b"{\"schemaVersion\":2,\"manifests\":[").unwrap();
        assert!(matches!(layout.check_index(), Err(Error::Corrupt { .. })));
        // Replaced by rename with a valid file: fine again.
        let fresh = Layout::init(dir.path().join("other")).unwrap();
        fs::copy(fresh.index_path(), dir.path().join("tmp.json")).unwrap();
        fs::rename(dir.path().join("tmp.json"), layout.index_path()).unwrap();
        layout.check_index().unwrap();
    }

    #[test]
    fn lock_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path())
            .unwrap()
            .with_lock_timeout(Duration::from_millis(200));
        let _held = layout.lock().unwrap();
        // Another thread of this process waits, then times out (a second open file
        // description conflicts even within one process).
        let other = layout.clone();
        let waited = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            (other.lock().err(), start.elapsed())
        })
        .join()
        .unwrap();
        assert!(matches!(waited.0, Some(Error::Locked { .. })), "{waited:?}");
        assert!(waited.1 >= Duration::from_millis(200));
    }

    /// The thread that holds a lock and asks for it again would wait for itself: it fails at
    /// once, whatever the timeout, and the same for gc called under a push pin.
    #[test]
    fn a_lock_this_thread_holds_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path())
            .unwrap()
            .with_lock_timeout(Duration::from_secs(30));
        let start = std::time::Instant::now();
        {
            let _held = layout.lock().unwrap();
            let err = layout.lock().err();
            assert!(
                matches!(&err, Some(Error::LockHeldByThisProcess { path }) if *path == layout.lock_path()),
                "{err:?}"
            );
        }
        let staged = layout.stage().unwrap();
        let err = layout.gc(&crate::maintenance::GcOptions::default()).err();
        assert!(
            matches!(err, Some(Error::LockHeldByThisProcess { .. })),
            "{err:?}"
        );
        // A second pin of the same thread is fine (shared with itself).
        let again = layout.stage().unwrap();
        drop((staged, again));
        assert!(start.elapsed() < Duration::from_secs(5));
        // Released: both work again.
        layout
            .gc(&crate::maintenance::GcOptions::default())
            .unwrap();
        drop(layout.lock().unwrap());
    }

    /// `read_manifest` reads a blob as a manifest exactly when the walk does: by a manifest
    /// media type, or by sniffing when there is none (or `application/octet-stream`); never
    /// under another media type, whatever the content.
    #[test]
    fn read_manifest_follows_the_walks_rule() {
        use crate::model::media;
        use crate::walk::{Content, read_content};
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let cfg = layout.write_blob_bytes(b"{}").unwrap();
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::IMAGE_MANIFEST,
            "config": Descriptor::new(media::EMPTY, cfg.digest().clone(), 2), "layers": []}))
        .unwrap();
        let stored = layout.write_blob_bytes(&m).unwrap();
        for (mt, is_manifest) in [
            (media::IMAGE_MANIFEST, true),
            ("", true),
            ("application/octet-stream", true),
            ("text/plain", false),
            (media::LAYER_TAR, false),
        ] {
            let desc = Descriptor::new(mt, stored.digest().clone(), stored.size());
            let walk = matches!(read_content(&layout, &desc), Content::Manifest { .. });
            let read = layout.read_manifest(&desc);
            assert_eq!(walk, is_manifest, "{mt:?}");
            assert_eq!(read.is_ok(), is_manifest, "{mt:?}: {:?}", read.err());
            if !is_manifest {
                assert!(matches!(read, Err(Error::InvalidManifest { .. })));
            }
        }
    }
}
