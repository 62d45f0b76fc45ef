//! `ocistow-store`: read and write OCI Image Layout directories (`oci-layout`, `index.json`,
//! `blobs/`) without losing a byte and without racing other writers.
//!
//! The layers, bottom up:
//! - [`digest`](mod@digest): validated digests, streaming hashers, the only digest-to-path mapping;
//! - [`model`](mod@model): descriptors, manifests and indexes that keep every field they were read with;
//! - [`layout`](mod@layout): blobs through `ingest/` and `index.json` transactions under a cross-process lock;
//! - [`reference`](mod@reference): `DIR:TAG`, `DIR@DIGEST` and their resolution;
//! - [`tags`](mod@tags): entry changes (tag, untag, record, delete);
//! - [`artifact`](mod@artifact): `push` and `pull` of files as oras does.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let file = dir.path().join("hello.txt");
//! # std::fs::write(&file, "hello\n").unwrap();
//! use ocistow_store::{Layout, artifact::{self, FileSpec, PushRequest}, reference::Target};
//! let layout = Layout::init(dir.path().join("layout")).unwrap();
//! let req = PushRequest::new(vec![FileSpec::new(file).media_type(Some("text/plain".into()))])
//!     .artifact_type(Some("application/vnd.example".into()));
//! let pushed = artifact::push(&layout, &req, &artifact::no_progress).unwrap();
//! pushed.staged.commit(&pushed.descriptor, &["v1".to_string()]).unwrap();
//! assert_eq!(layout.resolve(&Target::Tag("v1".into())).unwrap().digest(), pushed.descriptor.digest());
//! ```

#![warn(missing_docs)]
// Work-file names (`.ocistow-*.tmp`, `index.json.*.tmp`) are matched as the tools write them;
// `.TMP` would be someone else's file, so the comparison is meant to be case-sensitive.
#![allow(clippy::case_sensitive_file_extension_comparisons)]

#[macro_use]
mod setters;

pub mod artifact;
pub mod builder;
pub mod delete;
pub mod digest;
mod entries;
pub mod error;
pub mod fsck;
pub mod gc;
mod inventory;
pub mod layout;
pub mod maintenance;
pub mod model;
pub mod normalize;
#[cfg(feature = "oci-spec")]
pub mod oci_spec;
pub mod reference;
pub mod referrers;
pub mod staged;
pub mod tags;
pub mod transfer;
mod walk;

pub use digest::{Algorithm, Digest};
pub use error::{
    Conflict, DockerManifestProblem, Error, InputProblem, ManifestKind, ReferenceProblem, Result,
    Subject,
};
pub use layout::{Expected, Layout, Progress};
pub use model::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform};
pub use reference::{Reference, Target};
