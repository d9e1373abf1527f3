use shared::spec::Distribution;

use crate::helpers::{node, run, spawn_target, stats};

#[tokio::test]
async fn http_calls_with_retries_get_every_item_through_on_both_runtimes() {
    for runtime in ["thread", "async"] {
        let base = spawn_target(
            Distribution::Uniform {
                min_ms: 0.0,
                max_ms: 2.0,
            },
            0.3,
            503,
        )
        .await;
        let report = run(format!(
            r#"
name = "calls-{runtime}"
source = {{ kind = "synthetic", count = 300, seed = 3 }}
[[stages]]
name = "call"
runtime = "{runtime}"
workers = 8
timeout_ms = 2000
retry = {{ max_attempts = 30, base_ms = 1.0, cap_ms = 5.0 }}
op = {{ kind = "http", method = "POST", url = "{base}/ingest" }}
"#
        ))
        .await;
        assert_eq!(
            report.accounting.sunk, 300,
            "{runtime}: {}",
            report.accounting
        );
        let call = node(&report, "call");
        assert!(
            call.retries > 0,
            "{runtime}: 30% fail, so some were retried"
        );
        let s = stats(&base).await;
        assert_eq!(
            s["requests"].as_u64().unwrap(),
            300 + call.retries,
            "{runtime}"
        );
        assert_eq!(
            s["lines"], 300,
            "{runtime}: every item posted once successfully"
        );
    }
}

#[tokio::test]
async fn slow_answers_time_out_and_4xx_is_not_retried() {
    let base = spawn_target(Distribution::Fixed { ms: 500.0 }, 0.0, 503).await;
    let report = run(format!(
        r#"
name = "too-slow"
source = {{ kind = "synthetic", count = 10, payload = "counter" }}
[[stages]]
name = "call"
runtime = "async"
workers = 10
timeout_ms = 20
op = {{ kind = "http", url = "{base}/slow" }}
"#
    ))
    .await;
    let call = node(&report, "call");
    assert_eq!((call.timeouts, call.dead_lettered), (10, 10));

    let base = spawn_target(Distribution::Fixed { ms: 0.0 }, 0.0, 503).await;
    let report = run(format!(
        r#"
name = "teapot"
source = {{ kind = "synthetic", count = 10, payload = "counter" }}
[[stages]]
name = "call"
retry = {{ max_attempts = 5, base_ms = 1.0, cap_ms = 1.0 }}
op = {{ kind = "http", url = "{base}/x?status=418" }}
"#
    ))
    .await;
    let call = node(&report, "call");
    assert_eq!(
        (call.retries, call.dead_lettered),
        (0, 10),
        "a 4xx is final"
    );
    assert_eq!(
        report.drop_reasons.get("dead-lettered at `call`: http 4xx"),
        Some(&10)
    );
}
