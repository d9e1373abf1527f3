//! What a lab run asks for: a sweep or capacity search ([`SweepSpec`],
//! [`SweepMode`]) or a soak ([`SoakSpec`], [`SoakBudgets`]), each checked
//! against the limits before anything runs.

use serde::{Deserialize, Serialize};

use super::knobs::KnobValues;
use super::limits::{
    MAX_PROBES, MAX_REPEAT, MAX_SOAK_MS, MAX_WINDOW_MS, MIN_INTERVAL_MS, MIN_MEASURE_MS,
};
use super::slo::Slo;
use crate::spec::{PipelineSpec, SpecError};

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
    /// A sweep of `knob` over `values`, each warmed up and measured for
    /// the given windows, everything else at the API's defaults (one run
    /// per value, no SLO).
    pub fn over(
        pipeline: PipelineSpec,
        knob: &str,
        values: &[f64],
        warmup_ms: u64,
        measure_ms: u64,
    ) -> Self {
        Self {
            pipeline,
            knob: knob.into(),
            values: KnobValues::List(values.to_vec()),
            warmup_ms,
            measure_ms,
            repeat: one(),
            sensitivity: one_f(),
            climb_factor: default_climb(),
            slo: None,
            mode: SweepMode::default(),
        }
    }

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
