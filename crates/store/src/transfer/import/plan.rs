//! What an archive's own descriptors declare, learned before a byte of it is staged.
//!
//! An archive read from a file is read twice. This first pass reads only member headers and
//! the small JSON members a graph is made of (`index.json`, `manifest.json`, blobs that might be
//! manifests), walks `index.json`'s graph over them on the one walk, and so knows every member
//! the archive references and the size its descriptor declares. The second pass
//! ([`collect`](super::staging::collect)) then stages only those members, each at exactly that
//! size, whatever order the archive comes in (`docker save` writes its blobs before
//! `index.json`).
//!
//! A stream cannot be read twice: [`Plan::streaming`] knows nothing, each member is checked
//! against what the members before it declared, and the members not declared yet are staged
//! under [`ImportOptions::undeclared_limit`](super::ImportOptions::undeclared_limit) in total.
//!
//! The first pass never refuses anything: whatever it cannot read, the second pass reports, in
//! its context. It only makes the plan incomplete (the second pass then stages as a stream does).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result, Subject};
use crate::layout::{Layout, MAX_MANIFEST_SIZE};
use crate::model::{Descriptor, ImageIndex};
use crate::transfer::tar_reader::{Kind, TarReader};
use crate::walk::{BlobSource, Content, Visitor, Walker};

use super::docker::{legacy_alias, resolve_path};
use super::staging::normalize;

/// The most the first pass holds in memory of blobs that might be manifests. Manifests and
/// configs are small; an archive with more is still imported, as a stream would be.
const SCAN_MEMORY: u64 = 256 << 20;

/// What the second pass may stage.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Blobs reached from `index.json`, with the size and media type their first descriptor
    /// declares.
    pub(super) blobs: HashMap<Digest, (u64, String)>,
    /// The files of a classic `docker save` archive its `manifest.json` names (configs and
    /// layers, layer links resolved).
    pub(super) paths: HashSet<String>,
    /// Every member the archive references is in `blobs` or `paths`: no other is staged.
    pub(super) complete: bool,
}

impl Plan {
    /// Knows nothing yet: for a stream, or an archive the first pass could not read through.
    pub(super) fn streaming() -> Plan {
        Plan::default()
    }
}

/// The first pass over an archive read from a file: see the module documentation.
pub(super) fn scan(reader: Box<dyn Read + '_>, existing: Option<&Layout>) -> Plan {
    let mut tar = TarReader::new(reader);
    let mut found = Found::default();
    loop {
        let head = match tar.next() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            // The second pass meets the same trouble and says what it is.
            Err(_) => return Plan::streaming(),
        };
        let Ok(Some(path)) = normalize(&head.name) else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').collect();
        match (&head.kind, parts.as_slice()) {
            (Kind::Symlink(target), _) => {
                if let Some(to) = legacy_alias(&parts, target) {
                    found.aliases.insert(path.clone(), to);
                }
            }
            (Kind::File, ["oci-layout"]) => found.oci_layout = true,
            (Kind::File, ["index.json"]) => {
                found.index = read_at_most(&mut tar, head.size, MAX_MANIFEST_SIZE);
            }
            (Kind::File, ["manifest.json"]) => {
                found.docker_manifest = read_at_most(&mut tar, head.size, MAX_MANIFEST_SIZE);
            }
            (Kind::File, ["blobs", alg, enc]) => {
                let Ok(digest) = Digest::parse(&format!("{alg}:{enc}")) else {
                    continue;
                };
                if found.sizes.contains_key(&digest) {
                    continue;
                }
                found.sizes.insert(digest.clone(), head.size);
                found.keep_if_json(&mut tar, digest, head.size);
            }
            _ => {}
        }
    }
    found.plan(existing)
}

/// What the first pass met.
#[derive(Default)]
struct Found {
    oci_layout: bool,
    index: Option<Vec<u8>>,
    docker_manifest: Option<Vec<u8>>,
    aliases: HashMap<String, String>,
    /// Every blob member's size, by the digest it is named by.
    sizes: HashMap<Digest, u64>,
    /// The verified bytes of the blob members that might be manifests.
    kept: HashMap<Digest, Vec<u8>>,
    kept_bytes: u64,
    /// A blob that might be a manifest was not kept (over [`SCAN_MEMORY`]).
    dropped: bool,
}

impl Found {
    /// Keeps the current member when it might be a manifest: small enough, a JSON object (the
    /// first byte that sniffing and parsing need), and hashing to its name.
    fn keep_if_json<R: Read>(&mut self, tar: &mut TarReader<R>, digest: Digest, size: u64) {
        let Ok(algorithm) = digest.known_algorithm() else {
            return;
        };
        if size > MAX_MANIFEST_SIZE {
            return;
        }
        let mut data = tar.data();
        let mut bytes = Vec::new();
        // Up to the first byte that is not blank (a JSON document may start with blanks).
        let mut byte = [0u8; 1];
        loop {
            match data.read(&mut byte) {
                Ok(1) if byte[0].is_ascii_whitespace() => bytes.push(byte[0]),
                Ok(1) => break,
                _ => return,
            }
        }
        if byte[0] != b'{' {
            return;
        }
        if self.kept_bytes + size > SCAN_MEMORY {
            self.dropped = true;
            return;
        }
        bytes.push(byte[0]);
        if data.read_to_end(&mut bytes).is_err() {
            return;
        }
        if Digest::of_bytes(algorithm, &bytes) == digest {
            self.kept_bytes += bytes.len() as u64;
            self.kept.insert(digest, bytes);
        }
    }

    fn plan(self, existing: Option<&Layout>) -> Plan {
        if self.oci_layout {
            let Some(index) = self
                .index
                .as_deref()
                .and_then(|b| ImageIndex::parse(b).ok())
            else {
                // Refused by validation whatever is staged: stage nothing.
                return Plan {
                    complete: true,
                    ..Plan::default()
                };
            };
            let source = ScanBlobs {
                found: &self,
                existing,
            };
            let mut declare = Declare::default();
            let mut walker = Walker::new(&source);
            for entry in index.manifests() {
                // The visitor never fails, so neither does the walk.
                if walker.walk(entry, &mut declare).is_err() {
                    return Plan::streaming();
                }
            }
            return Plan {
                blobs: declare.0,
                paths: HashSet::new(),
                complete: !self.dropped,
            };
        }
        if let Some(manifest) = &self.docker_manifest {
            return match docker_paths(manifest, &self.aliases) {
                Some(paths) => Plan {
                    blobs: HashMap::new(),
                    paths,
                    complete: true,
                },
                None => Plan {
                    complete: true,
                    ..Plan::default()
                },
            };
        }
        // Neither layout nor docker archive: refused by validation, stage nothing.
        Plan {
            complete: true,
            ..Plan::default()
        }
    }
}

/// The files a classic `docker save` manifest.json names (`Config` and `Layers` of each
/// image), links resolved; `None` when it is not such a list (validation says why).
pub(super) fn docker_paths(
    manifest: &[u8],
    aliases: &HashMap<String, String>,
) -> Option<HashSet<String>> {
    let Ok(Value::Array(images)) = serde_json::from_slice::<Value>(manifest) else {
        return None;
    };
    let mut paths = HashSet::new();
    for image in &images {
        let config = image.get("Config").and_then(Value::as_str);
        let layers = image.get("Layers").and_then(Value::as_array);
        for p in config
            .into_iter()
            .chain(layers.into_iter().flatten().filter_map(Value::as_str))
        {
            if let Some(p) = resolve_path(p, aliases) {
                paths.insert(p);
            }
        }
    }
    Some(paths)
}

/// At most `cap` bytes of the current member; `None` when it is larger or unreadable.
fn read_at_most<R: Read>(tar: &mut TarReader<R>, size: u64, cap: u64) -> Option<Vec<u8>> {
    if size > cap {
        return None;
    }
    let mut bytes = Vec::new();
    tar.data().read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The first pass's blobs, for the one walk: members by their header size, the kept ones
/// readable; what the archive lacks, from the destination.
struct ScanBlobs<'a> {
    found: &'a Found,
    existing: Option<&'a Layout>,
}

impl BlobSource for ScanBlobs<'_> {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match (self.found.sizes.get(digest), self.existing) {
            (Some(size), _) => Ok(Some(*size)),
            (None, Some(l)) => l.blob_size(digest),
            (None, None) => Ok(None),
        }
    }

    fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        match (self.found.kept.get(digest), self.existing) {
            (Some(bytes), _) if bytes.len() as u64 <= limit => Ok(bytes.clone()),
            // The member's path inside the archive: the first pass has no file of its own.
            (Some(_), _) => Err(Error::TooLarge {
                path: digest.blob_path(),
                limit,
                why: " (read into memory as a manifest)",
            }),
            // A member not kept is not a manifest (or was dropped: the plan is incomplete).
            (None, _) if self.found.sizes.contains_key(digest) => {
                Err(Error::not_found(Subject::Blob(digest.clone())))
            }
            (None, Some(l)) => l.read_blob_limited(digest, limit),
            (None, None) => Err(Error::not_found(Subject::Blob(digest.clone()))),
        }
    }
}

/// Records what each descriptor reached declares; follows every manifest.
#[derive(Default)]
struct Declare(HashMap<Digest, (u64, String)>);

impl Visitor for Declare {
    fn enter(
        &mut self,
        desc: &Descriptor,
        _parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>> {
        self.0
            .entry(desc.digest().clone())
            .or_insert_with(|| (desc.size(), desc.media_type().to_string()));
        Ok(content.children())
    }
}
