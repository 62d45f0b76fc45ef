//! Classic `docker save` archives: manifests built from `manifest.json`, layer links resolved.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::digest::{Algorithm, Digest};
use crate::error::{ArchiveProblem, DockerArchiveProblem, Error, IoContext, Result, Subject};
use crate::layout::MAX_MANIFEST_SIZE;
use crate::model::{Descriptor, annotations, media};
use crate::reference::validate_ref_name;
use crate::transfer::export::DOCKER_CONFIG;

use super::staging::{Collected, Staged, Staging, normalize};
use super::{ArchiveFormat, DOCKER_LAYER, DOCKER_LAYER_GZIP, Incoming, corrupt};

/// The target of a classic `docker save` layer symlink (`<id>/layer.tar -> ../<id2>/layer.tar`,
/// or `-> ../blobs/<alg>/<hex>`), resolved inside the archive; `None` for any other link.
pub(super) fn legacy_alias(parts: &[&str], target: &[u8]) -> Option<String> {
    if parts.len() != 2 || parts[1] != "layer.tar" {
        return None;
    }
    let target = std::str::from_utf8(target).ok()?;
    if target.starts_with('/') {
        return None;
    }
    let mut resolved: Vec<&str> = vec![parts[0]];
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                resolved.pop()?;
            }
            p => resolved.push(p),
        }
    }
    let ok = match resolved.as_slice() {
        [id, "layer.tar"] => *id != parts[0],
        ["blobs", _, _] => true,
        _ => false,
    };
    ok.then(|| resolved.join("/"))
}
/// A path manifest.json names, as the member it means: normalized, a layer link followed.
pub(super) fn resolve_path(p: &str, aliases: &HashMap<String, String>) -> Option<String> {
    let norm = normalize(p.as_bytes()).ok().flatten()?;
    Some(aliases.get(&norm).cloned().unwrap_or(norm))
}

pub(super) fn validate_docker(
    manifest_json: &[u8],
    c: &Collected,
    staging: &Staging,
    name: &str,
) -> Result<Incoming> {
    let bad = |problem| corrupt(name, ArchiveProblem::DockerManifest(problem));
    let doc: Value =
        serde_json::from_slice(manifest_json).map_err(|e| bad(DockerArchiveProblem::NotJson(e)))?;
    let Value::Array(images) = doc else {
        return Err(bad(DockerArchiveProblem::NotAList));
    };
    if images.is_empty() {
        return Err(bad(DockerArchiveProblem::NoImage));
    }
    let resolve = |p: &str| -> Result<&Staged> {
        let norm = resolve_path(p, &c.aliases)
            .ok_or_else(|| bad(DockerArchiveProblem::PathOutside { path: p.into() }))?;
        c.files
            .get(&norm)
            .ok_or_else(|| bad(DockerArchiveProblem::NoSuchFile { path: p.into() }))
    };
    let mut blobs: BTreeMap<Digest, Staged> = BTreeMap::new();
    let mut entries: Vec<Descriptor> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let Value::Object(obj) = image else {
            return Err(bad(DockerArchiveProblem::ImageNotObject { image: i }));
        };
        let config_path = obj
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(DockerArchiveProblem::NoConfig { image: i }))?;
        let config = resolve(config_path)?;
        if config.size > MAX_MANIFEST_SIZE {
            return Err(bad(DockerArchiveProblem::ConfigTooLarge {
                path: config_path.into(),
            }));
        }
        let config_bytes = fs::read(&config.path).at(&config.path)?;
        if !matches!(
            serde_json::from_slice::<Value>(&config_bytes),
            Ok(Value::Object(_))
        ) {
            return Err(bad(DockerArchiveProblem::ConfigNotObject {
                path: config_path.into(),
            }));
        }
        blobs
            .entry(config.digest.clone())
            .or_insert_with(|| config.clone());
        let sources = obj.get("LayerSources").and_then(Value::as_object);
        let Some(Value::Array(layer_paths)) = obj.get("Layers") else {
            return Err(bad(DockerArchiveProblem::NoLayers { image: i }));
        };
        let mut layers: Vec<Value> = Vec::new();
        for lp in layer_paths {
            let lp = lp
                .as_str()
                .ok_or_else(|| bad(DockerArchiveProblem::LayerNotString { image: i }))?;
            let staged = resolve(lp)?;
            if let Some(src) = sources.and_then(|s| s.get(staged.digest.as_str())) {
                let desc = Descriptor::from_value(src.clone()).map_err(|e| {
                    bad(DockerArchiveProblem::LayerSource {
                        layer: lp.into(),
                        source: e,
                    })
                })?;
                if desc.digest() == &staged.digest {
                    if desc.size() != staged.size {
                        return Err(Error::SizeMismatch {
                            what: Subject::ArchiveEntry {
                                archive: name.to_string(),
                                entry: staged.entry.clone().into(),
                            }
                            .into(),
                            expected: desc.size(),
                            actual: staged.size,
                        });
                    }
                    blobs
                        .entry(staged.digest.clone())
                        .or_insert_with(|| staged.clone());
                } else if desc.urls().is_empty() {
                    return Err(bad(DockerArchiveProblem::LayerSourceWithoutUrls {
                        layer: lp.into(),
                        digest: desc.digest().clone(),
                    }));
                }
                layers.push(Value::Object(desc.fields().clone()));
                continue;
            }
            let mt = if starts_with_gzip(&staged.path)? {
                DOCKER_LAYER_GZIP
            } else {
                DOCKER_LAYER
            };
            blobs
                .entry(staged.digest.clone())
                .or_insert_with(|| staged.clone());
            layers.push(
                json!({"mediaType": mt, "size": staged.size, "digest": staged.digest.as_str()}),
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest.as_str()},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
        let path = staging.blob_path(&digest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        let mut f = File::create(&path).at(&path)?;
        f.write_all(&bytes).at(&path)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .at(&path)?;
        f.sync_all().at(&path)?;
        blobs.insert(
            digest.clone(),
            Staged {
                path,
                digest: digest.clone(),
                size: bytes.len() as u64,
                entry: format!("manifest.json image {i}"),
            },
        );
        let base = Descriptor::new(media::DOCKER_MANIFEST, digest, bytes.len() as u64);
        let repo_tags: Vec<&str> = match obj.get("RepoTags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or_else(|| bad(DockerArchiveProblem::RepoTagNotString { image: i }))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(bad(DockerArchiveProblem::RepoTagsNotList { image: i })),
        };
        if repo_tags.is_empty() {
            entries.push(base.clone());
        }
        for tag in repo_tags {
            validate_ref_name(tag).map_err(|problem| {
                bad(DockerArchiveProblem::BadTag {
                    image: i,
                    tag: tag.to_string(),
                    problem,
                })
            })?;
            let mut e = base.clone();
            e.set_annotation(annotations::REF_NAME, tag);
            entries.push(e);
        }
    }
    Ok(Incoming {
        format: ArchiveFormat::DockerArchive,
        entries,
        blobs,
        relations: Vec::new(),
        all_relations: 0,
    })
}

pub(super) fn starts_with_gzip(path: &Path) -> Result<bool> {
    let mut head = [0u8; 2];
    let mut f = File::open(path).at(path)?;
    let n = f.read(&mut head).at(path)?;
    Ok(n == 2 && head == [0x1f, 0x8b])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layer_aliases_stay_inside() {
        assert_eq!(
            legacy_alias(&["b", "layer.tar"], b"../a/layer.tar").as_deref(),
            Some("a/layer.tar")
        );
        assert_eq!(
            legacy_alias(&["b", "layer.tar"], b"../blobs/sha256/abc").as_deref(),
            Some("blobs/sha256/abc")
        );
        assert!(legacy_alias(&["b", "layer.tar"], b"../../etc/passwd").is_none());
        assert!(legacy_alias(&["b", "layer.tar"], b"/etc/passwd").is_none());
        assert!(legacy_alias(&["b", "other"], b"../a/layer.tar").is_none());
        assert!(legacy_alias(&["b", "layer.tar"], b"layer.tar").is_none());
    }
}
