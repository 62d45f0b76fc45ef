//! Names the commit in `ocistow --version`: `0.1.0 (abc123def456)`, with `-dirty` when the
//! work tree had changes. Built from a tarball without `.git` (or without git) it says
//! `0.1.0` alone.

use std::path::Path;
use std::process::Command;

fn main() {
    let version = env("CARGO_PKG_VERSION");
    let root = env("CARGO_MANIFEST_DIR");
    let full = match git(&root, &["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("{version} ({commit}{})", if dirty { "-dirty" } else { "" })
        }
        None => version,
    };
    println!("cargo:rustc-env=OCISTOW_VERSION={full}");
    // Rebuild when HEAD moves or the branch it names gets a commit.
    for path in ["HEAD", "packed-refs"] {
        rerun_on_git_path(&root, path);
    }
    if let Some(branch) = git(&root, &["symbolic-ref", "-q", "HEAD"]) {
        rerun_on_git_path(&root, &branch);
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// `git ARGS` in `dir`, trimmed, or `None` when git or the repository is missing.
fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn rerun_on_git_path(root: &str, path: &str) {
    if let Some(file) = git(root, &["rev-parse", "--git-path", path]) {
        let file = Path::new(root).join(file);
        if file.exists() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}
