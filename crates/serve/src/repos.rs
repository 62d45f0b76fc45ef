//! Repository discovery: every layout under the root is a repository named by its relative
//! path. A request's name is looked up in the discovered set, never joined onto the root, so no
//! name can reach a directory outside it; symlinked directories are not followed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use ocistow_store::Layout;
use ocistow_store::layout::{BLOBS_DIR, INGEST_DIR, OCI_LAYOUT_FILE};
use ocistow_store::reference::validate_repository;

use crate::error::{Error, Result};
use crate::log::Log;

/// How deep below the root a layout is looked for.
const MAX_DEPTH: usize = 32;
/// A name missing from the set triggers a new discovery at most this often.
const REDISCOVER_EVERY: Duration = Duration::from_secs(1);

/// The served repositories: name → layout.
pub(crate) struct Repos {
    root: PathBuf,
    single_name: Option<String>,
    log: Log,
    table: RwLock<BTreeMap<String, Layout>>,
    last_discovery: Mutex<Instant>,
}

impl Repos {
    pub fn discover(root: &Path, name: Option<&str>, log: Log) -> Result<Repos> {
        let repos = Repos {
            root: root.to_path_buf(),
            single_name: name.map(String::from),
            log,
            table: RwLock::new(BTreeMap::new()),
            last_discovery: Mutex::new(Instant::now()),
        };
        let found = repos.find()?;
        if let Ok(mut t) = repos.table.write() {
            *t = found;
        }
        Ok(repos)
    }

    /// The sorted names known now.
    pub fn names(&self) -> Vec<String> {
        self.table
            .read()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The layout named `name`, discovering again (at most once a second) when it is unknown:
    /// layouts created after startup become repositories too.
    pub fn get(&self, name: &str) -> Option<Layout> {
        if let Some(l) = self.lookup(name) {
            return Some(l);
        }
        self.refresh();
        self.lookup(name)
    }

    /// Discovers again unless that happened less than a second ago.
    pub fn refresh(&self) {
        {
            let Ok(mut last) = self.last_discovery.lock() else {
                return;
            };
            if last.elapsed() < REDISCOVER_EVERY {
                return;
            }
            *last = Instant::now();
        }
        match self.find() {
            Ok(found) => {
                if let Ok(mut t) = self.table.write() {
                    *t = found;
                }
            }
            Err(e) => self
                .log
                .error(format_args!("discovering repositories: {e}")),
        }
    }

    fn lookup(&self, name: &str) -> Option<Layout> {
        self.table.read().ok()?.get(name).cloned()
    }

    fn find(&self) -> Result<BTreeMap<String, Layout>> {
        let meta = std::fs::metadata(&self.root).map_err(|source| Error::Io {
            path: self.root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(Error::Io {
                path: self.root.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let mut found = BTreeMap::new();
        if is_layout(&self.root) {
            let name = match &self.single_name {
                Some(n) => n.clone(),
                None => self
                    .root
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default(),
            };
            validate_repository(&name).map_err(|reason| Error::InvalidName {
                name: name.clone(),
                reason,
            })?;
            let layout = Layout::open(&self.root).map_err(|e| Error::Io {
                path: self.root.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            found.insert(name, layout);
            return Ok(found);
        }
        let walk = walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .max_depth(MAX_DEPTH)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| e.file_type().is_dir() && !inside_layout_store(e.path()));
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.log
                        .warn(format_args!("skipped while discovering: {e}"));
                    continue;
                }
            };
            if !is_layout(entry.path()) {
                continue;
            }
            let Some(name) = name_of(&self.root, entry.path()) else {
                self.log.warn(format_args!(
                    "{}: not served, its path is not a repository name",
                    entry.path().display()
                ));
                continue;
            };
            match Layout::open(entry.path()) {
                Ok(l) => {
                    found.insert(name, l);
                }
                Err(e) => self.log.warn(format_args!("not served: {e}")),
            }
        }
        Ok(found)
    }
}

/// A directory with an `oci-layout` regular file (not a symlink to one).
fn is_layout(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(OCI_LAYOUT_FILE)).is_ok_and(|m| m.is_file())
}

/// `blobs/` and `ingest/` of a layout hold content, never other layouts.
fn inside_layout_store(dir: &Path) -> bool {
    let store_dir = dir
        .file_name()
        .is_some_and(|n| n == BLOBS_DIR || n == INGEST_DIR);
    store_dir && dir.parent().is_some_and(is_layout)
}

/// The repository name of a layout directory: its path below the root, when every component
/// is valid UTF-8 and the whole passes the distribution grammar.
fn name_of(root: &Path, dir: &Path) -> Option<String> {
    let rel = dir.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let name = parts?.join("/");
    validate_repository(&name).ok()?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogLevel;

    fn log() -> Log {
        Log {
            level: LogLevel::Error,
        }
    }

    #[test]
    fn nested_layouts_are_named_by_path_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        Layout::init(dir.path().join("team/app")).unwrap();
        Layout::init(dir.path().join("team/app/nested")).unwrap();
        Layout::init(dir.path().join("Upper")).unwrap();
        Layout::init(outside.path().join("secret")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("direct"))
            .unwrap();
        let repos = Repos::discover(dir.path(), None, log()).unwrap();
        assert_eq!(repos.names(), ["team/app", "team/app/nested"]);
        assert!(repos.get("link/secret").is_none());
        assert!(repos.get("direct").is_none());
        assert!(repos.get("../secret").is_none());
    }

    #[test]
    fn a_root_layout_is_one_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mirror");
        Layout::init(&root).unwrap();
        let repos = Repos::discover(&root, None, log()).unwrap();
        assert_eq!(repos.names(), ["mirror"]);
        let repos = Repos::discover(&root, Some("team/app"), log()).unwrap();
        assert_eq!(repos.names(), ["team/app"]);
        assert!(matches!(
            Repos::discover(&root, Some("Bad"), log()),
            Err(Error::InvalidName { .. })
        ));
    }
}
