//! `push`: files, a directory or a config stored as blobs with the manifest oras writes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{FileSpec, ProgressFactory, format_rfc3339, now};
use crate::builder::ImageManifestBuilder;
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::error::{Error, InputProblem, IoContext, Result, Subject};
use crate::layout::{DirSyncs, Expected, Layout, open_buffered};
use crate::model::{Descriptor, EMPTY_JSON, annotations, media};
use crate::staged::Staged;

/// Everything `push` needs besides the layout: [`PushRequest::new`] and the setters, as a
/// struct literal cannot be written outside this crate (a new field is not a breaking change):
///
/// ```compile_fail
/// let req = ocistow_store::artifact::PushRequest { created: Some(0), ..Default::default() };
/// ```
///
/// ```
/// let req = ocistow_store::artifact::PushRequest::new(Vec::new()).created(Some(0));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PushRequest {
    /// The files and directories pushed as layers, in this order.
    pub files: Vec<FileSpec>,
    /// The manifest's `artifactType` (oras's default applies when neither it nor a config is
    /// given).
    pub artifact_type: Option<String>,
    /// Manifest annotations (`-a KEY=VALUE`).
    pub annotations: BTreeMap<String, String>,
    /// Annotations of the layer pushed from a path of `files` (oras's per-file keys of
    /// `--annotation-file`), next to its title; a path not in `files` is refused.
    pub layer_annotations: BTreeMap<PathBuf, BTreeMap<String, String>>,
    /// The config blob; the empty JSON config when absent.
    pub config: Option<FileSpec>,
    /// Annotations of the config descriptor (oras's `$config`).
    pub config_annotations: BTreeMap<String, String>,
    /// A referrer's subject; written as the plain descriptor (mediaType, digest, size).
    pub subject: Option<Descriptor>,
    /// Seconds since the epoch for `org.opencontainers.image.created` when the annotations do
    /// not set it (`None`: now), and the mtime of every entry of a pushed directory (`None`: 0),
    /// so the same inputs give the same digests (callers pass `SOURCE_DATE_EPOCH` here).
    pub created: Option<u64>,
}

/// What a push stored: the manifest's descriptor as an `index.json` entry (without a tag), its
/// exact bytes, and the [`Staged`] write that keeps garbage collection away from the new blobs
/// until the caller lists them with one of its commits.
#[must_use = "a pushed manifest is listed only by a commit of its `staged` write"]
#[non_exhaustive]
pub struct Pushed {
    /// The manifest as an `index.json` entry: media type, digest, size, annotations and
    /// artifact type.
    pub descriptor: Descriptor,
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// The write the blobs were stored under: finish it with [`Staged::commit`] (or
    /// [`Staged::commit_batch`] for a referrer) to list the manifest.
    pub staged: Staged,
}

impl PushRequest {
    /// Pushes `files` as layers, with every other field at its default (chain the setters).
    pub fn new(files: Vec<FileSpec>) -> Self {
        PushRequest {
            files,
            ..PushRequest::default()
        }
    }
}

setters!(PushRequest {
    artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
    layer_annotations: BTreeMap<PathBuf, BTreeMap<String, String>>,
    config: Option<FileSpec>,
    config_annotations: BTreeMap<String, String>,
    subject: Option<Descriptor>,
    created: Option<u64>,
});

/// Stores the files, the config and the manifest as blobs. `index.json` is not touched: list
/// the result with a commit of [`Pushed::staged`].
pub fn push(layout: &Layout, req: &PushRequest, progress: ProgressFactory<'_>) -> Result<Pushed> {
    // Check every input before writing anything, so a typo leaves the layout untouched.
    let mut titles = BTreeMap::new();
    for spec in req.files.iter().chain(req.config.iter()) {
        let meta = fs::metadata(&spec.path).map_err(|source| {
            let path = spec.path.clone();
            Error::InvalidInput(if source.kind() == io::ErrorKind::NotFound {
                InputProblem::NoSuchFile { path }
            } else {
                InputProblem::Unreadable { path, source }
            })
        })?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(Error::InvalidInput(InputProblem::NotFileOrDirectory {
                path: spec.path.clone(),
            }));
        }
    }
    for spec in &req.files {
        let title = title_of(&spec.path)?;
        if let Some(prev) = titles.insert(title.clone(), spec.path.clone()) {
            return Err(Error::InvalidInput(InputProblem::SameTitle {
                first: prev,
                second: spec.path.clone(),
                title,
            }));
        }
    }
    if let Some(path) = req
        .layer_annotations
        .keys()
        .find(|p| !req.files.iter().any(|f| &f.path == *p))
    {
        return Err(Error::InvalidInput(
            InputProblem::AnnotationsForUnpushedFile { path: path.clone() },
        ));
    }
    // A corrupt index.json would fail the final update: find out before writing any blob.
    layout.check_index()?;
    if req.files.is_empty() && req.config.is_none() && req.artifact_type.is_none() {
        return Err(Error::InvalidInput(InputProblem::NothingToPush));
    }
    if let Some(config) = &req.config
        && fs::metadata(&config.path).is_ok_and(|m| m.is_dir())
    {
        return Err(Error::InvalidInput(InputProblem::ConfigNotAFile {
            path: config.path.clone(),
        }));
    }

    // Inputs are valid: from here on blobs are written, so keep gc away until they are listed.
    let staged = layout.stage()?;
    let layout = staged.layout();
    // Every blob lands in blobs/sha256: one fsync of it, after the last rename and before the
    // caller's index.json names the manifest, makes all of them durable names.
    let mut dirs = DirSyncs::default();
    let mut layers = Vec::new();
    for spec in &req.files {
        let extra = req.layer_annotations.get(&spec.path);
        layers.push(push_file(
            layout,
            spec,
            extra,
            req.created,
            progress,
            &mut dirs,
        )?);
    }
    let config = if let Some(spec) = &req.config {
        let (digest, size) = ingest_file(layout, &spec.path, progress, &mut dirs)?;
        let mt = spec.media_type.as_deref().unwrap_or(media::UNKNOWN_CONFIG);
        Descriptor::new(mt, digest, size)
    } else {
        let (digest, size) = layout.write_bytes_batched(EMPTY_JSON, &mut dirs)?;
        let mut d = Descriptor::new(media::EMPTY, digest, size);
        d.set_data_base64("e30=");
        d
    };
    let mut config = config;
    for (k, v) in &req.config_annotations {
        config.set_annotation(k, v);
    }
    let artifact_type = match (&req.artifact_type, &req.config) {
        (Some(t), _) => Some(t.clone()),
        (None, None) => Some(media::UNKNOWN_ARTIFACT.to_string()),
        (None, Some(_)) => None,
    };
    let mut annotations = req.annotations.clone();
    annotations
        .entry(annotations::CREATED.into())
        .or_insert_with(|| format_rfc3339(req.created.unwrap_or_else(now)));

    let mut manifest = ImageManifestBuilder::new(config.clone())
        .layers(layers)
        .annotations(annotations.clone());
    if let Some(t) = &artifact_type {
        manifest = manifest.artifact_type(t.as_str());
    }
    if let Some(s) = &req.subject {
        manifest = manifest.subject(s.plain());
    }
    let built = manifest.build();
    let stored = built.store_batched(layout, &mut dirs)?;
    let (digest, size) = (stored.digest().clone(), stored.size());
    dirs.finish()?;

    let mut entry = Descriptor::new(media::IMAGE_MANIFEST, digest, size);
    entry.set_annotations(match string_map(&annotations) {
        Value::Object(o) => o,
        _ => Map::new(),
    });
    entry.set_artifact_type(
        artifact_type
            .as_deref()
            .unwrap_or_else(|| config.media_type()),
    );
    Ok(Pushed {
        descriptor: entry,
        manifest: built.into_bytes(),
        staged,
    })
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// The file name a path is pulled back as.
fn title_of(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(String::from)
        .ok_or_else(|| {
            Error::InvalidInput(InputProblem::NoFileName {
                path: path.to_path_buf(),
            })
        })
}

fn push_file(
    layout: &Layout,
    spec: &FileSpec,
    extra: Option<&BTreeMap<String, String>>,
    created: Option<u64>,
    progress: ProgressFactory<'_>,
    dirs: &mut DirSyncs,
) -> Result<Descriptor> {
    let title = title_of(&spec.path)?;
    let meta = fs::metadata(&spec.path).at(&spec.path)?;
    let mut desc = if meta.is_dir() {
        let (digest, size, tar_digest) = push_directory(
            layout,
            &spec.path,
            &title,
            created.unwrap_or(0),
            progress,
            dirs,
        )?;
        let mt = spec.media_type.as_deref().unwrap_or(media::LAYER_TAR_GZIP);
        let mut d = Descriptor::new(mt, digest, size);
        d.set_annotation(annotations::ORAS_CONTENT_DIGEST, tar_digest.as_str());
        d.set_annotation(annotations::ORAS_UNPACK, "true");
        d
    } else {
        let (digest, size) = ingest_file(layout, &spec.path, progress, dirs)?;
        let mt = spec.media_type.as_deref().unwrap_or(media::LAYER_TAR);
        Descriptor::new(mt, digest, size)
    };
    for (k, v) in extra.into_iter().flatten() {
        desc.set_annotation(k, v);
    }
    desc.set_annotation(annotations::TITLE, &title);
    // Go marshals annotation maps sorted by key; keep oras's byte layout.
    if let Some(a) = desc.annotations() {
        let mut sorted: Vec<(String, Value)> =
            a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        sorted.sort_by(|x, y| x.0.cmp(&y.0));
        desc.set_annotations(sorted.into_iter().collect());
    }
    Ok(desc)
}

fn ingest_file(
    layout: &Layout,
    path: &Path,
    progress: ProgressFactory<'_>,
    dirs: &mut DirSyncs,
) -> Result<(Digest, u64)> {
    let size = fs::metadata(path).at(path)?.len();
    let bar = progress(&path.display().to_string(), size);
    let file = File::open(path).at(path)?;
    let expected = Expected {
        input: Some(Subject::Path(path.to_path_buf())),
        ..Expected::default()
    };
    // The kernel moves the bytes; they are hashed from the ingest file, once.
    let mut writer = layout.blob_writer(Algorithm::Sha256)?;
    writer.fill_from_file(&file, &expected, bar.as_ref())?;
    writer.commit_batched(&expected, dirs)
}

/// Streams a directory as tar+gzip straight into `ingest/`, hashing the tar and the gzip.
///
/// The bytes depend on the tree's names, contents, symlink targets and executable bits alone:
/// entries come sorted by name (not in `readdir` order, which differs between filesystems),
/// every header has mtime `mtime`, uid and gid 0, no owner names, no atime or ctime, and mode
/// 0755 (directories, executables), 0644 (other files) or 0777 (symlinks).
///
/// `progress` is given the name of the directory and the bytes of its files, and advances as
/// they are read.
fn push_directory(
    layout: &Layout,
    dir: &Path,
    title: &str,
    mtime: u64,
    progress: ProgressFactory<'_>,
    dirs: &mut DirSyncs,
) -> Result<(Digest, u64, Digest)> {
    // Sizing the bar costs a walk of metadata only; an unreadable entry fails the real walk.
    let total: u64 = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = progress(&dir.display().to_string(), total);
    let writer = layout.blob_writer(Algorithm::Sha256)?;
    let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
    let mut tar = tar::Builder::new(HashingWriter::new(gz, Algorithm::Sha256));
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            Error::Io {
                path,
                source: e.into(),
            }
        })?;
        let path = entry.path();
        let rel = path.strip_prefix(dir).unwrap_or(path);
        let name = Path::new(title).join(rel);
        let meta = entry.metadata().map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        let kind = entry.file_type();
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &name, io::empty()).at(path)?;
        } else if kind.is_file() {
            let executable =
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file = open_buffered(path)?;
            let mut exact = Exact {
                inner: file,
                left: meta.len(),
                progress: bar.as_ref(),
            };
            tar.append_data(&mut header, &name, &mut exact).at(path)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(path).at(path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, &name, &target).at(path)?;
        } else {
            return Err(Error::InvalidInput(InputProblem::CannotArchive {
                path: path.to_path_buf(),
            }));
        }
    }
    let hashing = tar.into_inner().at(dir)?;
    let (gz, tar_digest, _) = hashing.finish();
    let writer = gz.finish().at(dir)?;
    let (digest, size) = writer.commit_batched(&Expected::default(), dirs)?;
    Ok((digest, size, tar_digest))
}

/// Reads exactly the size a tar header announced: a file that shrinks or grows while it is
/// pushed is an error, not a corrupt archive.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    progress: &'a dyn crate::layout::Progress,
}

impl<R: io::Read> io::Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other("the file grew while it was pushed")),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was pushed",
            ));
        }
        self.left -= n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
