//! `push`: files, a directory or a config stored as blobs with the manifest oras writes.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde_json::{Map, Value};

use super::{FileSpec, ProgressFactory, now_rfc3339};
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::layout::{Expected, Layout, open_buffered};
use crate::model::{Descriptor, EMPTY_JSON, annotations, media};

/// Everything `push` needs besides the layout.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    pub files: Vec<FileSpec>,
    pub artifact_type: Option<String>,
    /// Manifest annotations (`-a KEY=VALUE`).
    pub annotations: BTreeMap<String, String>,
    pub config: Option<FileSpec>,
    /// A referrer's subject; written as the plain descriptor (mediaType, digest, size).
    pub subject: Option<Descriptor>,
}

/// What a push stored: the manifest's descriptor as an `index.json` entry (without a tag), its
/// exact bytes, and the pin that keeps garbage collection away from the new blobs until the
/// caller has recorded them (drop it after [`Layout::add_entry`]).
pub struct Pushed {
    pub descriptor: Descriptor,
    pub manifest: Vec<u8>,
    pub pin: crate::layout::LayoutLock,
}

/// Stores the files, the config and the manifest as blobs. `index.json` is not touched: record
/// the result with [`Layout::add_entry`].
pub fn push(layout: &Layout, req: &PushRequest, progress: ProgressFactory<'_>) -> Result<Pushed> {
    // Check every input before writing anything, so a typo leaves the layout untouched.
    let mut titles = BTreeMap::new();
    for spec in req.files.iter().chain(req.config.iter()) {
        let meta = fs::metadata(&spec.path).map_err(|e| {
            Error::InvalidInput(format!(
                "{}: {}",
                spec.path.display(),
                if e.kind() == io::ErrorKind::NotFound {
                    "no such file or directory".to_string()
                } else {
                    e.to_string()
                }
            ))
        })?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(Error::InvalidInput(format!(
                "{}: not a regular file or directory",
                spec.path.display()
            )));
        }
    }
    for spec in &req.files {
        let title = title_of(&spec.path)?;
        if let Some(prev) = titles.insert(title.clone(), spec.path.clone()) {
            return Err(Error::InvalidInput(format!(
                "{} and {} would both be pulled as {title:?}",
                prev.display(),
                spec.path.display()
            )));
        }
    }
    // A corrupt index.json would fail the final update: find out before writing any blob.
    layout.check_index()?;
    if req.files.is_empty() && req.config.is_none() && req.artifact_type.is_none() {
        return Err(Error::InvalidInput(
            "nothing to push: give files, a config or an artifact type".into(),
        ));
    }
    if let Some(config) = &req.config
        && fs::metadata(&config.path).is_ok_and(|m| m.is_dir())
    {
        return Err(Error::InvalidInput(format!(
            "{}: a config must be a file",
            config.path.display()
        )));
    }

    // Inputs are valid: from here on blobs are written, so keep gc away until they are listed.
    let pin = layout.pin()?;
    let mut layers = Vec::new();
    for spec in &req.files {
        layers.push(push_file(layout, spec, progress)?);
    }
    let config = match &req.config {
        Some(spec) => {
            let (digest, size) = ingest_file(layout, &spec.path, progress)?;
            let mt = spec.media_type.as_deref().unwrap_or(media::UNKNOWN_CONFIG);
            Descriptor::new(mt, digest, size)
        }
        None => {
            let (digest, size) = layout.write_blob(&mut &EMPTY_JSON[..], Expected::default())?;
            let mut d = Descriptor::new(media::EMPTY, digest, size);
            d.set_data_base64("e30=");
            d
        }
    };
    let artifact_type = match (&req.artifact_type, &req.config) {
        (Some(t), _) => Some(t.clone()),
        (None, None) => Some(media::UNKNOWN_ARTIFACT.to_string()),
        (None, Some(_)) => None,
    };
    let mut annotations = req.annotations.clone();
    annotations
        .entry(annotations::CREATED.into())
        .or_insert_with(now_rfc3339);

    let mut m = Map::new();
    m.insert("schemaVersion".into(), Value::from(2));
    m.insert("mediaType".into(), Value::from(media::IMAGE_MANIFEST));
    if let Some(t) = &artifact_type {
        m.insert("artifactType".into(), Value::from(t.as_str()));
    }
    m.insert("config".into(), to_value(&config));
    m.insert(
        "layers".into(),
        Value::Array(layers.iter().map(to_value).collect()),
    );
    if let Some(s) = &req.subject {
        m.insert("subject".into(), to_value(&s.plain()));
    }
    m.insert("annotations".into(), string_map(&annotations));
    let bytes = serde_json::to_vec(&Value::Object(m))
        .map_err(|e| Error::InvalidInput(format!("cannot encode manifest: {e}")))?;
    let stored = layout.put_manifest(&bytes, Some(media::IMAGE_MANIFEST), false)?;

    let mut entry = Descriptor::new(
        media::IMAGE_MANIFEST,
        stored.digest().clone(),
        stored.size(),
    );
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
        manifest: bytes,
        pin,
    })
}

fn to_value(d: &Descriptor) -> Value {
    Value::Object(d.fields().clone())
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
        .ok_or_else(|| Error::InvalidInput(format!("{}: has no usable file name", path.display())))
}

fn push_file(
    layout: &Layout,
    spec: &FileSpec,
    progress: ProgressFactory<'_>,
) -> Result<Descriptor> {
    let title = title_of(&spec.path)?;
    let meta = fs::metadata(&spec.path).at(&spec.path)?;
    let mut desc = if meta.is_dir() {
        let (digest, size, tar_digest) = push_directory(layout, &spec.path, &title)?;
        let mt = spec.media_type.as_deref().unwrap_or(media::LAYER_TAR_GZIP);
        let mut d = Descriptor::new(mt, digest, size);
        d.set_annotation(annotations::ORAS_CONTENT_DIGEST, tar_digest.as_str());
        d.set_annotation(annotations::ORAS_UNPACK, "true");
        d
    } else {
        let (digest, size) = ingest_file(layout, &spec.path, progress)?;
        let mt = spec.media_type.as_deref().unwrap_or(media::LAYER_TAR);
        Descriptor::new(mt, digest, size)
    };
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
) -> Result<(Digest, u64)> {
    let size = fs::metadata(path).at(path)?.len();
    let bar = progress(&path.display().to_string(), size);
    let mut reader = open_buffered(path)?;
    layout
        .write_blob_with_progress(&mut reader, Expected::default(), bar.as_ref())
        .map_err(|e| match e {
            Error::Io { path: p, source } if p.as_os_str() == "input" => Error::Io {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })
}

/// Streams a directory as tar+gzip straight into `ingest/`, hashing the tar and the gzip.
fn push_directory(layout: &Layout, dir: &Path, title: &str) -> Result<(Digest, u64, Digest)> {
    let writer = layout.blob_writer(Algorithm::Sha256)?;
    let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
    let mut tar = tar::Builder::new(HashingWriter::new(gz, Algorithm::Sha256));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    tar.append_dir_all(title, dir).at(dir)?;
    let hashing = tar.into_inner().at(dir)?;
    let (gz, tar_digest, _) = hashing.finish();
    let writer = gz.finish().at(dir)?;
    let (digest, size) = writer.commit(&Expected::default())?;
    Ok((digest, size, tar_digest))
}
