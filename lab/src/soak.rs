//! The soak: one pipeline run long, read once per interval (the medians of
//! its snapshots in that interval), with a leak verdict on RSS, open files,
//! threads and total queue depth that develops as the intervals arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::lab::{SoakInterval, SoakReport, SoakSpec, SoakTrend};
use shared::metrics::JobSnapshot;
use shared::spec::SourceSpec;

use crate::analysis::trend::{leak_verdict, median, spread};
use crate::point::{LaunchError, Launcher};
use crate::verdict::num;

/// What the soak tells its caller after each interval.
///
/// Why: the verdict is shown as it develops, not only at the end.
pub trait SoakWatch {
    /// The report so far, after an interval (or at the end).
    fn update(&mut self, _report: &SoakReport) {}
}

impl SoakWatch for () {}

/// `spec`'s pipeline made to run for the whole soak: a synthetic source
/// without a rate limit of its own count runs for the planned duration.
fn prepare(spec: &SoakSpec) -> shared::spec::PipelineSpec {
    let mut p = spec.pipeline.clone();
    if let SourceSpec::Synthetic {
        count, duration_ms, ..
    } = &mut p.source
    {
        *count = None;
        *duration_ms = Some(spec.duration_ms + 60_000);
    }
    p.sample_hz = p.sample_hz.max(4.0);
    p
}

/// Runs the soak to its planned end (or `stop`), then aborts its job.
pub fn run(
    spec: &SoakSpec,
    launcher: &mut dyn Launcher,
    stop: &AtomicBool,
    watch: &mut dyn SoakWatch,
) -> Result<SoakReport, LaunchError> {
    spec.validate().map_err(|e| LaunchError(e.to_string()))?;
    let job = launcher.launch(prepare(spec), "soak")?;
    let mut report = SoakReport {
        pipeline: spec.pipeline.name.clone(),
        job: job.id().to_string(),
        ..SoakReport::default()
    };
    let mut bucket: Vec<Arc<JobSnapshot>> = Vec::new();
    let mut prev_end: Option<Arc<JobSnapshot>> = None;
    let mut mark = job.latency_mark();
    let mut next_end = spec.warmup_ms + spec.interval_ms;
    let mut last_seq = None;
    loop {
        let snap = job.snapshot();
        let finished = snap.state.is_some_and(|s| s.is_finished());
        if last_seq != Some(snap.seq) {
            last_seq = Some(snap.seq);
            if snap.elapsed_ms < spec.warmup_ms {
                prev_end = Some(snap.clone());
                mark = job.latency_mark();
            } else {
                bucket.push(snap.clone());
                if snap.elapsed_ms >= next_end {
                    let now = job.latency_mark();
                    let p99 = now.since(&mark).p99_us;
                    mark = now;
                    report
                        .intervals
                        .push(interval(prev_end.as_deref(), &bucket, p99));
                    prev_end = bucket.last().cloned();
                    bucket.clear();
                    next_end += spec.interval_ms;
                    judge(spec, &mut report);
                    watch.update(&report);
                }
            }
        }
        if finished || stop.load(Ordering::Relaxed) || snap.elapsed_ms >= spec.duration_ms {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = job.abort();
    let end = job.wait();
    report.balanced = end.balanced;
    report.finished = true;
    judge(spec, &mut report);
    watch.update(&report);
    Ok(report)
}

/// One interval's medians from its snapshots.
fn interval(prev: Option<&JobSnapshot>, snaps: &[Arc<JobSnapshot>], p99_us: u64) -> SoakInterval {
    let med = |f: &dyn Fn(&JobSnapshot) -> f64| {
        let mut v: Vec<f64> = snaps.iter().map(|s| f(s)).collect();
        median(&mut v).unwrap_or(0.0)
    };
    let last = snaps.last().expect("an interval has snapshots");
    let (sunk0, t0) = prev.map_or((0, 0), |p| (p.accounting.sunk, p.elapsed_ms));
    let secs = (last.elapsed_ms.saturating_sub(t0) as f64 / 1000.0).max(1e-3);
    SoakInterval {
        elapsed_ms: last.elapsed_ms,
        rss_bytes: med(&|s| s.process.rss_bytes as f64),
        open_fds: med(&|s| s.process.open_fds as f64),
        threads: med(&|s| s.process.threads as f64),
        queue_depth: med(&|s| s.nodes.iter().map(|n| n.depth as f64).sum()),
        throughput: last.accounting.sunk.saturating_sub(sunk0) as f64 / secs,
        p99_us,
    }
}

/// Reads one figure off an interval.
type Figure = fn(&SoakInterval) -> f64;

/// The verdict so far.
fn judge(spec: &SoakSpec, r: &mut SoakReport) {
    let planned = (spec.duration_ms - spec.warmup_ms) as f64 / spec.interval_ms as f64;
    let series: [(&str, f64, Figure); 4] = [
        ("rss_bytes", spec.budgets.rss_bytes, |i| i.rss_bytes),
        ("open_fds", spec.budgets.open_fds, |i| i.open_fds),
        ("threads", spec.budgets.threads, |i| i.threads),
        ("queue_depth", spec.budgets.queue_depth, |i| i.queue_depth),
    ];
    r.trends = series
        .iter()
        .map(|(name, budget, f)| {
            let ys: Vec<f64> = r.intervals.iter().map(f).collect();
            let v = leak_verdict(&ys, planned, *budget, spec.alpha);
            SoakTrend {
                figure: name.to_string(),
                slope_per_interval: v.slope,
                p_value: v.test.map(|t| t.p_value),
                projected: v.projected,
                budget: *budget,
                leak: v.leak,
            }
        })
        .collect();
    let tps: Vec<f64> = r.intervals.iter().map(|i| i.throughput).collect();
    let p99s: Vec<f64> = r.intervals.iter().map(|i| i.p99_us as f64).collect();
    r.throughput_cv = spread(&tps).map(|s| s.cv);
    r.p99_cv = spread(&p99s).map(|s| s.cv);
    r.verdict = soak_verdict(r, false);
    r.verdict_zh = soak_verdict(r, true);
}

/// The soak's sentences, in English or in Chinese (`zh`).
fn soak_verdict(r: &SoakReport, zh: bool) -> Vec<String> {
    let mut v = Vec::new();
    let n = r.intervals.len();
    if n < 3 {
        v.push(if zh {
            format!("目前只有 {n} 个间隔（至少要 3 个）：下结论还太早。")
        } else {
            format!("{n} of at least 3 intervals so far: too early for a verdict.")
        });
        return v;
    }
    for t in r.trends.iter().filter(|t| t.leak) {
        let slope = amount(&t.figure, t.slope_per_interval.unwrap_or(0.0));
        let p = t.p_value.unwrap_or(1.0);
        let projected = amount(&t.figure, t.projected.unwrap_or(0.0));
        let budget = amount(&t.figure, t.budget);
        v.push(if zh {
            format!(
                "{}在增长：每个间隔 {slope}（p = {p:.3}），按计划时长预计增长 {projected}，超过预算 {budget}。",
                label_zh(&t.figure)
            )
        } else {
            format!(
                "{} grows: {slope} per interval (p = {p:.3}), {projected} over the planned run, above its budget of {budget}.",
                label(&t.figure)
            )
        });
    }
    if v.is_empty() {
        v.push(if zh {
            format!("没有泄漏：{n} 个间隔里没有指标的增长超出预算。")
        } else {
            format!("No leak: no figure grows beyond its budget over {n} intervals.")
        });
    }
    if let (Some(tcv), Some(pcv)) = (r.throughput_cv, r.p99_cv) {
        let word = |cv: f64| match (cv < 0.1, cv < 0.3, zh) {
            (true, _, false) => "steady",
            (false, true, false) => "uneven",
            (false, false, false) => "jumpy",
            (true, _, true) => "平稳",
            (false, true, true) => "不太均匀",
            (false, false, true) => "抖动明显",
        };
        v.push(if zh {
            format!(
                "抖动：吞吐{}（CV {tcv:.2}），P99 {}（CV {pcv:.2}）。",
                word(tcv),
                word(pcv)
            )
        } else {
            format!(
                "Jitter: throughput {} (CV {tcv:.2}), P99 {} (CV {pcv:.2}).",
                word(tcv),
                word(pcv)
            )
        });
    }
    v
}

fn label_zh(figure: &str) -> &str {
    match figure {
        "rss_bytes" => "常驻内存",
        "open_fds" => "打开的文件数",
        "threads" => "线程数",
        "queue_depth" => "队列总深度",
        other => other,
    }
}

/// A figure's amount as people read it (memory in MiB).
fn amount(figure: &str, x: f64) -> String {
    if figure == "rss_bytes" {
        format!("{:.1} MiB", x / 1_048_576.0)
    } else {
        num(x)
    }
}

fn label(figure: &str) -> &str {
    match figure {
        "rss_bytes" => "Resident memory",
        "open_fds" => "Open files",
        "threads" => "Threads",
        "queue_depth" => "Total queue depth",
        other => other,
    }
}
