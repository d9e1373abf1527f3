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
        b.set_local_workers(local).unwrap();
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
        s.nodes[0].edge.as_ref().is_some_and(|e| e.depth >= 150)
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
fn a_broker_stage_is_tuned_by_its_workers_only() {
    let (job, _dir) = start(
        r#"
name = "brokered-tune"
source = { kind = "synthetic", count = 1000000, rate = 1000.0, payload = "counter" }
[[stages]]
name = "io"
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.1 } }
"#,
        1,
    );
    let tune = |workers, concurrency| TuneRequest {
        stage: "io".into(),
        workers,
        concurrency,
        ..Default::default()
    };
    job.tune(&tune(Some(5), None)).unwrap();
    assert_eq!(job.broker_stages()[0].desired_workers(), 5);
    assert!(job.tune(&tune(None, Some(3))).is_err());
    job.abort().unwrap();
    let report = job.wait();
    assert_balanced(&report);
}
