//! Retries, timeouts, rate limits and `on_error` inside whole jobs.

use std::time::Instant;

use shared::metrics::{EventKind, JobState, TuneRequest};

use crate::helpers::{assert_balanced, node, run, run_keeping_files, spec, start, wait_for};

#[test]
fn retries_turn_transient_failures_into_successes() {
    let report = run(r#"
name = "flaky"
source = { kind = "synthetic", count = 400, payload = "counter", seed = 11 }
[[stages]]
name = "call"
workers = 4
retry = { max_attempts = 12, base_ms = 0.1, cap_ms = 1.0, jitter = "full" }
op = { kind = "fail", share = 0.5 }
"#);
    assert_balanced(&report);
    let call = node(&report.nodes, "call");
    // Half the attempts fail: about one retry per item on average, and
    // 0.5^12 of items failing twelve times in a row (~0.1 of 400).
    assert!(call.retries > 200, "retries {}", call.retries);
    assert!(report.accounting.sunk >= 395, "{}", report.accounting);
}

#[test]
fn permanent_errors_are_not_retried() {
    let (report, _files) = run_keeping_files(
        r#"
name = "broken"
source = { kind = "synthetic", count = 50, payload = "counter" }
[[stages]]
name = "call"
retry = { max_attempts = 5, base_ms = 0.1, cap_ms = 1.0 }
op = { kind = "fail", share = 1.0, retryable = false }
"#,
    );
    assert_balanced(&report);
    let call = node(&report.nodes, "call");
    assert_eq!((call.retries, call.dead_lettered), (0, 50));
    let text = std::fs::read_to_string(report.dead_letters_file.as_deref().unwrap()).unwrap();
    assert!(
        text.lines().all(|l| l.contains(r#""attempts":1"#)),
        "{text}"
    );
}

#[test]
fn timeouts_cancel_slow_attempts_on_both_runtimes_and_dead_letter_them() {
    for runtime in ["thread", "async"] {
        let (report, _files) = run_keeping_files(&format!(
            r#"
name = "slow-{runtime}"
source = {{ kind = "synthetic", count = 20, payload = "counter" }}
[[stages]]
name = "call"
runtime = "{runtime}"
workers = 20
timeout_ms = 5
retry = {{ max_attempts = 2, base_ms = 1.0, cap_ms = 1.0, jitter = "none" }}
op = {{ kind = "sleep", latency = {{ dist = "fixed", ms = 60000.0 }} }}
"#
        ));
        assert_eq!(report.state, JobState::Completed, "{runtime}");
        assert_balanced(&report);
        let call = node(&report.nodes, "call");
        assert_eq!(call.timeouts, 40, "{runtime}: two attempts per item");
        assert_eq!(call.retries, 20, "{runtime}");
        assert_eq!(call.dead_lettered, 20, "{runtime}");
        let text = std::fs::read_to_string(report.dead_letters_file.as_deref().unwrap()).unwrap();
        for line in text.lines() {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(letter["error_kind"], "timed out");
            assert_eq!(letter["attempts"], 2);
        }
    }
}

#[test]
fn a_rate_limited_stage_never_exceeds_its_rate() {
    // Count-based: 60 items at 300/s with a burst of one need at least 59
    // intervals of 1/300 s. A slow machine can only take longer.
    let start_at = Instant::now();
    let report = run(r#"
name = "limited"
source = { kind = "synthetic", count = 60, payload = "counter" }
[[stages]]
name = "call"
runtime = "async"
workers = 8
rate_limit = 300.0
op = { kind = "spin", micros = 0 }
"#);
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 60);
    assert!(start_at.elapsed().as_secs_f64() >= 59.0 / 300.0);
    assert_eq!(node(&report.nodes, "call").rate_limit, Some(300.0));
}

#[test]
fn the_rate_limit_is_tunable_while_running() {
    let (job, _dir) = start(spec(
        r#"
name = "retuned"
source = { kind = "synthetic", count = 100000, payload = "counter" }
[[stages]]
name = "call"
workers = 2
rate_limit = 20.0
op = { kind = "spin", micros = 0 }
"#,
    ));
    let snap = wait_for(&job, "a few items through", |s| {
        node(&s.nodes, "call").items_out >= 2
    });
    assert_eq!(node(&snap.nodes, "call").rate_limit, Some(20.0));
    job.tune(&TuneRequest {
        stage: "call".into(),
        rate_limit: Some(1e7),
        ..Default::default()
    })
    .unwrap();
    let bad = job.tune(&TuneRequest {
        stage: "call".into(),
        rate_limit: Some(-1.0),
        ..Default::default()
    });
    assert!(
        matches!(bad, Err(engine::ControlError::Invalid { ref field, .. }) if field == "rate_limit")
    );
    let report = job.wait();
    assert_eq!(
        report.state,
        JobState::Completed,
        "100k items only finish once the limit is lifted"
    );
    assert_balanced(&report);
    assert!(report.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Tuned { field, from, to, .. } if field == "rate_limit" && *from == 20.0 && *to == 1e7
    )));
}

#[test]
fn on_error_fail_job_fails_the_job_and_keeps_everything() {
    let (report, _files) = run_keeping_files(
        r#"
name = "strict"
source = { kind = "synthetic", count = 5000, malformed_share = 0.01, seed = 2 }
[[stages]]
name = "parse"
on_error = "fail_job"
op = { kind = "parse_json" }
[[stages]]
name = "slow"
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#,
    );
    assert_eq!(report.state, JobState::Failed);
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("on_error = fail_job"),
        "{:?}",
        report.error
    );
    assert_balanced(&report);
    assert!(report.accounting.dead_lettered >= 1);
    assert!(
        report.accounting.leftovers > 0,
        "the rest is saved, not lost"
    );
}
