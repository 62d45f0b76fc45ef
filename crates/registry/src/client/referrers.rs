//! Referrers in a registry: the referrers API (`GET /v2/<name>/referrers/<digest>`, paginated,
//! filtered) and, where it is absent (404), the fallback tag `<alg>-<hex>`.

use std::collections::HashSet;

use ocistow_store::model::media;
use ocistow_store::referrers::fallback_tag;
use ocistow_store::{Descriptor, Digest, ImageIndex};

use super::api::{Pages, header, next_link};
use super::{Client, Request, read_limited, scope, status_error};
use crate::error::{Error, Result};

/// The referrers of one subject, and how they were found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReferrerList {
    /// The referrers' descriptors, as the registry lists them.
    pub descriptors: Vec<Descriptor>,
    /// True when they came from the referrers API, false from the fallback tag.
    pub from_api: bool,
}

impl Client {
    /// The referrers of `subject`, through the API when the registry has it, else through the
    /// fallback tag (absent or not an index: no referrers). With `artifact_type`, only those
    /// of that type (filtered here when the registry did not say `OCI-Filters-Applied`).
    pub fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ReferrerList> {
        let mut list = match self.referrers_api(repository, subject, artifact_type)? {
            Some(list) => list,
            None => ReferrerList {
                descriptors: match self.read_fallback(repository, subject) {
                    Ok(Some(index)) => index.manifests().to_vec(),
                    Ok(None) | Err(Error::BadResponse { .. }) => Vec::new(),
                    Err(e) => return Err(e),
                },
                from_api: false,
            },
        };
        if let Some(t) = artifact_type {
            list.descriptors.retain(|d| d.artifact_type() == Some(t));
        }
        Ok(list)
    }

    /// The referrers API's answer, every page; `None` when the registry has no API (404).
    fn referrers_api(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<ReferrerList>> {
        let mut url = self.url(&format!("/v2/{repository}/referrers/{subject}"));
        if let Some(t) = artifact_type {
            url = format!("{url}?artifactType={}", super::auth::query_escape(t));
        }
        let mut pages = Pages::default();
        let mut descriptors = Vec::new();
        loop {
            pages.visit(&url)?;
            let req = Request::new("GET", url.clone(), scope(repository, false))
                .header("accept", media::IMAGE_INDEX);
            let resp = self.send(&req)?;
            match resp.status().as_u16() {
                200 => {}
                404 if pages.first() => return Ok(None),
                _ => return Err(status_error("GET", &url, resp, "")),
            }
            let next = next_link(&resp).map(|l| self.resolve_url(&l));
            // The filter header is informative: the list is filtered here in any case.
            let _ = header(&resp, "oci-filters-applied");
            let bytes = read_limited(resp, self.max_manifest_size, "referrers page", &url)?;
            let page = ImageIndex::parse(&bytes).map_err(|reason| Error::BadResponse {
                url: url.clone(),
                reason: format!("the referrers answer is not an image index: {reason}"),
            })?;
            descriptors.extend(page.manifests().iter().cloned());
            match next {
                Some(n) => url = n,
                None => {
                    return Ok(Some(ReferrerList {
                        descriptors,
                        from_api: true,
                    }));
                }
            }
        }
    }

    /// The index under the fallback tag of `subject`; `None` when the tag does not exist.
    /// A tag that holds something other than an index is [`Error::BadResponse`].
    pub fn read_fallback(&self, repository: &str, subject: &Digest) -> Result<Option<ImageIndex>> {
        let tag = fallback_tag(subject);
        let manifest = match self.get_manifest(repository, &tag) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let url = self.url(&format!("/v2/{repository}/manifests/{tag}"));
        if !media::is_index(&manifest.media_type) {
            return Err(Error::BadResponse {
                url,
                reason: format!(
                    "the fallback tag {tag} holds a {}, not an image index",
                    manifest.media_type
                ),
            });
        }
        ImageIndex::parse(&manifest.bytes)
            .map(Some)
            .map_err(|reason| Error::BadResponse {
                url,
                reason: reason.to_string(),
            })
    }

    /// Adds `referrers` to the fallback tag of `subject`: read, merged (what is listed stays,
    /// whoever recorded it), pushed back only when something was missing. Returns how many
    /// were added.
    pub fn record_fallback(
        &self,
        repository: &str,
        subject: &Digest,
        referrers: &[Descriptor],
    ) -> Result<usize> {
        let mut index = self
            .read_fallback(repository, subject)?
            .unwrap_or_else(ImageIndex::new);
        let mut listed: HashSet<Digest> = index
            .manifests()
            .iter()
            .map(|d| d.digest().clone())
            .collect();
        let mut added = 0;
        for r in referrers {
            if listed.insert(r.digest().clone()) {
                index.manifests_mut().push(r.clone());
                added += 1;
            }
        }
        if added > 0 {
            self.put_manifest(
                repository,
                &fallback_tag(subject),
                media::IMAGE_INDEX,
                &index.to_vec(),
            )?;
        }
        Ok(added)
    }
}
