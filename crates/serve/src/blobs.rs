//! Blobs: GET and HEAD with single `Range` requests (206, 416), streamed from the file the
//! store's opener returns (only a regular file opens), DELETE through the store.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ocistow_store::{Digest, Error};
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{Request, State, blocking, with_headers};
use crate::error::{ApiError, ApiResult, Code};

/// Bytes read from the file per body chunk, and chunks read ahead of the connection: large
/// enough that the per-chunk cost vanishes against the copy, small enough that a pull holds at
/// most three MiB whatever the blob's size.
const CHUNK: usize = 1 << 20;
const CHUNKS_AHEAD: usize = 2;

pub(crate) fn parse_digest(digest: &str) -> ApiResult<Digest> {
    let d = Digest::parse(digest).map_err(|_| {
        ApiError::digest_invalid("invalid digest").detail(json!({ "digest": digest }))
    })?;
    d.known_algorithm()
        .map_err(|_| ApiError::digest_invalid("unsupported digest algorithm"))?;
    Ok(d)
}

/// A single byte range `[start, end]` of a blob of `size` bytes, from a `Range` header; `Ok(None)`
/// when the header is absent.
fn range(headers: &HeaderMap, size: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let invalid = || {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            Code::RangeInvalid,
            "invalid content range",
        )
        .detail(json!({ "size": size }));
        e.content_range = Some(size);
        e
    };
    let spec = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .ok_or_else(invalid)?;
    if spec.contains(',') {
        return Err(invalid());
    }
    let (from, to) = spec.split_once('-').ok_or_else(invalid)?;
    let (from, to) = (from.trim(), to.trim());
    let (start, end) = if from.is_empty() {
        let suffix: u64 = to.parse().map_err(|_| invalid())?;
        if suffix == 0 {
            return Err(invalid());
        }
        (
            size.saturating_sub(suffix),
            size.checked_sub(1).ok_or_else(invalid)?,
        )
    } else {
        let start: u64 = from.parse().map_err(|_| invalid())?;
        let end = if to.is_empty() {
            size.saturating_sub(1)
        } else {
            to.parse::<u64>()
                .map_err(|_| invalid())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || start > end {
        return Err(invalid());
    }
    Ok(Some((start, end)))
}

pub(crate) async fn get(
    state: Arc<State>,
    name: &str,
    digest: &str,
    req: Request,
) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let d = parse_digest(digest)?;
    let (file, size) = {
        let d = d.clone();
        let state = state.clone();
        blocking(move || match layout.open_blob_sized(&d) {
            Ok(f) => Ok(f),
            Err(Error::NotFound { .. }) => Err(ApiError::blob_unknown(d.as_str())),
            Err(e) => Err(state.store_error(&e, d.as_str())),
        })
        .await??
    };
    let range = range(&req.headers, size)?;
    let (status, start, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut headers = vec![
        ("Content-Type", "application/octet-stream".to_string()),
        ("Content-Length", len.to_string()),
        ("Docker-Content-Digest", d.to_string()),
        ("Accept-Ranges", "bytes".to_string()),
        ("ETag", format!("\"{d}\"")),
    ];
    if let Some((start, end)) = range {
        headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
    }
    let body = if req.method == Method::HEAD {
        Body::empty()
    } else {
        stream_file(file, start, len)
    };
    Ok(with_headers((status, body).into_response(), &headers))
}

/// `len` bytes of `file` from `start`, read on one blocking thread a chunk ahead of the
/// connection (one thread hand-off per MiB, not per read). The answer keeps its declared
/// length: a file that shrank under it ends the body with an error, one that grew is cut.
fn stream_file(mut file: std::fs::File, start: u64, len: u64) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64);
            let mut buf = Vec::with_capacity(want as usize);
            let chunk = match (&mut file).take(want).read_to_end(&mut buf) {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than when it was opened",
                )),
                Ok(n) => {
                    left -= n as u64;
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // The client went away (the receiver is dropped), or the read failed.
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

pub(crate) async fn delete(state: Arc<State>, name: &str, digest: &str) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let d = parse_digest(digest)?;
    blocking(move || match layout.delete_blob(&d) {
        Ok(()) => Ok(()),
        Err(Error::NotFound { .. }) => Err(ApiError::blob_unknown(d.as_str())),
        Err(e) => Err(state.store_error(&e, d.as_str())),
    })
    .await??;
    Ok(StatusCode::ACCEPTED.into_response())
}
