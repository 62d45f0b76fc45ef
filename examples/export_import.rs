//! Carry a tag and its referrers across an air gap: export them from one layout as a tarball
//! (itself a layout), then import the tarball into another layout, as `ocistow export -r` and
//! `ocistow import` do.
//!
//! ```sh
//! cargo run --example export_import -- testdata/fixtures/oras-referrers/layout v1 /tmp/v1.tar /tmp/mirror
//! ```

//!
//! (`tests/users.rs` calls [`export_import`] and checks the destination.)

use std::error::Error;
use std::fs::File;
use std::path::{Path, PathBuf};

use ocistow_store::layout::NoProgress;
use ocistow_store::transfer::export::{ExportOptions, ExportReport, ExportRoot, export_to_path};
use ocistow_store::transfer::import::{ImportOptions, ImportReport, import_seekable};
use ocistow_store::{Layout, Target, artifact};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [source, tag, tarball, destination] = args.as_slice() else {
        return Err("usage: export_import SOURCE_LAYOUT TAG TARBALL DESTINATION_LAYOUT".into());
    };
    export_import(source, &tag.to_string_lossy(), tarball, destination)?;
    Ok(())
}

/// Exports `tag` of the layout at `source` with its referrers into `tarball`, then imports the
/// tarball into the layout at `destination` (created when missing).
pub fn export_import(
    source: &Path,
    tag: &str,
    tarball: &Path,
    destination: &Path,
) -> Result<(ExportReport, ImportReport), Box<dyn Error>> {
    let tag = tag.to_string();
    let layout = Layout::open(source)?;
    let root = layout.resolve(&Target::Tag(tag.clone()))?;

    let options = ExportOptions::default().referrers(true);
    let exported = export_to_path(
        &[ExportRoot::tagged(&layout, &root, &tag)],
        &options,
        tarball,
        &artifact::no_progress,
    )?;
    println!(
        "exported {tag} ({}) with {} referrers: {} blobs, {} bytes",
        root.digest(),
        exported.referrers,
        exported.blobs,
        exported.bytes
    );

    let options = ImportOptions::default().name(tarball.display().to_string());
    // A file is read twice: what the archive declares first, so only that is staged.
    let imported = import_seekable(
        &mut File::open(tarball)?,
        destination,
        &options,
        &NoProgress,
    )?;
    println!(
        "imported into {}: {} blobs added, tags {:?}, {} referrers",
        destination.display(),
        imported.blobs_added,
        imported.tags,
        imported.referrers
    );
    Ok((exported, imported))
}
