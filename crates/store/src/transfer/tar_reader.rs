//! A strict streaming reader for untrusted tar archives.
//!
//! It parses each 512-byte header with [`tar::Header`] but drives the stream itself, so that it
//! can refuse what a general-purpose reader tolerates: extension headers (GNU long names, PAX
//! records) larger than a small cap (the `tar` crate reads them into memory whatever their size),
//! checksum errors, a second long name for one member, and an archive that ends without its
//! end-of-archive marker (a truncated download).

use std::io::{self, Read};

/// Longest path (GNU long name or PAX `path`) accepted.
const MAX_NAME: u64 = 4096;
/// Largest PAX extension block accepted.
const MAX_PAX: u64 = 1 << 20;
const BLOCK: u64 = 512;

/// What kind of member a header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    /// Anything else, by its type flag (devices, fifos, sparse files, ...).
    Other(u8),
}

impl Kind {
    /// A name for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::File => "regular file".into(),
            Kind::Dir => "directory".into(),
            Kind::Symlink(_) => "symbolic link".into(),
            Kind::HardLink(_) => "hard link".into(),
            Kind::Other(b'3') => "character device".into(),
            Kind::Other(b'4') => "block device".into(),
            Kind::Other(b'6') => "fifo".into(),
            Kind::Other(b'S') => "sparse file".into(),
            Kind::Other(f) => format!("member of type {:?}", *f as char),
        }
    }
}

/// One member's header.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// The permission bits the archive gives the member.
    pub mode: u32,
}

/// Why an archive cannot be read.
#[derive(Debug)]
pub(crate) enum TarError {
    /// The stream ended in the middle of the archive.
    Truncated(String),
    /// The archive breaks the format.
    Format(String),
    /// Reading the input failed.
    Io(io::Error),
}

impl std::fmt::Display for TarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TarError::Truncated(s) => write!(f, "truncated archive: {s}"),
            TarError::Format(s) => write!(f, "not a valid tar archive: {s}"),
            TarError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl TarError {
    /// The typed problem of a truncated or malformed archive (callers handle `Io` first; it
    /// would read as its text).
    pub(crate) fn into_problem(self) -> crate::error::TarProblem {
        use crate::error::TarProblem;
        match self {
            TarError::Truncated(detail) => TarProblem::Truncated { detail },
            TarError::Format(detail) => TarProblem::Format { detail },
            TarError::Io(e) => TarProblem::Format {
                detail: e.to_string(),
            },
        }
    }
}

/// Reads members one after the other; each member's data is read through [`TarReader::data`]
/// (what is left unread is skipped by the next [`TarReader::next`]).
pub(crate) struct TarReader<R> {
    inner: R,
    offset: u64,
    remaining: u64,
    padding: u64,
    ended: bool,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        TarReader {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            ended: false,
        }
    }

    /// The next member, or `None` at the end-of-archive marker.
    pub(crate) fn next(&mut self) -> Result<Option<Head>, TarError> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Vec<u8>> = None;
        loop {
            let at = self.offset;
            let mut block = [0u8; BLOCK as usize];
            match self.read_full(&mut block)? {
                0 if long_name.is_none() && long_link.is_none() && pax.is_none() => {
                    return Err(TarError::Truncated(format!(
                        "the archive ends at byte {at} without its end-of-archive marker"
                    )));
                }
                0 => {
                    return Err(TarError::Truncated(format!(
                        "the archive ends at byte {at}, after an extension header and before its member"
                    )));
                }
                n if n < block.len() && at == 0 => {
                    return Err(TarError::Format(format!(
                        "the input is {n} bytes, too short for a tar archive"
                    )));
                }
                n if n < block.len() => {
                    return Err(TarError::Truncated(format!(
                        "the archive ends inside a header at byte {at}"
                    )));
                }
                _ => {}
            }
            if block.iter().all(|&b| b == 0) {
                if long_name.is_some() || long_link.is_some() || pax.is_some() {
                    return Err(TarError::Format(format!(
                        "an extension header at byte {at} describes no member"
                    )));
                }
                self.ended = true;
                return Ok(None);
            }
            check_checksum(&block, at).map_err(|e| {
                match e {
                TarError::Format(_) if at == 0 => TarError::Format(
                    "the input does not start with a tar header (nor with gzip or zstd magic bytes)"
                        .into(),
                ),
                other => other,
            }
            })?;
            let header = tar::Header::from_byte_slice(&block);
            let flag = block[156];
            let size = header
                .entry_size()
                .map_err(|e| TarError::Format(format!("header at byte {at}: {e}")))?;
            match flag {
                b'L' => {
                    if long_name.is_some() {
                        return Err(TarError::Format(format!(
                            "two long names for one member at byte {at}"
                        )));
                    }
                    long_name = Some(trim_nul(self.read_meta(size, MAX_NAME, at)?));
                }
                b'K' => {
                    if long_link.is_some() {
                        return Err(TarError::Format(format!(
                            "two long link names for one member at byte {at}"
                        )));
                    }
                    long_link = Some(trim_nul(self.read_meta(size, MAX_NAME, at)?));
                }
                b'x' => {
                    if pax.is_some() {
                        return Err(TarError::Format(format!(
                            "two PAX headers for one member at byte {at}"
                        )));
                    }
                    pax = Some(self.read_meta(size, MAX_PAX, at)?);
                }
                b'g' => {
                    // Global PAX records (comments, mtimes) change nothing we use.
                    self.read_meta(size, MAX_PAX, at)?;
                }
                _ => {
                    let mut name = long_name
                        .take()
                        .unwrap_or_else(|| header.path_bytes().into_owned());
                    let mut link = long_link
                        .take()
                        .or_else(|| header.link_name_bytes().map(std::borrow::Cow::into_owned));
                    let mut size = size;
                    let mode = header
                        .mode()
                        .map_err(|e| TarError::Format(format!("header at byte {at}: {e}")))?;
                    if let Some(records) = pax.take() {
                        for rec in tar::PaxExtensions::new(&records) {
                            let rec = rec.map_err(|e| {
                                TarError::Format(format!("PAX header before byte {at}: {e}"))
                            })?;
                            match rec.key_bytes() {
                                b"path" => name = rec.value_bytes().to_vec(),
                                b"linkpath" => link = Some(rec.value_bytes().to_vec()),
                                b"size" => {
                                    size = std::str::from_utf8(rec.value_bytes())
                                        .ok()
                                        .and_then(|s| s.parse::<u64>().ok())
                                        .ok_or_else(|| {
                                            TarError::Format(format!(
                                                "PAX size record before byte {at} is not a number"
                                            ))
                                        })?;
                                }
                                _ => {}
                            }
                        }
                    }
                    let kind = match flag {
                        b'0' | b'\0' | b'7' => Kind::File,
                        b'5' => Kind::Dir,
                        b'2' => Kind::Symlink(link.unwrap_or_default()),
                        b'1' => Kind::HardLink(link.unwrap_or_default()),
                        other => Kind::Other(other),
                    };
                    // A directory's size is not data in any tar we accept.
                    self.remaining = size;
                    self.padding = padding(size)?;
                    return Ok(Some(Head {
                        name,
                        kind,
                        size,
                        mode,
                    }));
                }
            }
        }
    }

    /// The input after the end-of-archive marker (what follows it is the caller's to check).
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the current member's data.
    pub(crate) fn data(&mut self) -> Data<'_, R> {
        Data { tar: self }
    }

    fn read_meta(&mut self, size: u64, cap: u64, at: u64) -> Result<Vec<u8>, TarError> {
        if size > cap {
            return Err(TarError::Format(format!(
                "extension header at byte {at} declares {size} bytes (more than {cap})"
            )));
        }
        let mut buf = vec![0u8; size as usize];
        if self.read_full(&mut buf)? < buf.len() {
            return Err(TarError::Truncated(format!(
                "the archive ends inside the extension header at byte {at}"
            )));
        }
        let pad = padding(size)?;
        self.skip(pad, at)?;
        Ok(buf)
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        let at = self.offset;
        self.remaining = 0;
        self.padding = 0;
        self.skip(n, at)
    }

    fn skip(&mut self, n: u64, at: u64) -> Result<(), TarError> {
        if n == 0 {
            return Ok(());
        }
        let copied =
            io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(TarError::Io)?;
        self.offset += copied;
        if copied < n {
            return Err(TarError::Truncated(format!(
                "the archive ends inside the member data after byte {at}"
            )));
        }
        Ok(())
    }

    /// Fills `buf` as far as the input goes; returns how much was read.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TarError::Io(e)),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }
}

/// The data of the current member.
pub(crate) struct Data<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.tar.remaining).unwrap_or(usize::MAX));
        let n = self.tar.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member's data (truncated)",
            ));
        }
        self.tar.remaining -= n as u64;
        self.tar.offset += n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> Result<u64, TarError> {
    let rem = size % BLOCK;
    let pad = if rem == 0 { 0 } else { BLOCK - rem };
    size.checked_add(pad)
        .map(|_| pad)
        .ok_or_else(|| TarError::Format(format!("member size {size} overflows")))
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// The header checksum: the sum of the header's bytes with the checksum field as spaces,
/// unsigned (POSIX) or signed (old tars).
fn check_checksum(block: &[u8; BLOCK as usize], at: u64) -> Result<(), TarError> {
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(char::is_ascii_digit)
        .collect();
    let stored = u32::from_str_radix(&text, 8)
        .map_err(|_| TarError::Format(format!("header at byte {at} has no valid checksum")))?;
    let mut unsigned: u32 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i64::from(i8::from_ne_bytes([b]));
    }
    if stored != unsigned && i64::from(stored) != signed {
        return Err(TarError::Format(format!(
            "header checksum mismatch at byte {at}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
        let mut out = b.into_inner().unwrap();
        // Without the end-of-archive marker the builder appends.
        out.truncate(out.len() - 1024);
        out
    }

    #[test]
    fn reads_members_and_long_names() {
        let long = format!("blobs/sha512/{}", "a".repeat(128));
        let mut archive = member("a.txt", b"hello");
        archive.extend(member(&long, b"x"));
        archive.extend([0u8; 1024]);
        let mut r = TarReader::new(&archive[..]);
        let h = r.next().unwrap().unwrap();
        assert_eq!((h.name.as_slice(), h.size), (&b"a.txt"[..], 5));
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let h = r.next().unwrap().unwrap();
        assert_eq!(h.name, long.as_bytes());
        assert!(r.next().unwrap().is_none());
    }

    #[test]
    fn refuses_truncation_and_bad_checksums() {
        let archive = member("a.txt", b"hello");
        // no end marker
        let mut r = TarReader::new(&archive[..]);
        r.next().unwrap();
        assert!(matches!(r.next(), Err(TarError::Truncated(_))));
        // cut inside the data
        let mut r = TarReader::new(&archive[..514]);
        r.next().unwrap();
        assert!(r.data().read_to_end(&mut Vec::new()).is_err());
        // checksum
        let mut bad = archive.clone();
        bad[0] = b'b';
        assert!(matches!(
            TarReader::new(&bad[..]).next(),
            Err(TarError::Format(_))
        ));
    }

    #[test]
    fn refuses_huge_extension_headers() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(1 << 40);
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
        h.set_cksum();
        let mut archive = h.as_bytes().to_vec();
        archive.extend([0u8; 1024]);
        assert!(matches!(
            TarReader::new(&archive[..]).next(),
            Err(TarError::Format(_))
        ));
    }
}
