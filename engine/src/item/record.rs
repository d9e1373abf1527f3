//! [`Record`]: a parsed JSON object that keeps its text, with where each
//! field sits in it, and builds a map of its fields only when asked.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::field::{Field, FieldRepr, json_type};
use super::scan::{Span, scan};

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
    pub(super) repr: Repr,
}

#[derive(Debug, Clone)]
pub(super) enum Repr {
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

/// The text (validated) as a map.
pub(super) fn object(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).expect("a parsed record's text is a JSON object")
}

pub(super) fn to_usize(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

/// Whether a field's key, decoded, is `name`.
pub(super) fn key_is(text: &str, span: &Span, name: &str) -> bool {
    let key = to_usize(&span.key);
    if !span.escaped {
        // Lengths first: most keys differ there, before any slicing.
        return key.len() == name.len() && text.as_bytes()[key] == *name.as_bytes();
    }
    // With its quotes, the key is a JSON string.
    serde_json::from_str::<Cow<'_, str>>(&text[key.start - 1..key.end + 1]).is_ok_and(|k| k == name)
}
