//! Artifacts as `oras push` builds them, and pulling their files back out.
//!
//! A pushed manifest is byte-for-byte what oras 1.3 writes for the same inputs: the empty config
//! (with `data: "e30="`) unless a config is given, one layer per file titled with
//! `org.opencontainers.image.title`, annotations sorted by key (as Go marshals maps), and
//! `org.opencontainers.image.created` unless the caller set it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::layout::{Expected, Layout, NoProgress, Progress, open_buffered};
use crate::model::{Descriptor, EMPTY_JSON, Manifest, annotations, media};

/// One file (or directory) to push, with an optional media type.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub path: PathBuf,
    pub media_type: Option<String>,
}

impl FileSpec {
    /// Parses `PATH[:MEDIATYPE]` as oras does: the media type follows the last `:` when the part
    /// before it names an existing path; otherwise the whole string is the path.
    pub fn parse(input: &str) -> FileSpec {
        if !Path::new(input).exists()
            && let Some((path, mt)) = input.rsplit_once(':')
            && !path.is_empty()
        {
            return FileSpec {
                path: path.into(),
                media_type: (!mt.is_empty()).then(|| mt.to_string()),
            };
        }
        FileSpec {
            path: input.into(),
            media_type: None,
        }
    }
}

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

/// Makes a progress reporter for one named input of known size.
pub type ProgressFactory<'a> = &'a dyn Fn(&str, u64) -> Box<dyn Progress>;

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

/// Writes each titled layer of an image manifest to `outdir/<title>`, verifying every byte.
/// Titles that would land outside `outdir` are refused before anything is written.
/// Returns the paths written.
pub fn pull(
    layout: &Layout,
    desc: &Descriptor,
    outdir: &Path,
    progress: ProgressFactory<'_>,
) -> Result<Vec<PathBuf>> {
    let (_, manifest) = layout.read_manifest(desc)?;
    let manifest = match manifest {
        Manifest::Image(m) => m,
        Manifest::Index(i) => {
            let platforms: Vec<String> = i
                .manifests()
                .iter()
                .filter_map(|d| d.platform().map(|p| p.to_string()))
                .collect();
            return Err(Error::InvalidInput(format!(
                "{} is an index; choose one of its manifests with --platform ({})",
                desc.digest(),
                if platforms.is_empty() {
                    "it lists no platforms".into()
                } else {
                    platforms.join(", ")
                }
            )));
        }
    };
    let mut plan = Vec::new();
    let mut seen = BTreeMap::new();
    for layer in &manifest.layers {
        let Some(title) = layer.annotation(annotations::TITLE) else {
            continue;
        };
        let rel = safe_relative_path(title).map_err(|reason| {
            Error::InvalidInput(format!(
                "layer {} has title {title:?}, which {reason}; refusing to write it",
                layer.digest()
            ))
        })?;
        if seen.insert(rel.clone(), ()).is_some() {
            return Err(Error::InvalidInput(format!(
                "two layers are titled {title:?}"
            )));
        }
        let unpack = layer.annotation(annotations::ORAS_UNPACK) == Some("true");
        plan.push((layer.clone(), rel, unpack));
    }
    if plan.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{} has no layers with an org.opencontainers.image.title annotation: nothing to pull",
            desc.digest()
        )));
    }
    fs::create_dir_all(outdir).at(outdir)?;
    let root = outdir.canonicalize().at(outdir)?;
    let mut written = Vec::new();
    for (layer, rel, unpack) in plan {
        if unpack {
            layout.verify_blob(layer.digest(), Some(layer.size()))?;
            let gz = layer.media_type().ends_with("+gzip") || layer.media_type().ends_with(".gzip");
            unpack_tar(layout, &layer, &root, gz)?;
            written.push(root.join(&rel));
            continue;
        }
        let target = root.join(&rel);
        let parent = target.parent().unwrap_or(&root).to_path_buf();
        fs::create_dir_all(&parent).at(&parent)?;
        // A symlink already in outdir must not redirect the write elsewhere.
        let real_parent = parent.canonicalize().at(&parent)?;
        if !real_parent.starts_with(&root) {
            return Err(Error::InvalidInput(format!(
                "{} leads outside {} through a symlink; refusing to write it",
                target.display(),
                root.display()
            )));
        }
        let mut temp = tempfile::Builder::new()
            .prefix(".ocistow-pull-")
            .tempfile_in(&real_parent)
            .at(&real_parent)?;
        // tempfile creates 0600; a pulled file is an ordinary file.
        temp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .at(temp.path())?;
        let bar = progress(&rel.display().to_string(), layer.size());
        layout.copy_blob_to(
            layer.digest(),
            Some(layer.size()),
            &mut io::BufWriter::new(temp.as_file_mut()),
            bar.as_ref(),
        )?;
        temp.as_file_mut().flush().at(temp.path())?;
        temp.persist(&target).map_err(|e| Error::Io {
            path: target.clone(),
            source: e.error,
        })?;
        written.push(target);
    }
    Ok(written)
}

/// Accepts only a relative path of plain components.
pub fn safe_relative_path(name: &str) -> std::result::Result<PathBuf, &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("names no file");
    }
    Ok(out)
}

fn unpack_tar(layout: &Layout, layer: &Descriptor, root: &Path, gzip: bool) -> Result<()> {
    let file = layout.open_blob(layer.digest())?;
    let reader: Box<dyn io::Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
    } else {
        Box::new(io::BufReader::new(file))
    };
    let what = format!("layer {}", layer.digest());
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    let entries = archive.entries().map_err(|e| Error::Corrupt {
        path: what.clone().into(),
        reason: e.to_string(),
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Corrupt {
            path: what.clone().into(),
            reason: e.to_string(),
        })?;
        let name = entry
            .path()
            .map_err(|e| Error::Corrupt {
                path: what.clone().into(),
                reason: e.to_string(),
            })?
            .into_owned();
        let rel = safe_relative_path(&name.to_string_lossy()).map_err(|r| {
            Error::InvalidInput(format!(
                "{what}: entry {} {r}; refusing to unpack",
                name.display()
            ))
        })?;
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let base = rel.parent().unwrap_or(Path::new(""));
                if !stays_inside(base, &link) {
                    return Err(Error::InvalidInput(format!(
                        "{what}: symlink {} -> {} points outside the output directory",
                        rel.display(),
                        link.display()
                    )));
                }
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "{what}: entry {} is a {other:?}, which pull does not unpack",
                    rel.display()
                )));
            }
        }
        let ok = entry.unpack_in(root).map_err(|e| Error::Io {
            path: root.join(&rel),
            source: e,
        })?;
        if !ok {
            return Err(Error::InvalidInput(format!(
                "{what}: entry {} escapes the output directory",
                rel.display()
            )));
        }
    }
    Ok(())
}

/// True when `link`, resolved lexically from directory `base` (relative to the root), stays in it.
fn stays_inside(base: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: i64 = base
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count() as i64;
    for c in link.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

/// `org.opencontainers.image.created` for now (or `SOURCE_DATE_EPOCH`), RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    format_rfc3339(secs)
}

fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A progress factory that reports nothing.
pub fn no_progress(_: &str, _: u64) -> Box<dyn Progress> {
    Box::new(NoProgress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(1_577_836_800), "2020-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn safe_paths() {
        assert!(safe_relative_path("a/b.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".", "./"] {
            assert!(safe_relative_path(bad).is_err(), "{bad}");
        }
        assert!(stays_inside(Path::new("d"), Path::new("../x")));
        assert!(!stays_inside(Path::new("d"), Path::new("../../x")));
        assert!(!stays_inside(Path::new(""), Path::new("/etc")));
    }

    #[test]
    fn file_spec_parsing() {
        let f = FileSpec::parse("no-such-file.txt:text/plain");
        assert_eq!(f.path, Path::new("no-such-file.txt"));
        assert_eq!(f.media_type.as_deref(), Some("text/plain"));
        assert_eq!(FileSpec::parse("plain.txt").media_type, None);
    }
}
