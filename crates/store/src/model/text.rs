//! One pass over the text of `index.json`: the top-level members, and each entry decoded
//! straight from the shared text into its few hot fields, with no copy of its JSON and no map
//! per entry. It accepts only a subset of JSON it fully checks (and hands every string holding a
//! `\u` escape to `serde_json`), answering `None` for anything else; the caller then uses the
//! map reader, which alone decides what is rejected and with which error.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Descriptor, RawEntry, Repr, Str};
use crate::digest::Digest;

/// Deeper than this, a value is left to the map reader (whose recursion limit is 128 for the
/// whole document); far above any real descriptor or annotation value.
const MAX_DEPTH: usize = 32;

/// A string's content (between its quotes) in the text.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Holds a backslash.
    escaped: bool,
    /// Holds only the escapes `serde_json` writes itself (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
    /// `\f`), so the text is what serializing the decoded string writes.
    plain: bool,
}

/// A position in JSON text known to be UTF-8.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        self.text.get(start..end)
    }

    /// Skips whitespace; true when there was some.
    fn ws(&mut self) -> bool {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
        self.at != start
    }

    /// The string at the cursor, checked as JSON does (no raw control character, only valid
    /// escapes; a `\u` escape's surrogates are `serde_json`'s to check, as `plain` is false).
    fn string(&mut self) -> Option<Span> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let (mut escaped, mut plain) = (false, true);
        loop {
            self.at = plain_run(bytes, self.at);
            let c = *bytes.get(self.at)?;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match *bytes.get(self.at + 1)? {
                        b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => self.at += 2,
                        b'/' => {
                            plain = false;
                            self.at += 2;
                        }
                        b'u' => {
                            plain = false;
                            let hex = bytes.get(self.at + 2..self.at + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1;
        Some(Span {
            start,
            end,
            escaped,
            plain,
        })
    }

    /// The number at the cursor, by JSON's grammar; true when it is an integer (no fraction,
    /// no exponent).
    fn number(&mut self) -> Option<bool> {
        let digits = |c: &mut Self| {
            let start = c.at;
            while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                c.at += 1;
            }
            (c.at > start).then_some(())
        };
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        let mut integer = true;
        if self.eat(b'.').is_some() {
            integer = false;
            digits(self)?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            digits(self)?;
        }
        Some(integer)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.as_bytes().get(self.at..end)? == word.as_bytes()).then(|| self.at = end)
    }

    /// A scalar (string, number, `true`, `false`, `null`) in the compact form `serde_json`
    /// writes back as read: no exponent, no escape it would write differently.
    fn canonical_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string()?.plain.then_some(()),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => {
                let start = self.at;
                self.number()?;
                // `serde_json` writes `1E5` as `1e+5`: keep the text only without an exponent.
                let text = self.slice(start, self.at)?;
                (!text.contains(['e', 'E'])).then_some(())
            }
        }
    }

    /// Skips any JSON value (whitespace inside allowed), checking its syntax.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'{' => self.skip_list(b'}', |c| {
                c.string()?;
                c.ws();
                c.eat(b':')?;
                c.ws();
                c.skip_value(depth + 1)
            }),
            b'[' => self.skip_list(b']', |c| c.skip_value(depth + 1)),
            _ => self.number().map(|_| ()),
        }
    }

    /// After a list element: `Some(true)` past `close` (the list ended), `Some(false)` past a
    /// comma (another element follows), `None` on anything else.
    fn separator(&mut self, close: u8) -> Option<bool> {
        let next = self.peek()?;
        if next != b',' && next != close {
            return None;
        }
        self.at += 1;
        Some(next == close)
    }

    /// Skips an object or array whose opening byte is at the cursor: elements (each read by
    /// `element`) separated by commas up to `close`. One loop for both, so they cannot drift.
    fn skip_list(
        &mut self,
        close: u8,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.at += 1;
        self.ws();
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            self.ws();
            element(self)?;
            self.ws();
            if self.separator(close)? {
                return Some(());
            }
        }
    }

    /// A [`Str`] for `span`: its place when it holds no escape, else its decoded text.
    fn str_of(&self, span: Span) -> Option<Str> {
        if span.escaped {
            if !span.plain {
                return None;
            }
            let quoted = self.slice(span.start - 1, span.end + 1)?;
            return serde_json::from_str::<String>(quoted)
                .ok()
                .map(|s| Str::Owned(s.into_boxed_str()));
        }
        Some(Str::At(
            u32::try_from(span.start).ok()?,
            u32::try_from(span.end).ok()?,
        ))
    }
}

/// The first position from `at` holding `"`, `\\` or a control character (or the end), eight
/// bytes at a time: a digest or a media type is a few words, not dozens of byte steps.
fn plain_run(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte below 0x20, or equal to `"` or `\` (a zero byte after the xor), sets its
        // high bit in `hit`; bytes above 0x7f never do. No false negatives, so a chunk without
        // a hit is all plain string.
        let below = x.wrapping_sub(ONES * 0x20);
        let quote = x ^ (ONES * u64::from(b'"'));
        let slash = x ^ (ONES * u64::from(b'\\'));
        let hit = (below | quote.wrapping_sub(ONES) & !quote | slash.wrapping_sub(ONES) & !slash)
            & !x
            & HIGH;
        if hit != 0 {
            break;
        }
        at += 8;
    }
    while bytes
        .get(at)
        .is_some_and(|&b| b >= 0x20 && b != b'"' && b != b'\\')
    {
        at += 1;
    }
    at
}

/// At most this many keys per entry are checked for duplicates in place; an entry with more
/// is the map reader's.
const MAX_KEYS: usize = 16;

/// The hot fields of one entry, decoded from its compact text.
struct Scanned {
    digest: Digest,
    size: u64,
    media_type: Option<Str>,
    artifact_type: Option<Str>,
    annotations: Option<Vec<(Str, Str)>>,
}

/// One entry at the cursor, when it is compact JSON serializing back to its own text and holds
/// only fields the fast reader knows: `mediaType`, `digest`, `size`, `artifactType`, `data`,
/// `annotations` (strings), and other fields whose values are scalars. `None` leaves the cursor
/// anywhere.
fn entry(c: &mut Cursor<'_>) -> Option<Scanned> {
    c.eat(b'{')?;
    let mut keys: [&str; MAX_KEYS] = [""; MAX_KEYS];
    let mut count = 0;
    let (mut digest, mut size) = (None, None);
    let (mut media_type, mut artifact_type, mut annotations) = (None, None, None);
    if c.peek()? == b'}' {
        return None;
    }
    loop {
        let key = c.string()?;
        if key.escaped || count == MAX_KEYS {
            return None;
        }
        let name = c.slice(key.start, key.end)?;
        if keys[..count].contains(&name) {
            return None;
        }
        keys[count] = name;
        count += 1;
        c.eat(b':')?;
        match name {
            "digest" => {
                let s = c.string()?;
                if s.escaped {
                    return None;
                }
                digest = Some(Digest::parse(c.slice(s.start, s.end)?).ok()?);
            }
            "size" => {
                let start = c.at;
                if !c.number()? {
                    return None;
                }
                // As `Value::as_u64` reads a number with arbitrary precision: its text as a u64.
                size = Some(c.slice(start, c.at)?.parse::<u64>().ok()?);
            }
            "mediaType" => {
                let span = c.string()?;
                media_type = Some(c.str_of(span)?);
            }
            "artifactType" => {
                let span = c.string()?;
                artifact_type = Some(c.str_of(span)?);
            }
            "data" => {
                if !c.string()?.plain {
                    return None;
                }
            }
            "annotations" => annotations = Some(string_map(c)?),
            "urls" | "platform" => return None,
            _ => c.canonical_scalar()?,
        }
        if c.separator(b'}')? {
            break;
        }
    }
    Some(Scanned {
        digest: digest?,
        size: size?,
        media_type,
        artifact_type,
        annotations,
    })
}

/// A compact object of strings without duplicate keys, as a list.
fn string_map(c: &mut Cursor<'_>) -> Option<Vec<(Str, Str)>> {
    c.eat(b'{')?;
    let mut out = Vec::new();
    if c.eat(b'}').is_some() {
        return Some(out);
    }
    loop {
        let span = c.string()?;
        let key = c.str_of(span)?;
        c.eat(b':')?;
        let span = c.string()?;
        let value = c.str_of(span)?;
        let name = key.get(c.text);
        if out.iter().any(|(k, _): &(Str, Str)| k.get(c.text) == name) {
            return None;
        }
        out.push((key, value));
        if c.separator(b'}')? {
            return Some(out);
        }
    }
}

/// The descriptor of the entry at the cursor: kept as its place in `src` when [`entry`] takes
/// it, else skipped and judged by the map reader's rules for one descriptor. `None` when that
/// rejects it (the whole index is then the map reader's).
fn descriptor(c: &mut Cursor<'_>, src: &Arc<String>) -> Option<(Descriptor, bool)> {
    let start = c.at;
    if let Some(s) = entry(c) {
        let repr = Repr::Raw(RawEntry {
            src: Arc::clone(src),
            start: u32::try_from(start).ok()?,
            end: u32::try_from(c.at).ok()?,
            media_type: s.media_type,
            artifact_type: s.artifact_type,
            annotations: s.annotations,
            fields: std::sync::OnceLock::new(),
        });
        return Some((Descriptor::from_parts(s.digest, s.size, repr), true));
    }
    c.at = start;
    c.skip_value(2)?;
    let value = parse_value(c.slice(start, c.at)?)?;
    Descriptor::from_value(value).ok().map(|d| (d, false))
}

/// `text` parsed as the map reader parses it.
fn parse_value(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

/// The descriptor whose text is `part`, a slice of `src` (one inside a manifest blob), kept as
/// its place in `src` when [`entry`] takes it.
pub(super) fn descriptor_in(src: &Arc<String>, part: &str) -> Option<Descriptor> {
    let start = (part.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    // The slice must be the very bytes of `src` at that place.
    if !src.get(start..end).is_some_and(|t| std::ptr::eq(t, part)) {
        return None;
    }
    let mut c = Cursor {
        text: src.as_str(),
        at: start,
    };
    let s = entry(&mut c)?;
    if c.at != end {
        return None;
    }
    let repr = Repr::Raw(RawEntry {
        src: Arc::clone(src),
        start: u32::try_from(start).ok()?,
        end: u32::try_from(end).ok()?,
        media_type: s.media_type,
        artifact_type: s.artifact_type,
        annotations: s.annotations,
        fields: std::sync::OnceLock::new(),
    });
    Some(Descriptor::from_parts(s.digest, s.size, repr))
}

/// What [`index`] read: every top-level field but the entries (`manifests` a null placeholder
/// where it stood), the entries, and whether serializing them compactly gives `src` back.
pub(super) struct ReadIndex {
    pub(super) fields: Map<String, Value>,
    pub(super) manifests: Vec<Descriptor>,
    pub(super) exact: bool,
}

/// The index `src` holds, read in one pass; `None` for anything the map reader must judge.
pub(super) fn index(src: &Arc<String>) -> Option<ReadIndex> {
    let mut c = Cursor {
        text: src.as_str(),
        at: 0,
    };
    let mut exact = !c.ws();
    c.eat(b'{')?;
    exact &= !c.ws();
    let mut fields = Map::new();
    let mut manifests = None;
    let mut seen_manifests = false;
    if c.eat(b'}').is_none() {
        loop {
            exact &= !c.ws();
            let span = c.string()?;
            let key = if span.escaped {
                exact = false;
                serde_json::from_str::<String>(c.slice(span.start - 1, span.end + 1)?).ok()?
            } else {
                c.slice(span.start, span.end)?.to_owned()
            };
            exact &= !c.ws();
            c.eat(b':')?;
            exact &= !c.ws();
            if key == "manifests" {
                // A later duplicate wins, as in a map.
                exact &= !seen_manifests;
                seen_manifests = true;
                let (list, list_exact) = entries(&mut c, src)?;
                exact &= list_exact;
                manifests = Some(list);
                fields.insert(key, Value::Null);
            } else {
                let start = c.at;
                c.skip_value(1)?;
                let raw = c.slice(start, c.at)?;
                let value = parse_value(raw)?;
                exact &= serde_json::to_string(&value).is_ok_and(|s| s == raw);
                exact &= fields.insert(key, value).is_none();
            }
            exact &= !c.ws();
            if c.separator(b'}')? {
                break;
            }
        }
    }
    exact &= !c.ws();
    if c.at != src.len() {
        return None;
    }
    exact &= seen_manifests && manifests.is_some();
    Some(ReadIndex {
        fields,
        manifests: manifests.unwrap_or_default(),
        exact,
    })
}

/// The `manifests` array (or `null`) at the cursor; true when it is compact and every entry
/// is kept as its text.
fn entries(c: &mut Cursor<'_>, src: &Arc<String>) -> Option<(Vec<Descriptor>, bool)> {
    if c.literal("null").is_some() {
        return Some((Vec::new(), false));
    }
    c.eat(b'[')?;
    let mut exact = !c.ws();
    let mut list = Vec::new();
    if c.eat(b']').is_some() {
        return Some((list, exact));
    }
    loop {
        exact &= !c.ws();
        let (d, kept) = descriptor(c, src)?;
        exact &= kept;
        list.push(d);
        exact &= !c.ws();
        if c.separator(b']')? {
            return Some((list, exact));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> bool {
        Cursor { text, at: 0 }.canonical_scalar().is_some()
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for good in ["0", "-0", "12", "1.50", "-3.25"] {
            assert!(scalar(good), "{good}");
        }
        for bad in ["01", "-", "1.", ".5", "+1", "1e5", "1E5", "1e+5", "-a"] {
            let mut c = Cursor { text: bad, at: 0 };
            let whole = c.canonical_scalar().is_some() && c.at == bad.len();
            assert!(!whole, "{bad}");
        }
    }

    /// The word-at-a-time scan stops where a byte-at-a-time scan stops.
    #[test]
    fn plain_runs_end_where_bytes_say() {
        let alphabet = [
            b'a', b'"', b'\\', 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']',
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = usize::try_from(seed % 40).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = (seed >> (i % 60)) % 64;
                    let pick = usize::try_from(pick).unwrap();
                    if pick < alphabet.len() {
                        alphabet[pick]
                    } else {
                        b'x'
                    }
                })
                .collect();
            let naive = bytes
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(bytes.len());
            assert_eq!(plain_run(&bytes, 0), naive, "{bytes:?}");
        }
    }

    #[test]
    fn strings_follow_the_grammar() {
        assert!(scalar(r#""a \" \\ \n b""#));
        assert!(!scalar(r#""\/""#));
        assert!(!scalar(r#""\u0041""#));
        assert!(!scalar("\"a\u{1}b\""));
        assert!(!scalar(r#""\x""#));
        assert!(!scalar(r#""open"#));
    }
}
