//! Exporting references, and everything they reach, as a tarball that is itself an OCI layout.
//!
//! The tarball holds `oci-layout`, an `index.json` listing only what was exported, and the blobs.
//! Referrers exported with `referrers` are recorded as subject-annotation entries (convention D:
//! a top-level entry per referrer with `io.containerd.manifest.subject`, its `artifactType` and
//! its manifest's annotations). That record needs no new blob, so the exported blobs are exactly
//! the source's, and it is read by oras (which walks every entry), containerd and `docker load`,
//! regctl `--slow-referrers`, and ocistow.
//!
//! The output is deterministic: the same content gives the same bytes, whatever the order of
//! the source's `index.json` roots or the age of its files. (The order in which a subject's
//! referrers are listed is content: the export lists them in the source's order, and an import
//! or copy keeps it.) Entries come in a fixed order (`oci-layout`,
//! `index.json`, `manifest.json` when asked for, `blobs/`, then per algorithm `blobs/<alg>/` and
//! its blobs sorted by digest); every header has mtime 0 (or `SOURCE_DATE_EPOCH`), uid and gid 0,
//! empty owner names, mode 0644 for files and 0755 for directories; gzip is written without a
//! file name or time stamp, zstd single-threaded at a fixed level. (Byte identity holds for one
//! build of ocistow: another compression library version may compress differently.)
//!
//! Blobs are streamed from their files, never held in memory, and hashed on the way: a blob
//! whose content does not match its digest stops the export with an error, and nothing more is
//! written (not even the end-of-archive marker), so a reader sees a truncated archive.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;

use serde_json::json;

use super::{Plan, Planner, Relation, dedup_relations};
use crate::artifact::ProgressFactory;
use crate::digest::Digest;
use crate::entries;
use crate::error::{
    Conflict, DockerManifestProblem, Error, InputProblem, IoContext, Result, Subject,
};
use crate::layout::{
    Expected, INDEX_FILE, Layout, OCI_LAYOUT_FILE, Progress, copy_verified, with_direct_writer,
};
use crate::model::{Descriptor, ImageIndex, Manifest, annotations, media};
use crate::referrers::{ScanOptions, keys};

/// Docker's image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub use super::compression::Compression;
use super::compression::Sink;

/// One thing to export: a layout and the `index.json` entry to list for it in the tarball.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportRoot {
    /// The layout the entry is in.
    pub layout: Layout,
    /// The entry, written as given (its `org.opencontainers.image.ref.name` is its tag).
    pub entry: Descriptor,
}

impl ExportRoot {
    /// `desc` listed under `tag`: every field of `desc` kept, the tag set.
    pub fn tagged(layout: &Layout, desc: &Descriptor, tag: &str) -> Self {
        let mut entry = desc.clone();
        entry.set_annotation(annotations::REF_NAME, tag);
        ExportRoot {
            layout: layout.clone(),
            entry,
        }
    }

    /// `desc` listed without a tag (naming annotations removed).
    pub fn untagged(layout: &Layout, desc: &Descriptor) -> Self {
        let mut entry = desc.clone();
        entry.remove_annotation(annotations::REF_NAME);
        entry.remove_annotation(annotations::CONTAINERD_IMAGE_NAME);
        ExportRoot {
            layout: layout.clone(),
            entry,
        }
    }

    /// Every entry of the layout's `index.json`, as they are, in a deterministic order (by tag,
    /// then digest, then content), so the order of the source file does not show in the export.
    pub fn whole_layout(layout: &Layout) -> Result<Vec<Self>> {
        let index = layout.read_index()?;
        let mut entries: Vec<(String, String, String, Descriptor)> = index
            .manifests()
            .iter()
            .map(|d| {
                (
                    d.ref_name().unwrap_or("").to_string(),
                    d.digest().to_string(),
                    serde_json::to_string(d).unwrap_or_default(),
                    d.clone(),
                )
            })
            .collect();
        entries.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        entries.dedup_by(|a, b| a.2 == b.2);
        Ok(entries
            .into_iter()
            .map(|(_, _, _, entry)| ExportRoot {
                layout: layout.clone(),
                entry,
            })
            .collect())
    }
}

/// What to put in the tarball besides the roots.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Also export the referrers of every exported node, recursively, with their records.
    pub referrers: bool,
    /// How the tarball is compressed.
    pub compression: Compression,
    /// Add `manifest.json` for `docker load` (the export must be one image manifest).
    pub docker_manifest: bool,
    /// The repository name for `RepoTags` when the root's tag is not a full name itself
    /// (`<name>:<tag>`); `ocistow` when not given.
    pub docker_name: Option<String>,
    /// Modification time of every entry (seconds since the epoch).
    pub mtime: u64,
}

/// What an export wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportReport {
    /// `index.json` entries (roots and referrer records).
    pub entries: usize,
    /// Blobs written, and their total size.
    pub blobs: usize,
    /// Total size of the blobs written.
    pub bytes: u64,
    /// Referrers recorded.
    pub referrers: usize,
    /// Absent non-distributable blobs (with `urls`) left out.
    pub foreign: usize,
}

/// Everything an export will write, checked before the first byte is.
struct Prepared {
    index: Vec<u8>,
    docker_manifest: Option<Vec<u8>>,
    /// Blobs by digest (so sorted by path), with the layout that has them.
    blobs: BTreeMap<Digest, (usize, Descriptor)>,
    report: ExportReport,
}

/// Walks every root (verifying every manifest, checking every blob's presence and size) and
/// builds the tarball's `index.json` and `manifest.json`.
fn prepare(roots: &[ExportRoot], options: &ExportOptions) -> Result<Prepared> {
    if roots.is_empty() {
        return Err(Error::InvalidInput(InputProblem::NothingToExport));
    }
    // One planner (and one referrers scan) per distinct layout.
    let mut layouts: Vec<&Layout> = Vec::new();
    let mut root_layout: Vec<usize> = Vec::new();
    for r in roots {
        let i = if let Some(i) = layouts.iter().position(|l| l.root() == r.layout.root()) {
            i
        } else {
            layouts.push(&r.layout);
            layouts.len() - 1
        };
        root_layout.push(i);
    }
    let graphs = layouts
        .iter()
        .map(|l| {
            if options.referrers {
                l.scan_referrers(ScanOptions::default()).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut plans: Vec<Plan> = Vec::new();
    for (i, layout) in layouts.iter().enumerate() {
        let mut planner = Planner::new(layout, graphs[i].as_ref());
        for (r, _) in roots.iter().zip(&root_layout).filter(|(_, li)| **li == i) {
            planner.add(&r.entry, None)?;
        }
        plans.push(planner.finish());
    }

    let mut blobs: BTreeMap<Digest, (usize, Descriptor)> = BTreeMap::new();
    let mut relations: Vec<Relation> = Vec::new();
    let mut foreign = 0;
    for (i, plan) in plans.into_iter().enumerate() {
        for b in plan.blobs {
            blobs.entry(b.digest().clone()).or_insert((i, b));
        }
        relations.extend(plan.relations);
        foreign += plan.foreign.len();
    }

    // Entries: the roots, each once; a tag on two digests is refused.
    let mut entries: Vec<Descriptor> = Vec::new();
    for r in roots {
        if let Err(first) = entries::add_once(&mut entries, &r.entry) {
            return Err(Error::Conflict(Conflict::TagForTwoDigests {
                tag: r.entry.ref_name().unwrap_or_default().to_string(),
                first,
                second: r.entry.digest().clone(),
            }));
        }
    }
    let root_count = entries.len();

    // Referrer records in the source's order (the order a subject's referrers are listed is
    // content: the destination lists them the same way).
    dedup_relations(&mut relations);
    entries::annotate_subjects(
        &mut entries,
        relations.iter().map(|r| (&r.referrer, &r.subject)),
    );

    let docker_manifest = if options.docker_manifest {
        Some(docker_manifest(roots, root_count, options)?)
    } else {
        None
    };

    let mut index = ImageIndex::new();
    // Exported referrers-response records keep the convert flag olareg reads them by.
    for (subject_key, convert_key) in [
        (keys::OCI_RESPONSE_SUBJECT, keys::OCI_RESPONSE_CONVERT),
        (keys::OLAREG_RESPONSE_SUBJECT, keys::OLAREG_RESPONSE_CONVERT),
    ] {
        if entries.iter().any(|e| e.annotation(subject_key).is_some()) {
            index.set_annotation(convert_key, "true");
        }
    }
    *index.manifests_mut() = entries;
    let bytes: u64 = blobs.values().map(|(_, d)| d.size()).sum();
    Ok(Prepared {
        index: index.to_vec(),
        docker_manifest,
        report: ExportReport {
            entries: index.manifests().len(),
            blobs: blobs.len(),
            bytes,
            referrers: relations.len(),
            foreign,
        },
        blobs,
    })
}

/// `manifest.json` for `docker load`: exactly one image manifest with an image config.
fn docker_manifest(
    roots: &[ExportRoot],
    root_count: usize,
    options: &ExportOptions,
) -> Result<Vec<u8>> {
    let refuse = |why| Error::InvalidInput(InputProblem::DockerManifest(why));
    if root_count != 1 {
        return Err(refuse(DockerManifestProblem::RootCount {
            roots: root_count,
        }));
    }
    let root = &roots[0];
    let (_, manifest) = root.layout.read_manifest(&root.entry)?;
    let image = match manifest {
        Manifest::Image(m) => m,
        Manifest::Index(_) => {
            return Err(refuse(DockerManifestProblem::Index {
                index: root.entry.digest().clone(),
            }));
        }
    };
    let cmt = image.config.media_type();
    if cmt != media::IMAGE_CONFIG && cmt != DOCKER_CONFIG {
        return Err(refuse(DockerManifestProblem::NotAnImageConfig {
            manifest: root.entry.digest().clone(),
            media_type: cmt.to_string(),
        }));
    }
    let path = |d: &Digest| format!("blobs/{}/{}", d.algorithm(), d.encoded());
    let mut repo_tags: Vec<String> = Vec::new();
    if let Some(name) = root.entry.annotation(annotations::CONTAINERD_IMAGE_NAME) {
        repo_tags.push(name.to_string());
    } else if let Some(tag) = root.entry.ref_name() {
        if tag.contains(':') {
            repo_tags.push(tag.to_string());
        } else {
            let name = options.docker_name.as_deref().unwrap_or("ocistow");
            repo_tags.push(format!("{name}:{tag}"));
        }
    }
    let layers: Vec<String> = image.layers.iter().map(|l| path(l.digest())).collect();
    let doc = json!([{
        "Config": path(image.config.digest()),
        "RepoTags": repo_tags,
        "Layers": layers,
    }]);
    Ok(serde_json::to_vec(&doc).unwrap_or_default())
}

/// Writes the tarball of `roots` to `out`. Everything is checked before the first byte is
/// written; a blob that fails verification while streamed stops the export with an error and
/// leaves `out` incomplete (the caller must discard it).
pub fn export(
    roots: &[ExportRoot],
    options: &ExportOptions,
    out: &mut dyn Write,
    progress: ProgressFactory<'_>,
) -> Result<ExportReport> {
    let output = Subject::Input {
        name: "the export's output".into(),
    };
    export_into(roots, options, out, &output, progress)
}

/// [`export`] naming `output` (the archive's path, when it has one) in write errors.
fn export_into(
    roots: &[ExportRoot],
    options: &ExportOptions,
    out: &mut dyn Write,
    output: &Subject,
    progress: ProgressFactory<'_>,
) -> Result<ExportReport> {
    let prepared = prepare(roots, options)?;
    let layouts: Vec<&Layout> = {
        let mut v: Vec<&Layout> = Vec::new();
        for r in roots {
            if !v.iter().any(|l| l.root() == r.layout.root()) {
                v.push(&r.layout);
            }
        }
        v
    };
    let bar = progress("export", prepared.report.bytes);
    let failed = Rc::new(Cell::new(false));
    let gate = Gate {
        inner: out,
        failed: failed.clone(),
    };
    let sink = Sink::new(gate, options.compression).map_err(|e| output.stream_error(e))?;
    let mut builder = tar::Builder::new(sink);
    let result = write_entries(
        &mut builder,
        &prepared,
        &layouts,
        options.mtime,
        output,
        bar.as_ref(),
    );
    if let Err(e) = result {
        failed.set(true);
        // Dropping the builder would append the end-of-archive marker; the gate refuses it.
        drop(builder);
        return Err(e);
    }
    let sink = builder.into_inner().map_err(|e| output.stream_error(e))?;
    let gate = sink.finish().map_err(|e| output.stream_error(e))?;
    gate.inner.flush().map_err(|e| output.stream_error(e))?;
    Ok(prepared.report)
}

fn write_entries<W: Write>(
    builder: &mut tar::Builder<W>,
    prepared: &Prepared,
    layouts: &[&Layout],
    mtime: u64,
    output: &Subject,
    progress: &dyn Progress,
) -> Result<()> {
    let file = |builder: &mut tar::Builder<W>, name: &str, bytes: &[u8]| -> Result<()> {
        let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644, mtime);
        builder
            .append_data(&mut h, name, bytes)
            .map_err(|e| output.stream_error(e))
    };
    let dir = |builder: &mut tar::Builder<W>, name: &str| -> Result<()> {
        let mut h = header(tar::EntryType::Directory, 0, 0o755, mtime);
        builder
            .append_data(&mut h, name, io::empty())
            .map_err(|e| output.stream_error(e))
    };
    file(
        builder,
        OCI_LAYOUT_FILE,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    file(builder, INDEX_FILE, &prepared.index)?;
    if let Some(m) = &prepared.docker_manifest {
        file(builder, "manifest.json", m)?;
    }
    dir(builder, "blobs/")?;
    let mut current_alg = String::new();
    for (digest, (li, desc)) in &prepared.blobs {
        if digest.algorithm() != current_alg {
            current_alg = digest.algorithm().to_string();
            dir(builder, &format!("blobs/{current_alg}/"))?;
        }
        let layout = layouts[*li];
        let path = layout.blob_path(digest);
        let file = layout.open_blob(digest)?;
        let name = format!("blobs/{}/{}", digest.algorithm(), digest.encoded());
        let mut h = header(tar::EntryType::Regular, desc.size(), 0o644, mtime);
        // The header only (with a long-name header when needed): the builder pads nothing
        // after empty data. The data follows, streamed and verified.
        builder
            .append_data(&mut h, &name, io::empty())
            .map_err(|e| output.stream_error(e))?;
        stream_blob(
            file,
            builder.get_mut(),
            desc,
            &Subject::Path(path),
            output,
            progress,
        )?;
    }
    Ok(())
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes the tarball to `path` through a temp file beside it, renamed over `path` only when
/// the whole export succeeded.
pub fn export_to_path(
    roots: &[ExportRoot],
    options: &ExportOptions,
    path: &Path,
    progress: ProgressFactory<'_>,
) -> Result<ExportReport> {
    if path.is_dir() {
        return Err(Error::InvalidInput(InputProblem::OutputIsADirectory {
            path: path.to_path_buf(),
        }));
    }
    // Check everything before creating any file.
    prepare(roots, options)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let temp = tempfile::Builder::new()
        .prefix(".ocistow-export-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .at(&dir)?;
    // The archive goes to disk with O_DIRECT on a thread of its own (layout/direct.rs): the
    // fsync below then has only the last few KiB and the metadata left to wait for.
    let output = Subject::Path(path.to_path_buf());
    let report = with_direct_writer(
        temp.as_file(),
        true,
        |out| export_into(roots, options, out, &output, progress),
        |source| Error::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .at(temp.path())?;
    temp.as_file().sync_all().at(temp.path())?;
    temp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    crate::layout::sync_dir(&dir)?;
    Ok(report)
}

/// A writer that refuses everything once the export failed.
struct Gate<'a> {
    inner: &'a mut dyn Write,
    failed: Rc<Cell<bool>>,
}

impl Write for Gate<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed.get() {
            return Err(io::Error::other("export aborted"));
        }
        self.inner.write(buf).inspect_err(|_| self.failed.set(true))
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.failed.get() {
            return Err(io::Error::other("export aborted"));
        }
        self.inner.flush()
    }
}

/// Streams a blob file into the archive through the one verified copy loop, then pads to the
/// tar block. Fails when the file is shorter or longer than declared, or when its content does
/// not hash to its digest; the caller then closes the gate, so the archive stays truncated.
fn stream_blob(
    mut file: File,
    out: &mut dyn Write,
    desc: &Descriptor,
    input: &Subject,
    output: &Subject,
    progress: &dyn Progress,
) -> Result<()> {
    copy_verified(
        &mut file,
        out,
        &Expected {
            digest: Some(desc.digest().clone()),
            size: Some(desc.size()),
            input: Some(input.clone()),
        },
        output,
        progress,
    )?;
    let pad = (512 - desc.size() % 512) % 512;
    out.write_all(&[0u8; 512][..pad as usize])
        .map_err(|e| output.stream_error(e))?;
    Ok(())
}

setters!(ExportOptions {
    referrers: bool,
    compression: Compression,
    docker_manifest: bool,
    docker_name: Option<String>,
    mtime: u64,
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::no_progress;
    use crate::model::media;

    /// Fails every write after `left` bytes, as a full disk would.
    struct FullAfter(usize);
    impl Write for FullAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_tag_for_two_digests_is_refused_before_the_output_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l")).unwrap();
        let a = layout.write_blob_bytes(b"a").unwrap();
        let b = layout.write_blob_bytes(b"b").unwrap();
        let roots = [
            ExportRoot::tagged(&layout, &a, "v1"),
            ExportRoot::tagged(&layout, &a, "v1"),
            ExportRoot::tagged(&layout, &b, "v1"),
        ];
        let archive = dir.path().join("out.tar");
        let err =
            export_to_path(&roots, &ExportOptions::default(), &archive, &no_progress).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Conflict(Conflict::TagForTwoDigests { tag, first, second })
                    if tag == "v1" && first == a.digest() && second == b.digest()
            ),
            "{err}"
        );
        assert!(!archive.exists());
    }

    /// The one verified copy loop names the blob when the blob is at fault and the archive when
    /// writing it fails.
    #[test]
    fn errors_name_the_blob_or_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path().join("l")).unwrap();
        let layer = layout.write_blob_bytes(&vec![7u8; 300_000]).unwrap();
        let cfg = layout.write_blob_bytes(b"{}").unwrap();
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": media::IMAGE_MANIFEST,
            "config": Descriptor::new(media::EMPTY, cfg.digest().clone(), 2),
            "layers": [Descriptor::new(media::LAYER_TAR, layer.digest().clone(), layer.size())]}))
        .unwrap();
        let desc = layout.put_manifest(&m, None, false).unwrap();
        let roots = [ExportRoot::tagged(&layout, &desc, "v1")];
        let archive = dir.path().join("out.tar");
        let err = export_into(
            &roots,
            &ExportOptions::default(),
            &mut FullAfter(100_000),
            &Subject::Path(archive.clone()),
            &no_progress,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Stream { what: Subject::Path(p), .. } if *p == archive),
            "{err}"
        );
        // The layer changed on disk (same size): the blob is named, not the archive.
        let path = layout.blob_path(layer.digest());
        fs::remove_file(&path).unwrap();
        fs::write(&path, vec![8u8; 300_000]).unwrap();
        let err = export_into(
            &roots,
            &ExportOptions::default(),
            &mut io::sink(),
            &Subject::Path(archive.clone()),
            &no_progress,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::DigestMismatch { what, .. } if **what == Subject::Path(path.clone())),
            "{err}"
        );
    }
}
