//! Blobs, manifests and tags: the distribution API's endpoints, each verified on the way in.

use std::collections::HashSet;
use std::io::{Read, Write};

use ocistow_store::digest::HashingWriter;
use ocistow_store::model::media;
use ocistow_store::{Descriptor, Digest, Expected, Layout, Manifest, Progress};
use ureq::Body;
use ureq::http::Response;

use super::{Client, ReqBody, Request, read_limited, scope, status_error};
use crate::error::{Error, Result};

/// What `Accept` lists for a manifest: every manifest and index type ocistow reads.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Pages of a paginated list (tags, referrers) followed at most.
pub(crate) const MAX_PAGES: usize = 10_000;

/// The pages of one paginated list read so far: a `Link` back to one of them is a loop, and
/// more than [`MAX_PAGES`] is too many.
#[derive(Default)]
pub(crate) struct Pages {
    seen: HashSet<String>,
}

impl Pages {
    /// Records that `url` is about to be read.
    pub(crate) fn visit(&mut self, url: &str) -> Result<()> {
        if !self.seen.insert(url.to_string()) {
            return Err(Error::BadResponse {
                url: url.into(),
                reason: "the Link header leads back to a page already read".into(),
            });
        }
        if self.seen.len() > MAX_PAGES {
            return Err(Error::TooLarge {
                url: url.into(),
                what: "the number of pages",
                limit: MAX_PAGES as u64,
            });
        }
        Ok(())
    }

    /// True while the first page is being read.
    pub(crate) fn first(&self) -> bool {
        self.seen.len() == 1
    }
}

/// A manifest as the registry holds it, verified against its digest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManifestBytes {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The media type (from `Content-Type`, else from the content).
    pub media_type: String,
    /// The digest the bytes hash to.
    pub digest: Digest,
}

impl ManifestBytes {
    /// The manifest's descriptor, with its `artifactType` (else its config's media type), as
    /// the store's `put_manifest` describes a manifest.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(
            &self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        );
        if let Ok(m) = Manifest::parse(&self.media_type, &self.bytes)
            && let Some(at) = m.effective_artifact_type()
        {
            d.set_artifact_type(at);
        }
        d
    }
}

/// What the registry said to a manifest PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutManifest {
    /// The answer carried `OCI-Subject`: the registry indexed the manifest's subject itself.
    pub subject_indexed: bool,
}

impl Error {
    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status: 404, .. })
    }
}

impl Client {
    /// True when the registry has the blob with the descriptor's size (`HEAD`).
    pub fn blob_exists(&self, repository: &str, desc: &Descriptor) -> Result<bool> {
        Ok(self
            .head_blob(repository, desc.digest())?
            .is_some_and(|len| len.is_none_or(|l| l == desc.size())))
    }

    /// `HEAD` of a blob: `None` when absent, else its length when the registry tells it.
    pub fn head_blob(&self, repository: &str, digest: &Digest) -> Result<Option<Option<u64>>> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let req = Request::new("HEAD", url, scope(repository, false));
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            200 => Ok(Some(content_length(&resp))),
            404 => Ok(None),
            _ => Err(status_error("HEAD", &req.url, resp, "")),
        }
    }

    /// Streams a blob into `layout` through its verified writer: the blob becomes visible
    /// only when its size and digest matched.
    pub fn fetch_blob(
        &self,
        repository: &str,
        desc: &Descriptor,
        layout: &Layout,
        progress: &dyn Progress,
    ) -> Result<()> {
        let (url, resp) = self.get_blob(repository, desc)?;
        // One byte over the declared size is enough to know the peer sent too much.
        let mut reader = PeerReader {
            inner: resp.into_body().into_reader().take(desc.size() + 1),
            failed: None,
        };
        let expected = Expected::default()
            .digest(Some(desc.digest().clone()))
            .size(Some(desc.size()));
        match layout.write_blob_with_progress(&mut reader, expected, progress) {
            Ok(_) => Ok(()),
            Err(_) if reader.failed.is_some() => Err(Error::BadResponse {
                url,
                reason: format!(
                    "the answer broke off while streaming the blob: {}",
                    reader.failed.unwrap_or_default()
                ),
            }),
            Err(e) => Err(blame(e, &url)),
        }
    }

    /// Streams a blob into `out`, verifying size and digest; returns the size. `out` has seen
    /// everything when verification fails: a caller writing a file discards it then.
    pub fn copy_blob(
        &self,
        repository: &str,
        desc: &Descriptor,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let (url, resp) = self.get_blob(repository, desc)?;
        let alg = desc.digest().known_algorithm()?;
        let mut reader = resp.into_body().into_reader().take(desc.size() + 1);
        let mut writer = HashingWriter::new(out, alg);
        std::io::copy(&mut reader, &mut writer).map_err(|e| Error::BadResponse {
            url: url.clone(),
            reason: format!("while streaming the blob: {e}"),
        })?;
        let (_, actual, size) = writer.finish();
        if size != desc.size() {
            return Err(Error::BadResponse {
                url,
                reason: format!("sent {size} bytes for a blob of {} bytes", desc.size()),
            });
        }
        if actual != *desc.digest() {
            return Err(Error::DigestMismatch {
                url,
                expected: desc.digest().clone(),
                actual,
            });
        }
        Ok(size)
    }

    fn get_blob(&self, repository: &str, desc: &Descriptor) -> Result<(String, Response<Body>)> {
        let url = self.url(&format!("/v2/{repository}/blobs/{}", desc.digest()));
        let req = Request::new("GET", url, scope(repository, false));
        let resp = self.send(&req)?;
        if resp.status().as_u16() != 200 {
            return Err(status_error("GET", &req.url, resp, ""));
        }
        Ok((req.url, resp))
    }

    /// Uploads a blob of `layout` (`POST` then one streamed `PUT`), in constant memory.
    pub fn push_blob(
        &self,
        repository: &str,
        layout: &Layout,
        desc: &Descriptor,
        progress: &dyn Progress,
    ) -> Result<()> {
        self.upload(
            repository,
            desc,
            ReqBody::Blob {
                layout,
                digest: desc.digest(),
                size: desc.size(),
                progress,
            },
        )
    }

    /// Uploads a blob streamed from another registry's answer (`POST`, then one `PUT`). The
    /// reader is sent once: an upload is not retried.
    pub fn push_blob_from(
        &self,
        repository: &str,
        desc: &Descriptor,
        reader: Box<dyn Read + '_>,
    ) -> Result<()> {
        let body = ReqBody::Stream {
            reader: std::cell::RefCell::new(Some(reader)),
            size: desc.size(),
        };
        self.upload(repository, desc, body)
    }

    /// Opens a blob for reading from this registry, at most its declared size.
    pub fn open_blob(&self, repository: &str, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
        let (_, resp) = self.get_blob(repository, desc)?;
        Ok(Box::new(resp.into_body().into_reader().take(desc.size())))
    }

    fn upload(&self, repository: &str, desc: &Descriptor, body: ReqBody<'_>) -> Result<()> {
        let location = self.start_upload(repository, None, desc.digest())?;
        let Some(location) = location else {
            return Ok(());
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", desc.digest());
        let req = Request::new("PUT", url, scope(repository, true)).body(body);
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(status_error("PUT", &req.url, resp, "")),
        }
    }

    /// Asks the registry to mount a blob from another repository of the same registry.
    /// True when it did; false when the blob must be uploaded.
    pub fn mount_blob(&self, repository: &str, from: &str, digest: &Digest) -> Result<bool> {
        Ok(self.start_upload(repository, Some(from), digest)?.is_none())
    }

    /// `POST .../blobs/uploads/`, with a mount request when `from` is given: `None` when the
    /// blob was mounted, else the upload's location.
    fn start_upload(
        &self,
        repository: &str,
        from: Option<&str>,
        digest: &Digest,
    ) -> Result<Option<String>> {
        let mut path = format!("/v2/{repository}/blobs/uploads/");
        let mut req_scopes = vec![scope(repository, true)];
        if let Some(src) = from {
            path = format!("{path}?mount={digest}&from={src}");
            req_scopes.push(scope(src, false));
        }
        let mut req = Request::new("POST", self.url(&path), String::new());
        req.scopes = req_scopes;
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            201 if from.is_some() => Ok(None),
            202 => {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Error::BadResponse {
                        url: req.url.clone(),
                        reason: "202 without a Location for the upload".into(),
                    })?;
                Ok(Some(self.resolve_url(loc)))
            }
            _ => Err(status_error("POST", &req.url, resp, "")),
        }
    }

    /// A manifest by tag or digest, exact bytes, verified: by digest against that digest, by
    /// tag against `Docker-Content-Digest` when the registry sends it.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<ManifestBytes> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let req =
            Request::new("GET", url, scope(repository, false)).header("accept", MANIFEST_ACCEPT);
        let resp = self.send(&req)?;
        if resp.status().as_u16() != 200 {
            return Err(status_error("GET", &req.url, resp, ""));
        }
        let declared = header(&resp, "docker-content-digest").and_then(|d| Digest::parse(&d).ok());
        let content_type = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_string());
        let bytes = read_limited(resp, self.max_manifest_size, "manifest", &req.url)?;
        let expected = Digest::parse(reference).ok().or(declared);
        let alg = expected
            .as_ref()
            .and_then(|d| d.known_algorithm().ok())
            .unwrap_or(ocistow_store::Algorithm::Sha256);
        let digest = Digest::of_bytes(alg, &bytes);
        if let Some(e) = expected
            && e != digest
        {
            return Err(Error::DigestMismatch {
                url: req.url,
                expected: e,
                actual: digest,
            });
        }
        let media_type = match content_type {
            Some(ct) if media::is_manifest(&ct) => ct,
            _ => Manifest::sniff_media_type(&bytes).ok_or_else(|| Error::BadResponse {
                url: req.url.clone(),
                reason: "the answer is not a manifest or index".into(),
            })?,
        };
        Manifest::parse(&media_type, &bytes).map_err(|reason| Error::BadResponse {
            url: req.url.clone(),
            reason: format!("not a valid {media_type}: {reason}"),
        })?;
        Ok(ManifestBytes {
            bytes,
            media_type,
            digest,
        })
    }

    /// The descriptor of a manifest (`HEAD`), or `None` when the registry does not have it.
    pub fn head_manifest(&self, repository: &str, reference: &str) -> Result<Option<Descriptor>> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let req =
            Request::new("HEAD", url, scope(repository, false)).header("accept", MANIFEST_ACCEPT);
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            200 => {
                let digest = header(&resp, "docker-content-digest")
                    .and_then(|d| Digest::parse(&d).ok())
                    .or_else(|| Digest::parse(reference).ok());
                let (Some(digest), Some(size)) = (digest, content_length(&resp)) else {
                    return Err(Error::BadResponse {
                        url: req.url,
                        reason: "HEAD answer without a digest or a length".into(),
                    });
                };
                let mt = header(&resp, "content-type").unwrap_or_default();
                Ok(Some(Descriptor::new(&mt, digest, size)))
            }
            404 => Ok(None),
            _ => Err(status_error("HEAD", &req.url, resp, "")),
        }
    }

    /// Pushes manifest bytes exactly as given under `reference` (a tag or their digest).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let mut req = Request::new("PUT", url, scope(repository, true))
            .header("content-type", media_type)
            .body(ReqBody::Bytes(bytes));
        // The same bytes under the same name: sending them twice changes nothing.
        req.idempotent = true;
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            200 | 201 | 202 | 204 => Ok(PutManifest {
                subject_indexed: resp.headers().contains_key("oci-subject"),
            }),
            _ => Err(status_error("PUT", &req.url, resp, "")),
        }
    }

    /// Every tag of `repository`, following `Link` pagination.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let mut url = self.url(&format!("/v2/{repository}/tags/list?n=1000"));
        let mut pages = Pages::default();
        let mut tags = Vec::new();
        loop {
            pages.visit(&url)?;
            let req = Request::new("GET", url.clone(), scope(repository, false));
            let resp = self.send(&req)?;
            if resp.status().as_u16() != 200 {
                return Err(status_error("GET", &req.url, resp, ""));
            }
            let next = next_link(&resp).map(|l| self.resolve_url(&l));
            let bytes = read_limited(resp, self.max_manifest_size, "tags list", &url)?;
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
                    url: url.clone(),
                    reason: format!("the tags list is not JSON: {e}"),
                })?;
            if let Some(list) = value.get("tags").and_then(|t| t.as_array()) {
                tags.extend(list.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
    }
}

/// Remembers a read error of the peer, so that it is not told as a local I/O error.
struct PeerReader<R> {
    inner: R,
    failed: Option<String>,
}

impl<R: Read> Read for PeerReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.failed = Some(e.to_string());
        })
    }
}

/// A store error about content streamed from `url`, told as the registry's fault.
fn blame(e: ocistow_store::Error, url: &str) -> Error {
    match e {
        ocistow_store::Error::DigestMismatch {
            expected, actual, ..
        } => Error::DigestMismatch {
            url: url.into(),
            expected,
            actual,
        },
        ocistow_store::Error::SizeMismatch {
            expected, actual, ..
        } => Error::BadResponse {
            url: url.into(),
            reason: format!("sent {actual} bytes for a blob of {expected} bytes"),
        },
        other => Error::Store(other),
    }
}

pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(resp: &Response<Body>) -> Option<u64> {
    header(resp, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The target of `Link: <...>; rel="next"`, if any.
pub(crate) fn next_link(resp: &Response<Body>) -> Option<String> {
    resp.headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_string())
        })
}
