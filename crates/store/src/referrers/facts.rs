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
//! any mismatch, a record that does not decode (a length beyond the end, a bad flag, text that
//! is not UTF-8, a digest twice, bytes left over) and the whole file is ignored and written
//! again by the next scan. The file is read once and its records are used in place, through a
//! table built over them; a record under a name that is no digest is never found, and one whose
//! subject digest does not parse is not used (the blob is read instead). A record that
//! decodes but lies (a checksummed file claiming another `subject` for a blob) cannot come from
//! a torn or partial write; only a writer with write access to the layout could forge one, and
//! such a writer could as well edit `index.json` or delete the blobs. `ocistow fsck` does not
//! use the cache: it reads and verifies every blob.
//!
//! Writes go to a temp file renamed over the cache, without fsync and without the layout's
//! writer lock: a crash can only leave an old, empty or torn file, each of which is either
//! valid or rejected, and two scans racing to write leave one complete file, whose records are
//! all true whichever wins. A layout that cannot be written keeps working without the cache.

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
}

/// A record as the cache file holds it, read in place: strings borrowed from the file, the
/// annotations decoded only when asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Known<'a> {
    /// The blob's size: a record is used only for a blob of this size.
    pub(super) size: u64,
    /// `subject` as media type, digest text and size (the digest checked by its user).
    pub(super) subject: Option<(&'a str, &'a str, u64)>,
    /// `artifactType`, else the config's media type.
    pub(super) artifact_type: &'a str,
    /// How many annotations, and their encoded pairs; `None` when the manifest has none.
    annotations: Option<(u32, &'a [u8])>,
}

impl Known<'_> {
    /// The annotations as a map, in order (`None` when the manifest has none).
    pub(super) fn annotations(&self) -> Option<Map<String, Value>> {
        let (count, pairs) = self.annotations?;
        let mut reader = Reader(pairs);
        let mut map = Map::new();
        for _ in 0..count {
            // Checked when the record was found, so a pair that fails here cannot occur.
            let (Some(key), Some(value)) = (reader.str(), reader.str()) else {
                break;
            };
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
        Some(map)
    }
}

/// The cache as one scan uses it: the file's bytes with a table over its records, and the
/// records learned since.
#[derive(Debug, Default)]
pub(super) struct Facts {
    enabled: bool,
    /// The file as read (checksum, header and framing checked), records read in place.
    bytes: Vec<u8>,
    /// Open addressing by digest: each slot is a record's offset in `bytes` plus one (0:
    /// empty). Its length is a power of two, at least twice the record count.
    table: Vec<u32>,
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
        let read = read_limited(&root.join(FACTS_FILE), MAX_FILE, "")
            .ok()
            .flatten()
            .and_then(|(bytes, _)| {
                let table = index(&bytes)?;
                Some((bytes, table))
            });
        let rebuild = read.is_none();
        let (bytes, table) = read.unwrap_or_default();
        Facts {
            enabled,
            bytes,
            table,
            learned: Vec::new(),
            rebuild,
        }
    }

    /// The record of `digest`, if any (unchecked: the caller checks the blob's size). A
    /// record that does not decode is no record: the blob is read instead.
    pub(super) fn get(&self, digest: &Digest) -> Option<Known<'_>> {
        let at = lookup(&self.bytes, &self.table, digest.as_str().as_bytes())?;
        record_at(&self.bytes, at).map(|(_, known, _)| known)
    }

    /// Remembers what a blob read in this scan says.
    pub(super) fn learn(&mut self, digest: &Digest, record: Record) {
        if self.enabled && self.get(digest).is_none() {
            self.learned.push((digest.clone(), record));
        }
    }

    /// True when [`Facts::save`] would write: something was learned, or the file was absent
    /// or rejected.
    pub(super) fn dirty(&self) -> bool {
        self.enabled && (!self.learned.is_empty() || self.rebuild)
    }

    /// Writes the cache when this scan learned something (or found it absent or damaged):
    /// the records of the blobs `keep` names, and every record learned. Failures are ignored:
    /// the cache is an optimisation (a read-only layout simply has none).
    pub(super) fn save(self, root: &Path, keep: impl Fn(&str) -> bool) {
        if !self.dirty() {
            return;
        }
        // Kept records are copied as the file holds them; learned ones are encoded.
        let mut records: Vec<(&str, Encoded<'_>)> = self
            .table
            .iter()
            .filter(|&&slot| slot != 0)
            .filter_map(|&slot| {
                let (key, _, raw) = record_at(&self.bytes, slot as usize - 1)?;
                keep(key).then_some((key, Encoded::Raw(raw)))
            })
            .collect();
        records.extend(
            self.learned
                .iter()
                .map(|(d, r)| (d.as_str(), Encoded::Learned(r))),
        );
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

/// One record to write: its bytes as read, or one learned in this scan.
enum Encoded<'a> {
    Raw(&'a [u8]),
    Learned(&'a Record),
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

fn encode(records: &[(&str, Encoded<'_>)]) -> Vec<u8> {
    let mut body = Vec::with_capacity(records.len() * 256);
    for (digest, r) in records {
        let r = match r {
            Encoded::Raw(raw) => {
                body.extend_from_slice(raw);
                continue;
            }
            Encoded::Learned(r) => r,
        };
        put_str(&mut body, digest);
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

/// The table over the records of a cache file, or `None` when anything about the file is
/// wrong (checksum, header, a record that does not decode, a digest twice, bytes left over).
fn index(bytes: &[u8]) -> Option<Vec<u32>> {
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
    if count > r.0.len() as u64 / 25 {
        return None;
    }
    let count = usize::try_from(count).ok()?;
    let mut table = vec![0u32; (count * 2).next_power_of_two()];
    let mut at = HEADER;
    for _ in 0..count {
        let (key, _, raw) = record_at(content, at)?;
        let mask = table.len() - 1;
        let mut slot = slot_of(key.as_bytes()) & mask;
        while table[slot] != 0 {
            let (other, _, _) = record_at(content, table[slot] as usize - 1)?;
            if other == key {
                return None;
            }
            slot = (slot + 1) & mask;
        }
        table[slot] = u32::try_from(at + 1).ok()?;
        at += raw.len();
    }
    (at == content.len()).then_some(table)
}

/// Where the table puts a key: digests end in random hex, so their last bytes are hash enough.
fn slot_of(key: &[u8]) -> usize {
    let tail = &key[key.len().saturating_sub(16)..];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ key.len() as u64;
    for &b in tail {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    // Truncation is the point: the mask keeps the low bits.
    #[allow(clippy::cast_possible_truncation)]
    let slot = h as usize;
    slot
}

/// The offset of the record whose digest is `key`.
fn lookup(bytes: &[u8], table: &[u32], key: &[u8]) -> Option<usize> {
    if table.is_empty() {
        return None;
    }
    let mask = table.len() - 1;
    let mut slot = slot_of(key) & mask;
    loop {
        let at = (*table.get(slot)? as usize).checked_sub(1)?;
        let mut r = Reader(bytes.get(at..)?);
        if r.str()?.as_bytes() == key {
            return Some(at);
        }
        slot = (slot + 1) & mask;
    }
}

/// The record at `at`: its digest text, what it says, and its encoded bytes.
fn record_at(bytes: &[u8], at: usize) -> Option<(&str, Known<'_>, &[u8])> {
    let start = bytes.get(at..)?;
    let mut r = Reader(start);
    let key = r.str()?;
    let size = r.u64()?;
    let subject = match r.u8()? {
        0 => None,
        1 => Some((r.str()?, r.str()?, r.u64()?)),
        _ => return None,
    };
    let artifact_type = r.str()?;
    let annotations = match r.u8()? {
        0 => None,
        1 => {
            let n = r.u32()?;
            let pairs = r.0;
            for _ in 0..n {
                r.str()?;
                r.str()?;
            }
            Some((n, &pairs[..pairs.len() - r.0.len()]))
        }
        _ => return None,
    };
    let raw = &start[..start.len() - r.0.len()];
    let known = Known {
        size,
        subject,
        artifact_type,
        annotations,
    };
    Some((key, known, raw))
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

    /// What the file's table finds for `d`, decoded.
    fn found(bytes: &[u8], d: &Digest) -> Option<Record> {
        let table = index(bytes)?;
        let at = lookup(bytes, &table, d.as_str().as_bytes())?;
        let (_, k, _) = record_at(bytes, at)?;
        Some(Record {
            size: k.size,
            subject: k
                .subject
                .map(|(mt, d, s)| (mt.to_string(), Digest::parse(d).unwrap(), s)),
            artifact_type: k.artifact_type.to_string(),
            annotations: k.annotations().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            }),
        })
    }

    #[test]
    fn round_trip_and_every_damage_rejected() {
        let (d, r) = sample();
        let bytes = encode(&[(d.as_str(), Encoded::Learned(&r))]);
        assert_eq!(found(&bytes, &d), Some(r));
        // Every truncation and every flipped byte is caught.
        for n in 0..bytes.len() {
            assert!(index(&bytes[..n]).is_none(), "truncated to {n}");
            let mut bad = bytes.clone();
            bad[n] ^= 0x41;
            assert!(index(&bad).is_none(), "byte {n} flipped");
        }
        assert!(index(b"").is_none());
        assert!(index(&[0xff; 64]).is_none());
    }

    #[test]
    fn records_kept_are_copied_byte_for_byte_and_found_among_many() {
        let records: Vec<(Digest, Record)> = (0..500u32)
            .map(|i| {
                let (_, mut r) = sample();
                r.size = u64::from(i);
                if i % 3 == 0 {
                    r.annotations = None;
                }
                if i % 5 == 0 {
                    r.subject = None;
                }
                (Digest::of_bytes(Algorithm::Sha256, &i.to_le_bytes()), r)
            })
            .collect();
        let mut sorted: Vec<(&str, Encoded<'_>)> = records
            .iter()
            .map(|(d, r)| (d.as_str(), Encoded::Learned(r)))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = encode(&sorted);
        for (d, r) in &records {
            assert_eq!(found(&bytes, d).as_ref(), Some(r));
        }
        let absent = Digest::of_bytes(Algorithm::Sha256, b"absent");
        assert!(found(&bytes, &absent).is_none());
        // Written again from the table (as a save that keeps every record does).
        let table = index(&bytes).unwrap();
        let mut again: Vec<(&str, Encoded<'_>)> = table
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| {
                let (k, _, raw) = record_at(&bytes, s as usize - 1).unwrap();
                (k, Encoded::Raw(raw))
            })
            .collect();
        again.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(encode(&again), bytes);
    }

    #[test]
    fn checksummed_garbage_is_rejected() {
        // A valid checksum over records that do not decode (a count beyond the body, a bad
        // flag) is still rejected, without a huge allocation; a record under a name that is
        // no digest is never found.
        let (d, r) = sample();
        let good = encode(&[(d.as_str(), Encoded::Learned(&r))]);
        let content = &good[..good.len() - 4];
        let checksummed = |edit: fn(&mut Vec<u8>)| {
            let mut c = content.to_vec();
            edit(&mut c);
            let crc = crc32fast::hash(&c);
            c.extend_from_slice(&crc.to_le_bytes());
            c
        };
        for edit in [
            |c: &mut Vec<u8>| {
                c[MAGIC.len() + 4..MAGIC.len() + 12].copy_from_slice(&u64::MAX.to_le_bytes());
            },
            |c: &mut Vec<u8>| c[HEADER + 4 + 71 + 8] = 7,
        ] {
            assert!(index(&checksummed(edit)).is_none());
        }
        let renamed = checksummed(|c: &mut Vec<u8>| c[HEADER + 4 + 6] = b'/');
        assert!(index(&renamed).is_some());
        assert!(found(&renamed, &d).is_none());
        // And the unedited content with its checksum decodes (so the edits are what failed).
        assert!(found(&good, &d).is_some());
    }

    #[test]
    fn a_digest_twice_rejects_the_file() {
        let (d, r) = sample();
        let twice = encode(&[
            (d.as_str(), Encoded::Learned(&r)),
            (d.as_str(), Encoded::Learned(&r)),
        ]);
        assert!(index(&twice).is_none());
    }
}
