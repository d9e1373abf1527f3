//! The lab runs a server keeps: their kind and state, the summary a list
//! shows and the detail a page shows ([`LabSummary`], [`LabDetail`]).

use serde::{Deserialize, Serialize};

use super::reports::{SoakReport, SweepReport};
use super::specs::{SoakSpec, SweepSpec};

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
