//! An async HTTP stage with `concurrency = "auto"` against a service with
//! a fixed latency and a capacity (the target's `slots`): the controller
//! settles within a step of the knee a sweep finds in the same test, and
//! when the service's latency doubles mid-run it reads that as the
//! service's, not as overload, and comes back. Snapshots and events only;
//! no assertion on time.

use std::sync::atomic::AtomicBool;

use lab::launch::LocalLauncher;
use shared::lab::SweepSpec;
use shared::metrics::EventKind;
use shared::spec::{Distribution, PipelineSpec, SpecFormat};

use crate::helpers::spawn_target;

/// 10 ms answers from a service that serves 8 at once; `limits` are the
/// stage's `workers` and `concurrency` lines.
fn pipeline(base: &str, limits: &str, duration_ms: u64) -> PipelineSpec {
    let toml = format!(
        r#"
name = "auto-http"
source = {{ kind = "synthetic", duration_ms = {duration_ms}, payload = "counter" }}
[[stages]]
name = "call"
runtime = "async"
{limits}
op = {{ kind = "http", url = "{base}/x?slots=8&delay_ms=10" }}
"#
    );
    PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_concurrency_settles_at_the_services_knee_and_follows_a_latency_step() {
    let base = spawn_target(Distribution::Fixed { ms: 0.0 }, 0.0, 503).await;

    // The knee, from a sweep of fixed values.
    let values = [2.0, 4.0, 8.0, 16.0, 32.0];
    let sweep = SweepSpec::over(
        pipeline(&base, "workers = 64\nconcurrency = 1", 3_600_000),
        "stages[call].concurrency",
        &values,
        1_000,
        2_000,
    );
    let report = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut launcher = LocalLauncher::new(dir.path(), "auto-http");
        lab::sweep::run(&sweep, &mut launcher, &AtomicBool::new(false), &mut ())
            .unwrap_or_else(|e| panic!("{e}"))
    })
    .await
    .unwrap();
    let knee = report.knee.as_ref().expect("the sweep finds a knee").value;
    let tps: Vec<f64> = report.points.iter().map(|p| p.median.throughput).collect();
    // The service's capacity: 8 at once, 10 ms each.
    assert!(
        tps[2] > 2.5 * tps[0] && tps[4] < 1.5 * tps[2],
        "the sweep sees the knee at 8: {tps:?}"
    );
    let at = values.iter().position(|v| *v == knee).unwrap();
    let band = (
        values[at.saturating_sub(1)] as u32,
        values[(at + 1).min(values.len() - 1)] as u32,
    );

    // The same pipeline on auto: 8 s settled, then the service slows.
    let spec = pipeline(&base, "concurrency = \"auto\"", 3_600_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let job = tokio::task::spawn_blocking(move || {
        engine::start(spec, engine::JobOptions::new("auto-http", &path)).unwrap()
    })
    .await
    .unwrap();
    let mut rx = job.subscribe();
    wait_seconds(&mut rx, 8.0).await;
    let client = reqwest::Client::new();
    let tuned = client
        .put(format!("{base}/_tune"))
        .json(&serde_json::json!({"latency_factor": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(tuned.status(), 200);
    let step_ms = job.snapshot().elapsed_ms;
    wait_seconds(&mut rx, 8.0).await;
    job.drain().unwrap();
    let report_auto = job.finished().await;
    assert!(report_auto.balanced, "{}", report_auto.accounting);

    let events = &report_auto.events;
    // Before the step: within a step of the sweep's knee.
    let spans_before = held_between(events, step_ms / 2, step_ms);
    assert!(
        spans_before.iter().all(|l| (band.0..=band.1).contains(l)),
        "knee {knee} (band {band:?}); held {spans_before:?}\n{}",
        describe(events)
    );
    // After it: first a decrease (the service looks overloaded), then the
    // baseline moves to the slower service and the limit comes back.
    let after: Vec<&EventKind> = events
        .iter()
        .filter(|e| e.elapsed_ms > step_ms)
        .map(|e| &e.kind)
        .collect();
    let rebased = after.iter().position(
        |k| matches!(k, EventKind::Auto { reason, .. } if reason.contains("slowed by itself")),
    );
    assert!(rebased.is_some(), "{}", describe(events));
    let last = *held_between(events, step_ms, u64::MAX).last().unwrap();
    assert!(
        (band.0..=band.1).contains(&last),
        "after the step it is back within {band:?}: {last}\n{}",
        describe(events)
    );
}

/// Limits held between two moments (each span that overlaps them).
fn held_between(events: &[shared::metrics::JobEvent], from_ms: u64, to_ms: u64) -> Vec<u32> {
    let mut limit = 1.0;
    let mut held = Vec::new();
    for e in events {
        if let EventKind::Auto { to, from, .. } = &e.kind
            && to != from
        {
            if e.elapsed_ms >= from_ms && e.elapsed_ms <= to_ms {
                held.push(limit as u32);
            }
            if e.elapsed_ms > to_ms {
                break;
            }
            limit = *to;
        }
    }
    held.push(limit as u32);
    held
}

fn describe(events: &[shared::metrics::JobEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Auto {
                from, to, reason, ..
            } => Some(format!("{:>6} ms {from} → {to}: {reason}\n", e.elapsed_ms)),
            _ => None,
        })
        .collect()
}

/// Waits until the job's snapshots have covered `secs` more seconds of
/// its run; returns the elapsed ms at the start.
async fn wait_seconds(
    rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<shared::metrics::JobSnapshot>>,
    secs: f64,
) -> u64 {
    let from = rx.borrow().elapsed_ms;
    let until = from + (secs * 1000.0) as u64;
    rx.wait_for(|s| s.elapsed_ms >= until).await.unwrap();
    from
}
