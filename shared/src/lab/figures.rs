//! The figures of one measured window ([`PointFigures`]), below the SLO
//! that reads them and the reports that hold them.

use serde::{Deserialize, Serialize};

use crate::metrics::Latency;

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
