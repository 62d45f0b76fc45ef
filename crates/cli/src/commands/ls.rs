//! `ocistow ls DIR`: the entries of index.json as a table or JSON.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Value, json};

use crate::context::Context;
use crate::exit::Outcome;
use crate::output::Output;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The layout directory.
    dir: Option<PathBuf>,
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
        let rows: Vec<Value> = index
            .manifests()
            .iter()
            .map(|d| {
                json!({
                    "ref": d.ref_name(),
                    "digest": d.digest(),
                    "mediaType": d.media_type(),
                    "artifactType": d.artifact_type(),
                    "platform": d.platform().map(|p| p.to_string()),
                    "size": d.size(),
                    "annotations": d.annotations(),
                })
            })
            .collect();
        out.json(&rows)?;
    } else {
        // The cells straight from the entries: no JSON value (nor annotations map) per entry.
        let cell = |v: Option<&str>| v.unwrap_or("-").to_string();
        let table: Vec<Vec<String>> = index
            .manifests()
            .iter()
            .map(|d| {
                vec![
                    cell(d.ref_name()),
                    d.digest().to_string(),
                    d.media_type().to_string(),
                    cell(d.artifact_type()),
                    d.platform().map_or_else(|| "-".into(), |p| p.to_string()),
                    d.size().to_string(),
                ]
            })
            .collect();
        out.table(&HEADER, &table)?;
    }
    // Not freed: the process exits now, and freeing every entry one by one (100,000 of them
    // in a large layout) is work for nothing.
    std::mem::forget(index);
    Ok(Outcome::Ok)
}
