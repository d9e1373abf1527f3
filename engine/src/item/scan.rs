//! The scanner a record is parsed with: it validates the text as
//! serde_json would and finds each top-level field's [`Span`].

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Where one top-level field is in a record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    /// The key, inside its quotes, as written (escapes undecoded).
    pub(super) key: Range<u32>,
    /// The raw JSON value, without surrounding whitespace.
    pub(super) value: Range<u32>,
    /// Whether the key has escapes, so must be decoded to compare.
    pub(super) escaped: bool,
}

/// The fields of a JSON object text, if it is one that serde_json would
/// parse and no longer than `u32` ranges reach; `None` leaves the verdict
/// (and its words) to serde_json.
///
/// One pass with serde_json over the top-level object: keys are read as
/// strings (borrowed unless escaped), values as [`RawValue`]s. A raw value
/// is only checked for syntax, so what serde_json's [`Value`] would refuse
/// beyond syntax is checked again on the value alone: escapes in strings
/// (lone surrogates), numbers that may be out of range, and nested values
/// (which may also nest too deep).
pub(super) fn scan(text: &str) -> Option<Vec<Span>> {
    u32::try_from(text.len()).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let spans = de.deserialize_map(Top { text }).ok()?;
    de.end().ok()?;
    Some(spans)
}

/// Containers a top-level value may nest: serde_json's [`Value`] refuses
/// a 128th level, and the top-level object is the first.
pub(super) const NESTING: u8 = 126;

/// The top-level object's visitor.
pub(super) struct Top<'a> {
    text: &'a str,
}

impl<'de> Visitor<'de> for Top<'de> {
    type Value = Vec<Span>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Span>, A::Error> {
        let base = self.text.as_ptr().addr();
        let offset = |s: &str| -> Result<Range<u32>, A::Error> {
            let start = s.as_ptr().addr().wrapping_sub(base);
            let end = start.wrapping_add(s.len());
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) if end as usize <= self.text.len() => Ok(start..end),
                _ => Err(de::Error::custom("not within the text")),
            }
        };
        let mut spans = Vec::with_capacity(8);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let raw = map.next_value::<&'de RawValue>()?.get();
            check(raw).map_err(de::Error::custom)?;
            let value = offset(raw)?;
            let (key, escaped) = match key {
                Key::Plain(k) => (offset(k)?, false),
                Key::Escaped => {
                    let k = key_before(self.text, value.start as usize)
                        .ok_or_else(|| de::Error::custom("no key before the value"))?;
                    (offset(&self.text[k])?, true)
                }
            };
            spans.push(Span {
                key,
                value,
                escaped,
            });
        }
        Ok(spans)
    }
}

/// A top-level key: borrowed from the text, or decoded from escapes (then
/// found in the text by [`key_before`]).
pub(super) enum Key<'a> {
    Plain(&'a str),
    Escaped,
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Plain(v))
            }
            fn visit_str<E>(self, _: &str) -> Result<Key<'de>, E> {
                Ok(Key::Escaped)
            }
        }
        d.deserialize_str(V)
    }
}

/// The key (inside its quotes) of the member whose value starts at
/// `value`, in valid JSON: back over whitespace, `:`, whitespace, the
/// closing quote, then to the first quote not escaped (one preceded by an
/// even number of backslashes).
pub(super) fn key_before(text: &str, value: usize) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let mut i = value;
    while i > 0 && ws(b[i - 1]) {
        i -= 1;
    }
    i = i.checked_sub(1).filter(|&i| b[i] == b':')?;
    while i > 0 && ws(b[i - 1]) {
        i -= 1;
    }
    let close = i.checked_sub(1).filter(|&i| b[i] == b'"')?;
    let mut j = close;
    while j > 0 {
        j -= 1;
        if b[j] == b'"' && b[..j].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 0 {
            return Some(j + 1..close);
        }
    }
    None
}

/// Checks a raw value for what a [`RawValue`] lets through but serde_json's
/// [`Value`] refuses.
pub(super) fn check(raw: &str) -> Result<(), serde_json::Error> {
    let deep = match raw.as_bytes().first() {
        Some(b'"') if raw.contains('\\') => 0,
        Some(b'{' | b'[') => NESTING,
        // A number without an exponent and this short is in range.
        Some(b'-' | b'0'..=b'9') if raw.len() > 300 || raw.contains(['e', 'E']) => 0,
        _ => return Ok(()),
    };
    let mut de = serde_json::Deserializer::from_str(raw);
    Valid(deep).deserialize(&mut de)?;
    de.end()
}

/// Reads a value as serde_json's [`Value`] would, building nothing; holds
/// how many more containers may nest.
#[derive(Clone, Copy)]
pub(super) struct Valid(u8);

impl<'de> DeserializeSeed<'de> for Valid {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Valid {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nest()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nest()?;
        while map.next_key_seed(Valid(0))?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

impl Valid {
    /// The budget inside one more container, or the error of one too many.
    fn nest<E: de::Error>(self) -> Result<Valid, E> {
        match self.0.checked_sub(1) {
            Some(n) => Ok(Valid(n)),
            None => Err(E::custom("recursion limit exceeded")),
        }
    }
}
