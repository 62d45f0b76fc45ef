//! The one traversal of a manifest graph, and the one rule for "might this blob be a manifest".
//!
//! Every reader that follows descriptors (the referrers scan, gc's mark, fsck, copy and export
//! planning, import validation) walks through [`Walker`] with its own [`Visitor`]. The walk is
//! iterative (an explicit stack, so any depth fits in any thread), enters each digest once, and
//! tells the visitor when a descriptor leads back to one of its own ancestors (a cycle).
//!
//! Whether a blob is read as a manifest is decided in one place, [`read_content`]: a descriptor
//! whose media type is a manifest type declares one; one with no media type or
//! `application/octet-stream` is sniffed (the blob is read, under [`MAX_MANIFEST_SIZE`], and
//! taken for a manifest when its JSON has the shape of one); anything else is a plain blob.

use std::rc::Rc;

use crate::digest::{Digest, DigestMap};
use crate::error::{Corruption, Error, ManifestKind, Result, Subject};
use crate::layout::{Layout, MAX_MANIFEST_SIZE};
use crate::model::{Descriptor, Manifest, media};

/// Where a walk reads blobs: a layout, or the staging area of an archive not yet imported.
pub(crate) trait BlobSource {
    /// The size of the blob, `None` when it is absent. A path that is not a regular file is an
    /// error naming it.
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;
    /// The whole blob, verified against its digest; more than `limit` bytes is an error.
    fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>>;

    /// The blob's size and, when it is at most `limit` bytes, its bytes verified against its
    /// digest; `None` when it is absent. A source that opens files does this with one open and
    /// one `fstat`, rather than a `stat` for the size and another open to read.
    fn read_sized(&self, digest: &Digest, limit: u64) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        let Some(size) = self.blob_size(digest)? else {
            return Ok(None);
        };
        if size > limit {
            return Ok(Some((size, None)));
        }
        match self.read_verified(digest, size) {
            Ok(bytes) => Ok(Some((size, Some(bytes)))),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl BlobSource for Layout {
    fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Layout::blob_size(self, digest)
    }

    fn read_verified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        self.read_blob_limited(digest, limit)
    }

    fn read_sized(&self, digest: &Digest, limit: u64) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        use std::io::Read as _;
        let path = self.blob_path(digest);
        let Some((file, size)) = crate::layout::open_regular(&path)? else {
            return Ok(None);
        };
        if size > limit {
            return Ok(Some((size, None)));
        }
        // `size` is under the limit, so the capacity is bounded; a file that grows while read
        // is refused as the size it claimed.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&file)
            .take(size + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > size {
            return Err(Error::TooLarge {
                path,
                limit: size,
                why: "",
            });
        }
        digest.verify_bytes(&bytes, Subject::Path(path))?;
        Ok(Some((size, Some(bytes))))
    }
}

/// How a descriptor's media type bears on reading its blob as a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Candidate {
    /// The media type is a manifest or index type.
    Declared,
    /// No media type, or `application/octet-stream`: the content decides.
    Sniff,
    /// Any other media type: not a manifest, whatever the content.
    No,
}

/// The media-type half of the rule.
pub(crate) fn candidate(media_type: &str) -> Candidate {
    if media::is_manifest(media_type) {
        Candidate::Declared
    } else if media_type.is_empty() || media_type == "application/octet-stream" {
        Candidate::Sniff
    } else {
        Candidate::No
    }
}

/// The manifest media type to parse `bytes` with: the declared one, else what the content says
/// or looks like, when that is a manifest type.
pub(crate) fn manifest_media_type(declared: &str, bytes: &[u8]) -> Option<String> {
    match candidate(declared) {
        Candidate::Declared => Some(declared.to_string()),
        Candidate::Sniff => Manifest::sniff_media_type(bytes).filter(|m| media::is_manifest(m)),
        Candidate::No => None,
    }
}

/// What a descriptor's blob holds, as far as a walk cares.
// Built once per node and moved into the visitor: boxing the manifest would only add an
// allocation per node.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Content {
    /// No blob with this digest.
    Absent,
    /// A blob that is not read as a manifest.
    Blob {
        /// Its size on disk.
        size: u64,
    },
    /// A manifest, read, verified and parsed.
    Manifest {
        /// Its size on disk.
        size: u64,
        /// The media type it was parsed as.
        media_type: String,
        /// The parsed manifest.
        manifest: Manifest,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// A blob that should be a manifest (by its media type, or by the shape of its content)
    /// but could not be read, verified or parsed.
    Invalid {
        /// True when the media type declared a manifest (false: the content looked like one).
        declared: bool,
        /// What went wrong.
        error: Error,
        /// The bytes, when they could be read.
        bytes: Option<Vec<u8>>,
    },
}

impl Content {
    /// The descriptors a manifest points to (subject excluded); none for anything else.
    pub(crate) fn children(&self) -> Vec<Descriptor> {
        match self {
            Content::Manifest { manifest, .. } => {
                manifest.children().into_iter().cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Reads what `desc` names, applying the one "might this blob be a manifest" rule.
pub(crate) fn read_content(source: &dyn BlobSource, desc: &Descriptor) -> Content {
    let digest = desc.digest();
    let candidate = candidate(desc.media_type());
    let declared = candidate == Candidate::Declared;
    let invalid = |error: Error, bytes: Option<Vec<u8>>| Content::Invalid {
        declared,
        error,
        bytes,
    };
    if candidate == Candidate::No || digest.known_algorithm().is_err() {
        return match source.blob_size(digest) {
            Ok(Some(size)) => Content::Blob { size },
            Ok(None) => Content::Absent,
            Err(error) => invalid(error, None),
        };
    }
    let (size, bytes) = match source.read_sized(digest, MAX_MANIFEST_SIZE) {
        Ok(Some(found)) => found,
        Ok(None) => return Content::Absent,
        Err(error) => return invalid(error, None),
    };
    let Some(bytes) = bytes else {
        return if declared {
            invalid(
                Error::Corrupt {
                    path: digest.blob_path(),
                    reason: Corruption::ManifestTooLarge {
                        size,
                        limit: MAX_MANIFEST_SIZE,
                    },
                },
                None,
            )
        } else {
            Content::Blob { size }
        };
    };
    let Some(media_type) = manifest_media_type(desc.media_type(), &bytes) else {
        return Content::Blob { size };
    };
    match Manifest::parse(&media_type, &bytes) {
        Ok(manifest) => Content::Manifest {
            size,
            media_type,
            manifest,
            bytes,
        },
        Err(reason) => invalid(
            Error::InvalidManifest {
                what: Subject::Blob(digest.clone()),
                kind: ManifestKind::of_media_type(&media_type),
                reason: reason.into(),
            },
            Some(bytes),
        ),
    }
}

/// A cheap look at a blob found by digest alone: true when its first non-blank byte is `{`
/// (only then can sniffing take it for a manifest). Unreadable paths are false.
pub(crate) fn starts_like_json_object(path: &std::path::Path) -> bool {
    use std::io::Read as _;
    let Ok(Some((file, _))) = crate::layout::open_regular(path) else {
        return false;
    };
    let mut buf = [0u8; 256];
    let Ok(n) = (&file).read(&mut buf) else {
        return false;
    };
    buf[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// What a caller does at each node of a walk.
pub(crate) trait Visitor {
    /// `desc`, reached from `parent` (`None` for a root), is entered for the first time, with
    /// what its blob holds. Returns the descriptors to walk below it, in order.
    fn enter(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
        content: Content,
    ) -> Result<Vec<Descriptor>>;

    /// Asked before `desc` is first entered: a visitor that already knows what its blob holds
    /// (the referrers scan's facts cache) does its work and returns the descriptors to walk
    /// below it, and the blob is not read (nor [`Visitor::enter`] called). `None`: read it.
    fn known(
        &mut self,
        desc: &Descriptor,
        parent: Option<&Descriptor>,
    ) -> Result<Option<Vec<Descriptor>>> {
        let _ = (desc, parent);
        Ok(None)
    }

    /// `desc` was reached again from `parent`; `cycle` when it is one of `parent`'s ancestors.
    fn again(&mut self, desc: &Descriptor, parent: Option<&Descriptor>, cycle: bool) -> Result<()> {
        let _ = (desc, parent, cycle);
        Ok(())
    }

    /// Everything below `desc` has been walked. Returns more descriptors to walk with `desc`
    /// as their parent (the referrers of a node, for a walk that follows them).
    fn leave(&mut self, desc: &Descriptor) -> Result<Vec<Descriptor>> {
        let _ = desc;
        Ok(Vec::new())
    }
}

/// A descriptor on the walk's stack: the root borrowed from the caller, every other one moved
/// in once and shared (not copied) by its own steps and those of its children.
#[derive(Clone)]
enum Held<'r> {
    Root(&'r Descriptor),
    Child(Rc<Descriptor>),
}

impl std::ops::Deref for Held<'_> {
    type Target = Descriptor;
    fn deref(&self) -> &Descriptor {
        match self {
            Held::Root(d) => d,
            Held::Child(d) => d,
        }
    }
}

enum Step<'r> {
    Enter(Held<'r>, Option<Held<'r>>),
    Leave(Held<'r>),
}

/// The walk itself. One walker can walk several roots; what they share is entered once.
pub(crate) struct Walker<'s> {
    source: &'s dyn BlobSource,
    /// Every digest entered, and whether it is still open (entered and not yet left: on the
    /// current path, for cycle detection).
    entered: DigestMap<bool>,
}

impl<'s> Walker<'s> {
    /// A walker reading blobs from `source`.
    pub(crate) fn new(source: &'s dyn BlobSource) -> Self {
        Walker {
            source,
            entered: DigestMap::default(),
        }
    }

    /// Walks `root` and everything the visitor follows from it.
    pub(crate) fn walk(&mut self, root: &Descriptor, visitor: &mut dyn Visitor) -> Result<()> {
        let mut stack = vec![Step::Enter(Held::Root(root), None)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Leave(desc) => {
                    if let Some(open) = self.entered.get_mut(desc.digest()) {
                        *open = false;
                    }
                    let more = visitor.leave(&desc)?;
                    for d in more.into_iter().rev() {
                        stack.push(Step::Enter(Held::Child(Rc::new(d)), Some(desc.clone())));
                    }
                }
                Step::Enter(desc, parent) => {
                    if let Some(&cycle) = self.entered.get(desc.digest()) {
                        visitor.again(&desc, parent.as_deref(), cycle)?;
                        continue;
                    }
                    self.entered.insert(desc.digest().clone(), true);
                    let children =
                        if let Some(children) = visitor.known(&desc, parent.as_deref())? {
                            children
                        } else {
                            let content = read_content(self.source, &desc);
                            visitor.enter(&desc, parent.as_deref(), content)?
                        };
                    // Reversed so that children are entered in manifest order.
                    let below = children
                        .into_iter()
                        .rev()
                        .map(|child| Step::Enter(Held::Child(Rc::new(child)), Some(desc.clone())));
                    let leave = Step::Leave(desc.clone());
                    stack.push(leave);
                    stack.extend(below);
                }
            }
        }
        Ok(())
    }
}

/// `read` applied to every item ahead of the walk, the items split across `threads` scoped
/// threads. What a thread that panicked would have read is left out: the walk reads it itself.
pub(crate) fn on_every_core<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    read: impl Fn(&T) -> Option<R> + Sync,
) -> Vec<R> {
    let per_thread = items.len().div_ceil(threads.max(1)).max(1);
    let read = &read;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|part| scope.spawn(move || part.iter().filter_map(read).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .flatten()
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    struct Count(usize, usize);
    impl Visitor for Count {
        fn enter(
            &mut self,
            _: &Descriptor,
            _: Option<&Descriptor>,
            c: Content,
        ) -> Result<Vec<Descriptor>> {
            self.0 += 1;
            Ok(c.children())
        }
        fn again(&mut self, _: &Descriptor, _: Option<&Descriptor>, _: bool) -> Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    /// A chain of `depth` nested indexes over one empty blob; returns the top one.
    pub(crate) fn index_chain(layout: &Layout, depth: usize) -> Descriptor {
        // A plain blob at the bottom: `{}` has no manifest shape, so it is never parsed.
        let mut child = layout.write_blob_bytes(b"{}").unwrap();
        for _ in 0..depth {
            let bytes = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media::IMAGE_INDEX,
                "manifests": [child],
            }))
            .unwrap();
            // Written directly: thousands of fsyncs would only slow the test down.
            let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
            std::fs::write(layout.blob_path(&digest), &bytes).unwrap();
            child = Descriptor::new(media::IMAGE_INDEX, digest, bytes.len() as u64);
        }
        child
    }

    #[test]
    fn deep_chain_on_a_small_thread() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let top = index_chain(&layout, 3_000);
        let entered = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let mut v = Count(0, 0);
                Walker::new(&layout).walk(&top, &mut v).unwrap();
                v.0
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(entered, 3_001);
    }

    #[test]
    fn each_digest_once_and_sniffing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let blob = layout.write_blob_bytes(b"layer").unwrap();
        let bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": Descriptor::new(media::EMPTY, Digest::of_bytes(Algorithm::Sha256, b"layer"), 5),
            "layers": [Descriptor::new(media::LAYER_TAR, blob.digest().clone(), 5)],
        }))
        .unwrap();
        let m = layout.write_blob_bytes(&bytes).unwrap();
        // Listed as octet-stream: sniffed, so its two children (the same blob) are reached.
        let mut v = Count(0, 0);
        Walker::new(&layout).walk(&m, &mut v).unwrap();
        assert_eq!((v.0, v.1), (2, 1));
        // A non-manifest media type is never read as one.
        let other = Descriptor::new("text/plain", m.digest().clone(), m.size());
        let mut v = Count(0, 0);
        Walker::new(&layout).walk(&other, &mut v).unwrap();
        assert_eq!((v.0, v.1), (1, 0));
    }
}
