//! Automatic limits against the lab's own answer: for the same spec, a
//! sweep of fixed values finds the knee, and the same pipeline on
//! `workers = "auto"` settles within one step of it. The settled value is
//! read from the job's auto events (the limits held over the second half
//! of the run), never from the clock.

use lab::launch::LocalLauncher;
use lab::point::Launcher;
use shared::metrics::{EventKind, JobReport};
use shared::spec::{Limit, PipelineSpec};

use crate::helpers::{exclusive, spec, sweep, sweep_spec, table, template};

/// The limits the stage held from the middle of the run on.
fn settled(report: &JobReport, start: u32) -> Vec<u32> {
    let half = (report.elapsed_s * 500.0) as u64;
    let mut limit = start;
    let mut held = Vec::new();
    for e in &report.events {
        if let EventKind::Auto { from, to, .. } = &e.kind
            && from != to
        {
            if e.elapsed_ms >= half {
                held.push(limit);
            }
            limit = *to as u32;
        }
    }
    held.push(limit);
    held
}

fn reasons(report: &JobReport) -> String {
    report
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Auto {
                from, to, reason, ..
            } => Some(format!("{:>6} ms {from} → {to}: {reason}\n", e.elapsed_ms)),
            _ => None,
        })
        .collect()
}

/// Runs `pipeline` with its first stage on auto until it ends.
fn run_auto(mut pipeline: PipelineSpec) -> std::sync::Arc<JobReport> {
    pipeline.stages[0].workers = Limit::AUTO;
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = LocalLauncher::new(dir.path(), "lab-auto");
    let job = launcher.launch(pipeline, "auto").unwrap();
    let report = job.wait();
    assert!(report.balanced, "{}", report.accounting);
    report
}

/// Checks that every settled limit is within a step of the knee.
fn assert_within_a_step(values: &[f64], knee: f64, held: &[u32], what: &str) {
    let at = values.iter().position(|v| *v == knee).unwrap();
    let lo = values[at.saturating_sub(1)] as u32;
    let hi = values[(at + 1).min(values.len() - 1)] as u32;
    assert!(
        held.iter().all(|l| (lo..=hi).contains(l)),
        "{what}: knee {knee}, band {lo}..={hi}, held {held:?}"
    );
}

#[test]
fn a_cpu_bound_auto_stage_settles_within_a_step_of_the_sweeps_knee() {
    let _turn = exclusive();
    let values = [1.0, 2.0, 4.0, 8.0];
    let s = sweep_spec(template("cpu-on-threads"), "stages[hash].workers", &values);
    let (r, _dir) = sweep(&s);
    let knee = r
        .knee
        .as_ref()
        .unwrap_or_else(|| panic!("no knee\n{}", table(&r)));
    let mut pipeline = template("cpu-on-threads");
    if let shared::spec::SourceSpec::Synthetic {
        count, duration_ms, ..
    } = &mut pipeline.source
    {
        *count = None;
        *duration_ms = Some(12_000);
    }
    let report = run_auto(pipeline);
    let held = settled(&report, 1);
    assert_within_a_step(
        &values,
        knee.value,
        &held,
        &format!("cpu\n{}\n{}", table(&r), reasons(&report)),
    );
}

#[test]
fn an_io_pool_on_auto_settles_within_a_step_of_the_sweeps_knee() {
    let _turn = exclusive();
    // 1500 items/s of 5–10 ms sleeps: about 11 workers' worth.
    let pipeline = spec(
        r#"
name = "io-rate"
source = { kind = "synthetic", rate = 1500.0, duration_ms = 3600000, payload = "counter" }
[[stages]]
name = "io"
workers = 8
queue = { capacity = 1000 }
op = { kind = "sleep", latency = { dist = "uniform", min_ms = 5.0, max_ms = 10.0 } }
"#,
    );
    let values = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    let s = sweep_spec(pipeline.clone(), "stages[io].workers", &values);
    let (r, _dir) = sweep(&s);
    let knee = r
        .knee
        .as_ref()
        .unwrap_or_else(|| panic!("no knee\n{}", table(&r)));
    let mut pipeline = pipeline;
    if let shared::spec::SourceSpec::Synthetic { duration_ms, .. } = &mut pipeline.source {
        *duration_ms = Some(24_000);
    }
    let report = run_auto(pipeline);
    let held = settled(&report, 1);
    assert_within_a_step(
        &values,
        knee.value,
        &held,
        &format!("io\n{}\n{}", table(&r), reasons(&report)),
    );
}
