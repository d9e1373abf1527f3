//! TCP and file sources: backpressure reaches the client, restarts resume.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use shared::metrics::JobState;

use crate::helpers::{assert_balanced, node, spec, start, wait_for};

#[test]
fn tcp_clients_are_slowed_by_a_full_queue_and_lose_nothing() {
    // A tiny queue before a slow stage: the reader blocks, stops reading
    // its socket, and the client's writes back up through TCP.
    let (job, _dir) = start(spec(
        r#"
name = "tcp-in"
source = { kind = "tcp", bind = "127.0.0.1:0", connections = 3 }
[[stages]]
name = "parse"
queue = { capacity = 4 }
op = { kind = "parse_json" }
[[stages]]
name = "slow"
queue = { capacity = 4 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.2 } }
"#,
    ));
    let addr = job.source_addr().expect("a tcp source has an address");
    let clients: Vec<_> = (0..3)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                for i in 0..2000 {
                    writeln!(s, r#"{{"id":"c{c}-{i}","level":"INFO","msg":"m"}}"#).unwrap();
                }
                // A malformed line and a last line without a newline.
                writeln!(s, "{{not json").unwrap();
                write!(s, r#"{{"id":"c{c}-last","level":"INFO","msg":"m"}}"#).unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let report = job.wait();
    assert_eq!(
        report.state,
        JobState::Completed,
        "ends after its 3 connections"
    );
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 3 * 2002);
    assert_eq!(report.accounting.sunk, 3 * 2001);
    assert_eq!(report.accounting.dead_lettered, 3);
    assert_eq!(
        node(&report.nodes, "parse").dropped,
        0,
        "blocking, not dropping"
    );
}

#[test]
fn a_drained_tcp_source_stops_accepting() {
    let (job, _dir) = start(spec(
        r#"
name = "tcp-forever"
source = { kind = "tcp", bind = "127.0.0.1:0" }
"#,
    ));
    let addr = job.source_addr().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    for i in 0..100 {
        writeln!(s, "line {i}").unwrap();
    }
    s.flush().unwrap();
    wait_for(&job, "all lines read", |snap| snap.accounting.sunk == 100);
    job.drain().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Stopped);
    assert_eq!(report.accounting.sunk, 100);
    assert_balanced(&report);
}

#[test]
fn a_restarted_file_source_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let offset = dir.path().join("in.offset");
    let out = dir.path().join("out.jsonl");
    let lines: Vec<String> = (0..5000).map(|i| format!(r#"{{"id":"k-{i}"}}"#)).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let toml = format!(
        r#"
name = "resumable"
source = {{ kind = "file", path = "{}", offset_file = "{}" }}
sink = {{ kind = "file", path = "{}", batch = {{ size = 50, linger_ms = 5 }} }}
[[stages]]
name = "slow"
queue = {{ capacity = 10 }}
op = {{ kind = "sleep", latency = {{ dist = "fixed", ms = 0.2 }} }}
"#,
        input.display(),
        offset.display(),
        out.display()
    );

    // First run: stopped mid-file.
    let (job, _d1) = start(spec(&toml));
    wait_for(&job, "part of the file", |s| s.accounting.sunk >= 500);
    job.drain().unwrap();
    let first = job.wait();
    assert_eq!(first.state, JobState::Stopped);
    assert!(first.accounting.produced < 5000, "stopped before the end");
    // Second run: picks up at the saved offset.
    let (job, _d2) = start(spec(&toml));
    let second = job.wait();
    assert_eq!(second.state, JobState::Completed);
    assert_eq!(first.accounting.produced + second.accounting.produced, 5000);
    let written = std::fs::read_to_string(&out).unwrap();
    let got: Vec<&str> = written.lines().collect();
    assert_eq!(got, lines, "every line once, in order");
}

#[test]
fn a_following_file_source_picks_up_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("grow.jsonl");
    std::fs::write(&input, "a\nb\n").unwrap();
    let (job, _d) = start(spec(&format!(
        r#"
name = "tail"
source = {{ kind = "file", path = "{}", follow = true }}
"#,
        input.display()
    )));
    wait_for(&job, "the first lines", |s| s.accounting.sunk == 2);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    write!(f, "c\nhalf").unwrap();
    f.flush().unwrap();
    wait_for(&job, "the appended line", |s| s.accounting.sunk == 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        job.snapshot().accounting.produced,
        3,
        "a half-written line waits for its end"
    );
    writeln!(f, "-done").unwrap();
    wait_for(&job, "the completed line", |s| s.accounting.sunk == 4);
    job.drain().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Stopped);
    assert_balanced(&report);
}

#[test]
fn a_confined_job_refuses_paths_outside_its_roots_before_opening_anything() {
    use std::sync::Arc;

    use engine::confine::{FileRoots, Files};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside.jsonl");
    let mut opts = engine::JobOptions::new("confined", dir.path().join("data"));
    opts.files = Files::Confined(Arc::new(
        FileRoots::new(std::slice::from_ref(&root)).unwrap(),
    ));
    let text = format!(
        r#"
name = "confined"
source = {{ kind = "file", path = "{}", sample = {{ count = 5 }} }}
sink = {{ kind = "file", path = "out/x.jsonl" }}
"#,
        outside.display()
    );
    match engine::start(spec(&text), opts.clone()) {
        Err(engine::StartError::Invalid(e)) => {
            assert_eq!(e.errors.len(), 1, "{e}");
            assert_eq!(e.errors[0].path, "source.path");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!outside.exists(), "no sample was written outside");
    assert!(!root.join("out").exists(), "the sink was not opened either");

    // Inside, relative paths land in the root: exactly where it checked.
    let text = r#"
name = "confined"
source = { kind = "file", path = "in/x.jsonl", sample = { count = 5 } }
sink = { kind = "file", path = "out/x.jsonl" }
"#;
    let job = engine::start(spec(text), opts).unwrap();
    let report = job.wait();
    assert_eq!(report.accounting.sunk, 5);
    assert!(root.join("in/x.jsonl").is_file());
    assert_eq!(
        std::fs::read_to_string(root.join("out/x.jsonl"))
            .unwrap()
            .lines()
            .count(),
        5
    );
}

#[test]
fn blank_lines_a_file_or_tcp_source_skips_are_counted_in_the_report() {
    // File: blank lines between, whitespace-only and CRLF ones, and a last
    // blank line without a newline.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "a\n\nb\n   \n\r\nc\r\n\t").unwrap();
    let (job, _data) = start(spec(&format!(
        r#"
name = "blanks"
source = {{ kind = "file", path = "{}" }}
"#,
        input.display()
    )));
    let report = job.wait();
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 3);
    assert_eq!(report.accounting.sunk, 3);
    assert_eq!(report.skipped_lines, 4);
    let json = serde_json::to_value(&*report).unwrap();
    assert_eq!(json["skipped_lines"], 4);

    // TCP: the same from two clients, one closing right after a blank
    // line, and a client that sends nothing at all (not a blank line).
    let (job, _data) = start(spec(
        r#"
name = "tcp-blanks"
source = { kind = "tcp", bind = "127.0.0.1:0", connections = 3 }
"#,
    ));
    let addr = job.source_addr().unwrap();
    for text in ["x\n\ny\n \n", "\r\nz", ""] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(text.as_bytes()).unwrap();
    }
    let report = job.wait();
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 3);
    assert_eq!(report.skipped_lines, 3);
}

#[test]
fn the_source_shows_where_its_time_goes_blocked_behind_a_slow_stage_idle_under_a_rate() {
    // A slow stage behind a tiny queue: the source spends its time waiting
    // for room, and says so.
    let report = crate::helpers::run(
        r#"
name = "backpressured"
source = { kind = "synthetic", count = 200, payload = "counter" }
[[stages]]
name = "slow"
workers = 1
queue = { capacity = 2 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 2.0 } }
"#,
    );
    crate::helpers::assert_balanced(&report);
    let s = &report.source;
    assert!(
        s.blocked > s.busy && s.blocked > s.idle,
        "blocked behind the stage: {s:?}"
    );
    assert!(s.rate > 0.0, "{s:?}");
    // A source held to a rate waits for its timer instead.
    let report = crate::helpers::run(
        r#"
name = "paced"
source = { kind = "synthetic", count = 40, rate = 200.0, payload = "counter" }
[[stages]]
name = "fast"
op = { kind = "spin", micros = 0 }
"#,
    );
    let s = &report.source;
    assert!(s.idle > s.busy && s.idle > s.blocked, "paced: {s:?}");
}

#[test]
fn a_rated_source_held_back_counts_latency_from_each_items_due_time() {
    // Arrivals every 0.25 ms into a stage that takes 1 ms an item behind a
    // queue of 4: the source falls further behind its schedule with every
    // item. Measured from when each item was *due* (an open model, as
    // wrk2 does), latency keeps growing with that backlog; measured from
    // when the held-back source got round to making it, it would stay
    // under what the queue and the source's own chunk can hold (about
    // 0.1 s here), and hide the wait.
    let (job, _dir) = crate::helpers::start(crate::helpers::spec(
        r#"
name = "open-model"
source = { kind = "synthetic", count = 2000, rate = 4000.0, payload = "counter" }
[[stages]]
name = "slow"
workers = 1
queue = { capacity = 4 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#,
    ));
    let start = job.latency_mark();
    let half = crate::helpers::wait_for(&job, "half the items sunk", |s| s.accounting.sunk >= 1000);
    let middle = job.latency_mark();
    let report = job.wait();
    crate::helpers::assert_balanced(&report);
    let end = job.latency_mark();
    let whole = end.since(&start);
    assert!(whole.count > 0 && whole.count <= 2000, "{whole:?}");
    // Item 2000 was due at 0.5 s and cannot be sunk before 2 s of service.
    assert!(
        whole.max_us > 1_000_000,
        "latency from the due time: {whole:?}"
    );
    // Windows partition the run: the two halves add up to the whole.
    let first = middle.since(&start);
    let second = end.since(&middle);
    assert_eq!(first.count + second.count, whole.count);
    assert!(half.accounting.sunk >= 1000);
    assert!(
        second.p50_us > first.p50_us,
        "the backlog grows: first {first:?}, second {second:?}"
    );
}
