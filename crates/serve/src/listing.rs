//! `tags/list` and `_catalog`, sorted, with `n`/`last` pagination and a `Link` to the next page.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ocistow_store::reference::validate_tag;
use serde_json::json;

use crate::api::{Query, State, blocking, with_headers};
use crate::error::{ApiError, ApiResult, Code};

/// The most entries one page holds, whatever `n` asks.
const MAX_PAGE: usize = 10_000;

pub(crate) async fn tags(state: Arc<State>, name: &str, query: &Query) -> ApiResult<Response> {
    let layout = state.layout(name)?;
    let listed = {
        let state = state.clone();
        let name = name.to_string();
        blocking(move || layout.tags().map_err(|e| state.store_error(&e, &name))).await??
    };
    // Only tags a client can name in a URL; a layout may also hold OCI ref names such as
    // `docker.io/library/alpine:3.20`, which no distribution tag can spell.
    let mut tags: Vec<String> = listed
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| validate_tag(t).is_ok())
        .collect();
    tags.sort();
    tags.dedup();
    let (page, next) = paginate(&tags, query)?;
    let body = json!({ "name": name, "tags": page });
    Ok(page_response(
        &body,
        next.map(|(last, n)| format!("/v2/{name}/tags/list?last={last}&n={n}")),
    ))
}

pub(crate) fn catalog(state: &State, query: &Query) -> ApiResult<Response> {
    state.repos.refresh();
    let names = state.repos.names();
    let (page, next) = paginate(&names, query)?;
    let body = json!({ "repositories": page });
    Ok(page_response(
        &body,
        next.map(|(last, n)| format!("/v2/_catalog?last={last}&n={n}")),
    ))
}

/// `last` and `n` of the next page.
type Next = (String, usize);

/// The items after `last`, at most `n` of them, and the `(last, n)` of the next page when
/// more remain.
fn paginate<'a>(sorted: &'a [String], query: &Query) -> ApiResult<(&'a [String], Option<Next>)> {
    let n = match query.get("n") {
        None => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::PaginationNumberInvalid,
                "invalid number of results requested",
            )
            .detail(json!({ "n": v }))
        })?),
    };
    let start = match query.get("last") {
        Some(last) => sorted.partition_point(|t| t.as_str() <= last.as_str()),
        None => 0,
    };
    let rest = &sorted[start..];
    let take = n.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    if rest.len() <= take {
        return Ok((rest, None));
    }
    let page = &rest[..take];
    let next = page.last().map(|l| (l.clone(), take));
    Ok((page, next))
}

fn page_response(body: &serde_json::Value, next: Option<String>) -> Response {
    let response = (
        StatusCode::OK,
        [("Content-Type", "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    match next {
        Some(link) => with_headers(response, &[("Link", format!("<{link}>; rel=\"next\""))]),
        None => response,
    }
}
