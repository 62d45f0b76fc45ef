//! What is fuzzed: each target takes one input and panics only on a real finding.

use ocistow_store::layout::NoProgress;
use ocistow_store::transfer::{ImportOptions, import, import_seekable};
use ocistow_store::{Digest, ImageIndex, Layout, Manifest, Reference, Target as Find};

use crate::mutate::fix_tar_checksums;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// Whether the input is text (JSON or strings): token mutations apply.
    pub text: bool,
    pub run: fn(&[u8]),
    /// Applied to every mutant before it runs.
    pub fixup: fn(&mut Vec<u8>),
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "index",
        text: true,
        run: index,
        fixup: |_| {},
    },
    Target {
        name: "manifest",
        text: true,
        run: manifest,
        fixup: |_| {},
    },
    Target {
        name: "digest",
        text: true,
        run: digest,
        fixup: |_| {},
    },
    Target {
        name: "reference",
        text: true,
        run: reference,
        fixup: |_| {},
    },
    Target {
        name: "import",
        text: false,
        run: import_archive,
        fixup: |v| fix_tar_checksums(v),
    },
];

/// parse -> serialize -> parse gives the same bytes again.
fn index(input: &[u8]) {
    let Ok(first) = ImageIndex::parse(input) else {
        return;
    };
    let bytes = first.to_vec();
    let second = ImageIndex::parse(&bytes)
        .unwrap_or_else(|e| panic!("a serialized index does not parse again: {e}"));
    assert_eq!(bytes, second.to_vec(), "serializing is not stable");
    assert_eq!(first.manifests().len(), second.manifests().len());
}

fn manifest(input: &[u8]) {
    let sniffed = Manifest::sniff_media_type(input);
    for mt in sniffed.iter().map(String::as_str).chain([
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]) {
        if let Ok(m) = Manifest::parse(mt, input) {
            for child in m.children() {
                let _ = child.digest().blob_path();
            }
            let _ = (m.subject(), m.effective_artifact_type(), m.annotations());
        }
    }
}

fn digest(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let Ok(d) = Digest::parse(&text) else {
        return;
    };
    let again =
        Digest::parse(&d.to_string()).unwrap_or_else(|e| panic!("{d} does not parse again: {e}"));
    assert_eq!(d, again);
    // The one digest-to-path mapping must never leave blobs/.
    let path = d.blob_path();
    assert!(
        path.components()
            .all(|c| matches!(c, std::path::Component::Normal(_))),
        "{d} maps to {}",
        path.display()
    );
}

fn reference(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let Ok(r) = Reference::parse(&text) else {
        return;
    };
    let dir = r.dir.display();
    let shown = match &r.target {
        Find::Tag(t) => format!("{dir}:{t}"),
        Find::Digest(d) => format!("{dir}@{d}"),
        Find::Only => dir.to_string(),
    };
    let again = Reference::parse(&shown)
        .unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse again: {e}"));
    assert_eq!(r, again, "{text:?} -> {shown:?}");
}

/// Any archive: an error or a layout that opens, never a panic or a hang; and read as a file
/// (its declarations first) it is accepted exactly when read as a stream.
fn import_archive(input: &[u8]) {
    // Imports fsync what they stage: a memory-backed directory keeps the fuzzer fast.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let Ok(tmp) = tmp else {
        return;
    };
    let dest = tmp.path().join("layout");
    let options = ImportOptions::default().name("fuzz input".into());
    let streamed = import(&mut &input[..], &dest, &options, &NoProgress);
    if streamed.is_ok() {
        Layout::open(&dest).unwrap_or_else(|e| panic!("an imported layout does not open: {e}"));
    }
    let file_dest = tmp.path().join("from-file");
    let from_file = import_seekable(
        &mut std::io::Cursor::new(input),
        &file_dest,
        &options,
        &NoProgress,
    );
    assert_eq!(
        streamed.is_ok(),
        from_file.is_ok(),
        "as a stream: {streamed:?}; as a file: {from_file:?}"
    );
}
