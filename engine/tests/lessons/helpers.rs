use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{JobHandle, JobOptions};
use shared::lessons::Lesson;
use shared::metrics::{JobReport, JobSnapshot, NodeSnapshot, TuneRequest};
use shared::spec::{PipelineSpec, SourceSpec};

/// A running lesson, with the folder its files go to.
pub struct Run {
    pub job: JobHandle,
    pub dir: tempfile::TempDir,
}

/// The lesson's spec (or one of its variants).
pub fn spec(id: &str, variant: Option<&str>) -> PipelineSpec {
    lesson(id)
        .spec(variant)
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

pub fn lesson(id: &str) -> &'static Lesson {
    shared::lessons::get(id).unwrap_or_else(|| panic!("no lesson {id}"))
}

/// Shortens a synthetic source to `ms` (so a lesson that runs for minutes
/// in the dashboard ends by itself in a test).
pub fn lasting(mut spec: PipelineSpec, ms: u64) -> PipelineSpec {
    if let SourceSpec::Synthetic { duration_ms, .. } = &mut spec.source {
        *duration_ms = Some(ms);
    }
    spec
}

/// Starts a spec the way `queuelab run` does, paths relative to a fresh
/// folder.
pub fn start(spec: PipelineSpec) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = JobOptions::new(format!("lesson-{}", spec.name), dir.path().join("data"));
    opts.runtime_threads = 2;
    opts.files = engine::confine::Files::Anywhere {
        base: dir.path().to_owned(),
    };
    let job = engine::start(spec, opts).unwrap_or_else(|e| panic!("{e}"));
    Run { job, dir }
}

/// Waits (bounded, generously: not a timing assertion) for a snapshot
/// that satisfies `pred`, and returns it.
pub fn wait_for(
    job: &JobHandle,
    what: &str,
    pred: impl Fn(&JobSnapshot) -> bool,
) -> Arc<JobSnapshot> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut rx = job.subscribe();
    loop {
        let snap = rx.borrow_and_update().clone();
        if pred(&snap) {
            return snap;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last snapshot: {snap:#?}"
        );
        assert!(
            !snap.state.is_some_and(|s| s.is_finished()),
            "the job ended before {what}: {snap:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next `n` distinct snapshots.
pub fn next_snapshots(job: &JobHandle, n: usize) -> Vec<Arc<JobSnapshot>> {
    let mut rx = job.subscribe();
    let mut seen: Vec<Arc<JobSnapshot>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < n {
        let snap = rx.borrow_and_update().clone();
        if seen.last().is_none_or(|s| s.seq < snap.seq) {
            seen.push(snap);
        }
        assert!(Instant::now() < deadline, "snapshots stopped coming");
        std::thread::sleep(Duration::from_millis(10));
    }
    seen
}

/// Items sunk per second of the job's own clock over the next `n`
/// snapshots (the engine's figures, not a stopwatch of the test's).
pub fn sunk_rate(job: &JobHandle, n: usize) -> f64 {
    let s = next_snapshots(job, n);
    let (a, b) = (&s[0], &s[n - 1]);
    (b.accounting.sunk - a.accounting.sunk) as f64 * 1000.0
        / (b.elapsed_ms - a.elapsed_ms).max(1) as f64
}

pub fn node<'a>(snap: &'a JobSnapshot, name: &str) -> &'a NodeSnapshot {
    snap.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no node {name} in {:?}",
                snap.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
            )
        })
}

pub fn tune(job: &JobHandle, stage: &str, f: impl FnOnce(&mut TuneRequest)) {
    let mut req = TuneRequest {
        stage: stage.into(),
        ..Default::default()
    };
    f(&mut req);
    job.tune(&req)
        .unwrap_or_else(|e| panic!("tune {stage}: {e}"));
}

/// Asserts the accounting invariant.
pub fn assert_balanced(report: &JobReport) {
    assert!(
        report.balanced && report.accounting.balanced(),
        "accounting does not add up: {}\n{report:#?}",
        report.accounting
    );
}
