//! Blob uploads: monolithic (`POST ?digest=`), sessions (`POST`, `PATCH` chunks, `PUT ?digest=`),
//! and cross-repository mounts (`POST ?mount=&from=`). A session writes into the store's
//! `BlobWriter`, a locked temp file under the layout's own `ingest/` (so gc leaves it alone while
//! it lives); the final `PUT` verifies the digest and places the blob, under a pin. Sessions idle
//! longer than the upload timeout are dropped, and their temp file with them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ocistow_store::layout::BlobWriter;
use ocistow_store::layout::NoProgress;
use ocistow_store::{Algorithm, Digest, Error, Expected, Layout, Subject};
use serde_json::json;

use crate::api::{Request, State, blocking, with_headers};
use crate::blobs::parse_digest;
use crate::body::with_reader;
use crate::error::{ApiError, ApiResult, Code};

struct Session {
    repo: String,
    /// Taken out while a request writes into it.
    writer: Option<BlobWriter>,
    offset: u64,
    touched: Instant,
}

/// Upload sessions by id.
#[derive(Default)]
pub(crate) struct Uploads {
    sessions: Mutex<HashMap<String, Session>>,
}

/// A fresh id nobody can guess from the ones before it (std's hasher keys are random per
/// process; a counter and the clock make each id distinct).
fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut id = String::new();
    for salt in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(now);
        h.write_u64(salt);
        let _ = write!(id, "{:016x}", h.finish());
    }
    id
}

fn content_length(req: &Request) -> Option<u64> {
    req.headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn session_headers(name: &str, id: &str, offset: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("Docker-Upload-UUID", id.to_string()),
        // An empty upload has no byte range; distribution answers `0-0` for it too.
        ("Range", format!("0-{}", offset.saturating_sub(1))),
    ]
}

fn created(name: &str, digest: &Digest) -> Response {
    with_headers(
        StatusCode::CREATED.into_response(),
        &[
            ("Location", format!("/v2/{name}/blobs/{digest}")),
            ("Docker-Content-Digest", digest.to_string()),
        ],
    )
}

pub(crate) async fn start(state: Arc<State>, name: &str, req: Request) -> ApiResult<Response> {
    let layout = state.layout_for_write(name)?;
    if let (Some(mount), Some(from)) = (req.query.get("mount"), req.query.get("from")) {
        let digest = parse_digest(mount)?;
        if let Some(source) = state.repos.get(from)
            && mount_from(&state, &layout, &source, &digest).await?
        {
            return Ok(created(name, &digest));
        }
    } else if let Some(digest) = req.query.get("digest") {
        let digest = parse_digest(digest)?;
        let limit = content_length(&req).unwrap_or(state.options.max_blob_size);
        let expected = Expected::default()
            .digest(Some(digest.clone()))
            .size(content_length(&req));
        let s = state.clone();
        let d = digest.clone();
        with_reader(req.body, limit.min(state.options.max_blob_size), move |r| {
            let staged = layout.stage().map_err(|e| s.store_error(&e, d.as_str()))?;
            staged
                .layout()
                .write_blob(r, expected)
                .map_err(|e| s.store_error(&e, d.as_str()))
        })
        .await??;
        return Ok(created(name, &digest));
    }
    let writer = {
        let s = state.clone();
        blocking(move || {
            layout
                .blob_writer(Algorithm::Sha256)
                .map_err(|e| s.store_error(&e, "upload"))
        })
        .await??
    };
    let id = new_id();
    if let Ok(mut sessions) = state.uploads.sessions.lock() {
        sessions.insert(
            id.clone(),
            Session {
                repo: name.to_string(),
                writer: Some(writer),
                offset: 0,
                touched: Instant::now(),
            },
        );
    }
    Ok(with_headers(
        StatusCode::ACCEPTED.into_response(),
        &session_headers(name, &id, 0),
    ))
}

/// Copies `digest` from `source` into `layout` (verified); false when `source` lacks it.
async fn mount_from(
    state: &Arc<State>,
    layout: &Layout,
    source: &Layout,
    digest: &Digest,
) -> ApiResult<bool> {
    let (layout, source, digest, s) = (
        layout.clone(),
        source.clone(),
        digest.clone(),
        state.clone(),
    );
    blocking(move || -> ApiResult<bool> {
        let fail = |e: &Error| s.store_error(e, digest.as_str());
        if layout.blob_exists(&digest).map_err(|e| fail(&e))? {
            return Ok(true);
        }
        let (mut file, size) = match source.open_blob_sized(&digest) {
            Ok(f) => f,
            Err(Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(fail(&e)),
        };
        let staged = layout.stage().map_err(|e| fail(&e))?;
        staged
            .layout()
            .write_blob(
                &mut file,
                Expected::default()
                    .digest(Some(digest.clone()))
                    .size(Some(size)),
            )
            .map_err(|e| fail(&e))?;
        Ok(true)
    })
    .await?
}

/// Takes the session's writer out for one request, checking it belongs to `name`.
fn take(state: &State, name: &str, id: &str) -> ApiResult<(BlobWriter, u64)> {
    let mut sessions = state
        .uploads
        .sessions
        .lock()
        .map_err(|_| ApiError::internal())?;
    let session = sessions
        .get_mut(id)
        .filter(|s| s.repo == name)
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    let writer = session.writer.take().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            Code::BlobUploadInvalid,
            "another request is writing to this upload",
        )
    })?;
    session.touched = Instant::now();
    Ok((writer, session.offset))
}

/// Puts the writer back after a chunk.
fn give_back(state: &State, id: &str, writer: BlobWriter, offset: u64) {
    if let Ok(mut sessions) = state.uploads.sessions.lock()
        && let Some(s) = sessions.get_mut(id)
    {
        s.writer = Some(writer);
        s.offset = offset;
        s.touched = Instant::now();
    }
}

fn forget(state: &State, id: &str) {
    if let Ok(mut sessions) = state.uploads.sessions.lock() {
        sessions.remove(id);
    }
}

/// `Content-Range: START-END` of a chunk must start where the upload stands.
fn check_chunk_start(req: &Request, offset: u64) -> ApiResult<()> {
    let Some(v) = req.headers.get(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let start = v
        .to_str()
        .ok()
        .map(|v| {
            v.trim()
                .trim_start_matches("bytes")
                .trim_start_matches([' ', '='])
        })
        .and_then(|v| v.split('-').next())
        .and_then(|s| s.trim().parse::<u64>().ok());
    if start == Some(offset) {
        Ok(())
    } else {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            Code::RangeInvalid,
            "invalid content range",
        )
        .detail(json!({ "offset": offset }));
        e.content_range = None;
        Err(e)
    }
}

/// Appends the request body to the writer; the new offset.
async fn append(
    state: &Arc<State>,
    mut writer: BlobWriter,
    offset: u64,
    req: Request,
) -> ApiResult<(BlobWriter, u64)> {
    let left = state.options.max_blob_size.saturating_sub(offset);
    let s = state.clone();
    let (writer, written) = with_reader(req.body, left, move |r| {
        let limit = Expected::default()
            .size(Some(left))
            .input(Some(Subject::Input {
                name: "upload chunk".into(),
            }));
        let n = writer
            .fill_from(r, &limit, &NoProgress)
            .map_err(|e| s.store_error(&e, "upload chunk"))?;
        Ok::<_, ApiError>((writer, n))
    })
    .await??;
    Ok((writer, offset + written))
}

pub(crate) async fn patch(
    state: Arc<State>,
    name: &str,
    id: &str,
    req: Request,
) -> ApiResult<Response> {
    state.layout(name)?;
    let (writer, offset) = take(&state, name, id)?;
    if let Err(e) = check_chunk_start(&req, offset) {
        give_back(&state, id, writer, offset);
        return Err(e);
    }
    match append(&state, writer, offset, req).await {
        Ok((writer, offset)) => {
            give_back(&state, id, writer, offset);
            Ok(with_headers(
                StatusCode::ACCEPTED.into_response(),
                &session_headers(name, id, offset),
            ))
        }
        Err(e) => {
            // What the writer holds is unknown after a broken chunk: the session ends.
            forget(&state, id);
            Err(e)
        }
    }
}

pub(crate) async fn finish(
    state: Arc<State>,
    name: &str,
    id: &str,
    req: Request,
) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let digest = parse_digest(
        req.query
            .get("digest")
            .ok_or_else(|| ApiError::digest_invalid("a digest query parameter is required"))?,
    )?;
    let (writer, offset) = take(&state, name, id)?;
    forget(&state, id);
    let (writer, _) = append(&state, writer, offset, req).await?;
    let s = state.clone();
    let d = digest.clone();
    blocking(move || {
        let staged = layout.stage().map_err(|e| s.store_error(&e, d.as_str()))?;
        writer
            .commit(&Expected::default().digest(Some(d.clone())).size(None))
            .map_err(|e| s.store_error(&e, d.as_str()))?;
        drop(staged);
        Ok::<_, ApiError>(())
    })
    .await??;
    Ok(created(name, &digest))
}

pub(crate) fn status(state: &State, name: &str, id: &str) -> ApiResult<Response> {
    let sessions = state
        .uploads
        .sessions
        .lock()
        .map_err(|_| ApiError::internal())?;
    let session = sessions
        .get(id)
        .filter(|s| s.repo == name)
        .ok_or_else(|| ApiError::upload_unknown(id))?;
    Ok(with_headers(
        StatusCode::NO_CONTENT.into_response(),
        &session_headers(name, id, session.offset),
    ))
}

pub(crate) fn cancel(state: &State, name: &str, id: &str) -> ApiResult<Response> {
    let mut sessions = state
        .uploads
        .sessions
        .lock()
        .map_err(|_| ApiError::internal())?;
    if sessions.get(id).is_none_or(|s| s.repo != name) {
        return Err(ApiError::upload_unknown(id));
    }
    sessions.remove(id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Drops sessions idle longer than the upload timeout, checking a few times per timeout.
pub(crate) async fn expire_loop(state: Arc<State>) {
    let timeout = state.options.upload_timeout;
    let mut tick = tokio::time::interval((timeout / 4).max(std::time::Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let expired: Vec<Session> = match state.uploads.sessions.lock() {
            Ok(mut sessions) => {
                let ids: Vec<String> = sessions
                    .iter()
                    .filter(|(_, s)| s.writer.is_some() && s.touched.elapsed() > timeout)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.iter().filter_map(|id| sessions.remove(id)).collect()
            }
            Err(_) => continue,
        };
        if !expired.is_empty() {
            state
                .log
                .info(format_args!("{} idle upload(s) expired", expired.len()));
            // Dropping a writer deletes its temp file: done off the async threads.
            let _ = tokio::task::spawn_blocking(move || drop(expired)).await;
        }
    }
}
