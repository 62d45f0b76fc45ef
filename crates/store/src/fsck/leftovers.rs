//! Files other tools, or a killed ocistow, leave in a layout: fsck notes them, never deletes.

use std::fs::{self, File};
use std::path::PathBuf;

use super::Note;
use crate::error::{IoContext, Result};
use crate::layout::{INGEST_DIR, Layout, TEMP_PREFIX};
use crate::referrers::FACTS_TEMP_PREFIX;

impl Layout {
    /// Files other tools, or a killed ocistow, left in the layout. Only noted.
    pub(super) fn leftover_notes(&self, strays: &[String]) -> Result<Vec<Note>> {
        let mut notes = Vec::new();
        let root = self.root();
        let mut names: Vec<(String, bool)> = Vec::new();
        for f in fs::read_dir(root).at(root)?.flatten() {
            let is_dir = f.file_type().is_ok_and(|t| t.is_dir());
            names.push((f.file_name().to_string_lossy().into_owned(), is_dir));
        }
        names.sort();
        for (name, is_dir) in names {
            let what = if name == "_uploads" {
                "upload area of another tool (may be in use)"
            } else if name == "index.json.lock" {
                "lock file of another tool (BuildKit)"
            } else if name.starts_with("index.json.") && name.ends_with(".tmp") {
                "temp file of another tool's index.json write"
            } else if name.starts_with("oci-put-blob") {
                "temp file of a blob write by skopeo / containers-image"
            } else if is_dir && name.starts_with(".umoci-") {
                "work directory of umoci"
            } else if !is_dir && name.starts_with(FACTS_TEMP_PREFIX) && name.ends_with(".tmp") {
                "facts cache replacement left by an interrupted ocistow (gc removes it after the grace period)"
            } else if !is_dir && name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") {
                "index.json replacement left by an interrupted ocistow (gc removes it after the grace period)"
            } else {
                continue;
            };
            notes.push(Note::LeftoverFile { path: name, what });
        }
        let ingest = root.join(INGEST_DIR);
        if let Ok(rd) = fs::read_dir(&ingest) {
            let mut files: Vec<(String, PathBuf)> = rd
                .flatten()
                .map(|f| (f.file_name().to_string_lossy().into_owned(), f.path()))
                .collect();
            files.sort();
            for (name, path) in files {
                let what = if name.starts_with(TEMP_PREFIX) && name.ends_with(".ingest") {
                    let held = File::open(&path).map(|f| f.try_lock().is_err());
                    if held.unwrap_or(false) {
                        "blob being written by a live ocistow process"
                    } else {
                        "blob write left by an interrupted ocistow (gc removes it after the grace period)"
                    }
                } else {
                    "work file of another tool in ingest/ (never removed by ocistow)"
                };
                notes.push(Note::LeftoverFile {
                    path: format!("{INGEST_DIR}/{name}"),
                    what,
                });
            }
        }
        for s in strays {
            notes.push(Note::LeftoverFile {
                path: s.clone(),
                what: "not a blob (its name is not a digest): a temp file of another tool?",
            });
        }
        Ok(notes)
    }
}
