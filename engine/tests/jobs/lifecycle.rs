use shared::metrics::{EventKind, JobState, TuneRequest};

use crate::helpers::{assert_balanced, node, spec, start, wait_for};

const ENDLESS: &str = r#"
name = "endless"
source = { kind = "synthetic", duration_ms = 600000, rate = 2000.0, payload = "log_line" }
[[stages]]
name = "work"
workers = 2
queue = { capacity = 100 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 2.0 } }
[[stages]]
name = "fan"
runtime = "async"
workers = 4
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#;

#[test]
fn drain_stops_the_source_and_finishes_everything_held() {
    let (job, _dir) = start(spec(ENDLESS));
    wait_for(&job, "items in flight", |s| s.accounting.produced > 200);
    job.drain().unwrap();
    assert_eq!(job.state(), JobState::Draining);
    job.drain().unwrap(); // idempotent
    let report = job.wait();
    assert_eq!(report.state, JobState::Stopped);
    assert_balanced(&report);
    assert_eq!(
        report.accounting.leftovers, 0,
        "a drain leaves nothing over"
    );
    assert_eq!(report.accounting.sunk, report.accounting.produced);
    assert!(report.leftovers_file.is_none());
    let states: Vec<_> = report
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            JobState::Pending,
            JobState::Running,
            JobState::Draining,
            JobState::Stopped
        ]
    );
    assert!(matches!(
        job.drain(),
        Err(engine::ControlError::NotRunning(JobState::Stopped))
    ));
}

#[test]
fn abort_saves_what_was_queued_and_in_flight_and_it_replays() {
    let (job, dir) = start(spec(ENDLESS));
    wait_for(&job, "a backlog", |s| node(&s.nodes, "work").depth > 20);
    job.abort().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Aborted);
    assert_balanced(&report);
    let leftovers = report.accounting.leftovers;
    assert!(leftovers > 0);
    let file = report
        .leftovers_file
        .clone()
        .expect("leftovers were written");
    assert!(file.starts_with(dir.path().to_str().unwrap()));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count() as u64, leftovers);

    let replay = crate::helpers::run(&format!(
        r#"
name = "replay"
source = {{ kind = "file", path = "{file}" }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#
    ));
    assert_eq!(replay.accounting.produced, leftovers);
    assert_eq!(
        replay.accounting.sunk, leftovers,
        "leftovers are the original lines"
    );
}

#[test]
fn drain_deadline_escalates_to_abort() {
    let (job, _dir) = start(spec(
        r#"
name = "stuck"
drain_deadline_ms = 200
source = { kind = "synthetic", count = 1000, payload = "counter" }
[[stages]]
name = "slow"
queue = { capacity = 1000 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 1000.0 } }
"#,
    ));
    wait_for(&job, "a backlog", |s| node(&s.nodes, "slow").depth > 100);
    job.drain().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Aborted);
    assert_balanced(&report);
    assert!(report.accounting.leftovers > 0);
    let reason = report.events.iter().find_map(|e| match &e.kind {
        EventKind::State {
            state: JobState::Aborted,
            reason,
        } => reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("drain deadline of 200 ms exceeded"));
}

#[test]
fn tuning_changes_the_number_of_running_workers() {
    let (job, _dir) = start(spec(ENDLESS));
    wait_for(&job, "two thread workers", |s| {
        node(&s.nodes, "work").workers == 2
    });
    job.tune(&TuneRequest {
        stage: "work".into(),
        workers: Some(6),
        concurrency: None,
        ..Default::default()
    })
    .unwrap();
    wait_for(&job, "six thread workers", |s| {
        node(&s.nodes, "work").workers == 6
    });
    job.tune(&TuneRequest {
        stage: "work".into(),
        workers: Some(1),
        concurrency: None,
        ..Default::default()
    })
    .unwrap();
    wait_for(&job, "one thread worker", |s| {
        node(&s.nodes, "work").workers == 1
    });
    job.tune(&TuneRequest {
        stage: "fan".into(),
        workers: Some(9),
        concurrency: Some(3),
        ..Default::default()
    })
    .unwrap();
    wait_for(&job, "nine tasks, concurrency 3", |s| {
        let fan = node(&s.nodes, "fan");
        fan.workers == 9 && fan.concurrency == Some(3)
    });
    job.tune(&TuneRequest {
        stage: "fan".into(),
        workers: Some(2),
        concurrency: None,
        ..Default::default()
    })
    .unwrap();
    wait_for(&job, "two tasks", |s| node(&s.nodes, "fan").workers == 2);

    // Bad tunes are refused with the field named.
    let err = job
        .tune(&TuneRequest {
            stage: "work".into(),
            workers: None,
            concurrency: Some(2),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, engine::ControlError::Invalid { ref field, .. } if field == "concurrency"),
        "{err}"
    );
    let err = job
        .tune(&TuneRequest {
            stage: "work".into(),
            workers: Some(0),
            concurrency: None,
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, engine::ControlError::Invalid { ref field, .. } if field == "workers"),
        "{err}"
    );
    assert!(matches!(
        job.tune(&TuneRequest {
            stage: "nope".into(),
            workers: Some(1),
            concurrency: None,
            ..Default::default()
        }),
        Err(engine::ControlError::UnknownStage(_))
    ));

    job.drain().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    let tunes = report
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Tuned { .. }))
        .count();
    assert_eq!(tunes, 5, "each applied change is an event");
    assert!(
        job.tune(&TuneRequest {
            stage: "work".into(),
            workers: Some(2),
            concurrency: None,
            ..Default::default()
        })
        .is_err()
    );
}

#[test]
fn a_blocking_thread_stage_does_not_hold_up_an_async_stage() {
    let (job, _dir) = start(spec(
        r#"
name = "isolation"
source = { kind = "synthetic", count = 200, payload = "counter" }
[[stages]]
name = "fetch"
runtime = "async"
workers = 20
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
[[stages]]
name = "disk"
queue = { capacity = 1000 }
op = { kind = "blocking_sleep", latency = { dist = "fixed", ms = 200.0 } }
"#,
    ));
    // The async stage gets through all 200 items while the thread stage,
    // blocking 200 ms per item, has done only a few.
    let snap = wait_for(&job, "the async stage to finish its input", |s| {
        node(&s.nodes, "fetch").items_out == 200
    });
    assert!(node(&snap.nodes, "disk").items_out < 100);
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn bad_files_fail_the_start_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let s = spec(&format!(
        r#"
name = "nofile"
source = {{ kind = "file", path = "{}" }}
"#,
        missing.display()
    ));
    let err = engine::start(s, engine::JobOptions::new("x", dir.path())).unwrap_err();
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}

#[test]
fn a_failing_sink_fails_the_job_and_keeps_what_it_could_not_write() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // a disk that is always full is a Linux device
    }
    let (job, _dir) = start(spec(
        r#"
name = "full-disk"
source = { kind = "synthetic", count = 5000 }
sink = { kind = "file", path = "/dev/full" }
"#,
    ));
    let report = job.wait();
    assert_eq!(report.state, JobState::Failed);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("sink write failed")),
        "{:?}",
        report.error
    );
    assert_balanced(&report);
    assert_eq!(report.accounting.sunk, 0, "nothing reached the disk");
    assert!(report.accounting.leftovers > 0);
    let file = report.leftovers_file.as_deref().expect("leftovers saved");
    let lines = std::fs::read_to_string(file).unwrap().lines().count() as u64;
    assert_eq!(lines, report.accounting.leftovers);
}
