//! Manifests by tag or digest: GET and HEAD with `Accept` handled as distribution does, PUT with
//! exact bytes through the store's staged commit, DELETE through the store's delete.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ocistow_store::layout::MAX_MANIFEST_SIZE;
use ocistow_store::model::media;
use ocistow_store::reference::validate_tag;
use ocistow_store::{Descriptor, Digest, Error, Layout, Manifest, Platform, Subject, Target};
use serde_json::json;

use crate::api::{Request, State, blocking, with_headers};
use crate::body::read_limited;
use crate::error::{ApiError, ApiResult, Code};

/// A tag or a digest from the URL.
fn target(reference: &str) -> ApiResult<Target> {
    if reference.contains(':') {
        return Digest::parse(reference).map(Target::Digest).map_err(|_| {
            ApiError::digest_invalid("invalid digest").detail(json!({ "digest": reference }))
        });
    }
    validate_tag(reference).map_err(|reason| {
        ApiError::new(StatusCode::BAD_REQUEST, Code::TagInvalid, "invalid tag")
            .detail(json!({ "tag": reference, "reason": reason.to_string() }))
    })?;
    Ok(Target::Tag(reference.to_string()))
}

/// What a GET found: the descriptor, its exact bytes, and the media type to answer with.
struct Found {
    desc: Descriptor,
    bytes: Vec<u8>,
    media_type: String,
}

fn read(layout: &Layout, desc: Descriptor) -> Result<Found, Error> {
    let (bytes, _) = layout.read_manifest(&desc)?;
    // The manifest's own `mediaType` wins over its descriptor's: it is what the client will
    // parse the bytes as.
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(String::from));
    let media_type = declared.unwrap_or_else(|| {
        if media::is_manifest(desc.media_type()) {
            desc.media_type().to_string()
        } else {
            Manifest::sniff_media_type(&bytes).unwrap_or_default()
        }
    });
    Ok(Found {
        desc,
        bytes,
        media_type,
    })
}

/// The media types an `Accept` header lists; `None` when anything goes (no header, `*/*`).
fn accepted(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut types = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(v) = value.to_str() else { continue };
        for item in v.split(',') {
            let t = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if t == "*/*" || t == "application/*" {
                return None;
            }
            if !t.is_empty() {
                types.push(t);
            }
        }
    }
    (!types.is_empty()).then_some(types)
}

pub(crate) async fn get(
    state: Arc<State>,
    name: &str,
    reference: &str,
    req: Request,
) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let target = target(reference)?;
    let by_tag = matches!(target, Target::Tag(_));
    let accept = accepted(&req.headers);
    let reference_owned = reference.to_string();
    let found = blocking(move || -> ApiResult<Found> {
        let unknown = || ApiError::manifest_unknown(&reference_owned);
        let desc = match layout.resolve(&target) {
            Ok(d) => d,
            Err(Error::NotFound { .. }) => return Err(unknown()),
            Err(e) => return Err(state.store_error(&e, &reference_owned)),
        };
        let found = match read(&layout, desc) {
            Ok(f) => f,
            // A digest naming a blob that is not a manifest is no manifest of this repository.
            Err(Error::NotFound { .. } | Error::InvalidManifest { .. }) => return Err(unknown()),
            Err(e) => return Err(state.store_error(&e, &reference_owned)),
        };
        let Some(accept) = accept else {
            return Ok(found);
        };
        if accept.contains(&found.media_type) {
            return Ok(found);
        }
        // As distribution answers a client that cannot take what is stored.
        match found.media_type.as_str() {
            media::IMAGE_MANIFEST => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                Code::ManifestUnknown,
                "OCI manifest found, but accept header does not support OCI manifests",
            )),
            media::IMAGE_INDEX => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                Code::ManifestUnknown,
                "OCI index found, but accept header does not support OCI indexes",
            )),
            // A docker manifest list asked for by tag by a client that cannot read lists is
            // answered with its linux/amd64 image; by digest it must stay what the digest names.
            media::DOCKER_MANIFEST_LIST if by_tag => {
                let amd64 = Platform::parse("linux/amd64").map_err(|_| ApiError::internal())?;
                let child = layout
                    .select_platform(&found.desc, &amd64)
                    .map_err(|_| unknown())?;
                read(&layout, child).map_err(|_| unknown())
            }
            _ => Ok(found),
        }
    })
    .await??;
    let headers = [
        ("Content-Type", found.media_type.clone()),
        ("Docker-Content-Digest", found.desc.digest().to_string()),
        ("Content-Length", found.bytes.len().to_string()),
        ("ETag", format!("\"{}\"", found.desc.digest())),
    ];
    let body = if req.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(found.bytes)
    };
    Ok(with_headers(
        (StatusCode::OK, body).into_response(),
        &headers,
    ))
}

pub(crate) async fn put(
    state: Arc<State>,
    name: &str,
    reference: &str,
    req: Request,
) -> ApiResult<Response> {
    let layout = state.layout_for_write(name)?;
    let target = target(reference)?;
    if let Some(len) = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_MANIFEST_SIZE
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::SizeInvalid,
            format!("a manifest may have at most {MAX_MANIFEST_SIZE} bytes"),
        ));
    }
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .filter(|t| media::is_manifest(t));
    let bytes = read_limited(req.body, MAX_MANIFEST_SIZE).await?;
    if let Target::Digest(d) = &target
        && d.verify_bytes(&bytes, Subject::Manifest(d.clone()))
            .is_err()
    {
        return Err(
            ApiError::digest_invalid("provided digest did not match uploaded content")
                .detail(json!({ "digest": d.as_str() })),
        );
    }
    let tags: Vec<String> = match &target {
        Target::Tag(t) => vec![t.clone()],
        _ => Vec::new(),
    };
    let subject = subject_of(&bytes);
    let reference_owned = reference.to_string();
    let (desc, subject) = blocking(move || -> ApiResult<(Descriptor, Option<Digest>)> {
        let fail = |e: &Error| match e {
            Error::NotFound { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestBlobUnknown,
                "manifest references a blob unknown to registry",
            )
            .detail(json!({ "reference": reference_owned })),
            Error::SizeMismatch { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                "manifest invalid: a descriptor's size does not match its blob",
            ),
            Error::InvalidInput(problem) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                "manifest invalid",
            )
            .detail(json!({ "reason": problem.to_string() })),
            e => state.store_error(e, &reference_owned),
        };
        let staged = layout.stage().map_err(|e| fail(&e))?;
        let desc = staged
            .layout()
            .put_manifest(&bytes, content_type.as_deref(), false)
            .map_err(|e| fail(&e))?;
        match &subject {
            Some(s) => {
                let root = (!tags.is_empty()).then_some((&desc, tags.as_slice()));
                staged
                    .commit_batch(root, &[(desc.clone(), s.clone())], None, None)
                    .map_err(|e| fail(&e))?;
            }
            None => staged.commit(&desc, &tags).map_err(|e| fail(&e))?,
        }
        Ok((desc, subject))
    })
    .await??;
    let mut headers = vec![
        (
            "Location",
            format!("/v2/{name}/manifests/{}", desc.digest()),
        ),
        ("Docker-Content-Digest", desc.digest().to_string()),
    ];
    if let Some(s) = subject {
        headers.push(("OCI-Subject", s.to_string()));
    }
    Ok(with_headers(StatusCode::CREATED.into_response(), &headers))
}

/// The digest of the manifest's `subject`, when it has a usable one.
fn subject_of(bytes: &[u8]) -> Option<Digest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let subject = Descriptor::from_value(v.get("subject")?.clone()).ok()?;
    Some(subject.digest().clone())
}

pub(crate) async fn delete(state: Arc<State>, name: &str, reference: &str) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let target = target(reference)?;
    let reference_owned = reference.to_string();
    blocking(move || -> ApiResult<()> {
        let result = match &target {
            Target::Tag(tag) => layout.untag(tag).map(|_| ()),
            _ => layout
                .resolve(&target)
                .and_then(|desc| layout.delete_manifest(&desc))
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(Error::NotFound { .. }) => Err(ApiError::manifest_unknown(&reference_owned)),
            Err(e) => Err(state.store_error(&e, &reference_owned)),
        }
    })
    .await??;
    Ok(StatusCode::ACCEPTED.into_response())
}
