//! The fast reader: objects split into members and descriptors decoded straight from JSON text,
//! without an order-preserving map per object. It takes only what it can write back byte for
//! byte and answers `None` for anything else; the caller then uses the map reader, which alone
//! decides what is accepted and with which error. So the two readers cannot disagree.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Descriptor, RawEntry, Repr};
use crate::digest::Digest;

/// An object key, borrowed from the input when it holds no escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The members of one JSON object, in order, each value as its text.
pub(super) struct Members<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(MembersVisitor)
    }
}

/// The members of the object `bytes` holds, or `None` when it is not one JSON object.
pub(super) fn members(bytes: &[u8]) -> Option<Members<'_>> {
    serde_json::from_slice(bytes).ok()
}

/// The elements of the array `raw` holds, or `None` when it is not an array.
pub(super) fn elements(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if !raw.get().starts_with('[') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// The string `raw` holds, or `None` when it is not a string.
pub(super) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The value `raw` holds, parsed as the map reader would parse it inside the whole document:
/// `None` when it nests deeper than [`MAX_DEPTH`], where the whole document's recursion limit
/// could decide differently than the fragment's.
pub(super) fn value(raw: &RawValue) -> Option<serde_json::Value> {
    if depth_exceeds(raw.get(), MAX_DEPTH) {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// True when the map reader would parse `raw` too: the fast split checks the syntax but
/// neither the nesting limit nor that `\u` escapes pair their surrogates.
pub(super) fn valid(raw: &RawValue) -> bool {
    let text = raw.get();
    if !text.starts_with(['{', '[', '"']) {
        return true;
    }
    if text.contains("\\u") || depth_exceeds(text, MAX_DEPTH) {
        return value(raw).is_some();
    }
    true
}

/// Far below `serde_json`'s recursion limit (128), far above any real manifest's nesting.
const MAX_DEPTH: usize = 32;

/// True when `text` nests objects and arrays more than `limit` deep.
fn depth_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &c in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// True when some key appears twice (the map reader keeps the last; the text keeps both).
pub(super) fn has_duplicates(keys: &mut Vec<&str>) -> bool {
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// True when serializing the parsed `text` compactly gives `text` back: no whitespace between
/// tokens, only the escapes `serde_json` writes itself, no exponent (it writes `1e+5`
/// for `1E5`); and it nests no deeper than [`MAX_DEPTH`].
fn canonical(text: &str) -> bool {
    let b = text.as_bytes();
    let mut in_string = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') => i += 1,
                    _ => return false,
                },
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b' ' | b'\n' | b'\r' | b'\t' | b'E' => return false,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return false;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                b'e' if i > 0 && b[i - 1].is_ascii_digit() => return false,
                _ => {}
            }
        }
        i += 1;
    }
    true
}

/// A descriptor read from its text, when it is canonical and holds only fields the fast
/// reader knows: `mediaType`, `digest`, `size`, `artifactType`, `data`, `annotations`, and
/// other fields whose values are scalars.
pub(super) fn descriptor(raw: &RawValue) -> Option<Descriptor> {
    let text = raw.get();
    if !text.starts_with('{') || !canonical(text) {
        return None;
    }
    let Members(members) = serde_json::from_str(text).ok()?;
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
    if has_duplicates(&mut keys) {
        return None;
    }
    let (mut digest, mut size) = (None, None);
    let (mut media_type, mut artifact_type, mut annotations) = (None, None, None);
    for (key, value) in &members {
        match key.as_ref() {
            "digest" => digest = Some(Digest::parse(&string(value)?).ok()?),
            // As `Value::as_u64` reads a number with arbitrary precision: its text as a u64.
            "size" => size = Some(value.get().parse::<u64>().ok()?),
            "mediaType" => media_type = Some(string(value)?.into_owned()),
            "artifactType" => artifact_type = Some(string(value)?.into_owned()),
            "data" => {
                string(value)?;
            }
            "annotations" => annotations = Some(string_map(value)?),
            "urls" | "platform" => return None,
            _ => {
                if value.get().starts_with(['{', '[']) {
                    return None;
                }
            }
        }
    }
    Some(Descriptor::from_parts(
        digest?,
        size?,
        Repr::Raw(Box::new(RawEntry {
            text: raw.to_owned(),
            media_type,
            artifact_type,
            annotations,
            annotations_map: OnceLock::new(),
            fields: OnceLock::new(),
        })),
    ))
}

/// An object of strings without duplicate keys, as a list.
fn string_map(raw: &RawValue) -> Option<Vec<(String, String)>> {
    if !raw.get().starts_with('{') {
        return None;
    }
    let Members(members) = serde_json::from_str(raw.get()).ok()?;
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
    if has_duplicates(&mut keys) {
        return None;
    }
    members
        .iter()
        .map(|(k, v)| Some((k.to_string(), string(v)?.into_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text() {
        assert!(!canonical(r#"{"size":1e-5}"#));
        assert!(canonical(
            r#"{"a":[1,2.5,-0,true,false,null],"b":"x \" \\ \n y"}"#
        ));
        assert!(!canonical(r#"{"a": 1}"#));
        assert!(!canonical(r#"{"a":"\u0041"}"#));
        assert!(!canonical(r#"{"a":"\/"}"#));
        assert!(!canonical(r#"{"a":1E5}"#));
    }
}
