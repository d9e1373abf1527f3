//! `http_ingest` sources under abort: every line a client pushed is either
//! in the job's buckets or handed back to that client, never both, never
//! neither (issue 10, part 3).

use std::sync::Arc;
use std::thread::JoinHandle;

use engine::source::{IngestError, IngestHandle, Ingested};
use shared::metrics::{JobReport, JobState};

use crate::helpers::{assert_balanced, spec, start, wait_for};

/// A capacity-1 `block` queue before a one-second stage: one line in
/// service, one queued, the rest of the clients blocked.
const SLOW: &str = r#"
name = "ingest-slow"
source = { kind = "http_ingest" }
sample_hz = 50.0
[[stages]]
name = "slow"
queue = { capacity = 1, when_full = "block" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 1000.0 } }
"#;

/// `n` clients, each pushing one line from a thread of its own.
fn one_line_clients(
    ingest: &IngestHandle,
    n: usize,
) -> Vec<JoinHandle<Result<Ingested, IngestError>>> {
    (0..n)
        .map(|c| {
            let ingest = ingest.clone();
            std::thread::spawn(move || ingest.push([format!("line {c}")]))
        })
        .collect()
}

/// Waits for the source to open (the first push may race it).
fn wait_open(ingest: &IngestHandle) {
    while ingest.push(Vec::<String>::new()) == Err(IngestError::NotReady) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Every client got an answer whose counts add up, and the job counted
/// as produced exactly what the clients were told was accepted.
fn assert_clients_match(report: &JobReport, answers: &[Result<Ingested, IngestError>]) {
    assert_balanced(report);
    let mut accepted = 0;
    for (c, a) in answers.iter().enumerate() {
        let a = a.unwrap_or_else(|e| panic!("client {c} got no counts: {e}"));
        assert_eq!(a.accepted + a.refused + a.not_taken, 1, "client {c}: {a:?}");
        accepted += a.accepted + a.refused;
    }
    assert_eq!(
        report.accounting.produced, accepted,
        "produced counts exactly the lines clients were told were taken: {}",
        report.accounting
    );
}

fn blocked_then(stop: impl Fn(&engine::JobHandle)) {
    let (job, _dir) = start(spec(SLOW));
    let ingest = job.ingest().unwrap();
    wait_open(&ingest);
    let clients = one_line_clients(&ingest, 20);
    // Every client has its line numbered, and the stage finished one.
    wait_for(&job, "20 lines in and one sunk", |s| {
        s.accounting.produced == 20 && s.accounting.sunk >= 1
    });
    stop(&job);
    let report = job.wait();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(report.state, JobState::Aborted);
    assert_clients_match(&report, &answers);
}

#[test]
fn aborting_with_blocked_ingests_loses_nothing() {
    // The issue's reproduction, repeated: it lost lines in 7 runs of 8.
    for _ in 0..8 {
        blocked_then(|job| job.abort().unwrap());
    }
}

#[test]
fn a_drain_escalating_to_abort_with_blocked_ingests_loses_nothing() {
    for _ in 0..4 {
        blocked_then(|job| {
            job.drain_within(Some(std::time::Duration::from_millis(50)))
                .unwrap()
        });
    }
}

#[test]
fn async_pushes_blocked_on_either_kind_of_queue_lose_nothing_on_abort() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for runtime in ["thread", "async"] {
        let (job, _dir) = start(spec(&SLOW.replace(
            "name = \"slow\"",
            &format!("name = \"slow\"\nruntime = \"{runtime}\""),
        )));
        let ingest = job.ingest().unwrap();
        wait_open(&ingest);
        // 200 requests wait on one runtime thread: none holds a thread.
        let clients: Vec<_> = (0..200)
            .map(|c| {
                let ingest = ingest.clone();
                rt.spawn(async move { ingest.push_async([format!("line {c}")]).await })
            })
            .collect();
        wait_for(&job, "200 lines in", |s| s.accounting.produced == 200);
        job.abort().unwrap();
        let report = job.wait();
        let answers: Vec<_> = clients
            .into_iter()
            .map(|c| rt.block_on(c).unwrap())
            .collect();
        assert_clients_match(&report, &answers);
        assert!(
            answers.iter().any(|a| a.is_ok_and(|a| a.not_taken == 1)),
            "{runtime}: blocked lines were handed back"
        );
    }
}

#[test]
fn a_cancelled_async_push_is_not_counted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (job, _dir) = start(spec(SLOW));
    let ingest = Arc::new(job.ingest().unwrap());
    wait_open(&ingest);
    let clients = one_line_clients(&ingest, 2);
    wait_for(&job, "one in service, one queued", |s| {
        s.accounting.produced == 2
    });
    // A third line waits for room; its client gives up.
    let gave_up = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(100),
            ingest.push_async(["line x".to_owned()]),
        )
        .await
    });
    assert!(gave_up.is_err(), "still waiting when cancelled");
    job.abort().unwrap();
    let report = job.wait();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_clients_match(&report, &answers);
}

#[test]
fn a_finished_job_takes_no_more_input() {
    let (job, _dir) = start(spec(SLOW));
    let ingest = job.ingest().unwrap();
    wait_open(&ingest);
    job.abort().unwrap();
    job.wait();
    assert_eq!(
        ingest.push(["late".to_owned()]),
        Err(IngestError::Stopped),
        "stopped for good, not `not ready yet`"
    );
}

#[test]
fn blank_lines_pushed_to_an_ingest_source_are_counted_not_lost() {
    let (job, _dir) = start(spec(
        r#"
name = "ingest-blank"
source = { kind = "http_ingest" }
[[stages]]
name = "fast"
op = { kind = "spin", micros = 0 }
"#,
    ));
    let ingest = job.ingest().unwrap();
    wait_open(&ingest);
    let from_thread = ingest
        .push(["a".to_owned(), String::new(), "  ".to_owned()])
        .unwrap();
    assert_eq!(from_thread.accepted, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let from_task = rt
        .block_on(ingest.push_async(vec!["b".to_owned(), "\t".to_owned()]))
        .unwrap();
    assert_eq!(from_task.accepted, 1);
    job.drain().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 2);
    assert_eq!(report.skipped_lines, 3);
}
