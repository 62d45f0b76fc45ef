//! List the referrers of a tag, recursively, from every convention the layout may use: what
//! `ocistow discover` prints, drawn as a tree.
//!
//! ```sh
//! cargo run --example discover -- testdata/fixtures/regctl-referrers/layout v1
//! cargo run --example discover -- testdata/fixtures/olareg-referrers/layout v1
//! ```

use std::error::Error;
use std::path::PathBuf;

use ocistow_store::referrers::{Node, ScanOptions};
use ocistow_store::{Layout, Target};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(tag)) = (args.next().map(PathBuf::from), args.next()) else {
        return Err("usage: discover LAYOUT_DIR TAG".into());
    };
    let layout = Layout::open(&dir)?;
    let root = layout.resolve(&Target::Tag(tag.to_string_lossy().into_owned()))?;
    // One scan reads every convention (oras, regctl, olareg, containerd, BuildKit) into a graph.
    let graph = layout.scan_referrers(ScanOptions::default())?;
    let tree = graph.tree(&root, &[], None);
    println!("{}", root.digest());
    print(&tree, "");
    for issue in graph.issues() {
        eprintln!("note: {issue}");
    }
    Ok(())
}

fn print(node: &Node, indent: &str) {
    for (i, r) in node.referrers.iter().enumerate() {
        let last = i + 1 == node.referrers.len();
        println!(
            "{indent}{} {} {}",
            if last { "└──" } else { "├──" },
            r.descriptor.artifact_type().unwrap_or("(no artifact type)"),
            r.descriptor.digest()
        );
        print(
            r,
            &format!("{indent}{}", if last { "    " } else { "│   " }),
        );
    }
}
