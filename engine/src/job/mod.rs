//! Jobs: turning a spec into running nodes, supervising them, and the
//! handle through which callers watch, tune, drain and abort.
//!
//! * [`options`] — [`JobOptions`]: how to run a job beyond its spec, and
//!   the check of what the spec may touch.
//! * [`plan`] — [`start`] is the `build` step: it opens the source and
//!   sink, lays out the nodes (stages, with a bridge wherever the runtime
//!   changes, then the sink), creates each node's queue, starts every
//!   consumer and finally the source. [`StartError`] says why it could not.
//! * [`handle`] — [`JobHandle`]: state, events, snapshots, drain, abort,
//!   tune, the report; [`ControlError`] says why a request was refused.
//! * [`supervisor`] — the thread that samples metrics at the spec's rate,
//!   enforces the drain deadline, and when the sink is done joins
//!   everything, sweeps what is left in the queues into leftovers and
//!   writes the report.
//! * [`sampler`] — counters and histograms into snapshots.
//! * [`probe`] — the event-loop lag probe: a tick on the job's runtime,
//!   read from the sampler's thread so a blocked loop still reads as lag.
//!
//! The state every node shares ([`JobCore`](crate::core::JobCore)) lives
//! below the nodes, in [`crate::core`].

use std::sync::Arc;

use crate::broker::BrokerStage;
use crate::queue::Rx;
use crate::stage::StageCtl;
use crate::stats::NodeStats;

mod handle;
mod options;
mod plan;
mod probe;
mod sampler;
mod supervisor;

pub use handle::{ControlError, JobHandle};
pub use options::JobOptions;
pub use plan::{StartError, start};

/// A node as the supervisor sees it.
struct Node {
    stats: Arc<NodeStats>,
    rx: Rx,
    stage: Option<Arc<StageCtl>>,
    /// A broker stage: its input goes through the broker.
    broker: Option<Arc<BrokerStage>>,
}
