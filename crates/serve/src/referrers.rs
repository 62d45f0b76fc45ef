//! `GET /v2/<name>/referrers/<digest>`: an image index of the subject's direct referrers, from
//! the store's scan of every convention (the answer `discover --depth 1` gives), optionally
//! filtered by `artifactType`. The scan is cached per layout on the identity of `index.json`
//! (device, inode, size, mtime in ns): every change to the layout goes through a new
//! `index.json`, and blobs never change, so an unchanged identity means an unchanged graph.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ocistow_store::model::media;
use ocistow_store::referrers::{Graph, ScanOptions};
use ocistow_store::{Digest, Layout};
use serde_json::{Value, json};

use crate::api::{Query, State, blocking, with_headers};
use crate::blobs::parse_digest;
use crate::error::ApiResult;

/// Which version of `index.json` a graph was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexIdentity([i64; 5]);

impl IndexIdentity {
    fn of(layout: &Layout) -> std::io::Result<Self> {
        let m = std::fs::metadata(layout.index_path())?;
        #[allow(clippy::cast_possible_wrap)] // identities are compared, never computed with
        Ok(IndexIdentity([
            m.dev() as i64,
            m.ino() as i64,
            m.size() as i64,
            m.mtime(),
            m.mtime_nsec(),
        ]))
    }
}

struct Entry {
    identity: IndexIdentity,
    graph: Arc<Graph>,
    /// Unfiltered answers already serialized, by subject.
    answers: HashMap<Digest, Bytes>,
}

/// Graphs by layout directory.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<PathBuf, Entry>>,
}

impl Cache {
    /// The answer for `subject` (unfiltered), from the cache when `index.json` is unchanged.
    fn answer(
        &self,
        layout: &Layout,
        subject: &Digest,
        filter: Option<&str>,
    ) -> Result<Bytes, ocistow_store::Error> {
        let io = |e: std::io::Error| ocistow_store::Error::Io {
            path: layout.index_path(),
            source: e,
        };
        // Taken before the scan: a change during the scan gives a newer graph under an older
        // identity, which the next request sees as stale and scans again.
        let identity = IndexIdentity::of(layout).map_err(io)?;
        let cached = self.entries.lock().ok().and_then(|e| {
            e.get(layout.root())
                .filter(|e| e.identity == identity)
                .map(|e| (e.graph.clone(), e.answers.get(subject).cloned()))
        });
        let graph = match cached {
            Some((_, Some(bytes))) if filter.is_none() => return Ok(bytes),
            Some((graph, _)) => graph,
            None => {
                let graph = Arc::new(layout.scan_referrers(ScanOptions::default())?);
                if let Ok(mut e) = self.entries.lock() {
                    e.insert(
                        layout.root().to_path_buf(),
                        Entry {
                            identity,
                            graph: graph.clone(),
                            answers: HashMap::new(),
                        },
                    );
                }
                graph
            }
        };
        let bytes = Bytes::from(index_of(&graph, subject, filter));
        if filter.is_none()
            && let Ok(mut e) = self.entries.lock()
            && let Some(entry) = e.get_mut(layout.root())
            && entry.identity == identity
        {
            entry.answers.insert(subject.clone(), bytes.clone());
        }
        Ok(bytes)
    }
}

/// The referrers of `subject` as an image index, as a referrers response lists them.
fn index_of(graph: &Graph, subject: &Digest, filter: Option<&str>) -> Vec<u8> {
    let manifests: Vec<Value> = graph
        .referrers_of(subject)
        .into_iter()
        .filter(|r| filter.is_none_or(|f| r.descriptor.artifact_type() == Some(f)))
        .map(|r| Value::Object(r.descriptor.fields().clone()))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::IMAGE_INDEX,
        "manifests": manifests,
    }))
    .unwrap_or_default()
}

pub(crate) async fn get(
    state: Arc<State>,
    name: &str,
    digest: &str,
    query: &Query,
) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let subject = parse_digest(digest)?;
    let filter = query.get("artifactType").cloned();
    let bytes = {
        let state = state.clone();
        let filter = filter.clone();
        blocking(move || {
            state
                .referrers
                .answer(&layout, &subject, filter.as_deref())
                .map_err(|e| state.store_error(&e, subject.as_str()))
        })
        .await??
    };
    let mut headers = vec![
        ("Content-Type", media::IMAGE_INDEX.to_string()),
        ("Content-Length", bytes.len().to_string()),
    ];
    if filter.is_some() {
        headers.push(("OCI-Filters-Applied", "artifactType".to_string()));
    }
    Ok(with_headers(
        (StatusCode::OK, bytes).into_response(),
        &headers,
    ))
}
