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

/// The table's columns: header and JSON key.
const COLUMNS: [(&str, &str); 6] = [
    ("REF", "ref"),
    ("DIGEST", "digest"),
    ("MEDIATYPE", "mediaType"),
    ("ARTIFACTTYPE", "artifactType"),
    ("PLATFORM", "platform"),
    ("SIZE", "size"),
];

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let layout = ctx.open_dir(&ctx.dir(args.dir.as_deref())?)?;
    let index = layout.read_index()?;
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
    if ctx.json() {
        out.json(&rows)?;
        return Ok(Outcome::Ok);
    }
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| COLUMNS.iter().map(|(_, k)| cell(&r[k])).collect())
        .collect();
    let header: Vec<&str> = COLUMNS.iter().map(|(h, _)| *h).collect();
    out.table(&header, &table)?;
    Ok(Outcome::Ok)
}
