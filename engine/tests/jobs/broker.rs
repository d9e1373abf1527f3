//! Broker stages on the local NATS JetStream server (127.0.0.1:4222, or
//! `QUEUELAB_NATS_URL`), with the server's own share of workers: the
//! same accounting as in memory, the drain crossing the broker, an abort
//! sweeping the streams, and a full stream meeting each `when_full`.

use engine::JobOptions;
use shared::metrics::{JobState, TuneRequest};

use crate::helpers::{assert_balanced, node, spec, wait_for};

pub fn nats_url() -> String {
    std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Starts `toml` with a job id of its own, its broker stages each run
/// by `local` workers inside this process.
fn start(toml: &str, local: u32) -> (engine::JobHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let id = format!(
        "t{}-{}",
        std::process::id(),
        dir.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "")
    );
    let mut opts = JobOptions::new(id, dir.path());
    opts.runtime_threads = 2;
    opts.nats_url = Some(nats_url());
    let job = engine::start(spec(toml), opts).unwrap_or_else(|e| panic!("{e}"));
    for b in job.broker_stages() {
        b.set_local_workers(local, b.limits()).unwrap();
    }
    (job, dir)
}

#[test]
fn a_broker_stage_settles_every_item_once() {
    let (job, _dir) = start(
        r#"
name = "brokered"
source = { kind = "synthetic", count = 3000, malformed_share = 0.1, seed = 3 }
[[stages]]
name = "parse"
workers = 3
transport = { kind = "nats" }
op = { kind = "parse_json" }
[[stages]]
name = "errors-only"
op = { kind = "filter", field = "level", values = ["ERROR"] }
"#,
        3,
    );
    let report = job.wait();
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_balanced(&report);
    let parse = node(&report.nodes, "parse");
    assert_eq!(parse.items_in, 3000);
    assert!(parse.dead_lettered > 100, "{parse:?}");
    assert_eq!(parse.items_out + parse.dead_lettered, 3000);
    let edge = parse.edge.as_ref().expect("edge figures");
    assert_eq!((edge.depth, edge.pending, edge.in_flight), (0, 0, 0));
    assert_eq!(report.accounting.leftovers, 0);
}

#[test]
fn an_async_broker_stage_drains_and_its_streams_go() {
    let (job, _dir) = start(
        r#"
name = "brokered-async"
source = { kind = "synthetic", count = 5000, payload = "counter" }
[[stages]]
name = "io"
runtime = "async"
workers = 4
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "uniform", min_ms = 0.0, max_ms = 0.5 } }
"#,
        4,
    );
    wait_for(&job, "some items sunk", |s| s.accounting.sunk > 100);
    job.drain().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    assert_eq!(report.accounting.leftovers, 0);
    assert_eq!(node(&report.nodes, "io").edge.as_ref().unwrap().depth, 0);
}

#[test]
fn an_aborted_broker_stage_leaves_what_the_streams_held_to_leftovers() {
    let (job, _dir) = start(
        r#"
name = "brokered-abort"
source = { kind = "synthetic", count = 100000, payload = "counter" }
[[stages]]
name = "slow"
workers = 2
queue = { capacity = 200 }
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 2.0 } }
"#,
        2,
    );
    wait_for(&job, "a full stream", |s| {
        s.nodes[0]
            .edge
            .as_ref()
            .is_some_and(|e| e.depth_items >= 150)
    });
    job.abort().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Aborted);
    assert_balanced(&report);
    assert!(report.accounting.leftovers >= 150, "{}", report.accounting);
}

#[test]
fn a_full_stream_drops_the_newest_under_drop_newest() {
    let (job, _dir) = start(
        r#"
name = "brokered-drop"
source = { kind = "synthetic", count = 2000, payload = "counter" }
[[stages]]
name = "slow"
workers = 1
queue = { capacity = 50, when_full = "drop_newest" }
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#,
        1,
    );
    let report = job.wait();
    assert_balanced(&report);
    let slow = node(&report.nodes, "slow");
    assert!(slow.dropped > 0, "{slow:?}");
    assert!(slow.edge.as_ref().unwrap().publish_refusals >= slow.dropped);
    assert!(
        report
            .drop_reasons
            .keys()
            .any(|r| r.contains("stream full")),
        "{:?}",
        report.drop_reasons
    );
}

#[test]
fn a_broker_stage_is_tuned_like_an_in_memory_one() {
    let (job, _dir) = start(
        r#"
name = "brokered-tune"
source = { kind = "synthetic", count = 1000000, rate = 1000.0, payload = "counter" }
[[stages]]
name = "io"
runtime = "async"
concurrency = 8
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.1 } }
"#,
        1,
    );
    let tune = |workers, concurrency, rate_limit| TuneRequest {
        stage: "io".into(),
        workers,
        concurrency,
        rate_limit,
        ..Default::default()
    };
    let b = &job.broker_stages()[0];
    assert_eq!(b.local_limits(), Some((8, None)));
    job.tune(&tune(Some(5), None, None)).unwrap();
    assert_eq!(b.desired_workers(), 5);
    job.tune(&tune(None, Some(3), Some(40.0))).unwrap();
    assert_eq!(
        (b.limits().concurrency, b.limits().rate_limit),
        (Some(3), Some(40.0))
    );
    // The placer hands each host its share; here the server is the only
    // host, so its share is the whole.
    b.set_local_workers(5, b.limits()).unwrap();
    assert_eq!(b.local_limits(), Some((3, Some(40.0))));
    // Out of bounds is refused as in memory.
    assert!(job.tune(&tune(None, Some(0), None)).is_err());
    assert!(job.tune(&tune(None, None, Some(-1.0))).is_err());
    wait_for(&job, "the tuned figures in a snapshot", |s| {
        s.nodes
            .iter()
            .any(|n| n.name == "io" && n.concurrency == Some(3) && n.rate_limit == Some(40.0))
    });
    let tuned = job
        .events()
        .iter()
        .filter(|e| matches!(e.kind, shared::metrics::EventKind::Tuned { .. }))
        .count();
    assert_eq!(tuned, 3, "workers, concurrency, rate_limit");
    job.abort().unwrap();
    let report = job.wait();
    assert_balanced(&report);
}

/// On a broker stage the controller sets the job-wide value (the
/// placer spreads it over the hosts, as after a manual tune): a backlog
/// on the edge is what says the workers are all busy.
#[test]
fn an_auto_broker_stage_sets_the_job_wide_workers() {
    let (job, _dir) = start(
        r#"
name = "brokered-auto"
source = { kind = "synthetic", count = 1000000, payload = "counter" }
[[stages]]
name = "io"
workers = "auto"
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#,
        1,
    );
    let b = &job.broker_stages()[0];
    assert_eq!(b.desired_workers(), 1, "auto starts at its range's low end");
    wait_for(&job, "the controller raising the workers", |s| {
        node(&s.nodes, "io")
            .auto
            .as_ref()
            .is_some_and(|a| a.limit >= 2 && a.field == "workers")
    });
    let raised = job.events().iter().any(|e| {
        matches!(&e.kind, shared::metrics::EventKind::Auto { stage, from, to, .. }
            if stage == "io" && *from == 1.0 && *to == 2.0)
    });
    assert!(raised, "{:#?}", job.events());
    job.abort().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    let a = node(&report.nodes, "io").auto.clone().unwrap();
    assert_eq!(
        a.limit,
        b.desired_workers(),
        "the job-wide value is the limit"
    );
}

#[test]
fn a_thread_broker_stage_has_no_concurrency_to_tune() {
    let (job, _dir) = start(
        r#"
name = "brokered-tune-threads"
source = { kind = "synthetic", count = 1000000, rate = 1000.0, payload = "counter" }
[[stages]]
name = "io"
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.1 } }
"#,
        1,
    );
    let req = TuneRequest {
        stage: "io".into(),
        concurrency: Some(3),
        ..Default::default()
    };
    assert!(job.tune(&req).is_err());
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

/// Waits (bounded, not a timing assertion) for the job to end: a job that
/// never ends is the failure.
fn finish(job: &engine::JobHandle) -> std::sync::Arc<shared::metrics::JobReport> {
    wait_for(job, "the job to end", |s| {
        s.state.is_some_and(|st| st.is_finished())
    });
    job.wait()
}

#[test]
fn a_result_redelivered_while_downstream_is_full_is_booked_once() {
    // The collector holds results while the downstream queue (capacity 1,
    // 20 ms per item) takes them one by one: far longer than the results'
    // ack_wait (1 s for a 400 ms timeout), so the broker delivers them
    // again meanwhile. Each must still be booked once.
    let (job, _dir) = start(
        r#"
name = "brokered-slow-downstream"
source = { kind = "synthetic", count = 300, payload = "counter" }
[[stages]]
name = "fast"
timeout_ms = 400
transport = { kind = "nats" }
op = { kind = "spin", micros = 0 }
[[stages]]
name = "slow"
queue = { capacity = 1 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 20.0 } }
"#,
        1,
    );
    let report = finish(&job);
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 300, "{}", report.accounting);
    assert_eq!(node(&report.nodes, "slow").items_in, 300);
}

#[test]
fn queued_items_of_a_waiting_op_are_not_redelivered() {
    // One worker, 400 ms per item, ack_wait 1 s: an item a worker holds
    // while it works on others must not pass ack_wait unnoticed.
    let (job, _dir) = start(
        r#"
name = "brokered-waiting"
source = { kind = "synthetic", count = 8, payload = "counter" }
[[stages]]
name = "slow"
timeout_ms = 450
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 400.0 } }
"#,
        1,
    );
    let report = finish(&job);
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 8);
    let counts = job.broker_stages()[0]
        .local_counts()
        .expect("the server's share ran");
    assert_eq!((counts.processed, counts.redelivered), (8, 0), "{counts:?}");
    let edge = node(&report.nodes, "slow")
        .edge
        .clone()
        .expect("edge figures");
    assert_eq!(
        (edge.redeliveries, report.redeliveries.len()),
        (0, 0),
        "no worker was lost, yet items were delivered again: {:?}",
        report.redeliveries
    );
}

#[test]
fn an_item_too_large_for_the_broker_is_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let big = format!("{{\"id\":\"big\",\"msg\":\"{}\"}}", "x".repeat(1_200_000));
    std::fs::write(
        &input,
        format!("{{\"id\":\"a\"}}\n{big}\n{{\"id\":\"b\"}}\n"),
    )
    .unwrap();
    let (job, _files) = start(
        &format!(
            r#"
name = "brokered-large"
source = {{ kind = "file", path = "{}" }}
[[stages]]
name = "pass"
transport = {{ kind = "nats" }}
op = {{ kind = "spin", micros = 0 }}
"#,
            input.display()
        ),
        1,
    );
    let report = finish(&job);
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 2, "{}", report.accounting);
    assert_eq!(report.accounting.dead_lettered, 1);
    assert!(
        report
            .drop_reasons
            .keys()
            .any(|r| r.contains("too large for the broker")),
        "{:?}",
        report.drop_reasons
    );
    let letters = report.dead_letters_file.as_ref().expect("a dead letter");
    let text = std::fs::read_to_string(_files.path().join(letters))
        .or_else(|_| std::fs::read_to_string(letters))
        .unwrap();
    let letter: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let reason = letter["error"].as_str().unwrap();
    assert!(
        reason.starts_with("too large for the broker (") && reason.ends_with(" bytes)"),
        "{reason}"
    );
}

#[test]
fn aborts_at_any_moment_count_each_item_once() {
    // A fast stage keeps publishes, results and acks in flight at every
    // moment; an abort anywhere must leave each item in one bucket.
    for (k, after) in [50u64, 2_000, 8_000, 20_000, 40_000]
        .into_iter()
        .enumerate()
    {
        let (job, dir) = start(
            &format!(
                r#"
name = "brokered-abort-{k}"
source = {{ kind = "synthetic", count = 200000, payload = "counter" }}
[[stages]]
name = "fast"
workers = 2
transport = {{ kind = "nats" }}
op = {{ kind = "spin", micros = 0 }}
[[stages]]
name = "after"
op = {{ kind = "spin", micros = 0 }}
"#
            ),
            2,
        );
        wait_for(&job, "items sunk", |s| {
            s.accounting.sunk >= after || s.state.is_some_and(|st| st.is_finished())
        });
        job.abort().unwrap();
        let report = job.wait();
        assert_balanced(&report);
        // Each leftover is a distinct item that was never sunk.
        if let Some(file) = &report.leftovers_file {
            let text = std::fs::read_to_string(dir.path().join(file))
                .or_else(|_| std::fs::read_to_string(file))
                .unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let distinct: std::collections::BTreeSet<&str> = lines.iter().copied().collect();
            assert_eq!(lines.len(), distinct.len(), "a leftover written twice");
            assert_eq!(lines.len() as u64, report.accounting.leftovers);
        }
    }
}
