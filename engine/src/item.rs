//! The unit of work that flows through a pipeline.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One item on its way from the source to the sink.
#[derive(Debug)]
pub struct Item {
    /// Position in the source's output, from 0.
    pub seq: u64,
    /// When the source produced it, if the source timed this item
    /// (end-to-end latency is measured from here; see [`crate::stats::Stride`]).
    pub born: Option<Instant>,
    /// When it entered its current queue, if its producer timed it (queue
    /// wait is measured from here).
    pub enqueued: Option<Instant>,
    /// The data.
    pub payload: Payload,
}

/// What an item carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A bare number: the cheapest item, for raw queue throughput.
    Counter(u64),
    /// A raw text line, such as a JSON log line not parsed yet.
    Line(String),
    /// A parsed record, boxed: a record is several times the size of the
    /// other payloads, and items are moved through every queue by value.
    Record(Box<Record>),
}

/// A parsed record: the JSON object it was parsed from and where each of
/// its top-level fields is in that text, for as long as the fields are
/// unchanged.
///
/// Parsing validates the whole text but builds nothing per field: each
/// field is two byte ranges (its key and its raw value). Sinks read fields
/// through [`Record::get`], borrowing from the text, and write the text
/// itself instead of serialising the fields again. The fields as a
/// [`Map`] are built only when something asks for them ([`Record::fields`],
/// e.g. a `map` op or the PostgreSQL sink); a change to them
/// ([`Record::fields_mut`]) forgets the text.
#[derive(Debug, Clone)]
pub struct Record {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Parsed and unchanged: the text, where each field is in it (in text
    /// order, duplicates included: the last one counts, as in serde_json),
    /// and the fields as a map once someone asked for them.
    Parsed {
        text: String,
        spans: Vec<Span>,
        // Boxed: an item stays small as it crosses queues.
        fields: OnceLock<Box<Map<String, Value>>>,
    },
    /// Parsed and unchanged, but too long to index with `u32` ranges: the
    /// text and its fields, built on the spot.
    Whole {
        text: String,
        fields: Map<String, Value>,
    },
    /// Built in code or changed: the fields are the record.
    Fields(Map<String, Value>),
}

/// Where one top-level field is in a record's text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    /// The key, inside its quotes, as written (escapes undecoded).
    key: Range<u32>,
    /// The raw JSON value, without surrounding whitespace.
    value: Range<u32>,
    /// Whether the key has escapes, so must be decoded to compare.
    escaped: bool,
}

/// Why a line is not a record.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON (serde_json's words, with line and column).
    #[error("invalid JSON: {0}")]
    Invalid(serde_json::Error),
    /// The text is JSON but not an object (`a number`, `an array`, …).
    #[error("expected a JSON object, got {0}")]
    NotObject(&'static str),
}

/// A line that did not parse, handed back with the reason.
#[derive(Debug)]
pub struct Unparsed {
    /// The line, as it was given.
    pub text: String,
    /// Why it is not a record.
    pub error: ParseError,
}

impl Record {
    /// Parses a JSON object. The text is validated exactly as
    /// `serde_json::from_str::<Value>` would (same errors, same words); on
    /// success it becomes the record's text (no copy), on failure it is
    /// handed back.
    pub fn parse(text: String) -> Result<Self, Unparsed> {
        if let Some(spans) = scan(&text) {
            return Ok(Self {
                repr: Repr::Parsed {
                    text,
                    spans,
                    fields: OnceLock::new(),
                },
            });
        }
        // Not a JSON object, or too long for `u32` ranges: serde_json
        // decides, and words the error.
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(fields)) => {
                if u32::try_from(text.len()).is_ok() {
                    // The scan refuses only what serde_json refuses.
                    tracing::warn!(
                        len = text.len(),
                        "a JSON object the record scan refused; kept whole"
                    );
                }
                Ok(Self {
                    repr: Repr::Whole { text, fields },
                })
            }
            Ok(other) => Err(Unparsed {
                text,
                error: ParseError::NotObject(json_type(&other)),
            }),
            Err(e) => Err(Unparsed {
                text,
                error: ParseError::Invalid(e),
            }),
        }
    }

    /// A top-level field, borrowed from the record (no map is built). With
    /// duplicate keys the last one counts, as in [`Record::fields`].
    pub fn get(&self, name: &str) -> Option<Field<'_>> {
        match &self.repr {
            Repr::Parsed { text, spans, .. } => spans
                .iter()
                .rev()
                .find(|span| key_is(text, span, name))
                .map(|span| Field(FieldRepr::Raw(&text[to_usize(&span.value)]))),
            Repr::Whole { fields, .. } | Repr::Fields(fields) => {
                fields.get(name).map(|v| Field(FieldRepr::Value(v)))
            }
        }
    }

    /// Whether the record has a top-level field `name` (null or not).
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The fields, built from the text on first call.
    pub fn fields(&self) -> &Map<String, Value> {
        match &self.repr {
            Repr::Parsed { text, fields, .. } => fields.get_or_init(|| Box::new(object(text))),
            Repr::Whole { fields, .. } | Repr::Fields(fields) => fields,
        }
    }

    /// The fields, to change: the text they came from no longer holds.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        if !matches!(self.repr, Repr::Fields(_)) {
            let fields = match std::mem::replace(&mut self.repr, Repr::Fields(Map::new())) {
                Repr::Parsed { text, fields, .. } => {
                    fields.into_inner().map_or_else(|| object(&text), |f| *f)
                }
                Repr::Whole { fields, .. } | Repr::Fields(fields) => fields,
            };
            self.repr = Repr::Fields(fields);
        }
        match &mut self.repr {
            Repr::Fields(fields) => fields,
            Repr::Parsed { .. } | Repr::Whole { .. } => unreachable!("just made fields"),
        }
    }

    /// The record as JSON text: the parsed text if the fields are
    /// unchanged, else the fields serialised.
    pub fn to_text(&self) -> Cow<'_, str> {
        match &self.repr {
            Repr::Parsed { text, .. } | Repr::Whole { text, .. } => Cow::Borrowed(text),
            Repr::Fields(fields) => {
                Cow::Owned(serde_json::to_string(fields).expect("a JSON map always serialises"))
            }
        }
    }

    /// The record as JSON text, owned: the parsed text itself (no copy) if
    /// the fields are unchanged, else the fields serialised.
    pub fn into_text(self) -> String {
        match self.repr {
            Repr::Parsed { text, .. } | Repr::Whole { text, .. } => text,
            Repr::Fields(fields) => {
                serde_json::to_string(&fields).expect("a JSON map always serialises")
            }
        }
    }

    /// The parsed text, if the fields are unchanged.
    fn text(&self) -> Option<&str> {
        match &self.repr {
            Repr::Parsed { text, .. } | Repr::Whole { text, .. } => Some(text),
            Repr::Fields(_) => None,
        }
    }
}

impl Default for Record {
    fn default() -> Self {
        Map::new().into()
    }
}

impl From<Map<String, Value>> for Record {
    fn from(fields: Map<String, Value>) -> Self {
        Self {
            repr: Repr::Fields(fields),
        }
    }
}

/// Fields straight into a payload's boxed record.
impl From<Map<String, Value>> for Box<Record> {
    fn from(fields: Map<String, Value>) -> Self {
        Box::new(fields.into())
    }
}

/// Records are equal when their fields are: the text is how they were
/// written, not what they hold.
impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        match (self.text(), other.text()) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.fields() == other.fields(),
        }
    }
}

/// The JSON type of a field, as a `parse_json` schema names it: a whole
/// number (one serde_json keeps as `i64` or `u64`) is an `integer`, any
/// other a `number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Boolean,
    /// A number serde_json holds as `i64` or `u64`.
    Integer,
    /// Any other number (a fraction, an exponent, `-0`, or too large).
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl FieldKind {
    /// The name a schema and its reasons use (`integer`, `string`, …).
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Null => "null",
            FieldKind::Boolean => "boolean",
            FieldKind::Integer => "integer",
            FieldKind::Number => "number",
            FieldKind::String => "string",
            FieldKind::Array => "array",
            FieldKind::Object => "object",
        }
    }
}

/// One top-level field of a [`Record`], borrowed: the raw JSON value in
/// the record's text, or a value of its fields once they changed. Its
/// accessors answer as the same methods of [`Value`] would.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a>(FieldRepr<'a>);

#[derive(Debug, Clone, Copy)]
enum FieldRepr<'a> {
    /// Valid JSON text (validated when the record was parsed).
    Raw(&'a str),
    /// A value of a record's fields.
    Value(&'a Value),
}

impl<'a> Field<'a> {
    /// Its JSON type.
    pub fn kind(&self) -> FieldKind {
        match self.0 {
            FieldRepr::Value(v) => match v {
                Value::Null => FieldKind::Null,
                Value::Bool(_) => FieldKind::Boolean,
                Value::Number(n) if n.is_i64() || n.is_u64() => FieldKind::Integer,
                Value::Number(_) => FieldKind::Number,
                Value::String(_) => FieldKind::String,
                Value::Array(_) => FieldKind::Array,
                Value::Object(_) => FieldKind::Object,
            },
            FieldRepr::Raw(raw) => match raw.as_bytes().first() {
                Some(b'n') => FieldKind::Null,
                Some(b't' | b'f') => FieldKind::Boolean,
                Some(b'"') => FieldKind::String,
                Some(b'[') => FieldKind::Array,
                Some(b'{') => FieldKind::Object,
                _ if whole_number(raw).is_some() => FieldKind::Integer,
                _ => FieldKind::Number,
            },
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        self.kind() == FieldKind::Null
    }

    /// A boolean's value.
    pub fn as_bool(&self) -> Option<bool> {
        match self.0 {
            FieldRepr::Value(v) => v.as_bool(),
            FieldRepr::Raw("true") => Some(true),
            FieldRepr::Raw("false") => Some(false),
            FieldRepr::Raw(_) => None,
        }
    }

    /// A string's value: borrowed from the text unless it has escapes.
    pub fn as_str(&self) -> Option<Cow<'a, str>> {
        match self.0 {
            FieldRepr::Value(v) => v.as_str().map(Cow::Borrowed),
            FieldRepr::Raw(raw) => {
                let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
                if inner.contains('\\') {
                    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(inner))
                }
            }
        }
    }

    /// A number's value as `i64`, if it is a whole number that fits (as
    /// [`Value::as_i64`]).
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            FieldRepr::Value(v) => v.as_i64(),
            FieldRepr::Raw(raw) => match whole_number(raw)? {
                Whole::Neg(i) => Some(i),
                Whole::Pos(u) => i64::try_from(u).ok(),
            },
        }
    }

    /// A number's value as `f64` (as [`Value::as_f64`]: serde_json's own
    /// reading of the digits).
    pub fn as_f64(&self) -> Option<f64> {
        match self.0 {
            FieldRepr::Value(v) => v.as_f64(),
            FieldRepr::Raw(raw) => match whole_number(raw) {
                Some(Whole::Pos(u)) => Some(u as f64),
                Some(Whole::Neg(i)) => Some(i as f64),
                None if raw
                    .starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) =>
                {
                    short_decimal(raw).or_else(|| {
                        serde_json::from_str::<serde_json::Number>(raw)
                            .ok()
                            .and_then(|n| n.as_f64())
                    })
                }
                None => None,
            },
        }
    }

    /// The field as a [`Value`] (built from the text if need be).
    pub fn to_value(&self) -> Value {
        match self.0 {
            FieldRepr::Value(v) => v.clone(),
            FieldRepr::Raw(raw) => {
                serde_json::from_str(raw).expect("a record's fields were validated as JSON")
            }
        }
    }

    /// The field as compact JSON text, as serde_json writes its value
    /// (numbers normalised, objects' keys sorted).
    pub fn to_json(&self) -> String {
        match self.0 {
            FieldRepr::Value(v) => v.to_string(),
            FieldRepr::Raw(raw) if raw.starts_with('"') && !raw.contains('\\') => raw.to_owned(),
            FieldRepr::Raw(_) => self.to_value().to_string(),
        }
    }
}

/// A field equals a value when [`Field::to_value`] would.
impl PartialEq<Value> for Field<'_> {
    fn eq(&self, other: &Value) -> bool {
        match (self.0, other) {
            (FieldRepr::Value(v), other) => v == other,
            (FieldRepr::Raw(_), Value::String(s)) => self.as_str().is_some_and(|m| m == *s),
            (FieldRepr::Raw(_), Value::Null) => self.is_null(),
            (FieldRepr::Raw(_), Value::Bool(b)) => self.as_bool() == Some(*b),
            (FieldRepr::Raw(_), other) => self.to_value() == *other,
        }
    }
}

/// A whole number as serde_json keeps it (not as `f64`).
enum Whole {
    Pos(u64),
    Neg(i64),
}

/// The value of raw JSON number text that serde_json keeps as `u64` or
/// `i64`: no fraction or exponent, not `-0`, and in range.
fn whole_number(raw: &str) -> Option<Whole> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() == raw.len() {
        raw.parse().ok().map(Whole::Pos)
    } else if digits == "0" {
        None // serde_json reads `-0` as the float -0.0
    } else {
        raw.parse().ok().map(Whole::Neg)
    }
}

/// The value of raw JSON number text with no exponent and at most 15
/// digits. serde_json reads it as the digits as an integer (exact below
/// 2^53) divided by a power of ten up to 10^15 (exact): one correctly
/// rounded division, so the correctly rounded value `str::parse` gives.
fn short_decimal(raw: &str) -> Option<f64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.len() > 16 || digits.contains(['e', 'E']) {
        return None;
    }
    raw.parse().ok()
}

/// The text (validated) as a map.
fn object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).expect("a parsed record's text is a JSON object")
}

fn to_usize(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// Whether a field's key, decoded, is `name`.
fn key_is(text: &str, span: &Span, name: &str) -> bool {
    let key = to_usize(&span.key);
    if !span.escaped {
        // Lengths first: most keys differ there, before any slicing.
        return key.len() == name.len() && text.as_bytes()[key] == *name.as_bytes();
    }
    // With its quotes, the key is a JSON string.
    serde_json::from_str::<Cow<'_, str>>(&text[key.start - 1..key.end + 1]).is_ok_and(|k| k == name)
}

/// How a value's JSON type is said in a reason.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
fn scan(text: &str) -> Option<Vec<Span>> {
    u32::try_from(text.len()).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let spans = de.deserialize_map(Top { text }).ok()?;
    de.end().ok()?;
    Some(spans)
}

/// Containers a top-level value may nest: serde_json's [`Value`] refuses
/// a 128th level, and the top-level object is the first.
const NESTING: u8 = 126;

/// The top-level object's visitor.
struct Top<'a> {
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
enum Key<'a> {
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
fn key_before(text: &str, value: usize) -> Option<Range<usize>> {
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
fn check(raw: &str) -> Result<(), serde_json::Error> {
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
struct Valid(u8);

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

impl Item {
    /// A new item, stamped with `born` when the producer read the clock.
    pub fn new(seq: u64, payload: Payload, born: Option<Instant>) -> Self {
        Self {
            seq,
            born,
            enqueued: born,
            payload,
        }
    }
}

impl Payload {
    /// The payload as one line of text, as written by file sinks and the
    /// leftovers file; reading it back with a `file` source replays it.
    pub fn to_line(&self) -> String {
        match self {
            Payload::Counter(n) => n.to_string(),
            Payload::Line(line) => line.clone(),
            Payload::Record(record) => record.to_text().into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_stays_small_enough_to_move_by_value() {
        // Items cross every queue by value, several moves per hop: the
        // record is boxed so a counter or a line does not pay for it.
        assert!(std::mem::size_of::<Payload>() <= 32);
        assert!(std::mem::size_of::<Item>() <= 72);
    }

    #[test]
    fn lines_replay_as_written() {
        assert_eq!(Payload::Counter(7).to_line(), "7");
        assert_eq!(Payload::Line("{bad".into()).to_line(), "{bad");
        let mut map = Map::new();
        map.insert("id".into(), Value::from("a"));
        assert_eq!(
            Payload::Record(map.clone().into()).to_line(),
            r#"{"id":"a"}"#
        );
    }

    #[test]
    fn a_parsed_record_keeps_its_text_until_it_changes() {
        let text = r#"{ "id": "a", "n": 1.10 }"#;
        let Value::Object(fields) = serde_json::from_str(text).unwrap() else {
            panic!()
        };
        let mut record = Record::parse(text.to_owned()).unwrap();
        assert_eq!(
            record.to_text(),
            text,
            "written as read, not serialised again"
        );
        assert_eq!(record, Record::from(fields), "equal by fields");
        record.fields_mut().insert("x".into(), Value::from(2));
        assert_eq!(record.to_text(), r#"{"id":"a","n":1.1,"x":2}"#);
    }

    /// Asserts that a record parsed from `text` agrees with serde_json:
    /// the same verdict and words on failure; on success the same fields,
    /// each field read through `get` as its `Value`, ranges that point at
    /// each key and value, and the text kept as it was.
    fn agree(text: &str) {
        let expected = serde_json::from_str::<Value>(text);
        match (expected, Record::parse(text.to_owned())) {
            (Ok(Value::Object(map)), Ok(record)) => {
                let Repr::Parsed {
                    text: kept, spans, ..
                } = &record.repr
                else {
                    panic!("{text:?} took the slow path");
                };
                // Every span decodes to a key and value; the last of each
                // key is the one serde_json keeps.
                let mut seen = Map::new();
                for span in spans {
                    let (k, v) = (to_usize(&span.key), to_usize(&span.value));
                    assert_eq!(kept[k.clone()].contains('\\'), span.escaped, "{text:?}");
                    let key: String = serde_json::from_str(&kept[k.start - 1..k.end + 1])
                        .unwrap_or_else(|e| panic!("{text:?}: key {k:?}: {e}"));
                    let raw = &kept[v.clone()];
                    assert_eq!(raw, raw.trim(), "{text:?}: value {v:?}");
                    let value: Value = serde_json::from_str(raw)
                        .unwrap_or_else(|e| panic!("{text:?}: value {v:?}: {e}"));
                    seen.insert(key, value);
                }
                assert_eq!(seen, map, "{text:?}: ranges");
                for (k, v) in &map {
                    let field = record.get(k).unwrap_or_else(|| panic!("{text:?}: {k:?}"));
                    field_agrees(field, v, text);
                    assert!(record.contains_key(k));
                }
                assert!(record.get("\u{1}not a key").is_none());
                assert_eq!(record.to_text(), text);
                assert_eq!(record.fields(), &map, "{text:?}: fields");
                assert_eq!(record.into_text(), text);
            }
            (Ok(other), Err(unparsed)) => {
                assert!(!other.is_object(), "{text:?}");
                assert_eq!(
                    unparsed.error.to_string(),
                    format!("expected a JSON object, got {}", json_type(&other))
                );
                assert_eq!(unparsed.text, text, "handed back");
            }
            (Err(e), Err(unparsed)) => {
                assert!(matches!(unparsed.error, ParseError::Invalid(_)));
                assert_eq!(unparsed.error.to_string(), format!("invalid JSON: {e}"));
                assert_eq!(unparsed.text, text, "handed back");
            }
            (expected, got) => panic!("{text:?}: serde_json {expected:?}, record {got:?}"),
        }
    }

    /// Asserts that a field reads as `v` does.
    fn field_agrees(field: Field<'_>, v: &Value, text: &str) {
        assert_eq!(field.to_value(), *v, "{text:?}");
        assert!(field == *v, "{text:?}: {v}");
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert_eq!(field.kind().name(), kind, "{text:?}: {v}");
        assert_eq!(field.is_null(), v.is_null());
        assert_eq!(field.as_bool(), v.as_bool(), "{text:?}: {v}");
        assert_eq!(field.as_str().as_deref(), v.as_str(), "{text:?}: {v}");
        assert_eq!(field.as_i64(), v.as_i64(), "{text:?}: {v}");
        assert_eq!(
            field.as_f64().map(f64::to_bits),
            v.as_f64().map(f64::to_bits),
            "{text:?}: {v}"
        );
        assert_eq!(field.to_json(), v.to_string(), "{text:?}");
        for other in [
            json!(null),
            json!(true),
            json!(1),
            json!(1.0),
            json!("x"),
            json!([]),
        ] {
            assert_eq!(field == other, *v == other, "{text:?}: {v} = {other}");
        }
    }

    use serde_json::json;

    #[test]
    fn ranges_point_at_each_key_and_value() {
        let text = r#" { "id" : "a\"b", "n":-1.5e3,"x\u0041":[1, {"y":null}] }"#;
        let record = Record::parse(text.to_owned()).unwrap();
        let Repr::Parsed { spans, .. } = &record.repr else {
            panic!()
        };
        let cut = |r: &Range<u32>| &text[to_usize(r)];
        let got: Vec<_> = spans
            .iter()
            .map(|s| (cut(&s.key), cut(&s.value), s.escaped))
            .collect();
        assert_eq!(
            got,
            [
                ("id", r#""a\"b""#, false),
                ("n", "-1.5e3", false),
                (r"x\u0041", r#"[1, {"y":null}]"#, true),
            ]
        );
        assert_eq!(record.get("id").unwrap().as_str().unwrap(), "a\"b");
        assert_eq!(record.get("xA").unwrap().kind(), FieldKind::Array);
        assert!(record.get(r"x\u0041").is_none(), "keys compare decoded");
        assert_eq!(record.get("n").unwrap().as_f64(), Some(-1500.0));
    }

    #[test]
    fn plain_strings_are_borrowed_from_the_text() {
        let record = Record::parse(r#"{"a":"plain","b":"t\tab"}"#.to_owned()).unwrap();
        assert!(matches!(
            record.get("a").unwrap().as_str(),
            Some(Cow::Borrowed("plain"))
        ));
        assert!(matches!(
            record.get("b").unwrap().as_str(),
            Some(Cow::Owned(s)) if s == "t\tab"
        ));
    }

    #[test]
    fn fields_are_built_only_when_asked_for() {
        let record = Record::parse(r#"{"a":1}"#.to_owned()).unwrap();
        let built = |r: &Record| match &r.repr {
            Repr::Parsed { fields, .. } => fields.get().is_some(),
            _ => panic!(),
        };
        assert!(record.get("a").is_some());
        assert!(!built(&record), "get builds no map");
        assert_eq!(record.fields()["a"], json!(1));
        assert!(built(&record));
        let mut changed = record.clone();
        changed.fields_mut().insert("b".into(), json!(2));
        assert_eq!(changed.get("b").unwrap().as_i64(), Some(2));
        assert_eq!(changed.to_text(), r#"{"a":1,"b":2}"#);
        assert_ne!(changed, record);
    }

    #[test]
    fn lines_agree_with_serde_json() {
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        let deep_obj = |n: usize| format!(r#"{{"a":{}1{}}}"#, r#"{"b":"#.repeat(n), "}".repeat(n));
        let long = |n: usize| format!(r#"{{"a":{}}}"#, "9".repeat(n));
        let mut lines: Vec<String> = [
            r#"{}"#,
            r#"  {  }  "#,
            r#"{"id":"k-1","ts":1764626298.123,"level":"INFO","msg":"user 7 logged in","seq":1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":"two","b":{"c":1,"c":[2]}}"#,
            r#"{"\"":"\\","\\\"":"\"\\","k\\":1}"#,
            r#"{"é":"ünï","日本":"語","😀":"\ud83d\ude00","\u00e9":0}"#,
            r#"{"s":"\b\f\n\r\t\/\u0000\u001f\uffff"}"#,
            "{\n\t\"a\" :\r\n [ 1 , 2 ] ,\"b\"\t:\t{ } }\n",
            r#"{"i":0,"n":-0,"m":-1,"u":18446744073709551615,"big":18446744073709551616}"#,
            r#"{"mn":-9223372036854775808,"mn1":-9223372036854775809,"x":9223372036854775807}"#,
            r#"{"f":0.1,"e":1e5,"E":2E-3,"p":1e+2,"z":0.0,"nz":-0.0,"t":1.7976931348623157e308}"#,
            r#"{"tiny":5e-324,"under":1e-400,"many":0.30000000000000000000000000000001}"#,
            r#"{"b":true,"c":false,"d":null,"arr":[],"o":{},"nest":[[[{"x":[null]}]]]}"#,
            r#"{"a":"x","a":null}"#,
            // Refused, with serde_json's words.
            r#"{"a":1e400}"#,
            r#"{"a":[1,-1e309]}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"\udc00":1}"#,
            r#"{"a":{"\ud800x":1}}"#,
            r#"{"a":["\ud83d"]}"#,
            r#"{"a":"\x"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":1,}"#,
            r#"{"a":01}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"id":"a","lev"#,
            r#"{"a":[1,2}"#,
            r#"{"a":tru}"#,
            "",
            "   ",
            // Not objects.
            "[1,2]",
            "1",
            r#""s""#,
            "null",
            "true",
            " [1,",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        lines.extend([
            deep(126),
            deep(127),
            deep_obj(126),
            deep_obj(127),
            deep(300),
        ]);
        lines.extend([long(300), long(309), long(310), long(400)]);
        for line in &lines {
            agree(line);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A JSON string literal: some characters escaped in every way
        /// JSON allows, rarely a lone surrogate (which serde_json refuses).
        fn string_lit() -> impl Strategy<Value = String> {
            let ch = prop_oneof![
                4 => prop::char::range('a', 'd'),
                1 => Just('"'),
                1 => Just('\\'),
                1 => Just('/'),
                1 => Just('\n'),
                1 => Just('\u{7f}'),
                2 => any::<char>(),
            ];
            prop::collection::vec((ch, 0u8..6), 0..6).prop_map(|chars| {
                let mut s = String::from('"');
                for (c, how) in chars {
                    match (c, how) {
                        (_, 0) if c as u32 > 0xffff => {
                            let mut units = [0u16; 2];
                            for u in c.encode_utf16(&mut units) {
                                s.push_str(&format!("\\u{u:04x}"));
                            }
                        }
                        (_, 0) => s.push_str(&format!("\\u{:04X}", c as u32)),
                        (_, 1) if c == 'a' => s.push_str(r"\ud800"),
                        ('"', _) => s.push_str("\\\""),
                        ('\\', _) => s.push_str("\\\\"),
                        ('/', 2) => s.push_str("\\/"),
                        ('\n', _) => s.push_str("\\n"),
                        (c, _) if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
                        (c, _) => s.push(c),
                    }
                }
                s.push('"');
                s
            })
        }

        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                8 => "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,18})?([eE][-+]?[0-9]{1,2})?",
                1 => "-?[1-9][0-9]{0,2}[eE][-+]?[0-9]{3}",
                1 => "-?(0|9223372036854775[0-9]{3}|1844674407370955[0-9]{4})",
            ]
        }

        fn ws() -> impl Strategy<Value = String> {
            "[ \t\n\r]{0,2}"
        }

        /// Keys drawn from a small pool, written plainly or escaped, so
        /// duplicates are common.
        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => Just(r#""a""#.to_owned()),
                1 => Just(r#""\u0061""#.to_owned()),
                2 => Just(r#""b""#.to_owned()),
                1 => Just(r#""\"""#.to_owned()),
                3 => string_lit(),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                Just("false".to_owned()),
                number(),
                string_lit(),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec((ws(), inner.clone(), ws()), 0..4).prop_map(|items| {
                        let items: Vec<String> =
                            items.into_iter().map(|(a, v, b)| a + &v + &b).collect();
                        format!("[{}]", items.join(","))
                    }),
                    prop::collection::vec((key(), ws(), inner), 0..4).prop_map(|members| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(k, w, v)| format!("{k}{w}:{w}{v}"))
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }),
                ]
            })
        }

        /// A top-level object, sometimes cut short (a torn line).
        fn object() -> impl Strategy<Value = String> {
            (
                ws(),
                prop::collection::vec((ws(), key(), ws(), value(), ws()), 0..7),
                ws(),
                prop::option::weighted(0.1, any::<prop::sample::Index>()),
            )
                .prop_map(|(lead, members, trail, cut)| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, v, c)| format!("{a}{k}{b}:{b}{v}{c}"))
                        .collect();
                    let text = format!("{lead}{{{}}}{trail}", members.join(","));
                    match cut {
                        Some(i) => {
                            let mut at = i.index(text.len());
                            while !text.is_char_boundary(at) {
                                at -= 1;
                            }
                            text[..at].to_owned()
                        }
                        None => text,
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn records_agree_with_serde_json(text in object()) {
                agree(&text);
            }

            #[test]
            fn short_decimals_read_as_serde_json_reads_them(
                n in "-?(0|[1-9][0-9]{0,14})\\.[0-9]{1,15}|-?[0-9]\\.[0-9]{14,16}",
            ) {
                agree(&format!(r#"{{"n":{n}}}"#));
            }

            #[test]
            fn serialised_values_agree(v in any_object()) {
                agree(&v.to_string());
                agree(&serde_json::to_string_pretty(&v).unwrap());
            }
        }

        /// Objects of arbitrary values, as serde_json writes them.
        fn any_object() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
            ];
            let value = leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(any::<String>(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            });
            prop::collection::btree_map(any::<String>(), value, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        }
    }
}
