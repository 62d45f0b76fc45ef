//! `ocistow ls DIR`: the entries of index.json as a table or JSON.

use std::borrow::Cow;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
}

/// One entry in `--format json`, fields in this order.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(rename = "ref")]
    tag: Option<&'a str>,
    digest: &'a str,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    #[serde(rename = "artifactType")]
    artifact_type: Option<&'a str>,
    platform: Option<String>,
    size: u64,
    annotations: Option<&'a Map<String, Value>>,
}

/// The table's columns.
const HEADER: [&str; 6] = [
    "REF",
    "DIGEST",
    "MEDIATYPE",
    "ARTIFACTTYPE",
    "PLATFORM",
    "SIZE",
];

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let index = layout.read_index()?;
    if ctx.json() {
        let rows: Vec<JsonRow<'_>> = index
            .manifests()
            .iter()
            .map(|d| JsonRow {
                tag: d.ref_name(),
                digest: d.digest().as_str(),
                media_type: d.media_type(),
                artifact_type: d.artifact_type(),
                platform: d.platform().map(|p| p.to_string()),
                size: d.size(),
                annotations: d.annotations(),
            })
            .collect();
        out.json(&rows)?;
    } else {
        // The cells borrowed from the entries: no JSON value, map or string per entry but
        // the size (and a platform).
        let table: Vec<[Cow<'_, str>; 6]> = index
            .manifests()
            .iter()
            .map(|d| {
                [
                    Cow::Borrowed(d.ref_name().unwrap_or("-")),
                    Cow::Borrowed(d.digest().as_str()),
                    Cow::Borrowed(d.media_type()),
                    Cow::Borrowed(d.artifact_type().unwrap_or("-")),
                    d.platform()
                        .map_or(Cow::Borrowed("-"), |p| Cow::Owned(p.to_string())),
                    Cow::Owned(d.size().to_string()),
                ]
            })
            .collect();
        out.table(&HEADER, &table)?;
        std::mem::forget(table);
    }
    // Not freed: the process exits now, and freeing every entry one by one (100,000 of them
    // in a large layout) is work for nothing.
    std::mem::forget(index);
    Ok(Outcome::Ok)
}
