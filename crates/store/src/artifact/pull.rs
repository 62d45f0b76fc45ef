//! `pull`: the titled layers of a manifest written back as files, directories unpacked.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use super::ProgressFactory;
use crate::error::{Error, IoContext, Result};
use crate::layout::Layout;
use crate::model::{Descriptor, Manifest, annotations};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
