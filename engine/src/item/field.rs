//! [`Field`]: one field of a record, read in place from its text or from
//! its map, and its JSON type ([`FieldKind`]).

use std::borrow::Cow;

use serde_json::Value;

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

/// One top-level field of a [`Record`](super::Record), borrowed: the raw JSON value in
/// the record's text, or a value of its fields once they changed. Its
/// accessors answer as the same methods of [`Value`] would.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a>(pub(super) FieldRepr<'a>);

#[derive(Debug, Clone, Copy)]
pub(super) enum FieldRepr<'a> {
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
pub(super) enum Whole {
    Pos(u64),
    Neg(i64),
}

/// The value of raw JSON number text that serde_json keeps as `u64` or
/// `i64`: no fraction or exponent, not `-0`, and in range.
pub(super) fn whole_number(raw: &str) -> Option<Whole> {
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
pub(super) fn short_decimal(raw: &str) -> Option<f64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.len() > 16 || digits.contains(['e', 'E']) {
        return None;
    }
    raw.parse().ok()
}

/// How a value's JSON type is said in a reason.
pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
