//! One measured run: start a job, let it warm up, measure a window, stop
//! it, and read the window's figures off its snapshots and latency marks.
//!
//! Every run is an ordinary job, started through a [`Launcher`] (the CLI
//! starts it in-process; the server starts it through its registry so it
//! is listed, stored and linked from the sweep). When the window is over
//! the job is aborted: what was queued goes to its leftovers file, and the
//! report's accounting still adds up, which the run records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engine::JobHandle;
use shared::lab::{LittleFigure, PointFigures, PointRun, StagePoint};
use shared::metrics::{JobSnapshot, NodeKind, NodeSnapshot};
use shared::spec::{PipelineSpec, Runtime, SourceSpec};

use crate::analysis::little::{self, LittleRule};

/// Why a run could not be started.
///
/// Why: a sweep reports the value it could not run and why, in words
/// fit for the user (internals stay in the launcher's log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

/// Starts the jobs of a sweep or a soak.
///
/// Why: the CLI and the server start jobs differently (confinement, the
/// registry, the store); the lab only needs a handle back.
pub trait Launcher {
    /// Starts `spec` as a job; `label` says what it is part of
    /// (`sweep workers=4 #2`), for ids and logs.
    fn launch(&mut self, spec: PipelineSpec, label: &str) -> Result<JobHandle, LaunchError>;
}

/// How long to warm up and to measure.
///
/// Why: the same two windows for every run of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Run time before measuring.
    pub warmup: Duration,
    /// Measured time.
    pub measure: Duration,
}

/// Snapshots per second a measured run publishes at least, so a short
/// window still holds several.
const MIN_SAMPLE_HZ: f64 = 4.0;

/// Room left after the windows before a synthetic source stops on its own
/// (the run is aborted at the end of its window anyway).
const SOURCE_SLACK: Duration = Duration::from_secs(30);

/// `spec` made fit for a measured run: a synthetic source runs for the
/// windows (plus slack) instead of a fixed count, and snapshots come often
/// enough to fill the window.
pub fn prepare(spec: &PipelineSpec, windows: Windows) -> PipelineSpec {
    let mut spec = spec.clone();
    if let SourceSpec::Synthetic {
        count, duration_ms, ..
    } = &mut spec.source
    {
        *count = None;
        *duration_ms = Some((windows.warmup + windows.measure + SOURCE_SLACK).as_millis() as u64);
    }
    spec.sample_hz = spec.sample_hz.max(MIN_SAMPLE_HZ);
    spec
}

/// What [`measure`] tells its caller while it runs.
///
/// Why: the CLI's progress bar and the server's WebSocket frames.
pub trait Watch {
    /// The run has been running this long (warm-up included).
    fn tick(&mut self, _elapsed: Duration) {}
}

impl Watch for () {}

/// Runs `job` through the windows and returns its figures (`value`,
/// `repeat` left for the caller). Blocks the calling thread; `stop` ends
/// the window early.
pub fn measure(
    job: &JobHandle,
    windows: Windows,
    offered_rate: Option<f64>,
    stop: &AtomicBool,
    watch: &mut dyn Watch,
) -> PointRun {
    let started = Instant::now();
    let warm_ms = windows.warmup.as_millis() as u64;
    let end_ms = (windows.warmup + windows.measure).as_millis() as u64;
    let mut first: Option<(Arc<JobSnapshot>, engine::stats::LatencyMark)> = None;
    let mut window: Vec<Arc<JobSnapshot>> = Vec::new();
    let mut last_seq = None;
    let mut note = None;
    let finished_early = loop {
        let snap = job.snapshot();
        let finished = snap.state.is_some_and(|s| s.is_finished());
        if last_seq != Some(snap.seq) {
            last_seq = Some(snap.seq);
            if first.is_none() && (snap.elapsed_ms >= warm_ms || finished) {
                first = Some((snap.clone(), job.latency_mark()));
            } else if first.is_some() {
                window.push(snap.clone());
            }
        }
        if finished {
            break true;
        }
        if first.is_some() && snap.elapsed_ms >= end_ms {
            break false;
        }
        if stop.load(Ordering::Relaxed) {
            note = Some("stopped before the window ended".to_string());
            break false;
        }
        watch.tick(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    };
    let end_mark = job.latency_mark();
    if !finished_early {
        let _ = job.abort();
    }
    let report = job.wait();
    if finished_early {
        note = Some(if window.is_empty() {
            "the job ended before its measure window: give its source more items or a rate".into()
        } else {
            "the job ended inside its measure window, which is shorter than asked".into()
        });
    }
    let (first, first_mark) = first.unwrap_or_else(|| (job.snapshot(), job.latency_mark()));
    let mut run = figures(&first, &window, offered_rate);
    run.figures.latency = end_mark.since(&first_mark);
    run.job = job.id().to_string();
    run.balanced = report.balanced;
    run.note = note;
    run
}

/// The figures of the window from `first` over `window` (in order).
pub fn figures(first: &JobSnapshot, window: &[Arc<JobSnapshot>], offered: Option<f64>) -> PointRun {
    let Some(last) = window.last() else {
        return PointRun {
            offered_rate: offered,
            ..PointRun::default()
        };
    };
    let secs = (last.elapsed_ms.saturating_sub(first.elapsed_ms) as f64 / 1000.0).max(1e-3);
    let (a, b) = (&first.accounting, &last.accounting);
    let settled = b.settled().saturating_sub(a.settled()).max(1) as f64;
    let produced = b.produced.saturating_sub(a.produced);
    let node_delta = |f: fn(&NodeSnapshot) -> u64| -> u64 {
        last.nodes
            .iter()
            .map(|n| {
                let before = first.nodes.iter().find(|m| m.name == n.name).map_or(0, f);
                f(n).saturating_sub(before)
            })
            .sum()
    };
    let failed = node_delta(|n| n.errors) + node_delta(|n| n.dead_lettered);
    let produced_rate = produced as f64 / secs;
    let mut stages = Vec::new();
    for n in &last.nodes {
        if !matches!(n.kind, Some(NodeKind::Stage | NodeKind::Sink)) {
            continue;
        }
        let samples: Vec<&NodeSnapshot> = window
            .iter()
            .filter_map(|s| s.nodes.iter().find(|m| m.name == n.name))
            .collect();
        let k = samples.len().max(1) as f64;
        let cpus: Vec<f64> = samples.iter().filter_map(|m| m.cpu).collect();
        let little = (n.kind == Some(NodeKind::Stage) && n.runtime == Some(Runtime::Thread))
            .then(|| little_window(first, n, &samples, secs));
        stages.push(StagePoint {
            name: n.name.clone(),
            peak_depth: samples.iter().map(|m| m.depth).max().unwrap_or(0),
            busy: samples.iter().map(|m| m.busy).sum::<f64>() / k,
            blocked: samples.iter().map(|m| m.blocked).sum::<f64>() / k,
            cpu: (!cpus.is_empty()).then(|| cpus.iter().sum::<f64>() / cpus.len() as f64),
            little,
        });
    }
    let busiest = stages
        .iter()
        .max_by(|x, y| x.busy.total_cmp(&y.busy))
        .filter(|s| s.busy > 0.0)
        .map(|s| s.name.clone());
    let backpressured = stages
        .iter()
        .filter(|s| s.blocked > 0.5)
        .map(|s| s.name.clone())
        .collect();
    let procs = || window.iter().map(|s| s.process);
    PointRun {
        window_ms: last.elapsed_ms.saturating_sub(first.elapsed_ms),
        figures: PointFigures {
            throughput: b.sunk.saturating_sub(a.sunk) as f64 / secs,
            latency: Default::default(),
            error_rate: failed as f64 / settled,
            timeout_rate: node_delta(|n| n.timeouts) as f64 / settled,
            drop_rate: node_delta(|n| n.dropped) as f64 / produced.max(1) as f64,
            retry_rate: node_delta(|n| n.retries) as f64 / settled,
        },
        offered_rate: offered,
        produced_rate,
        source_behind: offered.is_some_and(|r| produced_rate < 0.95 * r),
        stages,
        rss_bytes: procs().map(|p| p.rss_bytes).max().unwrap_or(0),
        threads: procs().map(|p| p.threads).max().unwrap_or(0),
        open_fds: procs().map(|p| p.open_fds).max().unwrap_or(0),
        cpu_percent: procs().map(|p| p.cpu_percent).sum::<f64>() / window.len() as f64,
        busiest,
        backpressured,
        ..PointRun::default()
    }
}

/// Little's law for one thread stage over the window: items in it (queued
/// plus the busy share of its workers) against completions × time in it.
fn little_window(
    first: &JobSnapshot,
    last: &NodeSnapshot,
    samples: &[&NodeSnapshot],
    secs: f64,
) -> LittleFigure {
    let k = samples.len().max(1) as f64;
    let observed = samples
        .iter()
        .map(|m| m.depth as f64 + m.busy * m.workers as f64)
        .sum::<f64>()
        / k;
    let done = |n: &NodeSnapshot| n.items_out + n.filtered + n.errors + n.dead_lettered;
    let before = first
        .nodes
        .iter()
        .find(|m| m.name == last.name)
        .map_or(0, done);
    let rate = done(last).saturating_sub(before) as f64 / secs;
    let (mut weight, mut total) = (0.0, 0.0);
    for m in samples {
        let c = m.service.count as f64;
        weight += c;
        total += c * (m.queue_wait.mean_us + m.service.mean_us) / 1e6;
    }
    let mean_secs = if weight > 0.0 {
        total / weight
    } else {
        f64::NAN
    };
    let c = little::check(observed, rate, mean_secs, &LittleRule::default());
    LittleFigure {
        observed: c.observed,
        expected: c.expected,
        judged: c.judged,
        mismatch: c.mismatch,
    }
}
