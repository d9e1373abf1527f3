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
    // A second broker stage whose items wait 1 ms: each worker always
    // holds a message of it, so the kill must leave some to redeliver
    // (an instant stage's messages may all be settled at that moment).
    let toml = spec("scale-out", 50_000, 10_000.0, "scale.db").replace(
        "[sink]",
        "[[stages]]\nname = \"hold\"\nworkers = 6\ntimeout_ms = 1000\ntransport = { kind = \"nats\" }\nop = { kind = \"sleep\", latency = { dist = \"fixed\", ms = 1.0 } }\n[sink]",
    );
    let id = start(&server, &toml);
    wait_until("a third sunk", || sunk(&server, &id) >= 16_667);
    w[1].kill9();
    let r = report(&server, &id);
    assert_eq!(r["state"], "completed", "{r:#}");
    assert_eq!(r["produced"], 50_000);
    exact(&server, &r, "scale.db");
    let hold = node(&r, "hold");
    assert!(
        hold["redelivered"].as_u64().unwrap_or(0) >= 1,
        "the killed worker held items: {hold:#}"
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
    let mut crashing = Worker::spawn(
        &server,
        "crashing",
        &[("QUEUELAB_FAULT_CRASH_BEFORE_ACK", "3")],
    );
    wait_for_workers(&server, 2);
    // Ten seconds of input: the crashing worker's threads come up and take
    // messages however late its placement lands on a loaded machine (a
    // 2.5 s job could end before they did, seen in `./dev test`).
    let id = start(
        &server,
        &spec("crash-before-ack", 20_000, 2_000.0, "crash.db"),
    );
    wait_until("the crashing worker crashed before an ack", || {
        crashing.exited()
    });
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

/// A small deterministic generator (splitmix64): the run prints its seed,
/// and `QUEUELAB_RANDOM_SEED` replays it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A random pipeline with one or two broker stages: payloads that may not
/// parse, operations that fail, retries, small edges that block, drop or
/// reject, threads or tasks, and a SQLite sink keyed by the record.
fn random_spec(rng: &mut Rng, name: &str, db: &str) -> (String, u64) {
    let count = rng.range(50, 1_500);
    let rate = [2_000.0, 5_000.0, 20_000.0][rng.below(3) as usize];
    let malformed = [0.0, 0.02, 0.1][rng.below(3) as usize];
    let broker_stage = |rng: &mut Rng, name: &str, op: &str| {
        let runtime = rng.pick(&["thread", "async"]);
        let when_full = rng.pick(&["block", "block", "drop_newest", "reject"]);
        let capacity = [16, 64, 256, 4_096][rng.below(4) as usize];
        let on_error = rng.pick(&["dead_letter", "drop"]);
        let retry = if rng.chance(0.5) {
            "retry = { max_attempts = 3, base_ms = 1.0, cap_ms = 5.0 }\n"
        } else {
            ""
        };
        format!(
            "[[stages]]\nname = \"{name}\"\nworkers = {}\nruntime = \"{runtime}\"\ntimeout_ms = 300\non_error = \"{on_error}\"\n{retry}queue = {{ capacity = {capacity}, when_full = \"{when_full}\" }}\ntransport = {{ kind = \"nats\" }}\nop = {op}\n",
            rng.range(1, 6)
        )
    };
    let mut toml = format!(
        "name = \"{name}\"\nsource = {{ kind = \"synthetic\", count = {count}, rate = {rate:.1}, payload = \"log_line\", malformed_share = {malformed}, seed = {} }}\n",
        rng.below(1_000)
    );
    toml += &broker_stage(rng, "parse", "{ kind = \"parse_json\" }");
    if rng.chance(0.5) {
        toml += "[[stages]]\nname = \"no-debug\"\nop = { kind = \"filter\", field = \"level\", values = [\"DEBUG\"], mode = \"drop\" }\n";
    }
    if rng.chance(0.5) {
        let op = if rng.chance(0.5) {
            "{ kind = \"sleep\", latency = { dist = \"fixed\", ms = 0.3 } }"
        } else {
            "{ kind = \"fail\", share = 0.05 }"
        };
        toml += &broker_stage(rng, "second", op);
    }
    toml += &format!("[sink]\nkind = \"sqlite\"\npath = \"{db}\"\n");
    (toml, count)
}

/// The streams of `job` the broker still has, asked over the NATS protocol
/// itself (`$JS.API.STREAM.NAMES` filtered by the job's subjects).
fn streams_of(job: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let url = nats_url();
    let addr = url.trim_start_matches("nats://").trim_end_matches('/');
    let stream = std::net::TcpStream::connect(addr).expect("reach the broker");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    let token: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let body = format!(r#"{{"subject":"ql.{token}.>"}}"#);
    write!(
        writer,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.qltest 1\r\nPUB $JS.API.STREAM.NAMES _INBOX.qltest {}\r\n{body}\r\nPING\r\n",
        body.len()
    )
    .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("the broker answers");
        if line.starts_with("PING") {
            writer.write_all(b"PONG\r\n").unwrap();
        } else if line.starts_with("MSG") {
            let len: usize = line.split_whitespace().last().unwrap().parse().unwrap();
            let mut payload = vec![0; len + 2];
            reader.read_exact(&mut payload).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&payload[..len]).unwrap();
            assert!(v.get("error").is_none(), "{v}");
            return v["streams"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
        } else if line.starts_with("-ERR") {
            panic!("the broker refused: {line}");
        }
    }
}

/// What the randomized runs saw, printed at the end.
#[derive(Default)]
struct Tally {
    runs: u64,
    completed: u64,
    stopped: u64,
    aborted: u64,
    produced: u64,
    sunk: u64,
    dead: u64,
    dropped: u64,
    filtered: u64,
    leftovers: u64,
    redelivered: u64,
}

/// At least 200 random runs (`QUEUELAB_BROKER_RUNS` for more): each
/// balances, sinks each item once, and leaves no stream behind, while
/// workers are killed and crash around it. The figures are printed (a
/// test's output, as the property tests of the engine print theirs).
#[test]
#[allow(clippy::print_stderr)]
fn random_runs_with_kills_and_crashes_account_for_every_item_once() {
    let runs: u64 = std::env::var("QUEUELAB_BROKER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("QUEUELAB_RANDOM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("random broker runs: {runs}, seed {seed} (QUEUELAB_RANDOM_SEED={seed} replays)");
    let server = std::sync::Arc::new(serve());
    let names = ["w1", "w2", "w3"];
    let pool: Vec<Worker> = names
        .iter()
        .map(|n| Worker::spawn(&server, n, &[]))
        .collect();
    wait_for_workers(&server, names.len());
    let pool = std::sync::Mutex::new(pool);
    let done = std::sync::atomic::AtomicBool::new(false);
    let next = std::sync::atomic::AtomicU64::new(0);
    let tally = std::sync::Mutex::new(Tally::default());
    let (kills, crashes) = (
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    );
    let started = Instant::now();
    std::thread::scope(|s| {
        // The chaos: now and then a random worker is killed with -9 and
        // started again, sometimes primed to crash after storing its Nth
        // result and before acking it; one that crashed is started again.
        s.spawn(|| {
            let mut rng = Rng(seed ^ 0xC4A05);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(rng.range(300, 2_500)));
                let mut pool = pool.lock().unwrap();
                for (i, w) in pool.iter_mut().enumerate() {
                    if w.exited() {
                        crashes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        *w = Worker::spawn(&server, names[i], &[]);
                    }
                }
                let i = rng.below(names.len() as u64) as usize;
                pool[i].kill9();
                kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let n = rng.range(1, 30).to_string();
                let env: &[(&str, &str)] = if rng.chance(0.4) {
                    &[("QUEUELAB_FAULT_CRASH_BEFORE_ACK", n.as_str())]
                } else {
                    &[]
                };
                pool[i] = Worker::spawn(&server, names[i], env);
            }
        });
        let lanes: Vec<_> = (0..8u64)
            .map(|lane| {
                let (server, next, tally) = (&server, &next, &tally);
                s.spawn(move || {
                    loop {
                        let run = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if run >= runs {
                            break;
                        }
                        let mut rng = Rng(seed.wrapping_add(run.wrapping_mul(0x1000_0001)));
                        let db = format!("random-{run}.db");
                        let (toml, count) = random_spec(&mut rng, &format!("random-{run}"), &db);
                        let id = start(server, &toml);
                        // The stream check must be able to fail: while the
                        // first run of a lane runs, its streams are there.
                        if run == lane {
                            assert!(
                                !streams_of(&id).is_empty(),
                                "no streams for a running job {id}"
                            );
                        }
                        let ending = rng.below(3);
                        if ending > 0 {
                            let at = rng.below(count / 2 + 1);
                            let deadline = Instant::now() + Duration::from_secs(30);
                            while sunk(server, &id) < at && Instant::now() < deadline {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            let mode: &[&str] = if ending == 1 { &[] } else { &["--abort"] };
                            let out = jobs(server, &[&["stop", id.as_str()], mode].concat());
                            // A job that finished first cannot be stopped.
                            let _ = out;
                        }
                        let r = report(server, &id);
                        let what = format!("run {run} (seed {seed}):\n{toml}\n{r:#}");
                        assert_eq!(r["balanced"], true, "{what}");
                        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k}: {what}"));
                        assert_eq!(
                            n("produced"),
                            n("sunk")
                                + n("dropped_by_policy")
                                + n("dead_lettered")
                                + n("filtered")
                                + n("leftovers"),
                            "{what}"
                        );
                        let (rows, distinct) = rows(server, &db);
                        assert_eq!(rows, distinct, "a redelivery duplicated a row: {what}");
                        assert_eq!(n("sunk"), rows, "a result booked twice, or lost: {what}");
                        let state = r["state"].as_str().unwrap().to_owned();
                        if state == "completed" {
                            assert_eq!(n("produced"), count, "{what}");
                            assert_eq!(n("leftovers"), 0, "{what}");
                        }
                        assert!(
                            r["kept_on_broker"].as_object().is_none_or(|m| m.is_empty()),
                            "{what}"
                        );
                        assert_eq!(
                            streams_of(&id),
                            Vec::<String>::new(),
                            "streams left: {what}"
                        );
                        let mut t = tally.lock().unwrap();
                        t.runs += 1;
                        match state.as_str() {
                            "completed" => t.completed += 1,
                            "stopped" => t.stopped += 1,
                            "aborted" => t.aborted += 1,
                            other => panic!("ended {other}: {what}"),
                        }
                        t.produced += n("produced");
                        t.sunk += n("sunk");
                        t.dead += n("dead_lettered");
                        t.dropped += n("dropped_by_policy");
                        t.filtered += n("filtered");
                        t.leftovers += n("leftovers");
                        t.redelivered += r["nodes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|n| n["redelivered"].as_u64().unwrap_or(0))
                            .sum::<u64>();
                    }
                })
            })
            .collect();
        let panicked = lanes.into_iter().map(|l| l.join()).find_map(Result::err);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
    });
    let t = tally.into_inner().unwrap();
    eprintln!(
        "random broker runs: {} in {:.0} s (completed {}, drained {}, aborted {}); kill -9 {}, crashes before ack {}; items produced {}, sunk {}, dead letters {}, dropped {}, filtered {}, leftovers {}, redelivered {}",
        t.runs,
        started.elapsed().as_secs_f64(),
        t.completed,
        t.stopped,
        t.aborted,
        kills.load(std::sync::atomic::Ordering::Relaxed),
        crashes.load(std::sync::atomic::Ordering::Relaxed),
        t.produced,
        t.sunk,
        t.dead,
        t.dropped,
        t.filtered,
        t.leftovers,
        t.redelivered
    );
    assert_eq!(t.runs, runs);
}
