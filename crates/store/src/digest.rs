//! Content digests: parsing and validation per the image-spec grammar, streaming hashers, and the
//! one mapping from a digest to a path under `blobs/`.
//!
//! A [`Digest`] can only be built by parsing or hashing, so holding one proves the string follows
//! the grammar: `sha256:../../etc/passwd` is rejected here and can never reach the file system.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use sha2::Digest as _;

use crate::error::{DigestProblem, Error, Result, Subject};

/// Longest digest string we accept; far above any real algorithm, small enough to be a file name.
const MAX_DIGEST_LEN: usize = 255;

/// The algorithms ocistow can compute. Other algorithms that fit the grammar parse, but cannot be
/// written or verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default for everything ocistow writes.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// A fresh streaming hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Algorithm::from_name(s).ok_or_else(|| Error::UnsupportedAlgorithm {
            algorithm: s.to_string(),
        })
    }
}

/// A validated digest, `algorithm:encoded`.
///
/// ```
/// use ocistow_store::Digest;
/// let d: Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".parse().unwrap();
/// assert_eq!(d.algorithm(), "sha256");
/// assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
/// assert!("sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A".parse::<Digest>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// Shared, so a clone (graphs, plans and maps keyed by digest hold many) is a refcount.
    text: Arc<str>,
    colon: usize,
}

/// Whether every byte is `0-9` or `a-f`, without an early exit so the loop vectorizes.
fn is_lowercase_hex(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6))
    })
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidDigest {
            input: input.to_string(),
            reason,
        };
        if input.len() > MAX_DIGEST_LEN {
            return Err(bad(DigestProblem::TooLong));
        }
        let (alg, encoded) = input
            .split_once(':')
            .ok_or_else(|| bad(DigestProblem::NoColon))?;
        // The common case in one branch-free pass (an index holds one digest per entry, and the
        // checks below were a third of parsing it); anything else gets the checks in order,
        // so the error reported stays the same.
        if Algorithm::from_name(alg).is_some_and(|known| encoded.len() == known.hex_len())
            && is_lowercase_hex(encoded.as_bytes())
        {
            return Ok(Digest {
                text: input.into(),
                colon: alg.len(),
            });
        }
        if !valid_algorithm(alg) {
            return Err(bad(DigestProblem::BadAlgorithm));
        }
        if encoded.is_empty()
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
        {
            return Err(bad(DigestProblem::BadEncoded));
        }
        if let Some(known) = Algorithm::from_name(alg) {
            if encoded.len() != known.hex_len() {
                return Err(bad(DigestProblem::WrongLength {
                    algorithm: alg.into(),
                    expected: known.hex_len(),
                    found: encoded.len(),
                }));
            }
            if !encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(bad(DigestProblem::NotLowercaseHex {
                    algorithm: alg.into(),
                }));
            }
        }
        Ok(Digest {
            text: input.into(),
            colon: alg.len(),
        })
    }

    /// The algorithm part, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The encoded part (the hex for sha256 and sha512).
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The whole digest string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The algorithm, if ocistow can compute it.
    pub fn known_algorithm(&self) -> Result<Algorithm> {
        self.algorithm().parse()
    }

    /// `blobs/<alg>/<encoded>` relative to the layout root. The only digest-to-path mapping.
    pub fn blob_path(&self) -> PathBuf {
        Path::new("blobs")
            .join(self.algorithm())
            .join(self.encoded())
    }

    /// A short form for messages, `sha256:0123456789ab`.
    pub fn short(&self) -> &str {
        let end = (self.colon + 13).min(self.text.len());
        &self.text[..end]
    }

    /// Hashes `bytes` with `algorithm`.
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = algorithm.hasher();
        h.update(bytes);
        h.finish()
    }

    /// Checks `bytes` against this digest (and fails for algorithms we cannot compute).
    pub fn verify_bytes(&self, bytes: &[u8], what: Subject) -> Result<()> {
        let actual = Digest::of_bytes(self.known_algorithm()?, bytes);
        if &actual != self {
            return Err(Error::DigestMismatch {
                what: what.into(),
                expected: self.clone(),
                actual,
            });
        }
        Ok(())
    }
}

fn valid_algorithm(alg: &str) -> bool {
    // [a-z0-9]+([+._-][a-z0-9]+)*
    !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty() && part.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
        })
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A hash map keyed by digest, hashed by [`DigestHashBuilder`] (cheaper than `SipHash`, still
/// seeded per process).
pub type DigestMap<V> = HashMap<Digest, V, DigestHashBuilder>;

/// A hash set of digests, hashed by [`DigestHashBuilder`].
pub type DigestSet = HashSet<Digest, DigestHashBuilder>;

/// Builds [`DigestHasher`]s with one random seed per process.
///
/// A digest's text is (for content ocistow hashed) already uniformly random, so a few
/// multiply-folds per 8 bytes spread it as well as `SipHash` does, at a fraction of the cost on
/// maps of 100,000 digests. The seed is random because `index.json` and manifests name any
/// digest their writer chose: without it, chosen digests could all land in one bucket.
#[derive(Clone, Copy, Debug)]
pub struct DigestHashBuilder {
    seed: u64,
}

impl Default for DigestHashBuilder {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            // The standard library's per-process random keys, drawn once.
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0) | 1
        });
        DigestHashBuilder { seed }
    }
}

impl BuildHasher for DigestHashBuilder {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher {
            state: self.seed,
            seed: self.seed,
        }
    }
}

/// The hasher of [`DigestMap`] and [`DigestSet`]: a seeded multiply-fold over every byte
/// hashed (fit for any key, fast for digests).
#[derive(Clone, Debug)]
pub struct DigestHasher {
    state: u64,
    seed: u64,
}

/// Multiplies into 128 bits and folds the halves: every input bit reaches every output bit.
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    // Truncations on purpose: the two halves of the product.
    #[allow(clippy::cast_possible_truncation)]
    let (lo, hi) = (full as u64, (full >> 64) as u64);
    lo ^ hi
}

/// An odd constant from the digits of pi, so the multiplier is never zero.
const FOLD: u64 = 0x243f_6a88_85a3_08d3;

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.state = fold_mul(self.state ^ u64::from_le_bytes(word), FOLD ^ self.seed);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length, so trailing zero bytes and shorter input differ.
            let tail = u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59);
            self.state = fold_mul(self.state ^ tail, FOLD ^ self.seed);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.state = fold_mul(self.state ^ u64::from(i) ^ 0x100, FOLD ^ self.seed);
    }

    fn write_usize(&mut self, i: usize) {
        self.state = fold_mul(self.state ^ i as u64, FOLD ^ self.seed);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.state, self.seed.rotate_left(32) | 1)
    }
}

/// A streaming hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// A SHA-256 state.
    Sha256(sha2::Sha256),
    /// A SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, to_hex(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, to_hex(&h.finalize())),
        };
        Digest {
            colon: alg.as_str().len(),
            text: format!("{}:{}", alg.as_str(), hex).into(),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// Wraps a reader, hashing and counting everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with `algorithm` what is read through it.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: algorithm.hasher(),
            count: 0,
        }
    }

    /// Bytes read so far and their digest.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Wraps a writer, hashing and counting everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing with `algorithm` what is written through it.
    pub fn new(inner: W, algorithm: Algorithm) -> Self {
        HashingWriter {
            inner,
            hasher: algorithm.hasher(),
            count: 0,
        }
    }

    /// The inner writer, the digest and the count of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_JSON: &str =
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    /// The one-pass check for the common case reports nothing itself: every other digest gets
    /// the checks in order, so each problem is still the one named.
    #[test]
    fn the_fast_path_keeps_each_problem_named() {
        let problem = |s: &str| match Digest::parse(s) {
            Err(Error::InvalidDigest { reason, .. }) => Some(reason),
            _ => None,
        };
        assert!(Digest::parse(EMPTY_JSON).is_ok());
        let hex = &EMPTY_JSON["sha256:".len()..];
        assert!(matches!(
            problem(&format!("sha256:{}", hex.to_uppercase())),
            Some(DigestProblem::NotLowercaseHex { .. })
        ));
        assert!(matches!(
            problem(&format!("sha256:{}", &hex[1..])),
            Some(DigestProblem::WrongLength { found: 63, .. })
        ));
        assert!(matches!(
            problem(&format!("sha256:{}=", &hex[1..])),
            Some(DigestProblem::NotLowercaseHex { .. })
        ));
        assert!(matches!(
            problem(&format!("sha256:{}/", &hex[1..])),
            Some(DigestProblem::BadEncoded)
        ));
        for (i, bad) in [b'/', b':', b'`', b'g', b'A', b'F'].into_iter().enumerate() {
            let mut s = EMPTY_JSON.as_bytes().to_vec();
            s[10 + i] = bad;
            let s = String::from_utf8(s).unwrap();
            assert!(Digest::parse(&s).is_err(), "{s} was accepted");
        }
        assert!(Digest::parse("sha256+x:abc").is_ok());
    }

    #[test]
    fn hashes_known_content() {
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha256, b"{}").as_str(),
            EMPTY_JSON
        );
        let d512 = Digest::of_bytes(Algorithm::Sha512, b"");
        assert!(d512.as_str().starts_with("sha512:cf83e1357eefb8bd"));
        assert!(Digest::parse(d512.as_str()).is_ok());
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:../../etc/passwd",
            "sha256:..",
            "sha256:abc/def",
            "SHA256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8aa",
            "sha512:abcd",
            "sha256:zz136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "a..b:abc",
            "sha256+:abc",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8/x",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn accepts_unknown_algorithms_that_fit_the_grammar() {
        let d = Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
            .unwrap();
        assert_eq!(d.algorithm(), "multihash+base58");
        assert!(matches!(
            d.known_algorithm(),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        assert!(d.verify_bytes(b"x", Subject::Blob(d.clone())).is_err());
    }

    #[test]
    fn digest_maps_find_what_they_hold() {
        let digests: Vec<Digest> = (0..1000u32)
            .map(|i| Digest::of_bytes(Algorithm::Sha256, &i.to_le_bytes()))
            .collect();
        let mut map = DigestMap::default();
        for (i, d) in digests.iter().enumerate() {
            map.insert(d.clone(), i);
        }
        assert_eq!(map.len(), digests.len());
        for (i, d) in digests.iter().enumerate() {
            assert_eq!(map.get(d), Some(&i));
        }
        let set: DigestSet = digests[..10].iter().cloned().collect();
        assert!(set.contains(&digests[3]) && !set.contains(&digests[10]));
        // Distinct keys that differ in one byte, or only in length, hash apart.
        let b = DigestHashBuilder::default();
        assert_ne!(b.hash_one("sha256:a"), b.hash_one("sha256:b"));
        assert_ne!(
            b.hash_one([0u8; 3].as_slice()),
            b.hash_one([0u8; 4].as_slice())
        );
    }

    #[test]
    fn blob_path_is_under_blobs() {
        let d = Digest::parse(EMPTY_JSON).unwrap();
        assert_eq!(
            d.blob_path(),
            Path::new(
                "blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
            )
        );
    }

    #[test]
    fn hashing_reader_and_writer_agree() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..], Algorithm::Sha256);
        let mut w = HashingWriter::new(Vec::new(), Algorithm::Sha256);
        io::copy(&mut r, &mut w).unwrap();
        let (d1, n1) = r.finish();
        let (out, d2, n2) = w.finish();
        assert_eq!((d1.clone(), n1), (d2, n2));
        assert_eq!(out, data);
        assert_eq!(d1, Digest::of_bytes(Algorithm::Sha256, &data));
    }
}
