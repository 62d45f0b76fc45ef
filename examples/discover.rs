//! List the referrers of a tag, recursively, from every convention the layout may use: what
//! `ocistow discover` prints, drawn as a tree.
//!
//! ```sh
//! cargo run --example discover -- testdata/fixtures/regctl-referrers/layout v1
//! cargo run --example discover -- testdata/fixtures/olareg-referrers/layout v1
//! ```

//!
//! (`tests/users.rs` calls [`discover`] and checks the tree against `ocistow discover`.)

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ocistow_store::referrers::{Node, ScanOptions};
use ocistow_store::{Layout, Target};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(tag)) = (args.next().map(PathBuf::from), args.next()) else {
        return Err("usage: discover LAYOUT_DIR TAG".into());
    };
    print!("{}", discover(&dir, &tag.to_string_lossy())?);
    Ok(())
}

/// The referrers of `tag` in the layout at `dir`, drawn as a tree under the tag's digest.
pub fn discover(dir: &Path, tag: &str) -> Result<String, Box<dyn Error>> {
    let layout = Layout::open(dir)?;
    let root = layout.resolve(&Target::Tag(tag.to_string()))?;
    // One scan reads every convention (oras, regctl, olareg, containerd, BuildKit) into a graph.
    let graph = layout.scan_referrers(ScanOptions::default())?;
    let tree = graph.tree(&root, &[], None);
    let mut text = format!("{}\n", root.digest());
    draw(&tree, "", &mut text);
    for issue in graph.issues() {
        eprintln!("note: {issue}");
    }
    Ok(text)
}

fn draw(node: &Node, indent: &str, text: &mut String) {
    for (i, r) in node.referrers.iter().enumerate() {
        let last = i + 1 == node.referrers.len();
        let _ = writeln!(
            text,
            "{indent}{} {} {}",
            if last { "└──" } else { "├──" },
            r.descriptor.artifact_type().unwrap_or("(no artifact type)"),
            r.descriptor.digest()
        );
        draw(
            r,
            &format!("{indent}{}", if last { "    " } else { "│   " }),
            text,
        );
    }
}
