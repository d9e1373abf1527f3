//! The state every node of a job shares: its identity, the stop and
//! abort flags, the produced counter, where leftovers and dead letters
//! go, the job's runtime and task tracker, and its lifecycle (state,
//! events, drain and abort requests, the first failure).
//!
//! It sits below the nodes: sources, stages, bridges and the sink hold an
//! `Arc<JobCore>` and never reach up to the job that built them.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shared::metrics::{EventKind, JobEvent, JobState};
use tokio_util::task::TaskTracker;

use crate::egress::Egress;
use crate::leftovers::{DeadLetters, Leftovers};
use crate::queue::Rx;
use crate::signal::Flag;
use crate::stats::SourceTime;

/// Where a job is in its life, and what was asked of it.
pub(crate) struct Lifecycle {
    /// Current state.
    pub(crate) state: JobState,
    /// Every event so far.
    pub(crate) events: Vec<JobEvent>,
    /// When a drain was asked for.
    pub(crate) drain_started: Option<Instant>,
    /// Overrides the spec's drain deadline for this drain.
    pub(crate) drain_deadline: Option<Duration>,
    /// Why the job is aborting, once it is.
    pub(crate) abort_reason: Option<String>,
    /// The first failure.
    pub(crate) failure: Option<String>,
    /// The sink has finished: drain and abort requests no longer apply.
    pub(crate) closed: bool,
}

/// State shared by every thread and task of one job.
#[derive(Debug)]
pub struct JobCore {
    /// Job id.
    pub id: String,
    /// Pipeline name, used in thread names.
    pub name: String,
    /// Base seed for worker RNGs.
    pub seed: u64,
    /// Set to abort: everything stops, held items go to leftovers.
    pub abort: Flag,
    /// Set to stop the source (drain; also set by abort).
    pub stop: Flag,
    /// Items the source emitted.
    pub produced: AtomicU64,
    /// Blank lines a file or TCP source skipped (never items; reported).
    pub skipped_lines: AtomicU64,
    /// Where the source's time goes (busy, idle, blocked), for its figures.
    pub source_time: SourceTime,
    /// The leftovers file.
    pub leftovers: Leftovers,
    /// The dead-letter sink.
    pub dead_letters: DeadLetters,
    /// Where the job may connect; its HTTP clients enforce it.
    pub egress: Egress,
    /// Every async task of the job, so teardown can wait for them.
    pub tracker: TaskTracker,
    /// The job's own runtime.
    pub handle: tokio::runtime::Handle,
    /// Threads retired by tunes, joined at teardown.
    pub retired_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Queues closed on abort to wake blocked parties.
    pub(crate) queues: Mutex<Vec<Rx>>,
    /// State, events and requests.
    pub(crate) lifecycle: Mutex<Lifecycle>,
    /// When the job was built.
    pub(crate) started: Instant,
    /// Source-to-sink latency of the whole run so far, added to by the
    /// sampler once per interval, so a caller can cut a window out of it
    /// ([`crate::JobHandle::latency_mark`]); a mutex taken once per
    /// interval by the sampler and once per mark by the caller.
    pub(crate) latency: Mutex<hdrhistogram::Histogram<u64>>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch, for event timestamps.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl JobCore {
    /// The lifecycle, locked (a poisoned lock is taken over).
    pub(crate) fn lifecycle(&self) -> std::sync::MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event.
    pub(crate) fn event(&self, lc: &mut Lifecycle, kind: EventKind) {
        lc.events.push(JobEvent {
            at_ms: now_ms(),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            kind,
        });
    }

    /// Moves to `state` (if not there yet), recording the event.
    pub(crate) fn set_state(&self, lc: &mut Lifecycle, state: JobState, reason: Option<String>) {
        if lc.state == state {
            return;
        }
        tracing::info!(job = %self.id, from = %lc.state, to = %state, reason = reason.as_deref().unwrap_or(""), "job state");
        lc.state = state;
        self.event(lc, EventKind::State { state, reason });
    }

    /// Current state.
    pub fn state(&self) -> JobState {
        self.lifecycle().state
    }

    /// Aborts: stops everything now; held items go to leftovers.
    pub(crate) fn request_abort(&self, reason: String) {
        {
            let mut lc = self.lifecycle();
            if lc.state.is_finished() || lc.abort_reason.is_some() {
                return;
            }
            tracing::info!(job = %self.id, %reason, "aborting");
            lc.abort_reason = Some(reason);
        }
        self.stop.set();
        self.abort.set();
        for rx in self.queues.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            rx.close();
        }
    }

    /// Records a failure (first one wins) and aborts.
    pub(crate) fn fail(&self, error: String) {
        tracing::warn!(job = %self.id, %error, "job failed");
        {
            let mut lc = self.lifecycle();
            lc.failure.get_or_insert(error.clone());
        }
        self.request_abort(error);
    }
}
