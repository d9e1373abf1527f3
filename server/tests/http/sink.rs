use shared::metrics::JobState;
use shared::spec::Distribution;

use crate::helpers::{node, run, spawn_target, stats};

#[tokio::test]
async fn batches_posted_to_a_flaky_target_all_arrive() {
    let base = spawn_target(Distribution::Fixed { ms: 1.0 }, 0.3, 503).await;
    let report = run(format!(r#"
name = "post-batches"
source = {{ kind = "synthetic", count = 2000, seed = 9 }}
sink = {{ kind = "http", url = "{base}/bulk", batch = {{ size = 100, linger_ms = 20 }}, retry = {{ max_attempts = 40, base_ms = 1.0, cap_ms = 10.0 }} }}
"#))
    .await;
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_eq!(report.accounting.sunk, 2000);
    let s = stats(&base).await;
    assert_eq!(s["lines"], 2000, "each line accepted exactly once");
    assert!(node(&report, "sink").retries > 0);
}

#[tokio::test]
async fn a_rejecting_target_turns_items_into_dead_letters() {
    let base = spawn_target(Distribution::Fixed { ms: 0.0 }, 0.0, 503).await;
    let report = run(format!(
        r#"
name = "rejected"
source = {{ kind = "synthetic", count = 25, payload = "counter" }}
sink = {{ kind = "http", url = "{base}/bulk?status=400", batch = {{ size = 10, linger_ms = 5 }} }}
"#
    ))
    .await;
    assert_eq!(report.state, JobState::Completed);
    assert_eq!(report.accounting.dead_lettered, 25);
    assert_eq!(report.accounting.sunk, 0);
}

#[tokio::test]
async fn an_unreachable_target_fails_the_job_and_keeps_the_items() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = run(format!(r#"
name = "nobody-home"
source = {{ kind = "synthetic", count = 50, payload = "counter" }}
sink = {{ kind = "http", url = "http://127.0.0.1:{port}/bulk", batch = {{ size = 10, linger_ms = 5 }}, retry = {{ max_attempts = 2, base_ms = 1.0, cap_ms = 1.0 }} }}
"#))
    .await;
    assert_eq!(report.state, JobState::Failed);
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("sink write failed")
    );
    assert_eq!(report.accounting.sunk, 0);
    assert_eq!(report.accounting.leftovers, 50, "kept for a replay");
}
