//! The one dispatcher: every request is parsed into a [`Route`], checked against the server's
//! write policy, answered by its module, and logged in one line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query as AxumQuery, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ocistow_store::Layout;
use ocistow_store::reference::validate_repository;
use serde_json::json;

use crate::Options;
use crate::error::{ApiError, ApiResult, Code, Result};
use crate::log::Log;
use crate::referrers::Cache;
use crate::repos::Repos;
use crate::routes::Route;
use crate::uploads::Uploads;
use crate::{blobs, listing, manifests, referrers, uploads};

/// What every request shares.
pub(crate) struct State {
    pub options: Options,
    pub repos: Repos,
    pub uploads: Uploads,
    pub referrers: Cache,
    pub log: Log,
}

impl State {
    pub fn new(options: Options) -> Result<State> {
        let log = Log {
            level: options.log_level,
        };
        let repos = Repos::discover(&options.root, options.name.as_deref(), log)?;
        Ok(State {
            options,
            repos,
            uploads: Uploads::default(),
            referrers: Cache::default(),
            log,
        })
    }

    /// The layout of repository `name`: `NAME_INVALID` for a name the grammar refuses,
    /// `NAME_UNKNOWN` for one that is not served.
    pub fn layout(&self, name: &str) -> ApiResult<Layout> {
        validate_repository(name).map_err(|reason| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::NameInvalid,
                "invalid repository name",
            )
            .detail(json!({ "name": name, "reason": reason.to_string() }))
        })?;
        self.repos
            .get(name)
            .ok_or_else(|| ApiError::name_unknown(name))
    }

    /// The layout a write goes to: as [`State::layout`], but an unknown name is DENIED, since
    /// the server never creates a repository (that would join a request's name onto the root).
    pub fn layout_for_write(&self, name: &str) -> ApiResult<Layout> {
        self.layout(name).map_err(|e| {
            if e.code == Code::NameUnknown {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    Code::Denied,
                    "the registry serves existing layouts only; create it first (ocistow init ROOT/NAME)",
                )
                .detail(json!({ "name": name }))
            } else {
                e
            }
        })
    }

    /// Logs a store error in full and turns it into an answer for `subject`.
    pub fn store_error(&self, e: &ocistow_store::Error, subject: &str) -> ApiError {
        let answer = ApiError::from_store(e, subject);
        if answer.status.is_server_error() {
            self.log.error(format_args!("{subject}: {e}"));
        } else {
            self.log.debug(format_args!("{subject}: {e}"));
        }
        answer
    }
}

/// Runs store code off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::internal())
}

/// The decoded query parameters of a request.
pub(crate) type Query = HashMap<String, String>;

/// One request, as the handlers see it.
pub(crate) struct Request {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub body: Body,
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(
    AxumState(state): AxumState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: std::result::Result<AxumQuery<Query>, QueryRejection>,
    body: Body,
) -> Response {
    let start = Instant::now();
    let req = Request {
        method: method.clone(),
        headers,
        query: query.map(|AxumQuery(q)| q).unwrap_or_default(),
        body,
    };
    let mut response = match dispatch(&state, uri.path(), req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    state.log.info(format_args!(
        "{peer} \"{method} {uri}\" {} {length} {:.1}ms",
        response.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    ));
    response
}

async fn dispatch(state: &Arc<State>, path: &str, req: Request) -> ApiResult<Response> {
    let Some(route) = Route::parse(path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::Unsupported,
            "no such endpoint",
        ));
    };
    let writes = !matches!(req.method, Method::GET | Method::HEAD);
    if writes && state.options.read_only {
        return Err(ApiError::unsupported("the registry is read-only"));
    }
    if req.method == Method::DELETE
        && !state.options.allow_delete
        && !matches!(route, Route::Upload { .. })
    {
        return Err(ApiError::unsupported(
            "deletes are disabled (start the server with --allow-delete)",
        ));
    }
    let state = state.clone();
    match (route, req.method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => {
            Ok((StatusCode::OK, [("Content-Type", "application/json")], "{}").into_response())
        }
        (Route::Catalog, Method::GET) => listing::catalog(&state, &req.query),
        (Route::Tags { name }, Method::GET) => listing::tags(state, name, &req.query).await,
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            manifests::get(state, name, reference, req).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            manifests::put(state, name, reference, req).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            manifests::delete(state, name, reference).await
        }
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            blobs::get(state, name, digest, req).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => blobs::delete(state, name, digest).await,
        (Route::Upload { name, id: None }, Method::POST) => uploads::start(state, name, req).await,
        (Route::Upload { name, id: Some(id) }, Method::PATCH) => {
            uploads::patch(state, name, id, req).await
        }
        (Route::Upload { name, id: Some(id) }, Method::PUT) => {
            uploads::finish(state, name, id, req).await
        }
        (Route::Upload { name, id: Some(id) }, Method::GET) => uploads::status(&state, name, id),
        (Route::Upload { name, id: Some(id) }, Method::DELETE) => uploads::cancel(&state, name, id),
        (Route::Referrers { name, digest }, Method::GET) => {
            referrers::get(state, name, digest, &req.query).await
        }
        _ => Err(ApiError::unsupported("the method is not allowed here")),
    }
}

/// `Location`, `Docker-Content-Digest` and the like, set on an answer.
pub(crate) fn with_headers(mut response: Response, headers: &[(&str, String)]) -> Response {
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(*k),
            HeaderValue::from_str(v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
