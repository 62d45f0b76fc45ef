//! Layouts written straight to disk (blobs named by sha256, one `index.json` write): the
//! issue's shape of one subject with N referrers plus unrelated manifests, in seconds even at
//! 100,000 referrers.

use std::fs;
use std::path::{Path, PathBuf};

use ocistow_store::{Algorithm, Digest};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const EMPTY_DESCRIPTOR: &str = r#"{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#;
pub const CREATED: &str = "2025-01-01T00:00:00Z";
pub const CONTAINERD_SUBJECT: &str = "io.containerd.manifest.subject";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What [`generate`] wrote.
pub struct Generated {
    /// The subject, tagged `v1`.
    pub subject: Digest,
    /// Every manifest blob (subject, unrelated, referrers), as `blobs/sha256/<hex>` paths.
    pub manifests: Vec<PathBuf>,
    /// The referrers' digests and sizes, in the order listed.
    pub referrers: Vec<(Digest, usize)>,
    /// The `index.json` written.
    pub index: Vec<u8>,
}

pub struct BlobDir {
    pub path: PathBuf,
}

impl BlobDir {
    /// Stores `bytes` as a sha256 blob and returns its digest, size and path.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, usize, PathBuf), String> {
        let digest = Digest::of_bytes(Algorithm::Sha256, bytes);
        let path = self.path.join(digest.encoded());
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((digest, bytes.len(), path))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a layout with one subject tagged `v1`, `n` referrers of it and `unrelated` unrelated
/// manifests (even ones tagged `unrelated-<i>`, odd ones untagged), recorded in annotation mode.
pub fn generate(dir: &Path, n: usize, unrelated: usize) -> Result<Generated, String> {
    let blobs = BlobDir {
        path: dir.join("blobs").join("sha256"),
    };
    fs::create_dir_all(&blobs.path).map_err(|e| format!("{}: {e}", blobs.path.display()))?;
    write(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let (empty, _, _) = blobs.put(b"{}")?;
    if empty.as_str() != EMPTY_DIGEST {
        return Err(format!("the empty blob hashed to {empty}"));
    }

    let mut manifests = Vec::with_capacity(n + unrelated + 1);
    let mut referrers = Vec::with_capacity(n);
    let mut entries: Vec<String> = Vec::with_capacity(n + unrelated + 1);

    let subject_bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","artifactType":"application/vnd.example.app","config":{EMPTY_DESCRIPTOR},"layers":[{EMPTY_DESCRIPTOR}],"annotations":{{"org.opencontainers.image.created":"{CREATED}"}}}}"#
    );
    let (subject, subject_size, path) = blobs.put(subject_bytes.as_bytes())?;
    manifests.push(path);
    entries.push(format!(
        r#"{{"mediaType":"{MANIFEST}","digest":"{subject}","size":{subject_size},"annotations":{{"{REF_NAME}":"v1"}}}}"#
    ));

    for i in 0..unrelated {
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","artifactType":"application/vnd.example.other","config":{EMPTY_DESCRIPTOR},"layers":[{EMPTY_DESCRIPTOR}],"annotations":{{"org.opencontainers.image.created":"{CREATED}","com.example.bench.unrelated":"{i}"}}}}"#
        );
        let (digest, size, path) = blobs.put(bytes.as_bytes())?;
        manifests.push(path);
        entries.push(if i % 2 == 0 {
            format!(
                r#"{{"mediaType":"{MANIFEST}","digest":"{digest}","size":{size},"annotations":{{"{REF_NAME}":"unrelated-{i}"}}}}"#
            )
        } else {
            format!(
                r#"{{"mediaType":"{MANIFEST}","digest":"{digest}","size":{size},"artifactType":"application/vnd.example.other"}}"#
            )
        });
    }

    let subject_desc =
        format!(r#"{{"mediaType":"{MANIFEST}","digest":"{subject}","size":{subject_size}}}"#);
    for i in 0..n {
        let annotations = format!(
            r#""org.opencontainers.image.created":"{CREATED}","com.example.bench.referrer":"{i}""#
        );
        let artifact_type = "application/vnd.example.signature";
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","artifactType":"{artifact_type}","config":{EMPTY_DESCRIPTOR},"layers":[{EMPTY_DESCRIPTOR}],"subject":{subject_desc},"annotations":{{{annotations}}}}}"#
        );
        let (digest, size, path) = blobs.put(bytes.as_bytes())?;
        manifests.push(path);
        // As ocistow records a referrer in annotation mode: mediaType, digest, size, the
        // manifest's annotations plus the subject, artifactType.
        entries.push(format!(
            r#"{{"mediaType":"{MANIFEST}","digest":"{digest}","size":{size},"annotations":{{{annotations},"{CONTAINERD_SUBJECT}":"{subject}"}},"artifactType":"{artifact_type}"}}"#
        ));
        referrers.push((digest, size));
    }

    let index = index_of(&entries);
    write(&dir.join("index.json"), &index)?;
    Ok(Generated {
        subject,
        manifests,
        referrers,
        index,
    })
}

/// An `index.json` listing `entries` (each a JSON object).
pub fn index_of(entries: &[String]) -> Vec<u8> {
    let mut index = String::with_capacity(entries.iter().map(|e| e.len() + 1).sum::<usize>() + 100);
    index.push_str(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#,
    );
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            index.push(',');
        }
        index.push_str(e);
    }
    index.push_str("]}");
    index.into_bytes()
}
