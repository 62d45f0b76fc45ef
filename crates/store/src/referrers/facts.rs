//! The facts cache: what image manifest blobs say (their `subject`, artifact type and
//! annotations), kept by digest in [`FACTS_FILE`] at the layout's root, so that a scan after
//! the first reads and parses no manifest it has read before.
//!
//! Why a record can stand in for the blob: a blob's name is its digest, so what its content
//! says never changes. What a record is never trusted for: whether the blob exists. The scan
//! still asks the file system for every blob (one `stat`) and uses a record only when a
//! regular file of that digest exists with the recorded size; otherwise it reads the blob.
//! (A blob damaged in place at the same size is not noticed by a scan that uses its record;
//! finding damaged blobs is `fsck`'s work, which reads them all.)
//!
//! A damaged file costs a rebuild, never an answer: the file starts with a magic, a format
//! version, its record count and its length, and ends with a CRC-32 of everything before it;
//! any mismatch, a record that does not decode (a bad digest, a length beyond the end, bytes
//! left over) and the whole file is ignored and written again by the next scan. A record that
//! decodes but lies (a checksummed file claiming another `subject` for a blob) cannot come from
//! a torn or partial write; only a writer with write access to the layout could forge one, and
//! such a writer could as well edit `index.json` or delete the blobs. `ocistow fsck` does not
//! use the cache: it reads and verifies every blob.
//!
//! Writes go to a temp file renamed over the cache, without fsync and without the layout's
//! writer lock: a crash can only leave an old, empty or torn file, each of which is either
//! valid or rejected, and two scans racing to write leave one complete file, whose records are
//! all true whichever wins. A layout that cannot be written keeps working without the cache.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::layout::read_limited;
use crate::model::Descriptor;

/// The cache file, at the layout's root. Not a `.ocistow-*.tmp` work file (gc would delete
/// it), not `index.json` or a blob (export and import take only those, fsck and gc look only
/// there and at the work files they know).
pub const FACTS_FILE: &str = ".ocistow.facts";

/// How the temp file a cache write renames into place begins (a `.ocistow-*.tmp` work file,
/// so one a crash leaves is gc's to remove).
pub(crate) const FACTS_TEMP_PREFIX: &str = ".ocistow-facts-";

const MAGIC: &[u8; 14] = b"ocistow facts\n";
const VERSION: u32 = 1;
/// Magic, version, record count, body length.
const HEADER: usize = MAGIC.len() + 4 + 8 + 8;
/// A bigger file is neither read nor written: the scan then reads the blobs, as without one.
const MAX_FILE: u64 = 256 << 20;

/// What an image manifest blob says that a scan needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    /// The blob's size: a record is used only for a blob of this size.
    pub(super) size: u64,
    /// `subject`, when it is exactly `mediaType`, `digest` and `size` (any other subject is
    /// not recorded: its blob is read each time).
    pub(super) subject: Option<(String, Digest, u64)>,
    /// `artifactType`, else the config's media type.
    pub(super) artifact_type: String,
    /// `annotations`, in order, when present.
    pub(super) annotations: Option<Vec<(String, String)>>,
}

impl Record {
    /// The record of an image manifest, when its facts fit one.
    pub(super) fn of(
        size: u64,
        subject: Option<&Descriptor>,
        artifact_type: &str,
        annotations: Option<&Map<String, Value>>,
    ) -> Option<Record> {
        let subject = match subject {
            None => None,
            Some(s) if *s == s.plain() && !s.media_type().is_empty() => {
                Some((s.media_type().to_string(), s.digest().clone(), s.size()))
            }
            Some(_) => return None,
        };
        let annotations = match annotations {
            None => None,
            Some(m) => Some(
                m.iter()
                    .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect::<Option<Vec<_>>>()?,
            ),
        };
        Some(Record {
            size,
            subject,
            artifact_type: artifact_type.to_string(),
            annotations,
        })
    }

    /// The subject as a descriptor.
    pub(super) fn subject(&self) -> Option<Descriptor> {
        self.subject
            .as_ref()
            .map(|(mt, d, size)| Descriptor::new(mt, d.clone(), *size))
    }

    /// The annotations as a map.
    pub(super) fn annotations(&self) -> Option<Map<String, Value>> {
        self.annotations.as_ref().map(|list| {
            list.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
    }
}

/// The cache as one scan uses it: the records read from the file, and those learned since.
#[derive(Debug, Default)]
pub(super) struct Facts {
    enabled: bool,
    known: HashMap<Digest, Record>,
    learned: Vec<(Digest, Record)>,
    /// The file was absent or rejected: write it even when nothing new was learned.
    rebuild: bool,
}

impl Facts {
    /// The cache of the layout at `root` (empty when absent, damaged or disabled).
    pub(super) fn load(root: &Path, enabled: bool) -> Facts {
        if !enabled {
            return Facts::default();
        }
        let known = read_limited(&root.join(FACTS_FILE), MAX_FILE, "")
            .ok()
            .flatten()
            .and_then(|(bytes, _)| decode(&bytes));
        Facts {
            enabled,
            rebuild: known.is_none(),
            known: known.unwrap_or_default(),
            learned: Vec::new(),
        }
    }

    /// The record of `digest`, if any (unchecked: the caller checks the blob's size).
    pub(super) fn get(&self, digest: &Digest) -> Option<&Record> {
        self.known.get(digest)
    }

    /// Remembers what a blob read in this scan says.
    pub(super) fn learn(&mut self, digest: &Digest, record: Record) {
        if self.enabled && !self.known.contains_key(digest) {
            self.learned.push((digest.clone(), record));
        }
    }

    /// Writes the cache when this scan learned something (or found it absent or damaged):
    /// the records of the blobs `keep` names, and every record learned. Failures are ignored:
    /// the cache is an optimisation (a read-only layout simply has none).
    pub(super) fn save(self, root: &Path, keep: impl Fn(&Digest) -> bool) {
        if !self.enabled || (self.learned.is_empty() && !self.rebuild) {
            return;
        }
        let mut records: Vec<(&Digest, &Record)> =
            self.known.iter().filter(|(d, _)| keep(d)).collect();
        records.extend(self.learned.iter().map(|(d, r)| (d, r)));
        if records.is_empty() && !root.join(FACTS_FILE).exists() {
            return;
        }
        records.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = encode(&records);
        if bytes.len() as u64 > MAX_FILE {
            return;
        }
        let _ = write_replacing(root, &bytes);
    }
}

/// Writes `bytes` as the cache: a temp file (a `.ocistow-*.tmp` work file, so one a crash
/// leaves is gc's to remove), renamed over it.
fn write_replacing(root: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = tempfile::Builder::new()
        .prefix(FACTS_TEMP_PREFIX)
        .suffix(".tmp")
        .tempfile_in(root)?;
    temp.write_all(bytes)?;
    // Readable as the layout's other files are (tempfile makes 0600), so another user who
    // reads the layout uses the cache instead of working without it.
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    temp.persist(root.join(FACTS_FILE))
        .map(|_| ())
        .map_err(|e| e.error)
}

fn encode(records: &[(&Digest, &Record)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(records.len() * 256);
    for (digest, r) in records {
        put_str(&mut body, digest.as_str());
        body.extend_from_slice(&r.size.to_le_bytes());
        match &r.subject {
            None => body.push(0),
            Some((mt, d, size)) => {
                body.push(1);
                put_str(&mut body, mt);
                put_str(&mut body, d.as_str());
                body.extend_from_slice(&size.to_le_bytes());
            }
        }
        put_str(&mut body, &r.artifact_type);
        match &r.annotations {
            None => body.push(0),
            Some(list) => {
                body.push(1);
                body.extend_from_slice(&(list.len() as u32).to_le_bytes());
                for (k, v) in list {
                    put_str(&mut body, k);
                    put_str(&mut body, v);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(HEADER + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(records.len() as u64).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The records of a cache file, or `None` when anything about it is wrong.
fn decode(bytes: &[u8]) -> Option<HashMap<Digest, Record>> {
    let (content, crc) = bytes.split_last_chunk::<4>()?;
    if crc32fast::hash(content) != u32::from_le_bytes(*crc) {
        return None;
    }
    let mut r = Reader(content);
    if r.take(MAGIC.len())? != MAGIC || r.u32()? != VERSION {
        return None;
    }
    let count = r.u64()?;
    if r.u64()? != r.0.len() as u64 {
        return None;
    }
    // Each record takes at least 25 bytes, so a count beyond that is a lie, not an allocation.
    let mut known = HashMap::with_capacity(usize::try_from(count.min(r.0.len() as u64 / 25)).ok()?);
    for _ in 0..count {
        let digest = Digest::parse(r.str()?).ok()?;
        let size = r.u64()?;
        let subject = match r.u8()? {
            0 => None,
            1 => {
                let mt = r.str()?.to_string();
                let d = Digest::parse(r.str()?).ok()?;
                Some((mt, d, r.u64()?))
            }
            _ => return None,
        };
        let artifact_type = r.str()?.to_string();
        let annotations = match r.u8()? {
            0 => None,
            1 => {
                let n = r.u32()?;
                let mut list = Vec::new();
                for _ in 0..n {
                    list.push((r.str()?.to_string(), r.str()?.to_string()));
                }
                Some(list)
            }
            _ => return None,
        };
        let record = Record {
            size,
            subject,
            artifact_type,
            annotations,
        };
        if known.insert(digest, record).is_some() {
            return None;
        }
    }
    r.0.is_empty().then_some(known)
}

/// A cursor over the body; every read checks the length first.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.u32()?).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn sample() -> (Digest, Record) {
        let d = Digest::of_bytes(Algorithm::Sha256, b"m");
        let s = Digest::of_bytes(Algorithm::Sha256, b"s");
        (
            d,
            Record {
                size: 123,
                subject: Some(("a/b".into(), s, 9)),
                artifact_type: "t/u".into(),
                annotations: Some(vec![("k".into(), "v".into()), ("a".into(), String::new())]),
            },
        )
    }

    #[test]
    fn the_temp_file_is_a_work_file() {
        assert!(FACTS_TEMP_PREFIX.starts_with(crate::layout::TEMP_PREFIX));
    }

    #[test]
    fn round_trip_and_every_damage_rejected() {
        let (d, r) = sample();
        let bytes = encode(&[(&d, &r)]);
        assert_eq!(decode(&bytes).unwrap().get(&d), Some(&r));
        // Every truncation and every flipped byte is caught.
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_none(), "truncated to {n}");
            let mut bad = bytes.clone();
            bad[n] ^= 0x41;
            assert!(decode(&bad).is_none(), "byte {n} flipped");
        }
        assert!(decode(b"").is_none());
        assert!(decode(&[0xff; 64]).is_none());
    }

    #[test]
    fn checksummed_garbage_is_rejected() {
        // A valid checksum over records that do not decode (a count beyond the body, a bad
        // digest, a bad flag) is still rejected, without a huge allocation.
        let (d, r) = sample();
        let good = encode(&[(&d, &r)]);
        let content = &good[..good.len() - 4];
        for edit in [
            |c: &mut Vec<u8>| {
                c[MAGIC.len() + 4..MAGIC.len() + 12].copy_from_slice(&u64::MAX.to_le_bytes());
            },
            |c: &mut Vec<u8>| c[HEADER + 4 + 6] = b'/',
            |c: &mut Vec<u8>| c[HEADER + 4 + 71 + 8] = 7,
        ] {
            let mut c = content.to_vec();
            edit(&mut c);
            let crc = crc32fast::hash(&c);
            c.extend_from_slice(&crc.to_le_bytes());
            assert!(decode(&c).is_none());
        }
        // And the unedited content with its checksum decodes (so the edits are what failed).
        assert!(decode(&good).is_some());
    }
}
