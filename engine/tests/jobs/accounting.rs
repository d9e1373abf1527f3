use shared::metrics::{JobState, NodeKind};

use crate::helpers::{assert_balanced, node, run, run_keeping_files};

#[test]
fn a_thread_pool_completes_with_everything_sunk() {
    let report = run(r#"
name = "pool"
source = { kind = "synthetic", count = 500, payload = "counter" }
[[stages]]
name = "io"
workers = 8
queue = { capacity = 50 }
op = { kind = "sleep", latency = { dist = "uniform", min_ms = 0.0, max_ms = 1.0 } }
"#);
    assert_eq!(report.state, JobState::Completed);
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 500);
    assert_eq!(report.accounting.sunk, 500);
    let io = node(&report.nodes, "io");
    assert_eq!((io.items_in, io.items_out), (500, 500));
    assert_eq!(node(&report.nodes, "sink").items_out, 500);
    // Counts are exact; latencies are sampled when items come fast (see
    // `stats::Stride`), so histograms hold at most one entry per item.
    assert!(
        (1..=500).contains(&io.service_total.count),
        "{:?}",
        io.service_total
    );
    assert!(
        (1..=500).contains(&report.end_to_end.count),
        "{:?}",
        report.end_to_end
    );
}

#[test]
fn malformed_lines_become_dead_letters_with_their_reason() {
    let (report, _files) = run_keeping_files(
        r#"
name = "clean"
source = { kind = "synthetic", count = 2000, malformed_share = 0.1, seed = 3 }
[[stages]]
name = "parse"
workers = 2
op = { kind = "parse_json" }
[[stages]]
name = "errors-only"
op = { kind = "filter", field = "level", values = ["ERROR"] }
"#,
    );
    assert_balanced(&report);
    let parse = node(&report.nodes, "parse");
    assert!(
        parse.dead_lettered > 100 && parse.dead_lettered < 300,
        "~10% malformed: {}",
        parse.dead_lettered
    );
    assert_eq!(
        parse.errors, 0,
        "nothing dropped: dead letters are the default"
    );
    assert_eq!(report.accounting.dead_lettered, parse.dead_lettered);
    assert_eq!(
        report
            .drop_reasons
            .get("dead-lettered at `parse`: invalid JSON"),
        Some(&parse.dead_lettered)
    );
    let file = report
        .dead_letters_file
        .as_deref()
        .expect("dead letters written");
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len() as u64, parse.dead_lettered);
    for letter in &letters {
        assert_eq!(letter["stage"], "parse");
        assert_eq!(letter["error_kind"], "invalid JSON");
        assert!(
            letter["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid JSON:")
        );
        assert_eq!(letter["attempts"], 1);
        let original = letter["item"].as_str().unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(original).is_err(),
            "the bad line itself is kept"
        );
    }
    let filter = node(&report.nodes, "errors-only");
    assert_eq!(report.accounting.filtered, filter.filtered);
    assert_eq!(report.accounting.sunk, filter.items_out);
    assert!(report.accounting.sunk > 0 && report.accounting.filtered > report.accounting.sunk);
}

#[test]
fn on_error_drop_counts_instead_of_keeping() {
    let report = run(r#"
name = "dropper"
source = { kind = "synthetic", count = 1000, malformed_share = 0.2, seed = 5 }
[[stages]]
name = "parse"
on_error = "drop"
op = { kind = "parse_json" }
"#);
    assert_balanced(&report);
    let parse = node(&report.nodes, "parse");
    assert!(parse.errors > 100);
    assert_eq!(parse.dead_lettered, 0);
    assert_eq!(report.accounting.dropped_by_policy, parse.errors);
    assert_eq!(
        report.drop_reasons.get("op error at `parse`: invalid JSON"),
        Some(&parse.errors)
    );
    assert!(report.dead_letters_file.is_none());
}

#[test]
fn drop_policies_drop_and_count_block_never_drops() {
    for policy in ["drop_newest", "drop_oldest", "reject", "block"] {
        let report = run(&format!(
            r#"
name = "policy"
source = {{ kind = "synthetic", count = 3000, payload = "counter" }}
[[stages]]
name = "slow"
queue = {{ capacity = 5, when_full = "{policy}" }}
op = {{ kind = "spin", micros = 20 }}
"#
        ));
        assert_balanced(&report);
        let slow = node(&report.nodes, "slow");
        assert_eq!(
            report.accounting.dropped_by_policy, slow.dropped,
            "{policy}"
        );
        if policy == "block" {
            assert_eq!(slow.dropped, 0);
            assert_eq!(report.accounting.sunk, 3000);
        } else {
            assert!(
                slow.dropped > 0,
                "{policy}: a 5-slot queue before a slow stage overflows"
            );
            let reason = report.drop_reasons.keys().next().unwrap();
            assert!(
                reason.contains(&policy.replace('_', " ")[..4]),
                "{policy}: {reason}"
            );
        }
    }
}

#[test]
fn bridges_join_the_two_worlds_in_both_directions() {
    let report = run(r#"
name = "bridged"
source = { kind = "synthetic", count = 1000, payload = "log_line" }
[[stages]]
name = "t1"
workers = 2
op = { kind = "spin", micros = 0 }
[[stages]]
name = "a1"
runtime = "async"
workers = 8
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.5 } }
[[stages]]
name = "t2"
op = { kind = "parse_json" }
"#);
    assert_eq!(report.state, JobState::Completed);
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 1000);
    let kinds: Vec<_> = report
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.kind.unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("t1", NodeKind::Stage),
            ("bridge:t1->a1", NodeKind::Bridge),
            ("a1", NodeKind::Stage),
            ("bridge:a1->t2", NodeKind::Bridge),
            ("t2", NodeKind::Stage),
            ("sink", NodeKind::Sink),
        ]
    );
    for bridge in ["bridge:t1->a1", "bridge:a1->t2"] {
        let b = node(&report.nodes, bridge);
        assert_eq!((b.items_in, b.items_out), (1000, 1000), "{bridge}");
        // A bridge is a task on the event loop, not a thread of its own:
        // it shows the loop's share it took, and no thread's CPU.
        assert!(b.loop_share.is_some(), "{bridge}: {b:?}");
        assert_eq!(b.cpu, None, "{bridge}");
    }
    // Every worker has exited; the report still says what ran.
    for (name, ran) in [
        ("t1", 2),
        ("bridge:t1->a1", 1),
        ("a1", 8),
        ("t2", 1),
        ("sink", 1),
    ] {
        let n = node(&report.nodes, name);
        assert_eq!((n.workers, n.configured_workers), (0, Some(ran)), "{name}");
    }
}

#[test]
fn file_sink_writes_every_item_and_file_source_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let report = run(&format!(
        r#"
name = "to-file"
source = {{ kind = "synthetic", count = 300, seed = 9 }}
sink = {{ kind = "file", path = "{}" }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#,
        out.display()
    ));
    assert_balanced(&report);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count() as u64, report.accounting.sunk);
    let again = run(&format!(
        r#"
name = "from-file"
source = {{ kind = "file", path = "{}" }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#,
        out.display()
    ));
    assert_eq!(again.accounting.produced, 300);
    assert_eq!(again.accounting.sunk, 300);
}
