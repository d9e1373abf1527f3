//! What a lab run found: the points of a sweep and their analysis
//! ([`SweepReport`]), and the intervals and trends of a soak
//! ([`SoakReport`]).

use serde::{Deserialize, Serialize};

use super::figures::PointFigures;
use super::slo::SloTerm;

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
