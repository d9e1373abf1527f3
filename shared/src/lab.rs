//! The tuning lab's vocabulary: what a sweep, a capacity search or a soak
//! asks for ([`SweepSpec`], [`SoakSpec`]), the SLO it checks ([`Slo`]),
//! and what it found ([`SweepReport`], [`SoakReport`]).
//!
//! Config is data: the CLI and `POST /api/v1/sweeps` both build a
//! [`SweepSpec`], [`SweepSpec::validate`] checks every count, duration and
//! value against the limits here before anything runs, and the `lab` crate
//! runs it. The results are plain data too, so a saved sweep reopens in the
//! dashboard exactly as it was measured.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::metrics::Latency;
use crate::spec::{PipelineSpec, SpecError};

/// Most knob values one sweep may measure.
pub const MAX_POINTS: usize = 64;
/// Most repetitions of one point.
pub const MAX_REPEAT: u32 = 10;
/// Longest warm-up or measure window of one point.
pub const MAX_WINDOW_MS: u64 = 600_000;
/// Shortest measure window (a few snapshots must fit in it).
pub const MIN_MEASURE_MS: u64 = 500;
/// Longest soak.
pub const MAX_SOAK_MS: u64 = 24 * 3_600_000;
/// Shortest soak interval (one median per interval).
pub const MIN_INTERVAL_MS: u64 = 500;
/// Most probes a capacity search may make.
pub const MAX_PROBES: usize = 40;

/// Which values a knob takes.
///
/// Why: a list says exactly what to run; a range with ×2 steps is how
/// people walk worker counts (1, 2, 4, 8, 16).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KnobValues {
    /// These values, in this order.
    List(Vec<f64>),
    /// From `from` to `to` (inclusive) by `step`.
    Range {
        /// First value.
        from: f64,
        /// Last value (included when a step lands on it).
        to: f64,
        /// How to step.
        #[serde(default)]
        step: RangeStep,
    },
}

/// How a range steps.
///
/// Why: linear steps for capacities and rates, doubling for concurrency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeStep {
    /// ×2 each step.
    #[default]
    Double,
    /// Plus this much each step.
    Linear(f64),
}

impl KnobValues {
    /// The values to run, in order; errors name the field.
    pub fn expand(&self) -> Result<Vec<f64>, String> {
        let values = match *self {
            KnobValues::List(ref v) => v.clone(),
            KnobValues::Range { from, to, step } => {
                if !(from.is_finite() && to.is_finite() && from <= to) {
                    return Err("a range needs finite `from` ≤ `to`".into());
                }
                let mut v = Vec::new();
                let mut x = from;
                while x <= to * (1.0 + 1e-12) {
                    v.push(x);
                    if v.len() > MAX_POINTS {
                        break;
                    }
                    x = match step {
                        RangeStep::Double if from > 0.0 => x * 2.0,
                        RangeStep::Double => return Err("a doubling range starts above 0".into()),
                        RangeStep::Linear(d) if d > 0.0 && d.is_finite() => x + d,
                        RangeStep::Linear(_) => return Err("a linear step must be above 0".into()),
                    };
                }
                v
            }
        };
        if values.is_empty() {
            return Err("no values to run".into());
        }
        if values.len() > MAX_POINTS {
            return Err(format!("at most {MAX_POINTS} values"));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("values must be finite numbers".into());
        }
        Ok(values)
    }
}

/// One figure an SLO bounds.
///
/// Why: the SLO is data the CLI parses from `p99<50ms,errors<0.1%` and the
/// dashboard edits, checked the same way at every point.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Median end-to-end latency.
    P50,
    /// 95th percentile end-to-end latency.
    P95,
    /// 99th percentile end-to-end latency.
    P99,
    /// Items that failed for good, as a share of items settled.
    Errors,
    /// Attempts that timed out, as a share of items settled.
    Timeouts,
    /// Items a full queue dropped, as a share of items produced.
    Drops,
}

impl SloMetric {
    /// Name as written in an SLO.
    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::P50 => "p50",
            SloMetric::P95 => "p95",
            SloMetric::P99 => "p99",
            SloMetric::Errors => "errors",
            SloMetric::Timeouts => "timeouts",
            SloMetric::Drops => "drops",
        }
    }

    /// Whether the bound is a latency in milliseconds (else a share).
    pub fn is_latency(self) -> bool {
        matches!(self, SloMetric::P50 | SloMetric::P95 | SloMetric::P99)
    }
}

/// One bound: the figure must stay below `max` (ms, or a share 0..1).
///
/// Why: an SLO is a conjunction of these.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloTerm {
    /// The figure.
    pub metric: SloMetric,
    /// Its upper bound, exclusive: milliseconds for latencies, a share
    /// (0.001 = 0.1%) for rates.
    pub max: f64,
}

/// A service-level objective: every term must hold.
///
/// Why: the capacity search and `--fail-on` ask one question of a point —
/// does it keep the SLO — and must ask it the same way.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slo(pub Vec<SloTerm>);

impl Slo {
    /// Parses `p99<50ms,errors<0.1%` (terms joined by `,` or `and`;
    /// latencies in `us`, `ms` or `s`; rates as `%` or a share).
    pub fn parse(text: &str) -> Result<Slo, String> {
        let mut terms = Vec::new();
        let normalised = text.replace(" and ", ",");
        for raw in normalised.split(',') {
            let t = raw.trim();
            if t.is_empty() {
                continue;
            }
            let (name, bound) = t
                .split_once('<')
                .ok_or_else(|| format!("`{t}`: write a bound as `p99<50ms` or `errors<0.1%`"))?;
            let metric = match name.trim().to_ascii_lowercase().as_str() {
                "p50" => SloMetric::P50,
                "p95" => SloMetric::P95,
                "p99" => SloMetric::P99,
                "errors" | "error" => SloMetric::Errors,
                "timeouts" | "timeout" => SloMetric::Timeouts,
                "drops" | "dropped" => SloMetric::Drops,
                other => {
                    return Err(format!(
                        "`{other}`: an SLO bounds p50, p95, p99, errors, timeouts or drops"
                    ));
                }
            };
            let bound = bound.trim().trim_start_matches('=').trim();
            let max = if metric.is_latency() {
                let (num, scale) = if let Some(n) = bound.strip_suffix("us") {
                    (n, 0.001)
                } else if let Some(n) = bound.strip_suffix("ms") {
                    (n, 1.0)
                } else if let Some(n) = bound.strip_suffix('s') {
                    (n, 1000.0)
                } else {
                    return Err(format!("`{t}`: give the latency a unit (us, ms or s)"));
                };
                number(num, t)? * scale
            } else if let Some(n) = bound.strip_suffix('%') {
                number(n, t)? / 100.0
            } else {
                number(bound, t)?
            };
            if !(max.is_finite() && max > 0.0) || (!metric.is_latency() && max > 1.0) {
                return Err(format!(
                    "`{t}`: the bound must be above 0 (and at most 100%)"
                ));
            }
            terms.push(SloTerm { metric, max });
        }
        if terms.is_empty() {
            return Err("the SLO is empty: write e.g. `p99<50ms,errors<0.1%`".into());
        }
        if terms.len() > 8 {
            return Err("at most 8 terms in an SLO".into());
        }
        Ok(Slo(terms))
    }

    /// The terms a point's figures break (empty when the SLO holds).
    pub fn broken(&self, p: &PointFigures) -> Vec<SloTerm> {
        self.0
            .iter()
            .copied()
            .filter(|t| {
                let v = match t.metric {
                    SloMetric::P50 => p.latency.p50_us as f64 / 1000.0,
                    SloMetric::P95 => p.latency.p95_us as f64 / 1000.0,
                    SloMetric::P99 => p.latency.p99_us as f64 / 1000.0,
                    SloMetric::Errors => p.error_rate,
                    SloMetric::Timeouts => p.timeout_rate,
                    SloMetric::Drops => p.drop_rate,
                };
                // A point that moved nothing has no latency to judge by.
                let no_data = t.metric.is_latency() && p.latency.count == 0;
                no_data || v.is_nan() || v >= t.max
            })
            .collect()
    }
}

fn number(s: &str, term: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("`{term}`: `{}` is not a number", s.trim()))
}

impl fmt::Display for SloTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.metric.is_latency() {
            write!(f, "{}<{}ms", self.metric.as_str(), self.max)
        } else {
            write!(f, "{}<{}%", self.metric.as_str(), self.max * 100.0)
        }
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

/// What a sweep does with its knob.
///
/// Why: a plain sweep measures every value; a capacity search picks the
/// values itself until it finds the best one that keeps the SLO.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SweepMode {
    /// Measure each of `values`.
    #[default]
    Sweep,
    /// Search for the best value keeping `slo`, from the first of `values`.
    Capacity {
        /// Stop when the bracket is this close (relative; whole-number
        /// knobs stop one step apart).
        #[serde(default = "default_precision")]
        precision: f64,
        /// Most measurements.
        #[serde(default = "default_probes")]
        max_probes: usize,
    },
}

fn default_precision() -> f64 {
    0.05
}
fn default_probes() -> usize {
    16
}

/// A sweep: one pipeline, one knob, its values, and how to measure each.
///
/// Why: the one body the CLI, the REST API and the dashboard share.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSpec {
    /// The base pipeline.
    pub pipeline: PipelineSpec,
    /// The knob's path: `stages[io].workers`, `stages[0].queue.capacity`,
    /// `stages[io].concurrency`, `stages[io].rate_limit`,
    /// `sink.batch.size`, `source.rate`.
    pub knob: String,
    /// Its values (for a capacity search, the first is where it starts).
    pub values: KnobValues,
    /// Run time before measuring, per point.
    #[serde(default = "default_warmup")]
    pub warmup_ms: u64,
    /// Measured time per point.
    #[serde(default = "default_measure")]
    pub measure_ms: u64,
    /// Runs per point (the median is reported, the spread shown).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Kneedle's sensitivity.
    #[serde(default = "one_f")]
    pub sensitivity: f64,
    /// P99 or errors this many times the first point's mark a climb.
    #[serde(default = "default_climb")]
    pub climb_factor: f64,
    /// The SLO checked at each point (required for a capacity search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// Plain sweep or capacity search.
    #[serde(default)]
    pub mode: SweepMode,
}

fn default_warmup() -> u64 {
    2_000
}
fn default_measure() -> u64 {
    5_000
}
fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_climb() -> f64 {
    2.0
}

impl SweepSpec {
    /// Checks every count, window and value against the limits (the
    /// knob's own values are checked by applying them to the pipeline
    /// and validating it, in `lab`).
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut v = crate::spec::validation::Validator::default();
        v.nested("pipeline", self.pipeline.validate());
        if self.knob.is_empty() || self.knob.len() > 128 {
            v.err("knob", "name a knob, e.g. `stages[io].workers`".into());
        }
        if let Err(m) = self.values.expand() {
            v.err("values", m);
        }
        if self.warmup_ms > MAX_WINDOW_MS {
            v.err("warmup_ms", format!("at most {MAX_WINDOW_MS}"));
        }
        if !(MIN_MEASURE_MS..=MAX_WINDOW_MS).contains(&self.measure_ms) {
            v.err(
                "measure_ms",
                format!("between {MIN_MEASURE_MS} and {MAX_WINDOW_MS}"),
            );
        }
        if !(1..=MAX_REPEAT).contains(&self.repeat) {
            v.err("repeat", format!("between 1 and {MAX_REPEAT}"));
        }
        if !(self.sensitivity.is_finite() && (0.0..=10.0).contains(&self.sensitivity)) {
            v.err("sensitivity", "between 0 and 10".into());
        }
        if !(self.climb_factor.is_finite()
            && self.climb_factor > 1.0
            && self.climb_factor <= 1000.0)
        {
            v.err("climb_factor", "above 1 (and at most 1000)".into());
        }
        if let SweepMode::Capacity {
            precision,
            max_probes,
        } = self.mode
        {
            if self.slo.is_none() {
                v.err("slo", "a capacity search needs an SLO to keep".into());
            }
            if !(precision.is_finite() && (0.001..=0.5).contains(&precision)) {
                v.err("mode.precision", "between 0.001 and 0.5".into());
            }
            if !(2..=MAX_PROBES).contains(&max_probes) {
                v.err("mode.max_probes", format!("between 2 and {MAX_PROBES}"));
            }
        }
        v.finish()
    }
}

/// A soak: one pipeline run long, read once per interval for drift.
///
/// Why: leaks show as slow trends over many minutes, not in a sweep point.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakSpec {
    /// The pipeline.
    pub pipeline: PipelineSpec,
    /// Planned length, warm-up included.
    pub duration_ms: u64,
    /// Run time before the first interval counts.
    #[serde(default = "default_warmup")]
    pub warmup_ms: u64,
    /// Length of one interval (a median of each figure per interval).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Growth allowed over the planned duration before it is a leak.
    #[serde(default)]
    pub budgets: SoakBudgets,
    /// Significance level of the trend test.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

fn default_interval() -> u64 {
    60_000
}
fn default_alpha() -> f64 {
    0.05
}

/// How much each figure may grow over a soak before it counts as a leak.
///
/// Why: a trend that is real but tiny is reported, not flagged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoakBudgets {
    /// Resident memory, bytes.
    pub rss_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// OS threads.
    pub threads: f64,
    /// Items queued in all stages together.
    pub queue_depth: f64,
}

impl Default for SoakBudgets {
    fn default() -> Self {
        Self {
            rss_bytes: 64.0 * 1024.0 * 1024.0,
            open_fds: 16.0,
            threads: 8.0,
            queue_depth: 1000.0,
        }
    }
}

impl SoakSpec {
    /// Checks durations and budgets against the limits.
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut v = crate::spec::validation::Validator::default();
        v.nested("pipeline", self.pipeline.validate());
        if !(1..=MAX_SOAK_MS).contains(&self.duration_ms) {
            v.err("duration_ms", format!("between 1 and {MAX_SOAK_MS}"));
        }
        if self.warmup_ms >= self.duration_ms {
            v.err("warmup_ms", "shorter than the soak".into());
        }
        if self.interval_ms < MIN_INTERVAL_MS || self.interval_ms > self.duration_ms {
            v.err(
                "interval_ms",
                format!("at least {MIN_INTERVAL_MS} and at most the soak's duration"),
            );
        } else if (self.duration_ms - self.warmup_ms.min(self.duration_ms)) / self.interval_ms < 3 {
            v.err(
                "interval_ms",
                "the soak needs at least 3 intervals after its warm-up".into(),
            );
        } else if (self.duration_ms - self.warmup_ms) / self.interval_ms > 10_000 {
            v.err("interval_ms", "at most 10000 intervals".into());
        }
        let b = self.budgets;
        if [b.rss_bytes, b.open_fds, b.threads, b.queue_depth]
            .iter()
            .any(|x| !(x.is_finite() && *x >= 0.0))
        {
            v.err("budgets", "budgets are numbers ≥ 0".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            v.err("alpha", "between 0 and 0.5".into());
        }
        v.finish()
    }
}

/// The figures of one measured window, as the SLO and the knee read them.
///
/// Why: one shape for a single run and for a point's medians.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointFigures {
    /// Items reaching the sink per second.
    pub throughput: f64,
    /// End-to-end latency in the window (from each item's due time when
    /// the source has a rate).
    pub latency: Latency,
    /// Items that failed for good, per item settled.
    pub error_rate: f64,
    /// Timed-out attempts, per item settled.
    pub timeout_rate: f64,
    /// Items dropped by a full queue, per item produced.
    pub drop_rate: f64,
    /// Retried attempts, per item settled.
    pub retry_rate: f64,
}

/// One stage's figures over a measured window.
///
/// Why: a point says which stage was the limit and which were held back.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StagePoint {
    /// Stage name.
    pub name: String,
    /// Deepest its queue got.
    pub peak_depth: u64,
    /// Mean busy share.
    pub busy: f64,
    /// Mean blocked share (backpressure from downstream).
    pub blocked: f64,
    /// Mean CPU in cores (nodes on threads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Little's law: mean items in the stage measured, and rate × time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub little: Option<LittleFigure>,
}

/// Both sides of L = λW for one stage and window.
///
/// Why: a metric that is wrong shows as a persistent mismatch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LittleFigure {
    /// Mean items queued and in service, from depth and busy workers.
    pub observed: f64,
    /// Completion rate × mean time in stage.
    pub expected: f64,
    /// Whether this window was large enough to judge.
    pub judged: bool,
    /// Judged and off by more than the tolerance.
    pub mismatch: bool,
}

/// One run of one knob value.
///
/// Why: each run is a job of its own, linked by id, so a point can be
/// opened on the job page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointRun {
    /// The knob's value.
    pub value: f64,
    /// Which repetition (from 0).
    pub repeat: u32,
    /// The job that ran it.
    pub job: String,
    /// Length of the measured window actually used.
    pub window_ms: u64,
    /// The window's figures.
    pub figures: PointFigures,
    /// The arrival rate asked for (open model), if the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<f64>,
    /// Items the source produced per second.
    pub produced_rate: f64,
    /// The source fell short of its rate by more than 5%.
    #[serde(default)]
    pub source_behind: bool,
    /// Per stage.
    pub stages: Vec<StagePoint>,
    /// Peak resident memory of the process.
    pub rss_bytes: u64,
    /// Peak OS threads of the process.
    pub threads: u64,
    /// Peak open file descriptors of the process.
    pub open_fds: u64,
    /// Mean process CPU, percent of one core.
    pub cpu_percent: f64,
    /// The busiest stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busiest: Option<String>,
    /// Stages blocked more than half their time.
    #[serde(default)]
    pub backpressured: Vec<String>,
    /// Whether the accounting of the job added up.
    pub balanced: bool,
    /// Something a person should know about this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A knob value's runs, summarised.
///
/// Why: the knee and the fit read medians; the spread says how much to
/// trust them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    /// The knob's value.
    pub value: f64,
    /// Runs summarised.
    pub runs: u32,
    /// Medians over the runs.
    pub median: PointFigures,
    /// Lowest and highest throughput of the runs.
    pub throughput_range: (f64, f64),
    /// Lowest and highest P99 of the runs, microseconds.
    pub p99_range_us: (u64, u64),
    /// The stage most often busiest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busiest: Option<String>,
    /// Stages backpressured in most runs.
    #[serde(default)]
    pub backpressured: Vec<String>,
    /// Median mean CPU of the busiest stage, in cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busiest_cpu: Option<f64>,
    /// Whether the medians keep the SLO (when one was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ok: Option<bool>,
}

/// Which rule picked the reported knee.
///
/// Why: "throughput flattens" and "latency climbs" are different stories.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KneeRule {
    /// Kneedle on the throughput medians.
    Kneedle,
    /// The last value before P99 climbed past the factor.
    LatencyClimb,
    /// The last value before the error rate climbed past the factor.
    ErrorClimb,
}

/// Where the sweep stops paying off.
///
/// Why: the answer to "how many workers?", with the evidence.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The knob value reported as the knee.
    pub value: f64,
    /// The rule that picked it.
    pub rule: KneeRule,
    /// Every knee Kneedle found, in knob order.
    pub kneedle: Vec<f64>,
    /// Where P99 first passed the climb factor, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_climb_at: Option<f64>,
    /// Where the error rate first passed the climb factor, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_climb_at: Option<f64>,
}

/// The Universal Scalability Law fitted to a concurrency knob.
///
/// Why: σ and κ say *why* scaling stops, and N* where.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UslSummary {
    /// Contention (serial share).
    pub sigma: f64,
    /// Coherency (crosstalk).
    pub kappa: f64,
    /// Throughput of one unit.
    pub lambda: f64,
    /// Goodness of fit.
    pub r_squared: f64,
    /// Concurrency of peak throughput (`None` when κ = 0).
    pub n_star: Option<f64>,
    /// Predicted peak throughput.
    pub peak_throughput: f64,
    /// Contention- or coherency-bound, or linear.
    pub regime: String,
}

/// The answer of a capacity search.
///
/// Why: the value with its bracket and how the search ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityFinding {
    /// Best value that kept the SLO (measured twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Nearest value at which it broke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broke_at: Option<f64>,
    /// How the search ended, in words.
    pub ending: String,
    /// Measurements made.
    pub probes: usize,
}

/// Everything a sweep found.
///
/// Why: printed by the CLI, stored by the server, drawn by the dashboard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// The knob.
    pub knob: String,
    /// Every run, in the order measured.
    pub runs: Vec<PointRun>,
    /// One summary per knob value, in knob order.
    pub points: Vec<PointSummary>,
    /// The knee, when there was one to find.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Knee>,
    /// The USL fit, for a concurrency knob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usl: Option<UslSummary>,
    /// Why no USL fit was made, when the knob is a concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usl_refused: Option<String>,
    /// The capacity search's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityFinding>,
    /// Stages whose figures disagree with Little's law across the sweep.
    #[serde(default)]
    pub little_flags: Vec<String>,
    /// The value the report recommends (capacity, else knee).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<f64>,
    /// SLO terms broken at the chosen value.
    #[serde(default)]
    pub slo_broken: Vec<SloTerm>,
    /// What it means, in sentences.
    pub verdict: Vec<String>,
    /// The same in Chinese, for the dashboard.
    #[serde(default)]
    pub verdict_zh: Vec<String>,
    /// CPU cores of the machine that ran it.
    pub cores: usize,
    /// Whether the sweep was stopped before its end.
    #[serde(default)]
    pub stopped: bool,
}

/// One interval of a soak.
///
/// Why: the four trend charts and the jitter read these.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakInterval {
    /// Time since the soak's job started, at the interval's end.
    pub elapsed_ms: u64,
    /// Median resident memory, bytes.
    pub rss_bytes: f64,
    /// Median open file descriptors.
    pub open_fds: f64,
    /// Median OS threads.
    pub threads: f64,
    /// Median items queued over all stages.
    pub queue_depth: f64,
    /// Items sunk per second over the interval.
    pub throughput: f64,
    /// P99 of the interval, microseconds.
    pub p99_us: u64,
}

/// One figure's trend verdict.
///
/// Why: the page shows the slope, the p-value and the flag together.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakTrend {
    /// `rss_bytes`, `open_fds`, `threads` or `queue_depth`.
    pub figure: String,
    /// Sen's slope per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slope_per_interval: Option<f64>,
    /// Mann–Kendall p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Growth projected over the planned duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<f64>,
    /// The budget it is held to.
    pub budget: f64,
    /// Significant and over budget.
    pub leak: bool,
}

/// A soak run so far (or at its end).
///
/// Why: the verdict develops as intervals arrive; this is its state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    /// The pipeline's name.
    pub pipeline: String,
    /// The soak's job.
    pub job: String,
    /// Intervals after the warm-up.
    pub intervals: Vec<SoakInterval>,
    /// One verdict per figure.
    pub trends: Vec<SoakTrend>,
    /// Spread of per-interval throughput: coefficient of variation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_cv: Option<f64>,
    /// Spread of per-interval P99: coefficient of variation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_cv: Option<f64>,
    /// What it means, in sentences.
    pub verdict: Vec<String>,
    /// The same in Chinese, for the dashboard.
    #[serde(default)]
    pub verdict_zh: Vec<String>,
    /// Whether the soak has ended.
    pub finished: bool,
    /// Whether the accounting of the job added up (at the end).
    #[serde(default)]
    pub balanced: bool,
}

impl SoakReport {
    /// Whether any figure is flagged as leaking.
    pub fn leaks(&self) -> bool {
        self.trends.iter().any(|t| t.leak)
    }
}

/// Whether a lab run is a sweep or a soak.
///
/// Why: one list of saved lab runs, two kinds of page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabKind {
    /// A sweep or a capacity search.
    Sweep,
    /// A soak.
    Soak,
}

/// Where a lab run is in its life.
///
/// Why: the list shows which ones are still measuring.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabState {
    /// Measuring.
    Running,
    /// Ran to its end.
    Done,
    /// Stopped by a user before its end; what was measured is kept.
    Stopped,
    /// Could not go on (a run would not start); the reason is in `error`.
    Failed,
    /// The server stopped while it ran.
    Interrupted,
}

impl LabState {
    /// Whether it can still change.
    pub fn is_running(self) -> bool {
        self == LabState::Running
    }
}

/// A lab run in a list.
///
/// Why: enough to pick one to reopen or compare.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabSummary {
    /// Its id (`sw-…`).
    pub id: String,
    /// Sweep or soak.
    pub kind: LabKind,
    /// Its state.
    pub state: LabState,
    /// The pipeline's name.
    pub pipeline: String,
    /// The knob (sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
    /// When it was started, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Runs (sweeps) or intervals (soaks) measured so far.
    pub measured: usize,
    /// The value the sweep recommends, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<f64>,
    /// The first sentence of the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The same in Chinese.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline_zh: Option<String>,
}

/// A lab run in full: what it was asked, what it found so far.
///
/// Why: the Tuning page and `GET /api/v1/sweeps/{id}`; pushed over the
/// WebSocket as it changes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabDetail {
    /// The list fields.
    #[serde(flatten)]
    pub summary: LabSummary,
    /// The sweep asked for (sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSpec>,
    /// The soak asked for (soaks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakSpec>,
    /// The sweep's findings so far (knee and fit are read afresh after
    /// every run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_report: Option<SweepReport>,
    /// The soak's findings so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_report: Option<SoakReport>,
    /// The job measuring now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_job: Option<String>,
    /// Why it failed, in words for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bumped on every change, so a client can skip what it has.
    pub version: u64,
}

/// A knob a spec offers, with its value there if set.
///
/// Why: people pick a knob from what the pipeline has, not by typing
/// paths; the dashboard and `queuelab sweep --knobs` list the same ones.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunable {
    /// Its path.
    pub path: String,
    /// Its value in the spec, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
}

/// Every knob of `spec` a sweep can turn, in pipeline order.
pub fn tunables(spec: &PipelineSpec) -> Vec<Tunable> {
    use crate::spec::{Capacity, Runtime, SinkSpec, SourceSpec};
    let mut out = Vec::new();
    let mut push = |path: String, current: Option<f64>| out.push(Tunable { path, current });
    if let SourceSpec::Synthetic { rate, .. } = spec.source {
        push("source.rate".into(), rate);
    }
    for s in &spec.stages {
        let at = format!("stages[{}]", s.name);
        push(format!("{at}.workers"), Some(s.workers as f64));
        if s.runtime == Runtime::Async {
            push(
                format!("{at}.concurrency"),
                Some(s.effective_concurrency() as f64),
            );
        }
        if let Capacity::Bounded(n) = s.queue.capacity {
            push(format!("{at}.queue.capacity"), Some(n as f64));
        }
        push(format!("{at}.rate_limit"), s.rate_limit);
    }
    if !matches!(spec.sink, SinkSpec::Null)
        && let Some(b) = spec.sink.batch()
    {
        push("sink.batch.size".into(), Some(b.size as f64));
    }
    out
}

/// What kind of quantity a knob is.
///
/// Why: a USL fit only makes sense for a concurrency, and a capacity
/// search looks for the highest rate but the fewest workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobKind {
    /// Workers or async concurrency: USL applies; fewer is better.
    Concurrency,
    /// An arrival rate or a rate limit: higher is better.
    Rate,
    /// A size (queue capacity, batch size).
    Size,
}

/// What a knob is, from its path.
pub fn knob_kind(path: &str) -> KnobKind {
    if path.ends_with(".workers") || path.ends_with(".concurrency") {
        KnobKind::Concurrency
    } else if path.ends_with("rate") || path.ends_with("rate_limit") {
        KnobKind::Rate
    } else {
        KnobKind::Size
    }
}

/// Parses a duration as people write one: `500ms`, `5s`, `30m`, `1h`, or
/// bare seconds; into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (t, 1000.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 500ms, 5s, 30m or 1h"))?;
    let ms = v * scale;
    if !(ms.is_finite() && (0.0..=1e12).contains(&ms)) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5s"), Ok(5000));
        assert_eq!(parse_duration_ms("1.5"), Ok(1500));
        assert_eq!(parse_duration_ms("30m"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("-1s").is_err());
    }

    #[test]
    fn slos_parse_with_units_and_shares() {
        let slo = Slo::parse("p99<50ms, errors<0.1% and p50 < 2s").unwrap();
        assert_eq!(
            slo.0,
            vec![
                SloTerm {
                    metric: SloMetric::P99,
                    max: 50.0
                },
                SloTerm {
                    metric: SloMetric::Errors,
                    max: 0.001
                },
                SloTerm {
                    metric: SloMetric::P50,
                    max: 2000.0
                },
            ]
        );
        assert_eq!(slo.to_string(), "p99<50ms,errors<0.1%,p50<2000ms");
        assert!(Slo::parse("p99<50").unwrap_err().contains("unit"));
        assert!(Slo::parse("p42<5ms").is_err());
        assert!(Slo::parse("errors<200%").is_err());
        assert!(Slo::parse("").is_err());
    }

    #[test]
    fn an_slo_names_the_terms_a_point_breaks() {
        let slo = Slo::parse("p99<50ms,errors<1%").unwrap();
        let mut p = PointFigures {
            latency: Latency {
                count: 10,
                p99_us: 20_000,
                ..Default::default()
            },
            error_rate: 0.0,
            ..Default::default()
        };
        assert!(slo.broken(&p).is_empty());
        p.latency.p99_us = 80_000;
        p.error_rate = 0.05;
        assert_eq!(slo.broken(&p).len(), 2);
        p.latency.count = 0;
        p.latency.p99_us = 0;
        p.error_rate = 0.0;
        assert_eq!(
            slo.broken(&p).len(),
            1,
            "no latency measured breaks a latency bound"
        );
    }

    #[test]
    fn ranges_expand_by_doubling_or_steps_within_limits() {
        let r = KnobValues::Range {
            from: 1.0,
            to: 16.0,
            step: RangeStep::Double,
        };
        assert_eq!(r.expand().unwrap(), vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        let l = KnobValues::Range {
            from: 100.0,
            to: 400.0,
            step: RangeStep::Linear(100.0),
        };
        assert_eq!(l.expand().unwrap(), vec![100.0, 200.0, 300.0, 400.0]);
        let huge = KnobValues::Range {
            from: 1.0,
            to: 1e9,
            step: RangeStep::Linear(1.0),
        };
        assert!(huge.expand().is_err());
        assert!(KnobValues::List(vec![]).expand().is_err());
        assert!(KnobValues::List(vec![f64::NAN]).expand().is_err());
    }
}
