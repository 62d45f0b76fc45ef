//! `ocistow-registry`: copy OCI image layouts to and from registries that speak the OCI
//! distribution API, with every referrer.
//!
//! - [`mod@reference`]: `docker://HOST:PORT/REPO:TAG` and `docker://HOST/REPO@DIGEST`;
//! - [`client`]: the distribution client (auth, TLS, blobs, manifests, tags, referrers API
//!   and fallback tags), every answer bounded and verified;
//! - [`copy`]: layout to registry and back, on top of the store's transfer plan and referrers
//!   scan.
//!
//! The store (`ocistow-store`) has no network dependency; everything that talks to a peer is
//! here.

#![warn(missing_docs)]

pub mod client;
pub mod copy;
pub mod error;
pub mod reference;

use std::collections::HashSet;

use ocistow_store::referrers::Node;
use ocistow_store::{Descriptor, Digest, Platform};

pub use client::{Client, ClientOptions};
pub use error::{Error, ReferenceProblem, Result};
pub use reference::{RegistryRef, RegistryTarget, is_registry_ref};

/// The manifest `r` names (a tag or digest), or with `platform` that platform's manifest of
/// the index it names; with its exact bytes.
pub fn resolve(
    client: &Client,
    r: &RegistryRef,
    platform: Option<&Platform>,
) -> Result<(Descriptor, client::ManifestBytes)> {
    let reference = r
        .manifest_reference()
        .ok_or_else(|| Error::InvalidReference {
            input: r.to_string(),
            problem: ReferenceProblem::NoTagOrDigest,
        })?;
    let manifest = client.get_manifest(&r.repository, &reference)?;
    let Some(p) = platform else {
        return Ok((manifest.descriptor(), manifest));
    };
    let child = copy::pick_platforms(r, &manifest, std::slice::from_ref(p))?.remove(0);
    let bytes = client.get_manifest(&r.repository, child.digest().as_str())?;
    Ok((child, bytes))
}

/// The referrers of `root` in `repository`, recursively, as the store's discover tree: only
/// `artifact_types` when some are given, down to `depth` levels (all when `None`). Cycles
/// are cut.
pub fn discover(
    client: &Client,
    repository: &str,
    root: &Descriptor,
    artifact_types: &[String],
    depth: Option<usize>,
) -> Result<Node> {
    let mut path = HashSet::new();
    subtree(
        client,
        repository,
        root.clone(),
        artifact_types,
        depth,
        &mut path,
    )
}

fn subtree(
    client: &Client,
    repository: &str,
    descriptor: Descriptor,
    types: &[String],
    depth: Option<usize>,
    path: &mut HashSet<Digest>,
) -> Result<Node> {
    let mut referrers = Vec::new();
    if depth != Some(0) && path.insert(descriptor.digest().clone()) {
        let filter = match types {
            [one] => Some(one.as_str()),
            _ => None,
        };
        for r in client
            .referrers(repository, descriptor.digest(), filter)?
            .descriptors
        {
            let at = r.artifact_type().unwrap_or("");
            if !types.is_empty() && !types.iter().any(|t| t == at) {
                continue;
            }
            referrers.push(subtree(
                client,
                repository,
                r,
                types,
                depth.map(|d| d - 1),
                path,
            )?);
        }
        path.remove(descriptor.digest());
    }
    Ok(Node::new(descriptor, referrers))
}
