//! The ops on records: `parse_json` with its typed schema, and what
//! `filter` and `map` need to find a record.

use shared::spec::{FieldType, JsonType};

use super::outcome::OpError;
use crate::item::{FieldKind, ParseError, Payload, Record};

pub(super) fn not_a_record(op: &str) -> OpError {
    OpError {
        kind: "not a record",
        detail: format!("`{op}` needs a parsed record: put a `parse_json` stage before it"),
        retryable: false,
    }
}

/// Parses a log line into a record with the required fields.
pub fn parse_record(payload: &Payload, require: &[String]) -> Result<Payload, OpError> {
    parse_checked(payload, require, &[])
}

/// Parses a log line into a record that matches `schema` (checked first,
/// so its reasons name the field) and has the `require`d fields.
pub fn parse_checked(
    payload: &Payload,
    require: &[String],
    schema: &[(String, FieldType)],
) -> Result<Payload, OpError> {
    match payload {
        Payload::Record(record) => {
            check_fields(record, require, schema)?;
            Ok(Payload::Record(record.clone()))
        }
        Payload::Counter(n) => Err(OpError {
            kind: "not JSON",
            detail: format!("item {n} is a counter, not a JSON line"),
            retryable: false,
        }),
        Payload::Line(line) => {
            let record = Record::parse(line.clone()).map_err(|f| unparsed(&f.error))?;
            check_fields(&record, require, schema)?;
            Ok(Payload::Record(Box::new(record)))
        }
    }
}

/// The error of a line that is not a JSON object.
pub(super) fn unparsed(error: &ParseError) -> OpError {
    OpError {
        kind: match error {
            ParseError::Invalid(_) => "invalid JSON",
            ParseError::NotObject(_) => "not a JSON object",
        },
        detail: error.to_string(),
        retryable: false,
    }
}

/// The schema first (its reasons name the field), then `require`.
pub(super) fn check_fields(
    record: &Record,
    require: &[String],
    schema: &[(String, FieldType)],
) -> Result<(), OpError> {
    check_schema(record, schema)?;
    if let Some(missing) = require.iter().find(|f| !record.contains_key(f)) {
        return Err(OpError {
            kind: "missing field",
            detail: format!("missing field `{missing}`"),
            retryable: false,
        });
    }
    Ok(())
}

/// Checks a record against a `parse_json` schema. Every field that does
/// not match is named in the reason, as `field: what was wrong`
/// (`id: missing`, `level: expected string, got integer`), in name order.
pub fn check_schema(record: &Record, schema: &[(String, FieldType)]) -> Result<(), OpError> {
    let mut detail = String::new();
    let mut kind = None;
    for (field, ty) in schema {
        let (want, optional) = match ty {
            FieldType::Required(t) => (*t, false),
            FieldType::Optional(t) => (*t, true),
            FieldType::Unknown(name) => {
                // Validation refuses these; never pass a record unchecked.
                note(
                    &mut detail,
                    &mut kind,
                    "wrong type",
                    field,
                    &format!("`{name}` is not a type"),
                );
                continue;
            }
        };
        match record.get(field).map(|f| f.kind()) {
            None if optional => {}
            None => note(&mut detail, &mut kind, "missing field", field, "missing"),
            Some(FieldKind::Null) if optional => {}
            Some(got) if has_type(got, want) => {}
            Some(got) => note(
                &mut detail,
                &mut kind,
                "wrong type",
                field,
                &format!("expected {want}, got {}", got.name()),
            ),
        }
    }
    match kind {
        None => Ok(()),
        Some(kind) => Err(OpError {
            kind,
            detail,
            retryable: false,
        }),
    }
}

/// Adds `field: problem` to a schema error's detail; the first problem
/// gives the error its kind.
fn note(
    detail: &mut String,
    kind: &mut Option<&'static str>,
    k: &'static str,
    field: &str,
    problem: &str,
) {
    if !detail.is_empty() {
        detail.push_str("; ");
    }
    detail.push_str(field);
    detail.push_str(": ");
    detail.push_str(problem);
    kind.get_or_insert(k);
}

/// Whether a field of type `got` is of schema type `want`.
fn has_type(got: FieldKind, want: JsonType) -> bool {
    match want {
        JsonType::String => got == FieldKind::String,
        JsonType::Integer => got == FieldKind::Integer,
        JsonType::Number => matches!(got, FieldKind::Integer | FieldKind::Number),
        JsonType::Boolean => got == FieldKind::Boolean,
        JsonType::Object => got == FieldKind::Object,
        JsonType::Array => got == FieldKind::Array,
        JsonType::Any => true,
    }
}
