//! The properties the fuzz targets check, one function per target, so each
//! `fuzz_targets/*.rs` is a one-liner and a crash input can be replayed
//! through the same code.
//!
//! Every function takes raw bytes and ignores input that is not UTF-8: the
//! server only ever hands these parsers text (HTTP bodies are checked to be
//! UTF-8 first, WebSocket text frames are UTF-8 by the protocol, sources
//! split lines out of text).

use std::sync::LazyLock;

use engine::item::{Item, Payload};
use engine::ops::{Op, OpFailure, Verdict, worker_rng};
use engine::signal::Flag;
use serde_json::Value;
use shared::spec::{OpSpec, PipelineSpec, SpecFormat};
use shared::ws::{ClientFrame, ServerFrame};

/// How many units in the last place a float may move when written as JSON
/// and read back. serde_json's default float parser (without its
/// `float_roundtrip` feature) is fast but not exact: it reads about one
/// double in ten back one or two ULPs off (`12.940260209534515` comes back
/// as `12.940260209534516`; see docs/fuzzing.md), so a spec the store keeps
/// or a record a sink writes can change in its last digit. That is a known
/// property of the parser, not of QueueLab's code, so the round trips below
/// accept it, and only it: 0 when serde_json is built with
/// `float_roundtrip` (then the check is exact again), else at most 4 ULPs
/// (its three roundings; 2 million random doubles never went past 2).
pub static FLOAT_ULPS: LazyLock<u64> = LazyLock::new(|| {
    let exact = serde_json::from_str::<f64>("12.940260209534515").ok() == Some(12.940260209534515);
    if exact { 0 } else { 4 }
});

/// Distance of two floats in representable steps (0 for equal ones, and
/// for 0.0 and -0.0).
pub fn ulps(a: f64, b: f64) -> u64 {
    // Maps the bit patterns onto a line on which neighbours differ by one.
    fn line(x: f64) -> i128 {
        let bits = x.to_bits() as i64;
        i128::from(if bits < 0 { i64::MIN - bits } else { bits })
    }
    (line(a) - line(b)).unsigned_abs() as u64
}

/// `a == b`, except that floats may differ by [`FLOAT_ULPS`].
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            x == y || ulps(x.as_f64().unwrap(), y.as_f64().unwrap()) <= *FLOAT_ULPS
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, x)| y.get(k).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// Two specs are the same up to [`FLOAT_ULPS`] in their floats.
fn same_spec(a: &PipelineSpec, b: &PipelineSpec) -> bool {
    a == b
        || same_json(
            &serde_json::to_value(a).expect("a spec is a JSON value"),
            &serde_json::to_value(b).expect("a spec is a JSON value"),
        )
}

/// `PipelineSpec::parse` in `format`: never panics; what it accepts is
/// valid, and survives the trip through JSON (how the server's store keeps
/// specs: `serde_json::to_string`, then `serde_json::from_str` on restart)
/// unchanged and still valid.
pub fn spec(data: &[u8], format: SpecFormat) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spec = match PipelineSpec::parse(text, format) {
        Ok(spec) => spec,
        Err(e) => {
            // The 422 body is built from these; formatting must not panic
            // and a refusal always says why.
            assert!(!e.errors.is_empty(), "a refusal without a reason");
            let _ = e.to_string();
            return;
        }
    };
    if let Err(e) = spec.validate() {
        panic!("parse accepted a spec that validate refuses: {e}\n{text}");
    }
    let json = serde_json::to_string(&spec).expect("a spec serialises to JSON");
    let again = match PipelineSpec::parse(&json, SpecFormat::Json) {
        Ok(again) => again,
        Err(e) => panic!("the JSON form of an accepted spec is refused: {e}\n{json}"),
    };
    assert!(
        same_spec(&again, &spec),
        "the JSON round trip changed the spec\n{json}\nbefore: {spec:?}\nafter: {again:?}"
    );
    // What the store does on restart: plain serde, no validation.
    let stored: PipelineSpec = serde_json::from_str(&json).expect("the store reloads it");
    assert_eq!(stored, again, "the store's reload differs from a parse");
}

/// A WebSocket text frame from a client, parsed as the server's hub does
/// (`serde_json::from_str::<ClientFrame>`, error text into an `error`
/// frame). A frame that parses round-trips through `to_json`. The same text
/// is also handed to [`ServerFrame::parse`], the dashboard's side, which must
/// not panic either.
pub fn ws_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => {
            let json = frame.to_json();
            let again: ClientFrame = serde_json::from_str(&json).unwrap_or_else(|e| {
                panic!("to_json gave a frame that does not parse: {e}\n{json}")
            });
            assert_eq!(again, frame, "the frame changed on its round trip\n{json}");
        }
        Err(e) => {
            // Exactly what the hub sends back.
            let answer = ServerFrame::Error {
                code: "malformed".into(),
                message: format!("cannot read that message: {e}"),
            };
            let json = answer.to_json();
            assert_eq!(ServerFrame::parse(&json).ok(), Some(answer));
        }
    }
    let _ = ServerFrame::parse(text);
}

/// The engine's `parse_json` op on one line, with the default required
/// fields and with none. It never panics and always decides: a record that
/// has the required fields, or a non-retryable error that leaves the item
/// as it was. A record written back as a line (how file sinks and the
/// leftovers file store it) parses again to the same record.
pub fn parse_json_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let abort = Flag::new();
    let mut rng = worker_rng(1, 0, 0);
    for require in [shared::spec::defaults::required_fields(), Vec::new()] {
        let op = Op::new(&OpSpec::ParseJson {
            require: require.clone(),
            schema: Default::default(),
        });
        let mut item = Item::new(0, Payload::Line(line.to_owned()), None);
        match op.run_blocking(&mut item, &mut rng, &abort, None) {
            Ok(Verdict::Pass) => {
                let Payload::Record(record) = &item.payload else {
                    panic!("parse_json passed a non-record: {:?}", item.payload);
                };
                let map = record.fields();
                for field in &require {
                    assert!(map.contains_key(field), "passed without `{field}`");
                }
                // What sinks read in place agrees with the map built from
                // the text, field by field.
                for (key, value) in map {
                    let field = record
                        .get(key)
                        .unwrap_or_else(|| panic!("`{key}` is in the map but not found in place"));
                    assert!(
                        same_json(&field.to_value(), value),
                        "`{key}` reads {:?} in place, {value:?} in the map",
                        field.to_value()
                    );
                }
                // Replay: the record as a line, through the op again.
                let written = item.payload.to_line();
                let mut replayed = Item::new(1, Payload::Line(written.clone()), None);
                let result = op.run_blocking(&mut replayed, &mut rng, &abort, None);
                assert_eq!(
                    result,
                    Ok(Verdict::Pass),
                    "the written record is refused\n{written}"
                );
                let Payload::Record(again) = &replayed.payload else {
                    unreachable!("passed above")
                };
                assert!(
                    same_json(
                        &Value::Object(again.fields().clone()),
                        &Value::Object(map.clone())
                    ),
                    "the record changed when written and read again\n{written}\nbefore: {map:?}\nafter: {again:?}"
                );
            }
            Ok(Verdict::Filter) => panic!("parse_json filtered an item"),
            Err(OpFailure::Interrupted) => panic!("parse_json was interrupted without an abort"),
            Err(OpFailure::Error(e)) => {
                assert!(!e.retryable, "a bad line is not worth retrying: {e:?}");
                assert!(
                    ["invalid JSON", "not a JSON object", "missing field"].contains(&e.kind),
                    "unexpected error kind {:?}",
                    e.kind
                );
                assert!(!e.detail.is_empty(), "an error without a reason");
                assert_eq!(
                    item.payload,
                    Payload::Line(line.to_owned()),
                    "item kept intact"
                );
            }
        }
    }
}
