//! The ops, run as a stage runs them.

use super::*;
use serde_json::json;
use shared::spec::Distribution;

fn rng() -> SmallRng {
    worker_rng(1, 0, 0)
}

fn line(s: &str) -> Item {
    Item::new(0, Payload::Line(s.into()), None)
}

fn run(op: &Op, item: &mut Item) -> OpResult {
    op.run_blocking(item, &mut rng(), &Flag::new(), None)
}

fn kind_of(r: OpResult) -> &'static str {
    match r {
        Err(OpFailure::Error(e)) => e.kind,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn parse_json_gives_records_or_reasons() {
    let op = Op::new(&OpSpec::ParseJson {
        require: vec!["id".into(), "level".into()],
        schema: Default::default(),
    });
    let mut item = line(r#"{"id":"a","level":"INFO"}"#);
    assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
    assert!(matches!(item.payload, Payload::Record(_)));
    for (bad, kind) in [
        (r#"{"id":"a","lev"#, "invalid JSON"),
        ("[1,2]", "not a JSON object"),
        (r#"{"id":"a"}"#, "missing field"),
    ] {
        let mut item = line(bad);
        let result = run(&op, &mut item);
        assert!(
            matches!(&result, Err(OpFailure::Error(e)) if !e.retryable),
            "{bad}"
        );
        assert_eq!(kind_of(result), kind, "{bad}");
        assert_eq!(item.payload, Payload::Line(bad.into()), "item kept intact");
    }
}

fn schema_op(schema: &[(&str, &str)], require: &[&str]) -> Op {
    Op::new(&OpSpec::ParseJson {
        require: require.iter().map(|f| f.to_string()).collect(),
        schema: schema
            .iter()
            .map(|(f, t)| (f.to_string(), FieldType::from(t.to_string())))
            .collect(),
    })
}

/// The reason a line is refused for, or `None` if it passes.
fn refusal(op: &Op, text: &str) -> Option<(&'static str, String)> {
    let mut item = line(text);
    match run(op, &mut item) {
        Ok(Verdict::Pass) => None,
        Err(OpFailure::Error(e)) => {
            assert!(!e.retryable, "{text}");
            assert_eq!(item.payload, Payload::Line(text.into()), "item kept intact");
            Some((e.kind, e.detail))
        }
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn each_schema_type_takes_its_values_and_names_what_it_got() {
    // (type, value, what a mismatch is called; None: accepted)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("string", r#""x""#, None),
        ("string", "1", Some("integer")),
        ("string", "null", Some("null")),
        ("integer", "-7", None),
        ("integer", "18446744073709551615", None),
        ("integer", "1.5", Some("number")),
        ("integer", "1e3", Some("number")),
        ("integer", r#""1""#, Some("string")),
        ("number", "3", None),
        ("number", "3.25", None),
        ("number", r#""3""#, Some("string")),
        ("boolean", "true", None),
        ("boolean", "0", Some("integer")),
        ("object", r#"{"a":1}"#, None),
        ("object", "[1]", Some("array")),
        ("array", "[]", None),
        ("array", "{}", Some("object")),
        ("any", "null", None),
        ("any", r#"[{"a":null}]"#, None),
        ("any", "false", None),
    ];
    for (ty, value, got) in cases {
        let op = schema_op(&[("f", ty)], &[]);
        let text = format!(r#"{{"f":{value}}}"#);
        let expected = got.map(|got| ("wrong type", format!("f: expected {ty}, got {got}")));
        assert_eq!(refusal(&op, &text), expected, "{ty} <- {value}");
    }
}

#[test]
fn schema_reasons_name_the_field_and_what_was_wrong() {
    let op = schema_op(
        &[
            ("id", "integer"),
            ("level", "string"),
            ("msg", "string"),
            ("ts", "number?"),
        ],
        &[],
    );
    let ok = r#"{"id":1,"level":"INFO","msg":"m","ts":1.5}"#;
    assert_eq!(refusal(&op, ok), None);
    let mut item = line(ok);
    assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
    assert!(matches!(item.payload, Payload::Record(_)));
    for (text, kind, reason) in [
        (
            r#"{"id":1,"level":3,"msg":"m"}"#,
            "wrong type",
            "level: expected string, got integer",
        ),
        (
            r#"{"id":1,"level":"I","msg":"m","ts":"noon"}"#,
            "wrong type",
            "ts: expected number, got string",
        ),
        (r#"{"level":"I","msg":"m"}"#, "missing field", "id: missing"),
        (
            r#"{"id":null,"level":"I","msg":"m"}"#,
            "wrong type",
            "id: expected integer, got null",
        ),
        (
            r#"{"id":"k-1","msg":"m"}"#,
            "wrong type",
            "id: expected integer, got string; level: missing",
        ),
    ] {
        assert_eq!(
            refusal(&op, text),
            Some((kind, reason.to_owned())),
            "{text}"
        );
    }
    // A nullable-optional field may be absent or null.
    assert_eq!(refusal(&op, r#"{"id":1,"level":"I","msg":"m"}"#), None);
    assert_eq!(
        refusal(&op, r#"{"id":1,"level":"I","msg":"m","ts":null}"#),
        None
    );
    // Bad JSON is still told apart from a record that does not match.
    assert_eq!(refusal(&op, "[1]").unwrap().0, "not a JSON object");
    assert_eq!(refusal(&op, "{torn").unwrap().0, "invalid JSON");
}

#[test]
fn schema_reads_fields_as_serde_json_would() {
    // (line, what a schema `f = "integer"` says; None: accepted)
    let cases: &[(&str, Option<&str>)] = &[
        (r#"{"f":-0}"#, Some("f: expected integer, got number")),
        (r#"{"f":-9223372036854775808}"#, None),
        (
            r#"{"f":-9223372036854775809}"#,
            Some("f: expected integer, got number"),
        ),
        (
            r#"{"f":18446744073709551616}"#,
            Some("f: expected integer, got number"),
        ),
        (r#"{"f":"x","f":2}"#, None),
        (
            r#"{"f":2,"f":"x"}"#,
            Some("f: expected integer, got string"),
        ),
        (r#"{"\u0066":2}"#, None),
        (
            r#"{"f":2,"\u0066":{}}"#,
            Some("f: expected integer, got object"),
        ),
        (r#"{ "f" :  7 }"#, None),
        (r#"{"g":7}"#, Some("f: missing")),
    ];
    let op = schema_op(&[("f", "integer")], &[]);
    for (text, reason) in cases {
        let got = refusal(&op, text).map(|(_, detail)| detail);
        assert_eq!(got.as_deref(), *reason, "{text}");
    }
    // Malformed lines keep serde_json's words, position included.
    for bad in [
        r#"{"f":1e400}"#,
        r#"{"f":"\ud800"}"#,
        r#"{"f":1,}"#,
        "{\"f\":1} x",
    ] {
        let e = serde_json::from_str::<Value>(bad).unwrap_err();
        assert_eq!(
            refusal(&op, bad),
            Some(("invalid JSON", format!("invalid JSON: {e}"))),
            "{bad}"
        );
    }
    assert_eq!(
        refusal(&op, "[1]"),
        Some((
            "not a JSON object",
            "expected a JSON object, got an array".to_owned()
        ))
    );
}

#[test]
fn filter_compares_raw_fields_as_values() {
    let rec = |text: &str| {
        Item::new(
            0,
            parse_record(&Payload::Line(text.into()), &[]).unwrap(),
            None,
        )
    };
    let keep = |values: Vec<Value>| {
        Op::new(&OpSpec::Filter {
            field: "f".into(),
            values,
            mode: FilterMode::Keep,
        })
    };
    let op = keep(vec![
        json!(1),
        json!(true),
        json!("a\"b"),
        json!({"x": [1.5]}),
    ]);
    for (text, verdict) in [
        (r#"{"f":1}"#, Verdict::Pass),
        (r#"{"f":1.0}"#, Verdict::Filter),
        (r#"{"f":true}"#, Verdict::Pass),
        (r#"{"f":"a\"b"}"#, Verdict::Pass),
        (r#"{"f":"a"}"#, Verdict::Filter),
        (r#"{"f": { "x" : [ 1.50 ] } }"#, Verdict::Pass),
        (r#"{"f":null}"#, Verdict::Filter),
        (r#"{"g":1}"#, Verdict::Filter),
    ] {
        assert_eq!(run(&op, &mut rec(text)), Ok(verdict), "{text}");
    }
    let nulls = keep(vec![json!(null)]);
    assert_eq!(run(&nulls, &mut rec(r#"{"f":null}"#)), Ok(Verdict::Pass));
    assert_eq!(run(&nulls, &mut rec(r#"{"g":1}"#)), Ok(Verdict::Filter));
}

#[test]
fn schema_and_require_work_together() {
    // The schema is checked first, so its reasons name the field; what
    // only `require` lists keeps its own reason.
    let op = schema_op(&[("id", "string")], &["id", "level"]);
    assert_eq!(
        refusal(&op, r#"{"level":"I"}"#),
        Some(("missing field", "id: missing".to_owned()))
    );
    assert_eq!(
        refusal(&op, r#"{"id":"a"}"#),
        Some(("missing field", "missing field `level`".to_owned()))
    );
    assert_eq!(refusal(&op, r#"{"id":"a","level":1}"#), None);
    // An optional field listed in `require` must be there (null is fine).
    let op = schema_op(&[("ts", "number?")], &["ts"]);
    assert_eq!(refusal(&op, r#"{"ts":null}"#), None);
    assert_eq!(
        refusal(&op, "{}"),
        Some(("missing field", "missing field `ts`".to_owned()))
    );
}

#[test]
fn filter_keeps_or_drops_matches() {
    let rec = |level: &str| {
        let payload = parse_record(
            &Payload::Line(json!({"id": "x", "level": level, "msg": ""}).to_string()),
            &[],
        )
        .unwrap();
        Item::new(0, payload, None)
    };
    let keep = Op::new(&OpSpec::Filter {
        field: "level".into(),
        values: vec![json!("ERROR")],
        mode: FilterMode::Keep,
    });
    assert_eq!(run(&keep, &mut rec("ERROR")), Ok(Verdict::Pass));
    assert_eq!(run(&keep, &mut rec("INFO")), Ok(Verdict::Filter));
    let drop = Op::new(&OpSpec::Filter {
        field: "level".into(),
        values: vec![json!("DEBUG")],
        mode: FilterMode::Drop,
    });
    assert_eq!(run(&drop, &mut rec("DEBUG")), Ok(Verdict::Filter));
    assert_eq!(run(&drop, &mut rec("INFO")), Ok(Verdict::Pass));
    assert_eq!(kind_of(run(&drop, &mut line("raw"))), "not a record");
}

#[test]
fn map_renames_then_sets() {
    let op = Op::new(&OpSpec::Map {
        set: [("source".to_owned(), json!("ql"))].into(),
        rename: [("msg".to_owned(), "message".to_owned())].into(),
    });
    let mut item = Item::new(
        0,
        parse_record(&Payload::Line(r#"{"msg":"hi"}"#.into()), &[]).unwrap(),
        None,
    );
    assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
    assert_eq!(
        item.payload.to_line(),
        json!({"message": "hi", "source": "ql"}).to_string()
    );
}

#[test]
fn fail_share_is_respected_statistically_and_at_the_edges() {
    let fail = |share| {
        Op::new(&OpSpec::Fail {
            share,
            retryable: true,
        })
    };
    let (never, always, some) = (fail(0.0), fail(1.0), fail(0.25));
    let mut r = rng();
    let abort = Flag::new();
    let mut failed = 0;
    for i in 0..4000 {
        let mut item = Item::new(i, Payload::Counter(i), None);
        assert_eq!(
            never.run_blocking(&mut item, &mut r, &abort, None),
            Ok(Verdict::Pass)
        );
        assert!(
            always
                .run_blocking(&mut item, &mut r, &abort, None)
                .is_err()
        );
        if some.run_blocking(&mut item, &mut r, &abort, None).is_err() {
            failed += 1;
        }
    }
    assert!((800..1200).contains(&failed), "{failed} of 4000 at 25%");
}

#[test]
fn latencies_stay_within_their_bounds() {
    let mut r = rng();
    let u = Latency::new(&Distribution::Uniform {
        min_ms: 5.0,
        max_ms: 10.0,
    });
    for _ in 0..1000 {
        let d = u.sample(&mut r);
        assert!(
            d >= Duration::from_millis(5) && d <= Duration::from_millis(10),
            "{d:?}"
        );
    }
    let e = Latency::new(&Distribution::Exponential { mean_ms: 2.0 });
    let mean: f64 = (0..20_000)
        .map(|_| e.sample(&mut r).as_secs_f64() * 1000.0)
        .sum::<f64>()
        / 20_000.0;
    assert!((1.8..2.2).contains(&mean), "{mean}");
    let l = Latency::new(&Distribution::LogNormal {
        median_ms: 3.0,
        sigma: 0.5,
    });
    let mut xs: Vec<f64> = (0..20_001)
        .map(|_| l.sample(&mut r).as_secs_f64() * 1000.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    assert!((2.8..3.2).contains(&xs[10_000]), "median {}", xs[10_000]);
    assert_eq!(
        Latency::new(&Distribution::Fixed { ms: 1.5 }).sample(&mut r),
        Duration::from_micros(1500)
    );
}

#[test]
fn abort_interrupts_a_long_sleep_and_spin() {
    let abort = Flag::new();
    abort.set();
    let sleep = Op::new(&OpSpec::Sleep {
        latency: Distribution::Fixed { ms: 60_000.0 },
    });
    let spin = Op::new(&OpSpec::Spin { micros: 60_000_000 });
    let blocking = Op::new(&OpSpec::BlockingSleep {
        latency: Distribution::Fixed { ms: 60_000.0 },
    });
    for op in [sleep, spin, blocking] {
        let result = op.run_blocking(&mut line("x"), &mut rng(), &abort, None);
        assert_eq!(result, Err(OpFailure::Interrupted));
    }
}

#[test]
fn a_timeout_cuts_waits_short_and_is_retryable() {
    let sleep = Op::new(&OpSpec::Sleep {
        latency: Distribution::Fixed { ms: 60_000.0 },
    });
    let result = sleep.run_blocking(
        &mut line("x"),
        &mut rng(),
        &Flag::new(),
        Some(Duration::from_millis(5)),
    );
    match result {
        Err(OpFailure::Error(e)) => {
            assert_eq!(e.kind, "timed out");
            assert!(e.retryable);
        }
        other => panic!("{other:?}"),
    }
    let quick = Op::new(&OpSpec::Sleep {
        latency: Distribution::Fixed { ms: 1.0 },
    });
    let ok = quick.run_blocking(
        &mut line("x"),
        &mut rng(),
        &Flag::new(),
        Some(Duration::from_millis(500)),
    );
    assert_eq!(ok, Ok(Verdict::Pass));
}
