//! Items, records and their fields against serde_json.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::{Map, Value};

use super::field::json_type;
use super::record::{Repr, to_usize};
use super::*;

/// Items are moved by value through every queue: their size is what a
/// no-op pipeline pays per hop (docs/benchmarks.md, issue 25).
#[test]
fn an_item_moves_48_bytes() {
    assert_eq!(std::mem::size_of::<Item>(), 48);
}

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
