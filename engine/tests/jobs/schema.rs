//! `parse_json` with a typed schema: lines that do not match become dead
//! letters whose reason names the field, and the accounting still adds up.

use std::collections::BTreeMap;

use crate::helpers::{assert_balanced, node, run_keeping_files};

#[test]
fn mistyped_and_malformed_lines_become_dead_letters_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let good = r#"{"id":1,"level":"INFO","msg":"ok","ts":1.5}"#;
    let lines = [
        good,
        r#"{"id":2,"level":"WARN","msg":"no ts"}"#,
        r#"{"id":3,"level":"WARN","msg":"null ts","ts":null}"#,
        r#"{"id":4,"level":7,"msg":"m"}"#,
        r#"{"id":5,"level":"INFO","msg":"m","ts":"noon"}"#,
        r#"{"level":"INFO","msg":"m"}"#,
        r#"{"id":"k-7","level":"INFO","msg":"m"}"#,
        r#"{"id":8,"level":"INFO","msg":"torn"#,
        r#"[8]"#,
    ];
    let mut text = String::new();
    for _ in 0..50 {
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(&input, text).unwrap();
    let (report, _files) = run_keeping_files(&format!(
        r#"
name = "typed"
source = {{ kind = "file", path = "{}" }}
[[stages]]
name = "parse"
workers = 2
op = {{ kind = "parse_json", require = ["id"], schema = {{ id = "integer", level = "string", msg = "string", ts = "number?" }} }}
"#,
        input.display()
    ));
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 450);
    assert_eq!(report.accounting.sunk, 150, "three lines in nine match");
    let parse = node(&report.nodes, "parse");
    assert_eq!(parse.dead_lettered, 300);
    assert_eq!(report.accounting.dead_lettered, 300);
    assert_eq!(parse.errors, 0, "dead letters, not drops");
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(report.dead_letters_file.as_deref().unwrap())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(letters.len(), 300);
    let mut reasons: BTreeMap<(String, String), u64> = BTreeMap::new();
    for letter in &letters {
        assert_eq!(letter["stage"], "parse");
        assert_eq!(letter["attempts"], 1);
        let item = letter["item"].as_str().unwrap();
        assert!(lines.contains(&item), "the line itself is kept: {item}");
        let error = letter["error"].as_str().unwrap();
        // serde's wording of invalid JSON is its own: keep the kind only.
        let error = if error.starts_with("invalid JSON:") {
            "invalid JSON"
        } else {
            error
        };
        *reasons
            .entry((
                letter["error_kind"].as_str().unwrap().to_owned(),
                error.to_owned(),
            ))
            .or_default() += 1;
    }
    let expected: BTreeMap<(String, String), u64> = [
        ("wrong type", "level: expected string, got integer"),
        ("wrong type", "ts: expected number, got string"),
        ("missing field", "id: missing"),
        ("wrong type", "id: expected integer, got string"),
        ("invalid JSON", "invalid JSON"),
        ("not a JSON object", "expected a JSON object, got an array"),
    ]
    .into_iter()
    .map(|(k, e)| ((k.to_owned(), e.to_owned()), 50))
    .collect();
    assert_eq!(reasons, expected);
    // The report's reasons count by kind.
    assert_eq!(
        report
            .drop_reasons
            .get("dead-lettered at `parse`: wrong type"),
        Some(&150)
    );
    assert_eq!(
        report
            .drop_reasons
            .get("dead-lettered at `parse`: missing field"),
        Some(&50)
    );
}

#[test]
fn the_log_templates_schemas_match_the_synthetic_log_lines() {
    for name in ["log-clean-threads", "log-clean-async"] {
        let template = shared::templates::ALL
            .iter()
            .find(|t| t.name == name)
            .unwrap();
        let mut spec = template.spec().unwrap();
        let parse = spec.stages.remove(0);
        assert!(
            matches!(&parse.op, shared::spec::OpSpec::ParseJson { schema, .. } if !schema.is_empty()),
            "{name} declares a schema"
        );
        let mut spec = crate::helpers::spec(
            r#"
name = "lines"
source = { kind = "synthetic", count = 2000, seed = 9 }
"#,
        );
        spec.stages = vec![parse];
        let (job, _dir) = crate::helpers::start(spec);
        let report = job.wait();
        assert_balanced(&report);
        assert_eq!(report.accounting.sunk, 2000, "{name}: {report:#?}");
    }
}
