//! `attach`: push files as a referrer of a subject and record it, in one call.

use super::{ProgressFactory, PushRequest, push};
use crate::error::{Error, InputProblem, Result};
use crate::layout::Layout;
use crate::model::ImageIndex;
use crate::model::annotations::REF_NAME;
use crate::referrers::{AttachOutcome, Mode, ResponseKey};

/// How [`attach`] records the referrer.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct AttachOptions {
    /// The mode; `None`: the mode the layout already uses consistently, else annotation
    /// (decided under the layout lock).
    pub mode: Option<Mode>,
    /// The key of response records; `None`: the key the layout uses, else `oci`.
    pub response_key: Option<ResponseKey>,
}

impl AttachOptions {
    /// Records in `mode` (or, with `None`, as the layout already does).
    pub fn new(mode: Option<Mode>) -> Self {
        AttachOptions {
            mode,
            response_key: None,
        }
    }

    /// The same options with the response records' key.
    #[must_use]
    pub fn response_key(mut self, key: Option<ResponseKey>) -> Self {
        self.response_key = key;
        self
    }
}

/// Pushes `req` (whose `subject` must be set) and records the new manifest as a referrer of
/// that subject, keeping the manifest's `artifactType` and annotations in the record (the entry
/// of the annotation mode, the listing of a response or fallback record). The blobs stay pinned
/// until the record is written, in one `index.json` transaction.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let sbom = dir.path().join("sbom.json");
/// # std::fs::write(&sbom, "{}").unwrap();
/// use ocistow_store::{Layout, artifact::{self, AttachOptions, FileSpec, PushRequest}};
/// let layout = Layout::init(dir.path().join("layout")).unwrap();
/// let app = PushRequest::default().artifact_type(Some("application/vnd.example.app".into()));
/// let image = artifact::push(&layout, &app, &artifact::no_progress).unwrap();
/// let subject = image.descriptor.clone();
/// image.staged.commit(&subject, &["v1".to_string()]).unwrap();
///
/// let req = PushRequest::new(vec![FileSpec::new(sbom).media_type(Some("application/spdx+json".into()))])
///     .artifact_type(Some("application/vnd.example.sbom".into()))
///     .annotations([("team".to_string(), "a".to_string())].into())
///     .subject(Some(subject));
/// let attached = artifact::attach(&layout, &req, &AttachOptions::default(), &artifact::no_progress).unwrap();
/// assert_eq!(attached.descriptor.annotation("team"), Some("a"));
/// ```
pub fn attach(
    layout: &Layout,
    req: &PushRequest,
    options: &AttachOptions,
    progress: ProgressFactory<'_>,
) -> Result<AttachOutcome> {
    attach_to(layout, None, req, *options, progress)
}

/// [`attach`] for a caller that read `index.json` (`index`, from [`Layout::read_index`]) to
/// resolve the subject: the record's transaction starts from that parse when the file still
/// holds exactly it, so index.json is parsed once (see [`Layout::edit_index_from`]); when
/// anything changed it in between, the transaction reads it again and records on top of what
/// is there.
pub fn attach_in(
    layout: &Layout,
    index: ImageIndex,
    req: &PushRequest,
    options: &AttachOptions,
    progress: ProgressFactory<'_>,
) -> Result<AttachOutcome> {
    attach_to(layout, Some(index), req, *options, progress)
}

fn attach_to(
    layout: &Layout,
    read: Option<ImageIndex>,
    req: &PushRequest,
    options: AttachOptions,
    progress: ProgressFactory<'_>,
) -> Result<AttachOutcome> {
    let Some(subject) = &req.subject else {
        return Err(Error::InvalidInput(InputProblem::NoSubject));
    };
    let pushed = push(layout, req, progress)?;
    let mut referrer = pushed.descriptor;
    referrer.remove_annotation(REF_NAME);
    // Only the response mode uses a key: with another mode given, any key will do, and the
    // transaction need not walk every entry to find the one the layout uses.
    let key = match (options.mode, options.response_key) {
        (Some(m), None) if m != Mode::Response => Some(ResponseKey::default()),
        (_, key) => key,
    };
    let (mode, _) = pushed.staged.commit_referrers_from(
        read,
        &[(referrer.clone(), subject.digest().clone())],
        options.mode,
        key,
    )?;
    Ok(AttachOutcome {
        descriptor: referrer,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{FileSpec, no_progress};
    use crate::referrers::ScanOptions;

    fn subject_and_file() -> (tempfile::TempDir, Layout, PushRequest) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("layout")).unwrap();
        let image = push(
            &layout,
            &PushRequest::default()
                .artifact_type(Some("application/vnd.example.app".into()))
                .created(Some(0)),
            &no_progress,
        )
        .unwrap();
        let subject = image.descriptor.clone();
        image.staged.commit(&subject, &["v1".into()]).unwrap();
        let file = dir.path().join("sig.txt");
        std::fs::write(&file, "signed").unwrap();
        let req = PushRequest::new(vec![FileSpec::new(file)])
            .artifact_type(Some("application/vnd.example.sig".into()))
            .annotations([("team".to_string(), "a".to_string())].into())
            .subject(Some(subject))
            .created(Some(0));
        (dir, layout, req)
    }

    #[test]
    fn every_mode_keeps_the_manifests_annotations_in_the_record() {
        for mode in [Mode::Annotation, Mode::Response, Mode::Tag] {
            let (_dir, layout, req) = subject_and_file();
            let out = attach(&layout, &req, &AttachOptions::new(Some(mode)), &no_progress).unwrap();
            assert_eq!(out.mode, mode);
            let subject = req.subject.as_ref().unwrap().digest();
            let recorded: Vec<_> = match mode {
                Mode::Annotation => layout
                    .read_index()
                    .unwrap()
                    .manifests()
                    .iter()
                    .filter(|e| e.digest() == out.descriptor.digest())
                    .cloned()
                    .collect(),
                Mode::Response | Mode::Tag => {
                    let record = layout
                        .read_index()
                        .unwrap()
                        .manifests()
                        .iter()
                        .find(|e| e.media_type() == crate::model::media::IMAGE_INDEX)
                        .cloned()
                        .unwrap();
                    layout.record_listing(&record).unwrap()
                }
            };
            assert_eq!(recorded.len(), 1, "{mode:?}");
            assert_eq!(recorded[0].annotation("team"), Some("a"), "{mode:?}");
            assert_eq!(
                recorded[0].artifact_type(),
                Some("application/vnd.example.sig")
            );
            let graph = layout.scan_referrers(ScanOptions::default()).unwrap();
            assert_eq!(graph.referrers_of(subject).len(), 1);
            assert!(graph.issues().is_empty(), "{:?}", graph.issues());
        }
    }

    /// `attach_in` given the index read before another writer tagged the subject: the record
    /// lands on top of the current index.json, the other writer's tag is kept.
    #[test]
    fn attach_in_from_a_stale_read_keeps_what_changed_since() {
        let (_dir, layout, req) = subject_and_file();
        let stale = layout.read_index().unwrap();
        let subject = req.subject.clone().unwrap();
        layout.add_entry(&subject, &["v2".to_string()]).unwrap();
        let out = attach_in(
            &layout,
            stale,
            &req,
            &AttachOptions::default(),
            &no_progress,
        )
        .unwrap();
        let tags: Vec<String> = layout.tags().unwrap().into_iter().map(|t| t.0).collect();
        assert!(
            tags.contains(&"v1".to_string()) && tags.contains(&"v2".to_string()),
            "{tags:?}"
        );
        let graph = layout.scan_referrers(ScanOptions::default()).unwrap();
        let referrers = graph.referrers_of(subject.digest());
        assert_eq!(referrers.len(), 1);
        assert_eq!(referrers[0].digest(), out.descriptor.digest());
    }

    #[test]
    fn without_a_subject_nothing_is_written() {
        let (_dir, layout, mut req) = subject_and_file();
        req.subject = None;
        let before = std::fs::read(layout.index_path()).unwrap();
        let blobs = layout.blob_usage().unwrap();
        assert!(attach(&layout, &req, &AttachOptions::default(), &no_progress).is_err());
        assert_eq!(std::fs::read(layout.index_path()).unwrap(), before);
        assert_eq!(layout.blob_usage().unwrap(), blobs);
    }
}
