//! Push a file as an artifact, tag it, and attach a second file to it as a referrer, with the
//! library alone: what `ocistow push` and `ocistow attach` do.
//!
//! ```sh
//! cargo run --example push_and_attach -- ./layout testdata/fixtures/oras-referrers/inputs/file.txt \
//!     testdata/fixtures/oras-referrers/inputs/sbom.json
//! ```
//!
//! The layout is created when missing. `SOURCE_DATE_EPOCH` is read here, by the program: the
//! library reads no environment variable, so the time is passed in.
//!
//! (`tests/users.rs` calls [`push_and_attach`] and checks what it wrote.)

use std::error::Error;
use std::path::{Path, PathBuf};

use ocistow_store::artifact::{self, AttachOptions, FileSpec, PushRequest};
use ocistow_store::referrers::AttachOutcome;
use ocistow_store::{Descriptor, Layout, Target};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(dir), Some(file), Some(sbom)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: push_and_attach LAYOUT_DIR FILE SBOM_FILE".into());
    };
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|s| s.parse::<u64>())
        .transpose()?;
    let (subject, attached) = push_and_attach(&dir, &file, &sbom, created)?;
    println!(
        "attached {} to {} (recorded as {} referrer)",
        attached.descriptor.digest(),
        subject.digest(),
        attached.mode.as_str()
    );
    Ok(())
}

/// Pushes `file` into the layout at `dir` as `v1` and attaches `sbom` to it: the subject's
/// descriptor and how the referrer was recorded.
pub fn push_and_attach(
    dir: &Path,
    file: &Path,
    sbom: &Path,
    created: Option<u64>,
) -> Result<(Descriptor, AttachOutcome), Box<dyn Error>> {
    let layout = if dir.join("oci-layout").exists() {
        Layout::open(dir)?
    } else {
        Layout::init(dir)?
    };

    // push: the blobs are written under a pin, then listed with the tag in one transaction.
    let pushed = artifact::push(
        &layout,
        &PushRequest::new(vec![FileSpec::new(file)])
            .artifact_type(Some("application/vnd.example.app".into()))
            .created(created),
        &artifact::no_progress,
    )?;
    let subject = pushed.descriptor.clone();
    pushed.staged.commit(&subject, &["v1".to_string()])?;
    println!("pushed {} as v1", subject.digest());

    // attach: push and record in one call; the record keeps the manifest's annotations.
    let request = PushRequest::new(vec![
        FileSpec::new(sbom).media_type(Some("application/spdx+json".into())),
    ])
    .artifact_type(Some("application/vnd.example.sbom".into()))
    .annotations([("org.example.team".to_string(), "build".to_string())].into())
    .subject(Some(layout.resolve(&Target::Tag("v1".into()))?))
    .created(created);
    let attached = artifact::attach(
        &layout,
        &request,
        &AttachOptions::default(),
        &artifact::no_progress,
    )?;
    Ok((subject, attached))
}
