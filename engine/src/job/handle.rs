//! The handle through which callers watch, tune, drain and abort a job,
//! and why a control request may be refused.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use shared::metrics::{EventKind, JobEvent, JobReport, JobSnapshot, JobState, TuneRequest};
use shared::spec::{PipelineSpec, Runtime, limits};
use shared::workers::HostLimits;
use tokio::sync::watch;

use crate::auto::AutoSwitch;
use crate::broker::BrokerStage;
use crate::core::JobCore;
use crate::sink::BatchCtl;
use crate::stage::{ScaleError, StageCtl};

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The job has finished (or not started).
    #[error("job is {0}, not running")]
    NotRunning(JobState),
    /// No stage has that name.
    #[error("no stage named `{0}`")]
    UnknownStage(String),
    /// A value is out of range or does not apply.
    #[error("{field}: {message}")]
    Invalid {
        /// Field at fault (`workers`, `concurrency`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The stage cannot take the change now.
    #[error(transparent)]
    Scale(#[from] ScaleError),
    /// The job is being aborted: a drain can no longer apply.
    #[error("the job is being aborted")]
    Aborting,
}

pub(super) struct ReportSlot {
    pub(super) report: Mutex<Option<Arc<JobReport>>>,
    pub(super) ready: Condvar,
}

pub(super) struct HandleInner {
    pub(super) core: Arc<JobCore>,
    pub(super) spec: PipelineSpec,
    pub(super) stages: Vec<Arc<StageCtl>>,
    pub(super) brokers: Vec<Arc<BrokerStage>>,
    /// Each stage's auto switch, which a tune flips.
    pub(super) autos: Vec<Arc<AutoSwitch>>,
    pub(super) batch: Arc<BatchCtl>,
    pub(super) source_addr: Option<std::net::SocketAddr>,
    pub(super) ingest: Option<crate::source::IngestHandle>,
    pub(super) snapshots: watch::Receiver<Arc<JobSnapshot>>,
    pub(super) report: Arc<ReportSlot>,
}

/// A running (or finished) job. Cheap to clone; every clone controls the
/// same job.
#[derive(Clone)]
pub struct JobHandle {
    pub(super) inner: Arc<HandleInner>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.inner.core.id)
            .field("state", &self.state())
            .finish()
    }
}

impl JobHandle {
    /// Job id.
    pub fn id(&self) -> &str {
        &self.inner.core.id
    }

    /// The spec the job runs.
    pub fn spec(&self) -> &PipelineSpec {
        &self.inner.spec
    }

    /// The job's broker stages, for the server to place their workers.
    pub fn broker_stages(&self) -> &[Arc<BrokerStage>] {
        &self.inner.brokers
    }

    /// Where a listening source (TCP) accepts clients.
    pub fn source_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.source_addr
    }

    /// The way in for an `http_ingest` source's lines.
    pub fn ingest(&self) -> Option<crate::source::IngestHandle> {
        self.inner.ingest.clone()
    }

    /// Current lifecycle state.
    pub fn state(&self) -> JobState {
        self.inner.core.state()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<JobEvent> {
        self.events_since(0)
    }

    /// The events after the first `n`.
    pub fn events_since(&self, n: usize) -> Vec<JobEvent> {
        let lc = self.inner.core.lifecycle();
        lc.events
            .get(n..)
            .map(<[JobEvent]>::to_vec)
            .unwrap_or_default()
    }

    /// A receiver of snapshots: the newest one is always there to read,
    /// and slow readers simply skip intermediate ones.
    pub fn subscribe(&self) -> watch::Receiver<Arc<JobSnapshot>> {
        self.inner.snapshots.clone()
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<JobSnapshot> {
        self.inner.snapshots.borrow().clone()
    }

    /// Graceful stop: the source stops, queues close in order, every node
    /// finishes what it holds. The spec's drain deadline escalates to abort.
    pub fn drain(&self) -> Result<(), ControlError> {
        self.drain_within(None)
    }

    /// [`JobHandle::drain`] with a deadline of its own instead of the spec's.
    /// On a job already draining, a deadline can only bring the abort
    /// closer: the drain then ends within `deadline` from now at the latest
    /// (so a server shutting down is not held up by a drain someone asked
    /// to last an hour).
    pub fn drain_within(&self, deadline: Option<Duration>) -> Result<(), ControlError> {
        let core = &self.inner.core;
        {
            let mut lc = core.lifecycle();
            if lc.abort_reason.is_some() {
                return Err(ControlError::Aborting);
            }
            match lc.state {
                JobState::Running if lc.closed => return Ok(()),
                JobState::Running => {
                    lc.drain_started = Some(Instant::now());
                    lc.drain_deadline = deadline;
                    core.set_state(&mut lc, JobState::Draining, Some("drain requested".into()));
                }
                JobState::Draining => {
                    if let (Some(within), Some(started)) = (deadline, lc.drain_started) {
                        let spec = Duration::from_millis(self.inner.spec.drain_deadline_ms);
                        let limit = lc.drain_deadline.unwrap_or(spec);
                        lc.drain_deadline = Some(limit.min(started.elapsed() + within));
                    }
                    return Ok(());
                }
                other => return Err(ControlError::NotRunning(other)),
            }
        }
        core.stop.set();
        Ok(())
    }

    /// Immediate stop: cancels everything; what was queued or in flight is
    /// written to the leftovers file.
    pub fn abort(&self) -> Result<(), ControlError> {
        let state = self.state();
        if state.is_finished() {
            return Err(ControlError::NotRunning(state));
        }
        self.inner.core.request_abort("abort requested".into());
        Ok(())
    }

    /// Changes workers and/or concurrency of one stage while running.
    pub fn tune(&self, req: &TuneRequest) -> Result<(), ControlError> {
        let core = &self.inner.core;
        let state = core.state();
        if state.is_finished() {
            return Err(ControlError::NotRunning(state));
        }
        if req.stage == "sink" {
            return self.tune_sink(req);
        }
        if req.batch_size.is_some() || req.linger_ms.is_some() {
            return Err(ControlError::Invalid {
                field: "batch_size".into(),
                message: "batching is a property of the sink: tune stage `sink`".into(),
            });
        }
        if req.auto.is_some() || req.workers.is_some() || req.concurrency.is_some() {
            // The values are checked before a manual one pins anything.
            if let Some(spec) = self.inner.spec.stages.iter().find(|s| s.name == req.stage) {
                check_tune(spec.runtime, req)?;
            }
            self.switch_auto(req)?;
        }
        if let Some(broker) = self.inner.brokers.iter().find(|b| b.spec.name == req.stage) {
            return self.tune_broker(broker, req);
        }
        let stage = self
            .inner
            .stages
            .iter()
            .find(|s| s.spec.name == req.stage)
            .ok_or_else(|| ControlError::UnknownStage(req.stage.clone()))?;
        check_tune(stage.spec.runtime, req)?;
        let tuned =
            |field: &str, from: f64, to: f64| tuned_event(core, &req.stage, field, from, to);
        if let Some(w) = req.workers {
            let from = stage.workers();
            stage.scale_to(w)?;
            tuned("workers", f64::from(from), f64::from(w));
        }
        if let Some(c) = req.concurrency {
            let from = stage.concurrency().unwrap_or(0);
            stage.set_concurrency(c)?;
            tuned("concurrency", f64::from(from), f64::from(c));
        }
        if let Some(r) = req.rate_limit {
            let from = stage.policy.gate.rate().unwrap_or(0.0);
            stage.policy.gate.set(Some(r));
            tuned("rate_limit", from, r);
        }
        Ok(())
    }

    /// Turns a stage's automatic limit on or off: `auto` asks for it, and a
    /// value set by hand pins it. Only flips a switch: the controller, on
    /// the supervisor's thread, starts again from the live value at its
    /// next sample.
    fn switch_auto(&self, req: &TuneRequest) -> Result<(), ControlError> {
        let Some(switch) = self.inner.autos.iter().find(|a| a.stage == req.stage) else {
            return Err(ControlError::UnknownStage(req.stage.clone()));
        };
        let by_hand = req.workers.is_some() || req.concurrency.is_some();
        let core = &self.inner.core;
        let event = |reason: String| {
            let mut lc = core.lifecycle();
            core.event(
                &mut lc,
                EventKind::Auto {
                    stage: req.stage.clone(),
                    field: self.auto_field(&req.stage).into(),
                    from: 0.0,
                    to: 0.0,
                    reason,
                },
            );
        };
        match req.auto {
            Some(true) if by_hand => Err(ControlError::Invalid {
                field: "auto".into(),
                message: "ask for auto, or set workers or concurrency by hand, not both".into(),
            }),
            Some(true) => {
                if !switch.is_on() {
                    switch.turn_on();
                    event("auto turned back on: the engine chooses again".into());
                }
                Ok(())
            }
            Some(false) => {
                if switch.pin() {
                    event("pinned where it is: auto is off until turned back on".into());
                }
                Ok(())
            }
            None => {
                if switch.pin() {
                    event("pinned by a manual tune: auto is off until turned back on".into());
                }
                Ok(())
            }
        }
    }

    /// The field a stage's automatic limit drives.
    fn auto_field(&self, stage: &str) -> &'static str {
        self.inner
            .spec
            .stages
            .iter()
            .find(|s| s.name == stage)
            .map_or("workers", |s| s.auto_field())
    }

    /// A broker stage: `workers` is the total over every host, which the
    /// placer spreads again; `concurrency` and `rate_limit` are job-wide
    /// budgets, each host running with its share.
    fn tune_broker(&self, broker: &BrokerStage, req: &TuneRequest) -> Result<(), ControlError> {
        check_tune(broker.spec.runtime, req)?;
        let core = &self.inner.core;
        let tuned =
            |field: &str, from: f64, to: f64| tuned_event(core, &req.stage, field, from, to);
        if let Some(w) = req.workers {
            let from = broker.desired_workers();
            broker.set_desired(w);
            tuned("workers", f64::from(from), f64::from(w));
        }
        if req.concurrency.is_some() || req.rate_limit.is_some() {
            let from = broker.limits();
            let to = HostLimits {
                concurrency: req.concurrency.or(from.concurrency),
                rate_limit: req.rate_limit.or(from.rate_limit),
            };
            broker.set_limits(to);
            if let Some(c) = req.concurrency {
                tuned(
                    "concurrency",
                    f64::from(from.concurrency.unwrap_or(0)),
                    f64::from(c),
                );
            }
            if let Some(r) = req.rate_limit {
                tuned("rate_limit", from.rate_limit.unwrap_or(0.0), r);
            }
        }
        Ok(())
    }

    /// Tunes the sink's batching.
    fn tune_sink(&self, req: &TuneRequest) -> Result<(), ControlError> {
        let invalid = |field: &str, message: &str| {
            Err(ControlError::Invalid {
                field: field.into(),
                message: message.into(),
            })
        };
        if req.workers.is_some()
            || req.concurrency.is_some()
            || req.rate_limit.is_some()
            || req.auto.is_some()
        {
            return invalid("stage", "the sink takes only batch_size and linger_ms");
        }
        if self.inner.spec.sink.batch().is_none() {
            return invalid("batch_size", "this sink does not batch");
        }
        if let Some(size) = req.batch_size
            && !(1..=100_000).contains(&size)
        {
            return invalid("batch_size", "must be between 1 and 100000");
        }
        if let Some(linger) = req.linger_ms
            && linger > 60_000
        {
            return invalid("linger_ms", "must be at most 60000");
        }
        let core = &self.inner.core;
        let batch = &self.inner.batch;
        let mut lc = core.lifecycle();
        if let Some(size) = req.batch_size {
            let from = batch.size.swap(size, Ordering::Relaxed);
            core.event(
                &mut lc,
                EventKind::Tuned {
                    stage: "sink".into(),
                    field: "batch_size".into(),
                    from: f64::from(from),
                    to: f64::from(size),
                },
            );
        }
        if let Some(linger) = req.linger_ms {
            let from = batch.linger_ms.swap(linger, Ordering::Relaxed);
            core.event(
                &mut lc,
                EventKind::Tuned {
                    stage: "sink".into(),
                    field: "linger_ms".into(),
                    from: from as f64,
                    to: linger as f64,
                },
            );
        }
        Ok(())
    }

    /// The end-to-end latency so far, to measure a window between two marks
    /// (the tuning lab's warm-up and measure windows).
    pub fn latency_mark(&self) -> crate::stats::LatencyMark {
        let h = self
            .inner
            .core
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        crate::stats::LatencyMark::new(h)
    }

    /// The final report, once the job has finished.
    pub fn report(&self) -> Option<Arc<JobReport>> {
        self.inner
            .report
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Blocks the calling thread until the job finishes; returns the report.
    pub fn wait(&self) -> Arc<JobReport> {
        let slot = &self.inner.report;
        let mut guard = slot.report.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(report) = &*guard {
                return report.clone();
            }
            guard = slot.ready.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits without blocking a runtime thread until the job finishes.
    pub async fn finished(&self) -> Arc<JobReport> {
        let mut rx = self.subscribe();
        // The report is stored before the final snapshot is published.
        let _ = rx
            .wait_for(|s| s.state.is_some_and(JobState::is_finished))
            .await;
        self.report().unwrap_or_else(|| self.wait())
    }
}

/// Checks a tune's values for a stage running on `runtime`, in memory or
/// over a broker alike.
fn check_tune(runtime: Runtime, req: &TuneRequest) -> Result<(), ControlError> {
    if let Some(w) = req.workers
        && !(1..=limits::MAX_WORKERS).contains(&w)
    {
        return Err(ControlError::Invalid {
            field: "workers".into(),
            message: format!("must be between 1 and {}", limits::MAX_WORKERS),
        });
    }
    if let Some(c) = req.concurrency {
        if runtime != Runtime::Async {
            return Err(ControlError::Invalid {
                field: "concurrency".into(),
                message: "only async stages have a concurrency limit".into(),
            });
        }
        if !(1..=limits::MAX_CONCURRENCY).contains(&c) {
            return Err(ControlError::Invalid {
                field: "concurrency".into(),
                message: format!("must be between 1 and {}", limits::MAX_CONCURRENCY),
            });
        }
    }
    if let Some(r) = req.rate_limit
        && !(r.is_finite() && (limits::MIN_RATE..=limits::MAX_RATE).contains(&r))
    {
        return Err(ControlError::Invalid {
            field: "rate_limit".into(),
            message: format!(
                "must be between {} and {}",
                limits::MIN_RATE,
                limits::MAX_RATE
            ),
        });
    }
    Ok(())
}

/// Records a tune in the job's events (the timeline and the charts' marks).
fn tuned_event(core: &JobCore, stage: &str, field: &str, from: f64, to: f64) {
    let mut lc = core.lifecycle();
    core.event(
        &mut lc,
        EventKind::Tuned {
            stage: stage.to_owned(),
            field: field.into(),
            from,
            to,
        },
    );
}
