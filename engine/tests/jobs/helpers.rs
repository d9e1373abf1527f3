use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{JobHandle, JobOptions};
use shared::metrics::{JobReport, JobSnapshot, NodeSnapshot};
use shared::spec::{PipelineSpec, SpecFormat};

/// Parses a TOML spec (panicking with every problem if it is invalid).
pub fn spec(toml: &str) -> PipelineSpec {
    PipelineSpec::parse(toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a job with a fresh data directory (kept alive by the caller).
pub fn start(spec: PipelineSpec) -> (JobHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = JobOptions::new(format!("test-{}", spec.name), dir.path());
    opts.runtime_threads = 2;
    let job = engine::start(spec, opts).unwrap_or_else(|e| panic!("{e}"));
    (job, dir)
}

/// Runs a spec to the end.
pub fn run(toml: &str) -> Arc<JobReport> {
    run_keeping_files(toml).0
}

/// Runs a spec to the end, keeping its data directory (leftovers, dead
/// letters) until the returned guard drops.
pub fn run_keeping_files(toml: &str) -> (Arc<JobReport>, tempfile::TempDir) {
    let (job, dir) = start(spec(toml));
    (job.wait(), dir)
}

/// Waits (bounded, generously: this is not a timing assertion) until a
/// snapshot satisfies `pred`; returns it.
pub fn wait_for(
    job: &JobHandle,
    what: &str,
    pred: impl Fn(&JobSnapshot) -> bool,
) -> Arc<JobSnapshot> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snap = job.snapshot();
        if pred(&snap) {
            return snap;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last snapshot: {snap:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn node<'a>(nodes: &'a [NodeSnapshot], name: &str) -> &'a NodeSnapshot {
    nodes.iter().find(|n| n.name == name).unwrap_or_else(|| {
        panic!(
            "no node {name} in {:?}",
            nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
        )
    })
}

/// Asserts the accounting invariant and prints the report on failure.
pub fn assert_balanced(report: &JobReport) {
    assert!(
        report.balanced && report.accounting.balanced(),
        "accounting does not add up: {}\n{report:#?}",
        report.accounting
    );
}

/// Writes `n` JSON log lines, every `bad_every`-th one malformed and every
/// `dup_every`-th one reusing an earlier id; returns the valid distinct ids.
pub fn write_input(
    path: &Path,
    n: usize,
    bad_every: usize,
    dup_every: usize,
) -> (BTreeSet<String>, usize) {
    let mut ids = BTreeSet::new();
    let mut bad = 0;
    let mut text = String::new();
    for i in 1..=n {
        if i % bad_every == 0 {
            text.push_str(&format!(
                "{{\"id\":\"k-{i}\",\"level\":\"INFO\",\"msg\":\"cut\n"
            ));
            bad += 1;
            continue;
        }
        let id = if i % dup_every == 0 {
            format!("k-{}", i / 2)
        } else {
            format!("k-{i}")
        };
        text.push_str(&format!(
            "{{\"id\":\"{id}\",\"level\":\"INFO\",\"msg\":\"line {i}\",\"n\":{i}}}\n"
        ));
        ids.insert(id);
    }
    std::fs::write(path, text).unwrap();
    (ids, bad)
}
