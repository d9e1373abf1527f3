//! Starting sweeps and soaks, and the thread each measures on: every run
//! started as an ordinary job ([`crate::launch::start_job`]), what it found
//! published to its slot in [`super::runs::LabRuns`] and saved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::JobHandle;
use shared::lab::{
    LabDetail, LabKind, LabState, LabSummary, PointRun, SoakReport, SoakSpec, SweepMode,
    SweepReport, SweepSpec,
};
use shared::spec::{FieldError, PipelineSpec, SpecError};
use tokio::sync::watch;

use super::runs::{Slot, now_ms};
use crate::audit::Caller;
use crate::error::AppError;
use crate::state::AppState;

/// Lab runs measuring at once: each takes the machine's cores, so two
/// would measure each other; a second is allowed so one stuck user does
/// not block the team.
pub const MAX_RUNNING: usize = 2;

/// Longest a sweep may plan to measure (every point, repeat and window).
pub const MAX_SWEEP_MS: u64 = 6 * 3_600_000;

/// The checks a lab body gets before anything runs: its own limits, the
/// pipeline's confinement, and (sweeps) every knob value applied.
fn check_pipeline(state: &AppState, pipeline: &PipelineSpec) -> Result<(), AppError> {
    state
        .job_options("lab-check")
        .check(pipeline)
        .map(|_| ())
        .map_err(|e| AppError::InvalidSpec(e.nested("pipeline")))
}

fn field(path: &str, message: String) -> AppError {
    AppError::InvalidSpec(SpecError {
        errors: vec![FieldError {
            path: path.into(),
            message,
        }],
    })
}

/// Starts a sweep; its first state.
pub async fn start_sweep(
    state: &AppState,
    caller: Caller,
    spec: SweepSpec,
) -> Result<Arc<LabDetail>, AppError> {
    spec.validate().map_err(AppError::InvalidSpec)?;
    let values = spec.values.expand().map_err(|m| field("values", m))?;
    for v in &values {
        lab::knob::apply(&spec.pipeline, &spec.knob, *v)
            .map_err(|e| field("knob", e.to_string()))?;
    }
    let per_run = spec.warmup_ms + spec.measure_ms;
    let runs = match spec.mode {
        SweepMode::Sweep => values.len() as u64 * spec.repeat as u64,
        SweepMode::Capacity { max_probes, .. } => (max_probes as u64 + 1) * spec.repeat as u64,
    };
    if per_run.saturating_mul(runs) > MAX_SWEEP_MS {
        return Err(field(
            "measure_ms",
            format!(
                "the sweep would measure for {} min; at most {} min",
                per_run * runs / 60_000,
                MAX_SWEEP_MS / 60_000
            ),
        ));
    }
    check_pipeline(state, &spec.pipeline)?;
    let mut detail = first_state(
        state,
        LabKind::Sweep,
        &spec.pipeline.name,
        Some(spec.knob.clone()),
    );
    detail.sweep = Some(spec);
    launch(state, caller, detail).await
}

/// Starts a soak; its first state.
pub async fn start_soak(
    state: &AppState,
    caller: Caller,
    spec: SoakSpec,
) -> Result<Arc<LabDetail>, AppError> {
    spec.validate().map_err(AppError::InvalidSpec)?;
    check_pipeline(state, &spec.pipeline)?;
    let mut detail = first_state(state, LabKind::Soak, &spec.pipeline.name, None);
    detail.soak = Some(spec);
    launch(state, caller, detail).await
}

/// A lab run's state before its first run: measuring, nothing found yet.
fn first_state(state: &AppState, kind: LabKind, pipeline: &str, knob: Option<String>) -> LabDetail {
    LabDetail {
        summary: LabSummary {
            id: state.lab().new_id(),
            kind,
            state: LabState::Running,
            pipeline: pipeline.to_string(),
            knob,
            created_at_ms: now_ms(),
            measured: 0,
            chosen: None,
            headline: None,
            headline_zh: None,
        },
        sweep: None,
        soak: None,
        sweep_report: None,
        soak_report: None,
        current_job: None,
        error: None,
        version: 0,
    }
}

async fn launch(
    state: &AppState,
    caller: Caller,
    detail: LabDetail,
) -> Result<Arc<LabDetail>, AppError> {
    if state.is_stopping() {
        return Err(AppError::Unavailable(
            "the server is shutting down and starts no sweeps".into(),
        ));
    }
    let lab = state.lab();
    if lab.running() >= MAX_RUNNING {
        return Err(AppError::LimitReached(format!(
            "{MAX_RUNNING} sweeps or soaks are measuring already; wait for one or stop it"
        )));
    }
    let id = detail.summary.id.clone();
    let first = Arc::new(detail);
    {
        let d = first.clone();
        state
            .jobs()
            .db()
            .call(move |s| s.save_lab(&d))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    let (tx, _) = watch::channel(first.clone());
    let slot = Arc::new(Slot {
        detail: tx,
        stop: AtomicBool::new(false),
    });
    lab.slots
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), slot.clone());
    let runner = Runner {
        state: state.clone(),
        caller,
        rt: tokio::runtime::Handle::current(),
        slot,
        runs: Vec::new(),
    };
    std::thread::Builder::new()
        .name("ql-lab".into())
        .spawn(move || runner.run())
        .map_err(|e| AppError::Unavailable(format!("cannot start the sweep's thread: {e}")))?;
    tracing::info!(lab = %id, "lab run started");
    Ok(first)
}

/// A lab run's thread: measures, and publishes what it found.
struct Runner {
    state: AppState,
    caller: Caller,
    rt: tokio::runtime::Handle,
    slot: Arc<Slot>,
    /// Sweep runs so far.
    runs: Vec<PointRun>,
}

impl Runner {
    fn run(mut self) {
        let detail = self.slot.detail.borrow().clone();
        let mut launcher = ServerLauncher {
            state: self.state.clone(),
            caller: self.caller.clone(),
            rt: self.rt.clone(),
            lab_id: detail.summary.id.clone(),
            slot: self.slot.clone(),
        };
        let slot = self.slot.clone();
        let stop = &slot.stop;
        let outcome: Result<(), String> = if let Some(spec) = detail.sweep.clone() {
            match lab::sweep::run(&spec, &mut launcher, stop, &mut self) {
                Ok(report) => {
                    self.publish_sweep(report);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        } else if let Some(spec) = detail.soak.clone() {
            match lab::soak::run(&spec, &mut launcher, stop, &mut self) {
                Ok(report) => {
                    self.publish_soak(&report);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            Err("nothing to run".into())
        };
        let user_stopped = stop.load(Ordering::Relaxed);
        self.update(|d| {
            d.current_job = None;
            d.summary.state = match &outcome {
                Err(e) => {
                    d.error = Some(e.clone());
                    LabState::Failed
                }
                Ok(()) if user_stopped => {
                    if self.state.is_stopping() {
                        LabState::Interrupted
                    } else {
                        LabState::Stopped
                    }
                }
                Ok(()) => LabState::Done,
            };
        });
        self.save();
        tracing::info!(lab = %detail.summary.id, outcome = ?outcome, "lab run ended");
    }

    /// Changes the published state (one new version).
    fn update(&self, f: impl FnOnce(&mut LabDetail)) {
        self.slot.detail.send_modify(|d| {
            let d = Arc::make_mut(d);
            f(d);
            d.version += 1;
        });
    }

    /// Writes the current state to the store.
    fn save(&self) {
        let d = self.slot.detail.borrow().clone();
        let db = self.state.jobs().db().clone();
        if let Err(e) = self.rt.block_on(db.call(move |s| s.save_lab(&d))) {
            tracing::error!(error = %e, "cannot save a lab run");
        }
    }

    fn publish_sweep(&self, report: SweepReport) {
        self.update(|d| {
            d.summary.measured = report.runs.len();
            d.summary.chosen = report.chosen;
            d.summary.headline = report.verdict.first().cloned();
            d.summary.headline_zh = report.verdict_zh.first().cloned();
            d.sweep_report = Some(report);
        });
    }

    fn publish_soak(&self, report: &SoakReport) {
        self.update(|d| {
            d.summary.measured = report.intervals.len();
            d.summary.headline = report.verdict.first().cloned();
            d.summary.headline_zh = report.verdict_zh.first().cloned();
            d.current_job = (!report.finished).then(|| report.job.clone());
            d.soak_report = Some(report.clone());
        });
    }
}

impl lab::sweep::SweepWatch for Runner {
    fn run_started(&mut self, _index: usize, _total: Option<usize>, _value: f64, job: &str) {
        let job = job.to_string();
        self.update(|d| d.current_job = Some(job));
    }

    fn run_finished(&mut self, run: &PointRun) {
        self.runs.push(run.clone());
        let Some(spec) = self.slot.detail.borrow().sweep.clone() else {
            return;
        };
        // The knee and the fit, read afresh over the runs so far.
        let report = lab::sweep::analyse(&spec, self.runs.clone(), None, false);
        self.publish_sweep(report);
        self.update(|d| d.current_job = None);
        self.save();
    }
}

impl lab::soak::SoakWatch for Runner {
    fn update(&mut self, report: &SoakReport) {
        self.publish_soak(report);
        self.save();
    }
}

/// Starts the lab's runs as the API starts jobs.
struct ServerLauncher {
    state: AppState,
    caller: Caller,
    rt: tokio::runtime::Handle,
    lab_id: String,
    slot: Arc<Slot>,
}

impl lab::point::Launcher for ServerLauncher {
    fn launch(
        &mut self,
        spec: PipelineSpec,
        label: &str,
    ) -> Result<JobHandle, lab::point::LaunchError> {
        if self.slot.stop.load(Ordering::Relaxed) || self.state.is_stopping() {
            return Err(lab::point::LaunchError("stopped".into()));
        }
        let started = self.rt.block_on(crate::launch::start_job(
            &self.state,
            &self.caller,
            spec,
            None,
        ));
        match started {
            Ok(body) => {
                tracing::info!(lab = %self.lab_id, job = %body.summary.id, run = label, "lab run started a job");
                self.state.jobs().handle(&body.summary.id).ok_or_else(|| {
                    lab::point::LaunchError("the job ended before it was watched".into())
                })
            }
            Err(e) => {
                tracing::warn!(lab = %self.lab_id, error = %e, "a lab run could not start its job");
                Err(lab::point::LaunchError(e.public_message()))
            }
        }
    }
}
