//! Seeded mutations: byte-level for any input, plus JSON and path tokens for text targets.

/// splitmix64: small, fast and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\0\xff\x7f\x80\"{}[]:,\\/.@-0123456789eE+ \n";

/// Tokens that reach deeper into JSON, digest and reference grammars than random bytes do.
const TOKENS: &[&str] = &[
    "\"",
    "{}",
    "[]",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "0.30000000000000000000000000000001",
    "\"sha256:",
    "sha512:",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "\"mediaType\":",
    "\"manifests\":",
    "\"layers\":",
    "\"config\":",
    "\"subject\":",
    "\"annotations\":",
    "\"size\":",
    "\"digest\":",
    "\"schemaVersion\":2",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "\\u0000",
    "\\ud800",
    "..",
    "/",
    "@",
    ":",
    "sha256-",
];

/// One to four mutations of `base`; `other` is spliced in sometimes.
pub fn mutate(rng: &mut Rng, base: &[u8], other: &[u8], text: bool) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(if text { 9 } else { 7 }) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                v.drain(start..end);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = v[start..end].to_vec();
                let at = rng.below(len);
                v.splice(at..at, chunk);
            }
            4 => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            7 => {
                let at = rng.below(len + 1);
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes().to_vec();
                v.splice(at..at, token);
            }
            _ => {
                // Deep nesting: what recursion-limited parsers must refuse, not overflow on.
                let at = rng.below(len + 1);
                let depth = 1 + rng.below(4096);
                let open = if rng.below(2) == 0 { b'[' } else { b'{' };
                v.splice(at..at, std::iter::repeat_n(open, depth));
            }
        }
    }
    v
}

/// Recomputes the checksum of every tar header found by walking `v` as a tar, so mutated
/// archives reach past the header check.
pub fn fix_tar_checksums(v: &mut [u8]) {
    let mut at = 0usize;
    while at + 512 <= v.len() {
        let block = &mut v[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            break;
        }
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(text.as_bytes());
        let size = std::str::from_utf8(&block[124..136])
            .ok()
            .and_then(|s| {
                u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()
            })
            .unwrap_or(0);
        let Some(next) = usize::try_from(size.div_ceil(512) * 512)
            .ok()
            .and_then(|data| at.checked_add(512)?.checked_add(data))
        else {
            break;
        };
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_mutants() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|_| mutate(&mut rng, b"{\"schemaVersion\":2}", b"[1,2]", true))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn checksums_are_fixed_after_a_mutation() {
        let mut block = vec![0u8; 512];
        block[..5].copy_from_slice(b"a.txt");
        block[124..136].copy_from_slice(b"00000000000\0");
        block[257..263].copy_from_slice(b"ustar\0");
        let mut archive = block.clone();
        archive.extend([0u8; 1024]);
        fix_tar_checksums(&mut archive);
        let stored = std::str::from_utf8(&archive[148..154]).unwrap();
        let mut sum: u32 = archive[..512].iter().map(|&b| u32::from(b)).sum();
        sum -= archive[148..156].iter().map(|&b| u32::from(b)).sum::<u32>();
        sum += 8 * u32::from(b' ');
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }
}
