//! An OCI image layout on disk: `oci-layout`, `index.json`, `blobs/`.
//!
//! Durability rules, kept by every write in this module:
//! - a blob is written to a temp file under `ingest/`, hashed while written, checked against the
//!   expected size and digest, fsynced, and only then renamed into `blobs/<alg>/<encoded>` (and the
//!   directory fsynced), so a blob visible under `blobs/` is always complete and verified;
//! - `index.json` is changed only through [`Layout::edit_index`], which holds an exclusive lock on
//!   `.ocistow.lock` (a file never replaced or deleted) from the read of `index.json` to the rename
//!   of its fsynced replacement. Readers need no lock because the replacement is atomic.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::model::{Descriptor, ImageIndex, Manifest, media};

/// File names inside a layout.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
pub const INDEX_FILE: &str = "index.json";
pub const BLOBS_DIR: &str = "blobs";
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

const LAYOUT_VERSION: &str = "1.0.0";
const COPY_BUFFER: usize = 1 << 20;
/// Manifests larger than this are refused when read into memory (registries cap them at 4 MiB).
pub const MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// How long a writer waits for another process's lock, unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Reports progress of a long copy. The CLI draws a bar; the library only counts.
pub trait Progress {
    fn advance(&self, bytes: u64);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn advance(&self, _: u64) {}
}

/// What a blob write must match. Unset fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub digest: Option<Digest>,
    pub size: Option<u64>,
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
            reason: e.to_string(),
        })?;
        if !meta.is_dir() {
            return Err(Error::NotALayout {
                path: root,
                reason: "not a directory".into(),
            });
        }
        let layout = Layout {
            root,
            lock_timeout: lock_timeout_from_env(),
            index_ok: Default::default(),
        };
        layout.check_oci_layout_file()?;
        let index = layout.index_path();
        if !index.is_file() {
            return Err(Error::NotALayout {
                path: index,
                reason: "index.json is missing".into(),
            });
        }
        Ok(layout)
    }

    /// Creates a layout at `root` (and the directory, if needed). An existing valid layout is
    /// opened as is; a directory with other content but no `oci-layout` is refused.
    pub fn init(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if root.join(OCI_LAYOUT_FILE).exists() {
            return Layout::open(&root);
        }
        if root.exists() {
            let mut entries = fs::read_dir(&root).at(&root)?;
            if entries.next().is_some() {
                return Err(Error::Conflict(format!(
                    "{}: directory is not empty and has no oci-layout file; refusing to turn it into a layout",
                    root.display()
                )));
            }
        } else {
            fs::create_dir_all(&root).at(&root)?;
        }
        let layout = Layout {
            root,
            lock_timeout: lock_timeout_from_env(),
            index_ok: Default::default(),
        };
        fs::create_dir_all(layout.root.join(BLOBS_DIR)).at(layout.root.join(BLOBS_DIR))?;
        File::create(layout.lock_path()).at(layout.lock_path())?;
        File::create(layout.root.join(PIN_FILE)).at(layout.root.join(PIN_FILE))?;
        File::create(layout.root.join(PIN_GATE_FILE)).at(layout.root.join(PIN_GATE_FILE))?;
        layout.write_file_atomically(&layout.index_path(), &ImageIndex::new().to_vec(), None)?;
        // oci-layout last: its presence is what marks the directory as a layout.
        layout.write_file_atomically(
            &layout.oci_layout_path(),
            format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
            None,
        )?;
        sync_dir(&layout.root)?;
        Ok(layout)
    }

    /// Overrides how long writers wait for another process's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    pub fn oci_layout_path(&self) -> PathBuf {
        self.root.join(OCI_LAYOUT_FILE)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    fn check_oci_layout_file(&self) -> Result<()> {
        let path = self.oci_layout_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotALayout {
                    path,
                    reason: "oci-layout file is missing".into(),
                });
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::NotALayout {
            path: path.clone(),
            reason: format!("invalid JSON: {e}"),
        })?;
        match value.get("imageLayoutVersion") {
            Some(Value::String(v)) if v == LAYOUT_VERSION => Ok(()),
            Some(v) => Err(Error::NotALayout {
                path,
                reason: format!("unsupported imageLayoutVersion {v} (only {LAYOUT_VERSION})"),
            }),
            None => Err(Error::NotALayout {
                path,
                reason: "imageLayoutVersion is missing".into(),
            }),
        }
    }

    // ---- blobs -------------------------------------------------------------------------------

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

    /// Writes a blob from `reader` through `ingest/`, returning its digest and size.
    /// The algorithm is that of the expected digest, else sha256.
    pub fn write_blob(&self, reader: &mut dyn Read, expected: Expected) -> Result<(Digest, u64)> {
        self.write_blob_with_progress(reader, expected, &NoProgress)
    }

    /// [`Layout::write_blob`] with progress reports.
    ///
    /// When the expected digest is given and the blob already exists, the input is still read
    /// and verified, but the existing file is kept untouched.
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

    // ---- manifests ---------------------------------------------------------------------------

    /// Reads a manifest blob, verifies it, and parses it as the descriptor's media type (or the
    /// media type its content declares, when the descriptor's is not a manifest type).
    pub fn read_manifest(&self, desc: &Descriptor) -> Result<(Vec<u8>, Manifest)> {
        let digest = desc.digest();
        let path = self.blob_path(digest);
        let size = self
            .blob_size(digest)?
            .ok_or_else(|| Error::not_found(format!("manifest blob {digest}")))?;
        if size > MAX_MANIFEST_SIZE {
            return Err(Error::Corrupt {
                path,
                reason: format!("{size} bytes is too large for a manifest"),
            });
        }
        let bytes = self.read_blob(digest)?;
        if bytes.len() as u64 != desc.size() {
            return Err(Error::SizeMismatch {
                what: format!("manifest {digest}"),
                expected: desc.size(),
                actual: bytes.len() as u64,
            });
        }
        let mt = if media::is_manifest(desc.media_type()) {
            desc.media_type().to_string()
        } else {
            Manifest::sniff_media_type(&bytes).unwrap_or_default()
        };
        let manifest = Manifest::parse(&mt, &bytes).map_err(|reason| Error::InvalidManifest {
            what: format!("blob {digest}"),
            kind: if media::is_index(&mt) {
                "index"
            } else {
                "manifest"
            }
            .into(),
            reason,
        })?;
        Ok((bytes, manifest))
    }

    /// A descriptor for a blob found by digest alone: media type and artifactType from its
    /// content when it is a manifest, else `application/octet-stream`.
    pub fn describe_blob(&self, digest: &Digest) -> Result<Descriptor> {
        let size = self.blob_size(digest)?.ok_or_else(|| {
            Error::not_found(format!("{digest} (neither in index.json nor in blobs/)"))
        })?;
        if size <= MAX_MANIFEST_SIZE {
            let bytes = self.read_blob(digest)?;
            if let Some(mt) = Manifest::sniff_media_type(&bytes)
                && let Ok(m) = Manifest::parse(&mt, &bytes)
            {
                let mut desc = Descriptor::new(&mt, digest.clone(), size);
                if let Some(at) = m.effective_artifact_type() {
                    desc.set_artifact_type(at);
                }
                return Ok(desc);
            }
        }
        Ok(Descriptor::new(
            "application/octet-stream",
            digest.clone(),
            size,
        ))
    }

    /// Checks manifest bytes without storing them: they parse as `media_type` (or the type they
    /// declare) and, unless `allow_sparse`, every blob they reference is present. Returns the
    /// media type and the parsed manifest.
    pub fn validate_manifest(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
        allow_sparse: bool,
    ) -> Result<(String, Manifest)> {
        let invalid = |kind: &str, reason: String| Error::InvalidManifest {
            what: "manifest".into(),
            kind: kind.into(),
            reason,
        };
        if let Err(e) = serde_json::from_slice::<Value>(bytes) {
            return Err(invalid(
                media_type.unwrap_or("manifest"),
                format!("invalid JSON: {e}"),
            ));
        }
        // Only a real `mediaType` field can contradict the caller; the shape is checked by parsing.
        let declared = serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from));
        let sniffed = declared
            .clone()
            .or_else(|| Manifest::sniff_media_type(bytes));
        let mt = match (media_type, sniffed.as_deref()) {
            (Some(given), Some(found)) if declared.is_some() && given != found => {
                return Err(invalid(
                    given,
                    format!("its mediaType field says {found:?}"),
                ));
            }
            (Some(given), _) => given.to_string(),
            (None, Some(found)) => found.to_string(),
            (None, None) => {
                return Err(invalid(
                    "manifest",
                    "no mediaType field and not shaped like a manifest or index; give --media-type"
                        .into(),
                ));
            }
        };
        let manifest = Manifest::parse(&mt, bytes).map_err(|reason| invalid(&mt, reason))?;
        if !allow_sparse {
            for child in manifest.children() {
                // Non-distributable layers with urls may be absent by design.
                if !child.urls().is_empty() {
                    continue;
                }
                self.check_child_present(child)?;
            }
        }
        Ok((mt, manifest))
    }

    /// Stores manifest bytes exactly as given, after [`Layout::validate_manifest`]. Returns the
    /// manifest's descriptor (with `artifactType` when it has one). Hold a [`Layout::pin`] from
    /// before this call until the manifest is listed in `index.json`.
    pub fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
        allow_sparse: bool,
    ) -> Result<Descriptor> {
        let (mt, manifest) = self.validate_manifest(bytes, media_type, allow_sparse)?;
        let (digest, size) = self.write_blob(&mut &bytes[..], Expected::default())?;
        let mut desc = Descriptor::new(&mt, digest, size);
        if let Some(at) = manifest.effective_artifact_type() {
            desc.set_artifact_type(at);
        }
        Ok(desc)
    }

    fn check_child_present(&self, child: &Descriptor) -> Result<()> {
        let digest = child.digest();
        if let Some(data) = child.data() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| {
                    Error::InvalidInput(format!("descriptor {digest}: data is not base64: {e}"))
                })?;
            if let Ok(alg) = digest.known_algorithm()
                && Digest::of_bytes(alg, &bytes) != *digest
            {
                return Err(Error::InvalidInput(format!(
                    "descriptor {digest}: its data field does not hash to its digest"
                )));
            }
        }
        match self.blob_size(digest)? {
            Some(size) if size == child.size() => Ok(()),
            Some(size) => Err(Error::SizeMismatch {
                what: format!("blob {digest}"),
                expected: child.size(),
                actual: size,
            }),
            None => Err(Error::NotFound {
                what: format!("blob {digest} referenced by the manifest"),
                hint: " (push it first, or allow a sparse manifest)".into(),
            }),
        }
    }

    // ---- index.json --------------------------------------------------------------------------

    /// Reads `index.json` without locking (replacements are atomic, so this sees a whole file).
    pub fn read_index(&self) -> Result<ImageIndex> {
        Ok(self.read_index_with_bytes()?.1)
    }

    fn read_index_with_bytes(&self) -> Result<(Vec<u8>, ImageIndex)> {
        let path = self.index_path();
        // Identity and content from one open file, so they describe the same version.
        let mut file = File::open(&path).at(&path)?;
        let id = FileId::of(&file.metadata().at(&path)?);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).at(&path)?;
        let index = ImageIndex::parse(&bytes).map_err(|reason| Error::Corrupt {
            path: path.clone(),
            reason,
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

    /// Takes the layout's exclusive lock, waiting up to the lock timeout.
    pub fn lock(&self) -> Result<LayoutLock> {
        self.lock_file(&self.lock_path(), false)
    }

    /// Pins blobs against garbage collection: hold the returned guard from the first blob a
    /// writer stores until its `index.json` update names them. Many writers may pin at once.
    pub fn pin(&self) -> Result<LayoutLock> {
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
            _file: pin._file,
            _gate: Some(gate._file),
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
                    return Ok(LayoutLock {
                        _file: file,
                        _gate: None,
                    });
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

    /// Temp file beside `target`, fsync, rename over `target`, fsync the directory.
    fn write_file_atomically(&self, target: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
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

/// Proof that the layout lock is held; dropping it releases the lock.
pub struct LayoutLock {
    _file: File,
    /// The gate file held with it (gc's exclusive pin only).
    _gate: Option<File>,
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
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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

fn check_matches(
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
fn copy_limited(
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

fn copy_with_progress(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    progress: &dyn Progress,
    path: &Path,
) -> Result<u64> {
    copy_limited(reader, out, progress, None, &path.display().to_string())
}

/// Asks the kernel to start writing a range back to disk now, without waiting, so the fsync at
/// the end of a large blob finds most of it already written. Only a hint: errors are ignored
/// (the fsync that follows reports real ones).
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor we own, with no pointers.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// fsync a directory so a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

fn lock_timeout_from_env() -> Duration {
    std::env::var("OCISTOW_LOCK_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().trim_end_matches('s').parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_LOCK_TIMEOUT)
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
                Err::<(), _>(Error::InvalidInput("abort".into()))
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
            .with_lock_timeout(Duration::from_millis(50));
        let _held = layout.lock().unwrap();
        // a second open file description conflicts even within one process
        assert!(matches!(layout.lock(), Err(Error::Locked { .. })));
    }
}
