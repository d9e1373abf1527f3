//! Scale-out through NATS JetStream with real processes: a `queuelab
//! serve` child, `queuelab worker` children, the local broker
//! (127.0.0.1:4222 or `QUEUELAB_NATS_URL`), `kill -9` for crashes.
//! Nothing here times anything: every check is a count.

use std::process::Output;
use std::time::{Duration, Instant};

use e2e::{ServerProcess, WorkerProcess as Worker};

fn nats_url() -> String {
    std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn jobs(server: &ServerProcess, args: &[&str]) -> Output {
    server.jobs(args)
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

fn serve() -> ServerProcess {
    let url = nats_url();
    ServerProcess::spawn_with(&["--nats-url", &url, "--no-local-stage-workers"])
}

fn start(server: &ServerProcess, toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, toml).unwrap();
    let out = jobs(server, &["start", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `what` (bounded, generously: not a timing assertion).
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sunk(server: &ServerProcess, id: &str) -> u64 {
    let d = json_of(&jobs(server, &["get", id]));
    d["snapshot"]["accounting"]["sunk"].as_u64().unwrap_or(0)
}

fn workers(server: &ServerProcess) -> Vec<serde_json::Value> {
    json_of(&jobs(server, &["workers", "--json"]))
        .as_array()
        .cloned()
        .unwrap()
}

fn report(server: &ServerProcess, id: &str) -> serde_json::Value {
    json_of(&jobs(server, &["wait", id, "--json", "--timeout-s", "300"]))
}

fn node<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn balanced(r: &serde_json::Value) {
    assert_eq!(r["balanced"], true, "{r:#}");
}

/// Rows and distinct keys of the SQLite sink's table.
fn rows(server: &ServerProcess, db: &str) -> (u64, u64) {
    let conn = rusqlite::Connection::open(server.data_dir.path().join("files").join(db)).unwrap();
    conn.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT key) FROM records",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn spec(name: &str, count: u64, rate: f64, db: &str) -> String {
    format!(
        r#"
name = "{name}"
source = {{ kind = "synthetic", count = {count}, rate = {rate:.1}, payload = "log_line", malformed_share = 0.01, seed = 7 }}
[[stages]]
name = "parse"
workers = 6
timeout_ms = 1000
transport = {{ kind = "nats" }}
op = {{ kind = "parse_json" }}
[[stages]]
name = "no-debug"
op = {{ kind = "filter", field = "level", values = ["DEBUG"], mode = "drop" }}
[sink]
kind = "sqlite"
path = "{db}"
"#
    )
}

fn wait_for_workers(server: &ServerProcess, n: usize) {
    wait_until("workers registered", || {
        workers(server)
            .iter()
            .filter(|w| w["state"] == "active")
            .count()
            >= n
    });
}

/// Every row is one item: rows = distinct keys = produced − dead letters
/// − filtered, and the buckets add up.
fn exact(server: &ServerProcess, r: &serde_json::Value, db: &str) {
    balanced(r);
    assert_eq!(r["leftovers"], 0, "{r:#}");
    let produced = r["produced"].as_u64().unwrap();
    let dead = r["dead_lettered"].as_u64().unwrap();
    let filtered = r["filtered"].as_u64().unwrap();
    let (rows, distinct) = rows(server, db);
    assert_eq!(rows, distinct, "a redelivery duplicated a row");
    // A result booked twice would be sunk twice: upserted rows would hide it.
    assert_eq!(r["sunk"].as_u64().unwrap(), rows, "{r:#}");
    assert_eq!(rows, produced - dead - filtered, "{r:#}");
    let edge = &node(r, "parse")["edge"];
    assert_eq!(
        edge["depth"], 0,
        "the stream is empty after a drain: {edge}"
    );
}

#[test]
fn a_stage_on_three_workers_survives_a_kill_9_with_exact_accounting() {
    let server = serve();
    let mut w: Vec<Worker> = (1..=3)
        .map(|i| Worker::spawn(&server, &format!("w{i}"), &[]))
        .collect();
    wait_for_workers(&server, 3);
    let id = start(&server, &spec("scale-out", 50_000, 10_000.0, "scale.db"));
    wait_until("a third sunk", || sunk(&server, &id) >= 16_667);
    w[1].kill9();
    let r = report(&server, &id);
    assert_eq!(r["state"], "completed", "{r:#}");
    assert_eq!(r["produced"], 50_000);
    exact(&server, &r, "scale.db");
    let parse = node(&r, "parse");
    assert!(
        parse["redelivered"].as_u64().unwrap_or(0) >= 1,
        "the killed worker held items: {parse:#}"
    );
    assert!(
        r["redeliveries"]
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.contains("redelivered"))),
        "the report says why: {r:#}"
    );
    // The others are still there; the killed one is lost.
    wait_until("the killed worker marked lost", || {
        workers(&server)
            .iter()
            .any(|x| x["name"] == "w2" && x["state"] == "lost")
    });
}

#[test]
fn a_crash_after_storing_results_and_before_the_ack_duplicates_nothing() {
    let server = serve();
    let _steady = Worker::spawn(&server, "steady", &[]);
    let _crashing = Worker::spawn(
        &server,
        "crashing",
        &[("QUEUELAB_FAULT_CRASH_BEFORE_ACK", "3")],
    );
    wait_for_workers(&server, 2);
    let id = start(
        &server,
        &spec("crash-before-ack", 5_000, 2_000.0, "crash.db"),
    );
    let r = report(&server, &id);
    assert_eq!(r["state"], "completed", "{r:#}");
    exact(&server, &r, "crash.db");
    assert!(
        node(&r, "parse")["redelivered"].as_u64().unwrap_or(0) >= 1,
        "the crashed worker's batch came again: {r:#}"
    );
}

#[test]
fn a_worker_joining_mid_run_takes_a_share_and_drain_and_abort_reach_every_worker() {
    let server = serve();
    let _first = Worker::spawn(&server, "first", &[]);
    wait_for_workers(&server, 1);
    let id = start(&server, &spec("joining", 1_000_000, 2_000.0, "join.db"));
    wait_until("some sunk", || sunk(&server, &id) >= 500);
    let _second = Worker::spawn(&server, "second", &[]);
    wait_until("the second worker settles items", || {
        workers(&server)
            .iter()
            .any(|w| w["name"] == "second" && w["counts"]["processed"].as_u64().unwrap_or(0) > 0)
    });
    // A drain ends the run with nothing left anywhere.
    let out = jobs(&server, &["stop", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&server, &id);
    assert_eq!(r["state"], "stopped", "{r:#}");
    exact(&server, &r, "join.db");

    // An abort: what the stream held goes to leftovers, and it adds up.
    let id = start(&server, &spec("aborted", 1_000_000, 5_000.0, "abort.db"));
    wait_until("some sunk", || sunk(&server, &id) >= 500);
    let out = jobs(&server, &["stop", &id, "--abort"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&server, &id);
    assert_eq!(r["state"], "aborted", "{r:#}");
    balanced(&r);
    // Every worker let go of both jobs.
    wait_until("assignments withdrawn", || {
        workers(&server)
            .iter()
            .all(|w| w["assignments"].as_array().is_some_and(|a| a.is_empty()))
    });
}

#[test]
fn a_full_stream_blocks_the_publisher_without_losing_an_item() {
    let server = serve();
    let _w = Worker::spawn(&server, "only", &[]);
    wait_for_workers(&server, 1);
    let id = start(
        &server,
        r#"
name = "full-stream"
source = { kind = "synthetic", count = 3000, payload = "counter" }
[[stages]]
name = "slow"
workers = 2
queue = { capacity = 20, when_full = "block" }
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.5 } }
"#,
    );
    let r = report(&server, &id);
    assert_eq!(r["state"], "completed", "{r:#}");
    balanced(&r);
    assert_eq!(r["sunk"], 3000, "block loses nothing: {r:#}");
    let slow = node(&r, "slow");
    assert!(
        slow["edge"]["publish_refusals"].as_u64().unwrap() > 0,
        "the stream refused publishes while full: {slow:#}"
    );
}

#[test]
fn a_worker_registers_again_after_the_server_restarts() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = nats_url();
    let port_s = port.to_string();
    let args = [
        "--nats-url",
        url.as_str(),
        "--no-local-stage-workers",
        "--port",
        port_s.as_str(),
    ];
    let server = ServerProcess::spawn_with(&args);
    let _w = Worker::spawn(&server, "survivor", &[]);
    wait_for_workers(&server, 1);
    drop(server);
    let server = ServerProcess::spawn_with(&args);
    wait_for_workers(&server, 1);
    let id = start(
        &server,
        &spec("after-restart", 2_000, 2_000.0, "restart.db"),
    );
    let r = report(&server, &id);
    assert_eq!(r["state"], "completed", "{r:#}");
    exact(&server, &r, "restart.db");
}
