//! The fast reader: objects split into members and descriptors decoded straight from JSON text,
//! without an order-preserving map per object. It takes only what it can write back byte for
//! byte and answers `None` for anything else; the caller then uses the map reader, which alone
//! decides what is accepted and with which error. So the two readers cannot disagree.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

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
