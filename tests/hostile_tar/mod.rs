//! Hand-built tar archives for hostile-input tests: tar writers refuse most of what those
//! tests need (`..` names, absolute names, links out, devices).

#![allow(dead_code)]

use std::io::Write;

/// One member of a hand-built tar: tar writers refuse most of what these tests need.
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A member of another type flag (`3` character device, `6` fifo).
    Special(&'a str, u8),
}

pub fn header(name: &str, flag: u8, size: u64, link: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

pub fn tar(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        let (name, flag, data, link): (&str, u8, &[u8], &str) = match m {
            Member::File(n, d) => (n, b'0', d, ""),
            Member::Dir(n) => (n, b'5', b"", ""),
            Member::Symlink(n, l) => (n, b'2', b"", l),
            Member::HardLink(n, l) => (n, b'1', b"", l),
            Member::Special(n, f) => (n, *f, b"", ""),
        };
        out.extend_from_slice(&header(name, flag, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A tar+gzip written as it goes, for members too large to hold in memory (a run of zeros
/// compresses to almost nothing: the shape of a decompression bomb).
pub struct GzTar(flate2::write::GzEncoder<Vec<u8>>);

impl GzTar {
    pub fn new() -> Self {
        GzTar(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ))
    }

    pub fn members(mut self, members: &[Member<'_>]) -> Self {
        let bytes = tar(members);
        // Without the end-of-archive marker: more members follow.
        self.0.write_all(&bytes[..bytes.len() - 1024]).unwrap();
        self
    }

    /// A file member `name` whose header says `len` bytes, all of them zeros.
    pub fn zeros(mut self, name: &str, len: u64) -> Self {
        self.0.write_all(&header(name, b'0', len, "")).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64);
            self.0.write_all(&chunk[..n as usize]).unwrap();
            left -= n;
        }
        let padding = (512 - len % 512) % 512;
        self.0.write_all(&chunk[..padding as usize]).unwrap();
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.0.write_all(&[0u8; 1024]).unwrap();
        self.0.finish().unwrap()
    }
}
