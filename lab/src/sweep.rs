//! The sweep driver: each knob value run (repeatedly) as a job through
//! [`crate::point`], or a capacity search choosing the values itself; then
//! the medians, the knee, the USL fit, Little's-law flags and the verdict
//! in words.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shared::lab::{
    CapacityFinding, Knee, KneeRule, PointRun, PointSummary, SweepMode, SweepReport, SweepSpec,
    UslSummary,
};
use shared::spec::SourceSpec;

use crate::analysis::capacity::{CapacitySearch, Ending, Goal, SearchSpec, Step};
use crate::analysis::knee::{self, Direction, Shape};
use crate::analysis::little::LittleRule;
use crate::analysis::trend::median;
use crate::analysis::usl;
use crate::knob::{self, KnobKind};
use crate::point::{self, Launcher, Watch, Windows};

/// Why a sweep could not run at all.
///
/// Why: a bad knob or value is refused before any job starts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SweepError {
    /// The sweep spec breaks a limit.
    #[error("{0}")]
    Invalid(String),
    /// The knob cannot be set to one of the values.
    #[error(transparent)]
    Knob(#[from] knob::KnobError),
    /// A run could not be started.
    #[error("the run at {value} could not start: {error}")]
    Launch {
        /// The knob value.
        value: f64,
        /// Why.
        error: point::LaunchError,
    },
}

/// What the driver tells its caller as it goes.
///
/// Why: progress bars in the CLI, WebSocket frames from the server.
pub trait SweepWatch {
    /// A run is starting (`total` is `None` for a capacity search).
    fn run_started(&mut self, _index: usize, _total: Option<usize>, _value: f64, _job: &str) {}
    /// The current run has been going this long.
    fn tick(&mut self, _elapsed: Duration) {}
    /// A run is done.
    fn run_finished(&mut self, _run: &PointRun) {}
}

impl SweepWatch for () {}

struct Ticks<'a>(&'a mut dyn SweepWatch);

impl Watch for Ticks<'_> {
    fn tick(&mut self, elapsed: Duration) {
        self.0.tick(elapsed);
    }
}

/// Runs `spec` to the end (or until `stop`) and reads what it found.
pub fn run(
    spec: &SweepSpec,
    launcher: &mut dyn Launcher,
    stop: &AtomicBool,
    watch: &mut dyn SweepWatch,
) -> Result<SweepReport, SweepError> {
    spec.validate()
        .map_err(|e| SweepError::Invalid(e.to_string()))?;
    let values = spec.values.expand().map_err(SweepError::Invalid)?;
    // Every value is checked before the first run starts.
    for v in &values {
        knob::apply(&spec.pipeline, &spec.knob, *v)?;
    }
    let windows = Windows {
        warmup: Duration::from_millis(spec.warmup_ms),
        measure: Duration::from_millis(spec.measure_ms),
    };
    let mut runs: Vec<PointRun> = Vec::new();
    let mut index = 0;
    let mut measure_value = |value: f64,
                             runs: &mut Vec<PointRun>,
                             total: Option<usize>|
     -> Result<Vec<PointRun>, SweepError> {
        let base = knob::apply(&spec.pipeline, &spec.knob, value)?;
        let prepared = point::prepare(&base, windows);
        let offered = match prepared.source {
            SourceSpec::Synthetic { rate, .. } => rate,
            _ => None,
        };
        let mut out = Vec::new();
        for repeat in 0..spec.repeat {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let label = format!("{}={value} #{}", short(&spec.knob), repeat + 1);
            let job = launcher
                .launch(prepared.clone(), &label)
                .map_err(|error| SweepError::Launch { value, error })?;
            watch.run_started(index, total, value, job.id());
            index += 1;
            let mut run = point::measure(&job, windows, offered, stop, &mut Ticks(watch));
            run.value = value;
            run.repeat = repeat;
            if let Some(slo) = &spec.slo {
                let broken = slo.broken(&run.figures);
                if !broken.is_empty() && run.note.is_none() {
                    let terms: Vec<String> = broken.iter().map(|t| t.to_string()).collect();
                    run.note = Some(format!("breaks {}", terms.join(", ")));
                }
            }
            watch.run_finished(&run);
            runs.push(run.clone());
            out.push(run);
        }
        Ok(out)
    };
    let mut capacity = None;
    match spec.mode {
        SweepMode::Sweep => {
            let total = values.len() * spec.repeat as usize;
            for v in &values {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                measure_value(*v, &mut runs, Some(total))?;
            }
        }
        SweepMode::Capacity {
            precision,
            max_probes,
        } => {
            let slo = spec.slo.clone().unwrap_or_default();
            let (min, max, integer) = knob_bounds(&spec.knob);
            let goal = match knob::kind(&spec.knob) {
                KnobKind::Concurrency => Goal::Lowest,
                _ => Goal::Highest,
            };
            let mut search = CapacitySearch::new(SearchSpec {
                goal,
                start: values[0],
                growth: 2.0,
                precision,
                integer,
                min,
                max,
                max_probes,
            });
            let outcome = loop {
                if stop.load(Ordering::Relaxed) {
                    break None;
                }
                match search.next() {
                    Step::Probe(v) => {
                        let done = measure_value(v, &mut runs, None)?;
                        if done.is_empty() {
                            break None;
                        }
                        let figures = summarise(v, &done, spec).median;
                        search.record(v, slo.broken(&figures).is_empty());
                    }
                    Step::Done(o) => break Some(o),
                }
            };
            capacity = Some(match outcome {
                Some(o) => CapacityFinding {
                    value: o.value,
                    broke_at: o.broke_at,
                    ending: match o.ending {
                        Ending::Converged => "converged and confirmed".into(),
                        Ending::HeldAtBound => "the SLO held up to the knob's limit".into(),
                        Ending::NeverHeld => "the SLO broke at every value tried".into(),
                        Ending::OutOfProbes => "ran out of measurements before converging".into(),
                    },
                    probes: o.probes,
                },
                None => CapacityFinding {
                    value: None,
                    broke_at: None,
                    ending: "stopped before the search ended".into(),
                    probes: runs.len(),
                },
            });
        }
    }
    Ok(analyse(spec, runs, capacity, stop.load(Ordering::Relaxed)))
}

/// The knob's bounds and whether it takes whole numbers, from the spec's
/// limits.
fn knob_bounds(path: &str) -> (f64, f64, bool) {
    use shared::spec::limits;
    if path.ends_with(".workers") {
        (1.0, limits::MAX_WORKERS as f64, true)
    } else if path.ends_with(".concurrency") {
        (1.0, limits::MAX_CONCURRENCY as f64, true)
    } else if path.ends_with("rate") || path.ends_with("rate_limit") {
        (limits::MIN_RATE.max(1.0), limits::MAX_RATE, false)
    } else {
        (1.0, limits::MAX_CAPACITY as f64, true)
    }
}

/// The last part of a knob path, for labels (`workers`).
fn short(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn med(mut xs: Vec<f64>) -> f64 {
    median(&mut xs).unwrap_or(0.0)
}

fn med_u(xs: Vec<u64>) -> u64 {
    med(xs.into_iter().map(|x| x as f64).collect()).round() as u64
}

/// Medians and spread of one value's runs.
fn summarise(value: f64, runs: &[PointRun], spec: &SweepSpec) -> PointSummary {
    let get = |f: fn(&PointRun) -> f64| med(runs.iter().map(f).collect());
    let mut m = shared::lab::PointFigures {
        throughput: get(|r| r.figures.throughput),
        error_rate: get(|r| r.figures.error_rate),
        timeout_rate: get(|r| r.figures.timeout_rate),
        drop_rate: get(|r| r.figures.drop_rate),
        retry_rate: get(|r| r.figures.retry_rate),
        ..Default::default()
    };
    m.latency = shared::metrics::Latency {
        count: med_u(runs.iter().map(|r| r.figures.latency.count).collect()),
        p50_us: med_u(runs.iter().map(|r| r.figures.latency.p50_us).collect()),
        p95_us: med_u(runs.iter().map(|r| r.figures.latency.p95_us).collect()),
        p99_us: med_u(runs.iter().map(|r| r.figures.latency.p99_us).collect()),
        max_us: med_u(runs.iter().map(|r| r.figures.latency.max_us).collect()),
        mean_us: get(|r| r.figures.latency.mean_us),
    };
    let tp = runs.iter().map(|r| r.figures.throughput);
    let p99 = runs.iter().map(|r| r.figures.latency.p99_us);
    let busiest = most_common(runs.iter().filter_map(|r| r.busiest.clone()));
    let busiest_cpu = busiest.as_ref().and_then(|b| {
        let cpus: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.stages.iter().find(|s| &s.name == b).and_then(|s| s.cpu))
            .collect();
        (!cpus.is_empty()).then(|| med(cpus))
    });
    let mut backpressured: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.backpressured {
            let n = runs.iter().filter(|q| q.backpressured.contains(s)).count();
            if 2 * n > runs.len() && !backpressured.contains(s) {
                backpressured.push(s.clone());
            }
        }
    }
    PointSummary {
        value,
        runs: runs.len() as u32,
        slo_ok: spec.slo.as_ref().map(|s| s.broken(&m).is_empty()),
        median: m,
        throughput_range: (
            tp.clone().fold(f64::INFINITY, f64::min),
            tp.fold(0.0, f64::max),
        ),
        p99_range_us: (p99.clone().min().unwrap_or(0), p99.max().unwrap_or(0)),
        busiest,
        backpressured,
        busiest_cpu,
    }
}

fn most_common(names: impl Iterator<Item = String>) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for n in names {
        match counts.iter_mut().find(|(m, _)| *m == n) {
            Some((_, c)) => *c += 1,
            None => counts.push((n, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, c)| *c).map(|(n, _)| n)
}

/// Reads the runs: summaries in knob order, knee, fit, flags and verdict.
pub fn analyse(
    spec: &SweepSpec,
    runs: Vec<PointRun>,
    capacity: Option<CapacityFinding>,
    stopped: bool,
) -> SweepReport {
    let mut values: Vec<f64> = runs.iter().map(|r| r.value).collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    let points: Vec<PointSummary> = values
        .iter()
        .map(|v| {
            let of: Vec<PointRun> = runs.iter().filter(|r| r.value == *v).cloned().collect();
            summarise(*v, &of, spec)
        })
        .collect();
    let xs: Vec<f64> = points.iter().map(|p| p.value).collect();
    let tps: Vec<f64> = points.iter().map(|p| p.median.throughput).collect();
    let knee = (capacity.is_none())
        .then(|| find_knee(spec, &points))
        .flatten();
    let (usl, usl_refused) = if knob::kind(&spec.knob) == KnobKind::Concurrency {
        // A run that delivered the source's whole rate measured the
        // arrivals, not the stage: its plateau is not contention or
        // coherency, so it stays out of the fit.
        let arrival_bound = |r: &PointRun| {
            r.offered_rate
                .is_some_and(|rate| r.figures.throughput >= 0.95 * rate)
        };
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| !arrival_bound(r))
            .map(|r| (r.value, r.figures.throughput))
            .collect();
        let mut left_out: Vec<f64> = runs
            .iter()
            .filter(|r| arrival_bound(r))
            .map(|r| r.value)
            .collect();
        left_out.dedup();
        let why_left = if left_out.is_empty() {
            String::new()
        } else {
            let vals: Vec<String> = left_out.iter().map(|v| crate::verdict::num(*v)).collect();
            format!(
                " (the runs at {} delivered the source's whole rate, so they measured the arrivals and are left out)",
                vals.join(", ")
            )
        };
        match usl::fit(&pairs) {
            Ok(f) => (
                Some(UslSummary {
                    sigma: f.sigma,
                    kappa: f.kappa,
                    lambda: f.lambda,
                    r_squared: f.r_squared,
                    n_star: f.n_star,
                    peak_throughput: f.peak_throughput.unwrap_or_else(|| f.predict(f.max_n)),
                    regime: f.regime.describe().to_string(),
                }),
                None,
            ),
            Err(e) => (None, Some(format!("{e}{why_left}"))),
        }
    } else {
        (None, None)
    };
    let little_flags = little_flags(&runs);
    let chosen = match &capacity {
        Some(c) => c.value,
        None => knee.as_ref().map(|k| k.value),
    };
    let slo_broken = match (&spec.slo, chosen) {
        (Some(slo), Some(c)) => points
            .iter()
            .find(|p| p.value == c)
            .map(|p| slo.broken(&p.median))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = SweepReport {
        pipeline: spec.pipeline.name.clone(),
        knob: spec.knob.clone(),
        runs,
        points,
        knee,
        usl,
        usl_refused,
        capacity,
        little_flags,
        chosen,
        slo_broken,
        verdict: Vec::new(),
        verdict_zh: Vec::new(),
        cores,
        stopped,
    };
    report.verdict = crate::verdict::sweep(spec, &report, &xs, &tps, false);
    report.verdict_zh = crate::verdict::sweep(spec, &report, &xs, &tps, true);
    report
}

/// Kneedle on the throughput medians, and the first climbs of P99 and of
/// the error rate; the earliest of them is the reported knee.
fn find_knee(spec: &SweepSpec, points: &[PointSummary]) -> Option<Knee> {
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| p.value).collect();
    let tps: Vec<f64> = points.iter().map(|p| p.median.throughput).collect();
    let knees = knee::kneedle(
        &xs,
        &tps,
        spec.sensitivity,
        Shape::Concave,
        Direction::Increasing,
    );
    let p99: Vec<f64> = points
        .iter()
        .map(|p| p.median.latency.p99_us as f64)
        .collect();
    // An error rate climbs from at least 0.05%: one stray error at the
    // first point is not a baseline of zero that everything exceeds.
    let mut errors: Vec<f64> = points.iter().map(|p| p.median.error_rate).collect();
    errors[0] = errors[0].max(0.0005);
    let p99_climb = knee::first_climb(&xs, &p99, spec.climb_factor);
    let error_climb = knee::first_climb(&xs, &errors, spec.climb_factor);
    let mut candidates: Vec<(usize, KneeRule)> = Vec::new();
    if let Some(k) = knees.first() {
        candidates.push((k.index, KneeRule::Kneedle));
    }
    if let Some(i) = p99_climb {
        candidates.push((i.saturating_sub(1), KneeRule::LatencyClimb));
    }
    if let Some(i) = error_climb {
        candidates.push((i.saturating_sub(1), KneeRule::ErrorClimb));
    }
    let (index, rule) = candidates.into_iter().min_by_key(|(i, _)| *i)?;
    Some(Knee {
        value: xs[index],
        rule,
        kneedle: knees.iter().map(|k| k.x).collect(),
        p99_climb_at: p99_climb.map(|i| xs[i]),
        error_climb_at: error_climb.map(|i| xs[i]),
    })
}

/// Stages whose Little's-law check disagrees in most judged runs.
fn little_flags(runs: &[PointRun]) -> Vec<String> {
    let rule = LittleRule::default();
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for s in &r.stages {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    names
        .into_iter()
        .filter(|name| {
            let checks: Vec<_> = runs
                .iter()
                .filter_map(|r| r.stages.iter().find(|s| &s.name == name)?.little)
                .map(|l| crate::analysis::little::LittleCheck {
                    observed: l.observed,
                    expected: l.expected,
                    ratio: l.observed / l.expected,
                    judged: l.judged,
                    mismatch: l.mismatch,
                })
                .collect();
            crate::analysis::little::persistent_mismatch(&checks, &rule)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lab::{KnobValues, PointFigures};
    use shared::metrics::Latency;
    use shared::spec::{PipelineSpec, SpecFormat};

    fn spec(knob: &str) -> SweepSpec {
        SweepSpec {
            pipeline: PipelineSpec::parse(
                "name = \"t\"\nsource = { kind = \"synthetic\", count = 1, payload = \"counter\" }\n\
                 [[stages]]\nname = \"io\"\nop = { kind = \"spin\", micros = 1 }\n",
                SpecFormat::Toml,
            )
            .unwrap(),
            knob: knob.into(),
            values: KnobValues::List(vec![1.0]),
            warmup_ms: 0,
            measure_ms: 1000,
            repeat: 1,
            sensitivity: 1.0,
            climb_factor: 2.0,
            slo: None,
            mode: SweepMode::Sweep,
        }
    }

    /// A run of a stage with fixed service time `s` seconds and `n`
    /// workers fed by a source of `limit` items/s, with latency rising
    /// once the stage saturates.
    fn simulated(n: f64, s: f64, limit: f64) -> PointRun {
        let capacity = n / s;
        let throughput = capacity.min(limit);
        let p99 = if capacity >= limit {
            (s * 1e6) as u64
        } else {
            (s * 1e6 * 50.0) as u64
        };
        PointRun {
            value: n,
            figures: PointFigures {
                throughput,
                latency: Latency {
                    count: 100,
                    p99_us: p99,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_knee_of_a_fixed_service_time_stage_is_where_the_source_limits() {
        // S = 5 ms, a source of 1000/s: N workers give min(N/S, 1000), so
        // throughput stops growing at N = 5 (analytic).
        let s = spec("stages[io].workers");
        let runs: Vec<PointRun> = (1..=12)
            .map(|n| simulated(n as f64, 0.005, 1000.0))
            .collect();
        let r = analyse(&s, runs, None, false);
        let knee = r.knee.expect("a knee");
        assert!(
            (knee.value - 5.0).abs() <= 1.0,
            "knee at {knee:?}, expected 5 ± 1"
        );
        assert_eq!(knee.rule, KneeRule::Kneedle);
        assert!(r.usl.is_some(), "12 worker counts are enough to fit");
        assert!(
            r.verdict[0].starts_with("Knee at 5 workers"),
            "{:?}",
            r.verdict
        );
        // The same sentences in Chinese, for the dashboard.
        assert_eq!(r.verdict_zh.len(), r.verdict.len());
        assert!(
            r.verdict_zh[0].starts_with("拐点在 5个工作者"),
            "{:?}",
            r.verdict_zh
        );
    }

    #[test]
    fn a_latency_climb_before_the_bend_picks_the_knee() {
        let s = spec("stages[io].workers");
        let mut runs: Vec<PointRun> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&n| simulated(n, 0.001, 1e9))
            .collect();
        // Throughput grows linearly; P99 is flat, then jumps at 8.
        for r in &mut runs {
            r.figures.latency.p99_us = 1_000;
        }
        runs[3].figures.latency.p99_us = 10_000;
        runs[4].figures.latency.p99_us = 20_000;
        let r = analyse(&s, runs, None, false);
        let knee = r.knee.expect("a knee");
        assert_eq!(knee.rule, KneeRule::LatencyClimb);
        assert_eq!(knee.value, 4.0);
        assert_eq!(knee.p99_climb_at, Some(8.0));
        assert!(r.usl.is_none());
        assert!(
            r.usl_refused.unwrap().contains('6'),
            "refused under 6 points"
        );
    }

    #[test]
    fn runs_that_deliver_the_whole_offered_rate_stay_out_of_the_usl_fit() {
        let s = spec("stages[io].workers");
        // 100/s per worker, arrivals at 400/s: 4 and up deliver the rate.
        let runs: Vec<PointRun> = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0]
            .iter()
            .map(|&n| {
                let mut r = simulated(n, 0.01, 400.0);
                r.offered_rate = Some(400.0);
                r
            })
            .collect();
        let r = analyse(&s, runs, None, false);
        assert!(r.usl.is_none());
        let why = r.usl_refused.unwrap();
        assert!(why.contains("4, 6, 8, 16"), "{why}");
    }

    #[test]
    fn medians_and_spread_of_repeats() {
        let s = spec("stages[io].workers");
        let mut runs = Vec::new();
        for (i, tp) in [100.0, 300.0, 200.0].iter().enumerate() {
            let mut r = simulated(1.0, 0.001, 1e9);
            r.repeat = i as u32;
            r.figures.throughput = *tp;
            runs.push(r);
        }
        let r = analyse(&s, runs, None, false);
        assert_eq!(r.points.len(), 1);
        assert_eq!(r.points[0].median.throughput, 200.0);
        assert_eq!(r.points[0].throughput_range, (100.0, 300.0));
        assert_eq!(r.points[0].runs, 3);
    }
}
