//! Jobs: turning a spec into running nodes, supervising them, and the
//! handle through which callers watch, tune, drain and abort.
//!
//! [`start`] is the `build` step: it opens the source and sink, lays out
//! the nodes (stages, with a bridge wherever the runtime changes, then the
//! sink), creates each node's queue, starts every consumer and finally the
//! source. A supervisor thread then samples metrics at the spec's rate,
//! enforces the drain deadline, and when the sink is done joins everything,
//! sweeps what is left in the queues into leftovers and writes the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use shared::metrics::{
    Accounting, EventKind, JobEvent, JobReport, JobSnapshot, JobState, NodeKind, NodeSnapshot,
    ProcessSnapshot, TuneRequest,
};
use shared::spec::{
    Capacity, DeadLetterSpec, PipelineSpec, Runtime, SourceSpec, SpecError, WhenFull, limits,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::confine::{Files, SpecPaths};
// The sink still names `crate::job::JobCore`; it moves with `sink/`.
pub(crate) use crate::core::JobCore;
use crate::core::{Lifecycle, now_ms};
use crate::egress::Egress;
use crate::leftovers::{DeadLetters, Leftovers};
use crate::process::ProcessSampler;
use crate::queue::{Rx, channel};
use crate::runtime::{EngineRuntime, RuntimeError};
use crate::signal::Flag;
use crate::sink::{BatchCtl, Sink};
use crate::source::Source;
use crate::stage::{ScaleError, StageCtl, run_bridge};
use crate::stats::{NodeInfo, NodeStats, new_histogram, summarize};

/// Capacity of the handoff queue of an automatic bridge.
pub const BRIDGE_CAPACITY: u64 = 256;
/// Capacity of the sink's input queue.
pub const SINK_CAPACITY: u64 = 1000;
/// Period of the event-loop lag probe.
const LAG_PROBE: Duration = Duration::from_millis(20);

/// How to run a job, beyond its spec.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// Job id, unique within the data directory.
    pub id: String,
    /// Where the job's files (leftovers) go: `<data_dir>/jobs/<id>/`.
    pub data_dir: PathBuf,
    /// Worker threads of the job's own tokio runtime.
    pub runtime_threads: usize,
    /// Where the spec's paths may lead (anywhere, relative to the working
    /// directory, unless a server confines them).
    pub files: Files,
    /// Where the job may connect (anywhere unless a server says otherwise).
    pub egress: Egress,
    /// Whether a `tcp` source may listen on any address, or on loopback
    /// only (what a shared server allows unless told otherwise: a spec
    /// must not open the host to the network).
    pub listen_anywhere: bool,
}

impl JobOptions {
    /// Options with a runtime thread per core (at least two).
    pub fn new(id: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            id: id.into(),
            data_dir: data_dir.into(),
            runtime_threads: cores.max(2),
            files: Files::default(),
            egress: Egress::default(),
            listen_anywhere: true,
        }
    }

    /// Checks what `spec` would touch against [`JobOptions::files`] and
    /// [`JobOptions::egress`]: every refusal with its field, or the
    /// resolved paths [`start`] opens.
    pub fn check(&self, spec: &PipelineSpec) -> Result<SpecPaths, SpecError> {
        let mut errors = Vec::new();
        let paths = self
            .files
            .resolve_spec(spec)
            .map_err(|e| errors.extend(e.errors))
            .ok();
        if let Err(e) = self.egress.check_spec(spec) {
            errors.extend(e.errors);
        }
        if let SourceSpec::Tcp { bind, .. } = &spec.source
            && !self.listen_anywhere
            && !bind
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback())
        {
            errors.push(shared::spec::FieldError {
                path: "source.bind".into(),
                message: format!(
                    "`{bind}`: this server lets a tcp source listen on a loopback address only (127.0.0.1:PORT or [::1]:PORT); its operator can allow more with --listen-anywhere"
                ),
            });
        }
        match paths {
            Some(paths) if errors.is_empty() => Ok(paths),
            _ => Err(SpecError { errors }),
        }
    }
}

/// Why a job could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The spec has problems (each with its field path).
    #[error("invalid spec:\n{0}")]
    Invalid(#[from] SpecError),
    /// The source or sink could not be opened.
    #[error("{0}")]
    Io(String),
    /// The job's runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A stage's workers could not start.
    #[error(transparent)]
    Scale(#[from] ScaleError),
    /// The system refused one of the job's threads (a thread or memory
    /// limit).
    #[error("the server could not start the job's threads (a system limit)")]
    Spawn,
}

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

/// A node as the supervisor sees it.
struct Node {
    stats: Arc<NodeStats>,
    rx: Rx,
    stage: Option<Arc<StageCtl>>,
}

struct ReportSlot {
    report: Mutex<Option<Arc<JobReport>>>,
    ready: Condvar,
}

struct HandleInner {
    core: Arc<JobCore>,
    spec: PipelineSpec,
    stages: Vec<Arc<StageCtl>>,
    batch: Arc<BatchCtl>,
    source_addr: Option<std::net::SocketAddr>,
    ingest: Option<crate::source::IngestHandle>,
    snapshots: watch::Receiver<Arc<JobSnapshot>>,
    report: Arc<ReportSlot>,
}

/// A running (or finished) job. Cheap to clone; every clone controls the
/// same job.
#[derive(Clone)]
pub struct JobHandle {
    inner: Arc<HandleInner>,
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
        let stage = self
            .inner
            .stages
            .iter()
            .find(|s| s.spec.name == req.stage)
            .ok_or_else(|| ControlError::UnknownStage(req.stage.clone()))?;
        if let Some(w) = req.workers
            && !(1..=limits::MAX_WORKERS).contains(&w)
        {
            return Err(ControlError::Invalid {
                field: "workers".into(),
                message: format!("must be between 1 and {}", limits::MAX_WORKERS),
            });
        }
        if let Some(c) = req.concurrency {
            if stage.spec.runtime != Runtime::Async {
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
        let tuned = |field: &str, from: f64, to: f64| {
            let mut lc = core.lifecycle();
            core.event(
                &mut lc,
                EventKind::Tuned {
                    stage: req.stage.clone(),
                    field: field.into(),
                    from,
                    to,
                },
            );
        };
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

    /// Tunes the sink's batching.
    fn tune_sink(&self, req: &TuneRequest) -> Result<(), ControlError> {
        let invalid = |field: &str, message: &str| {
            Err(ControlError::Invalid {
                field: field.into(),
                message: message.into(),
            })
        };
        if req.workers.is_some() || req.concurrency.is_some() || req.rate_limit.is_some() {
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

/// Builds and starts a job from a spec. It opens files and connects to
/// databases before returning, so errors name the culprit; being blocking,
/// call it from a blocking context (`spawn_blocking` in a server).
pub fn start(spec: PipelineSpec, opts: JobOptions) -> Result<JobHandle, StartError> {
    spec.validate()?;
    let paths = opts.check(&spec)?;
    let source = Source::open(&spec.source, &paths).map_err(StartError::Io)?;
    let source_addr = source.local_addr();
    let ingest = source.ingest();
    let runtime = EngineRuntime::named(opts.runtime_threads, &format!("ql-{}-rt", spec.name))?;
    let sink =
        Sink::open(&spec.sink, runtime.handle(), &paths, &opts.egress).map_err(StartError::Io)?;
    let seed = match spec.source {
        SourceSpec::Synthetic { seed, .. } => seed,
        _ => 0,
    };
    let job_dir = opts.data_dir.join("jobs").join(&opts.id);
    let leftovers_path = job_dir.join("leftovers.jsonl");
    let dead_letters = match &spec.dead_letter {
        DeadLetterSpec::File => DeadLetters::new(job_dir.join("dead_letters.jsonl")),
        DeadLetterSpec::FileAt { path } => {
            DeadLetters::new(paths.get(path).map_err(StartError::Io)?.to_owned())
        }
        DeadLetterSpec::Sqlite { path, table } => {
            DeadLetters::sqlite(paths.get(path).map_err(StartError::Io)?, table)
                .map_err(StartError::Io)?
        }
    };
    let core = Arc::new(JobCore {
        id: opts.id.clone(),
        name: spec.name.clone(),
        seed,
        abort: Flag::new(),
        stop: Flag::new(),
        produced: AtomicU64::new(0),
        skipped_lines: AtomicU64::new(0),
        leftovers: Leftovers::new(leftovers_path),
        dead_letters,
        egress: opts.egress.clone(),
        tracker: TaskTracker::new(),
        handle: runtime.handle().clone(),
        retired_threads: Mutex::new(Vec::new()),
        queues: Mutex::new(Vec::new()),
        lifecycle: Mutex::new(Lifecycle {
            state: JobState::Pending,
            events: Vec::new(),
            drain_started: None,
            drain_deadline: None,
            abort_reason: None,
            failure: None,
            closed: false,
        }),
        started: Instant::now(),
        lag_us: AtomicU64::new(0),
    });
    {
        let mut lc = core.lifecycle();
        core.event(
            &mut lc,
            EventKind::State {
                state: JobState::Pending,
                reason: None,
            },
        );
    }

    // Lay out the nodes: stages in order, a bridge wherever the runtime
    // changes, the sink last. A queue is awaiting when tasks are on either
    // end of it; threads (source, bridges, sink) use the blocking API of
    // an awaiting queue when they must.
    enum Plan {
        Stage(usize),
        Bridge(Runtime, Runtime),
        Sink,
    }
    let mut plan = Vec::new();
    let mut prev: Option<Runtime> = None;
    for (i, stage) in spec.stages.iter().enumerate() {
        if let Some(p) = prev
            && p != stage.runtime
        {
            plan.push(Plan::Bridge(p, stage.runtime));
        }
        plan.push(Plan::Stage(i));
        prev = Some(stage.runtime);
    }
    // The sink is a thread: an async last stage reaches it through a bridge.
    if prev == Some(Runtime::Async) {
        plan.push(Plan::Bridge(Runtime::Async, Runtime::Thread));
    }
    plan.push(Plan::Sink);

    let mut infos = Vec::new();
    for (k, p) in plan.iter().enumerate() {
        let (info, awaiting) = match *p {
            Plan::Stage(i) => {
                let s = &spec.stages[i];
                (
                    NodeInfo {
                        name: s.name.clone(),
                        kind: NodeKind::Stage,
                        runtime: s.runtime,
                        capacity: s.queue.capacity,
                        when_full: s.queue.when_full,
                    },
                    s.runtime == Runtime::Async,
                )
            }
            Plan::Bridge(from, to) => {
                let name = |j: usize| match plan.get(j) {
                    Some(Plan::Stage(i)) => spec.stages[*i].name.clone(),
                    _ => "sink".into(),
                };
                (
                    NodeInfo {
                        name: format!("bridge:{}->{}", name(k - 1), name(k + 1)),
                        kind: NodeKind::Bridge,
                        runtime: to,
                        capacity: Capacity::Bounded(BRIDGE_CAPACITY),
                        when_full: WhenFull::Block,
                    },
                    from == Runtime::Async,
                )
            }
            Plan::Sink => (
                NodeInfo {
                    name: "sink".into(),
                    kind: NodeKind::Sink,
                    runtime: Runtime::Thread,
                    capacity: Capacity::Bounded(SINK_CAPACITY),
                    when_full: WhenFull::Block,
                },
                false,
            ),
        };
        infos.push((info, awaiting));
    }
    let batch_ctl = Arc::new(BatchCtl::new(spec.sink.batch()));
    let mut txs = Vec::new();
    let mut nodes = Vec::new();
    for (info, awaiting) in infos {
        let stats = Arc::new(NodeStats::new(info.clone()));
        let (tx, rx) = channel(info.capacity, info.when_full, awaiting, stats.clone());
        txs.push(tx);
        nodes.push(Node {
            stats,
            rx,
            stage: None,
        });
    }
    *core.queues.lock().unwrap_or_else(|e| e.into_inner()) =
        nodes.iter().map(|n| n.rx.clone()).collect();

    // Start consumers back to front, then the source.
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
    let mut sink = Some(sink);
    for (k, p) in plan.iter().enumerate().rev() {
        let rx = nodes[k].rx.clone();
        let stats = nodes[k].stats.clone();
        let c = core.clone();
        match *p {
            Plan::Sink => {
                let sink = sink.take().expect("one sink");
                let done_tx = done_tx.clone();
                stats.workers.store(1, Ordering::Relaxed);
                let batch = batch_ctl.clone();
                let started = spawn_thread(format!("ql-{}-sink", spec.name), move || {
                    let result = crate::sink::run(sink, rx, stats.clone(), &c, &batch);
                    stats.workers.store(0, Ordering::Relaxed);
                    let _ = done_tx.send(result);
                });
                match started {
                    Ok(t) => threads.push(t),
                    Err(e) => return Err(abandon(&core, threads, &nodes, e)),
                }
            }
            Plan::Bridge(..) => {
                let tx = txs[k + 1].clone();
                stats.workers.store(1, Ordering::Relaxed);
                let started = spawn_thread(format!("ql-{}-bridge-{k}", spec.name), move || {
                    run_bridge(rx, tx, stats.clone(), &c);
                    stats.workers.store(0, Ordering::Relaxed);
                });
                match started {
                    Ok(t) => threads.push(t),
                    Err(e) => return Err(abandon(&core, threads, &nodes, e)),
                }
            }
            Plan::Stage(i) => {
                let ctl =
                    StageCtl::new(i, spec.stages[i].clone(), stats, rx, txs[k + 1].clone(), c);
                let scaled = ctl.scale_to(spec.stages[i].workers);
                nodes[k].stage = Some(ctl);
                if let Err(e) = scaled {
                    return Err(abandon(&core, threads, &nodes, e.into()));
                }
            }
        }
    }
    drop(done_tx);
    {
        let tx = txs[0].clone();
        let first = nodes[0].stats.clone();
        let c = core.clone();
        let started = spawn_thread(format!("ql-{}-source", spec.name), move || {
            if let Err(e) = crate::source::run(source, &c, tx, first) {
                c.fail(e);
            }
        });
        match started {
            Ok(t) => threads.push(t),
            Err(e) => return Err(abandon(&core, threads, &nodes, e)),
        }
    }
    // Only workers hold senders now: their exits drive the drain cascade.
    drop(txs);

    let lag_stop = CancellationToken::new();
    runtime
        .handle()
        .spawn(probe_lag(core.clone(), lag_stop.clone()));

    {
        let mut lc = core.lifecycle();
        core.set_state(&mut lc, JobState::Running, None);
    }
    let stages: Vec<Arc<StageCtl>> = nodes.iter().filter_map(|n| n.stage.clone()).collect();
    // The first snapshot is taken before returning, so every subscriber
    // sees the full list of nodes from the start.
    let mut sampler = Sampler::default();
    let (snap_tx, snap_rx) = watch::channel(Arc::new(sampler.sample(&core, &nodes, false)));
    let report = Arc::new(ReportSlot {
        report: Mutex::new(None),
        ready: Condvar::new(),
    });
    // The supervisor's thread starts first and waits for its work, so a
    // refused thread leaves everything here to be abandoned cleanly.
    let (hand_over, handed) = crossbeam_channel::bounded::<Supervisor>(1);
    let started = spawn_thread(format!("ql-{}-supervisor", spec.name), move || {
        if let Ok(supervisor) = handed.recv() {
            supervisor.run();
        }
    });
    if let Err(e) = started {
        return Err(abandon(&core, threads, &nodes, e));
    }
    let supervisor = Supervisor {
        core: core.clone(),
        spec: spec.clone(),
        nodes,
        threads,
        runtime: Some(runtime),
        lag_stop,
        done_rx,
        snapshots: snap_tx,
        report: report.clone(),
        sampler,
    };
    let _ = hand_over.send(supervisor);
    Ok(JobHandle {
        inner: Arc::new(HandleInner {
            core,
            spec,
            stages,
            batch: batch_ctl,
            source_addr,
            ingest,
            snapshots: snap_rx,
            report,
        }),
    })
}

/// Undoes a start that failed half-way: aborts what already runs (held
/// items go to leftovers), joins its threads, and passes the error on.
fn abandon(
    core: &JobCore,
    threads: Vec<JoinHandle<()>>,
    nodes: &[Node],
    e: StartError,
) -> StartError {
    core.request_abort(format!("could not start: {e}"));
    let mut handles = threads;
    for node in nodes {
        if let Some(stage) = &node.stage {
            handles.extend(stage.finish());
        }
    }
    for h in handles {
        let _ = h.join();
    }
    e
}

/// Starts one of a job's own threads (source, bridge, sink, supervisor);
/// the system may refuse (a thread or memory limit), which fails the start.
fn spawn_thread(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|e| {
            tracing::warn!(thread = %name, error = %e, "cannot start an engine thread");
            StartError::Spawn
        })
}

/// Measures how late a periodic timer fires on the job's runtime: the
/// signature of blocking code on an event loop.
async fn probe_lag(core: Arc<JobCore>, stop: CancellationToken) {
    loop {
        let before = Instant::now();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LAG_PROBE) => {}
        }
        let late = before.elapsed().saturating_sub(LAG_PROBE);
        core.lag_us
            .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Totals of one node at the previous sample, to turn counters into rates.
#[derive(Default, Clone, Copy)]
struct Prev {
    accepted: u64,
    out: u64,
    busy: u64,
    idle: u64,
    blocked: u64,
}

struct Cumulative {
    queue_wait: Histogram<u64>,
    service: Histogram<u64>,
}

#[derive(Default)]
struct Sampler {
    seq: u64,
    last: Option<Instant>,
    prev: Vec<Prev>,
    totals: Vec<Cumulative>,
    end_to_end: Option<Histogram<u64>>,
    prev_sunk: u64,
    process: ProcessSampler,
}

impl Sampler {
    /// Takes a snapshot; `whole_run` reports rates and shares over the
    /// whole run instead of the last interval (for the final report).
    fn sample(&mut self, core: &JobCore, nodes: &[Node], whole_run: bool) -> JobSnapshot {
        let now = Instant::now();
        let dt = if whole_run {
            core.started.elapsed()
        } else {
            now - self.last.unwrap_or(core.started)
        }
        .as_secs_f64()
        .max(1e-9);
        self.last = Some(now);
        if self.prev.len() != nodes.len() {
            self.prev = vec![Prev::default(); nodes.len()];
            self.totals = nodes
                .iter()
                .map(|_| Cumulative {
                    queue_wait: new_histogram(),
                    service: new_histogram(),
                })
                .collect();
        }
        let e2e_total = self.end_to_end.get_or_insert_with(new_histogram);
        let mut accounting = Accounting::default();
        let mut e2e = new_histogram();
        let mut snapshots = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let s = &node.stats;
            let interval = s.take_interval();
            let totals = &mut self.totals[i];
            let _ = totals.queue_wait.add(&interval.queue_wait);
            let _ = totals.service.add(&interval.service);
            let _ = e2e.add(&interval.end_to_end);
            let cur = Prev {
                accepted: s.accepted.load(Ordering::Relaxed),
                out: s.sum(|x| &x.out),
                busy: s.sum(|x| &x.busy_ns),
                idle: s.sum(|x| &x.idle_ns),
                blocked: s.sum(|x| &x.blocked_ns),
            };
            let base = if whole_run {
                Prev::default()
            } else {
                self.prev[i]
            };
            self.prev[i] = cur;
            let (busy, idle, blocked) = (
                cur.busy - base.busy,
                cur.idle - base.idle,
                cur.blocked - base.blocked,
            );
            let time = (busy + idle + blocked).max(1) as f64;
            let filtered = s.sum(|x| &x.filtered);
            let errors = s.sum(|x| &x.errors);
            let dead_lettered = s.sum(|x| &x.dead_lettered);
            let dropped = s.dropped.load(Ordering::Relaxed);
            let leftovers = s.leftovers.load(Ordering::Relaxed);
            accounting.filtered += filtered;
            accounting.dead_lettered += dead_lettered;
            accounting.dropped_by_policy += dropped + errors;
            accounting.leftovers += leftovers;
            if s.info.kind == NodeKind::Sink {
                accounting.sunk = cur.out;
            }
            let concurrency = s.concurrency.load(Ordering::Relaxed);
            snapshots.push(NodeSnapshot {
                name: s.info.name.clone(),
                kind: Some(s.info.kind),
                runtime: Some(s.info.runtime),
                workers: s.workers.load(Ordering::Relaxed),
                concurrency: (concurrency > 0).then_some(concurrency),
                rate_limit: node.stage.as_ref().and_then(|st| st.policy.gate.rate()),
                capacity: Some(s.info.capacity),
                when_full: Some(s.info.when_full),
                depth: node.rx.len() as u64,
                items_in: cur.accepted,
                items_out: cur.out,
                filtered,
                dropped,
                errors,
                dead_lettered,
                retries: s.sum(|x| &x.retries),
                timeouts: s.sum(|x| &x.timeouts),
                leftovers,
                in_rate: (cur.accepted - base.accepted) as f64 / dt,
                out_rate: (cur.out - base.out) as f64 / dt,
                busy: busy as f64 / time,
                idle: idle as f64 / time,
                blocked: blocked as f64 / time,
                queue_wait: if whole_run {
                    summarize(&totals.queue_wait)
                } else {
                    summarize(&interval.queue_wait)
                },
                service: if whole_run {
                    summarize(&totals.service)
                } else {
                    summarize(&interval.service)
                },
                queue_wait_total: summarize(&totals.queue_wait),
                service_total: summarize(&totals.service),
            });
        }
        // Read last: everything settled above was produced before, so a
        // live snapshot never shows more settled than produced.
        accounting.produced = core.produced.load(Ordering::Relaxed);
        let _ = e2e_total.add(&e2e);
        let throughput = if whole_run {
            accounting.sunk as f64 / dt
        } else {
            (accounting.sunk - self.prev_sunk) as f64 / dt
        };
        self.prev_sunk = accounting.sunk;
        let proc = self.process.sample();
        let snapshot = JobSnapshot {
            job: core.id.clone(),
            state: Some(core.state()),
            seq: self.seq,
            elapsed_ms: core.started.elapsed().as_millis() as u64,
            accounting,
            throughput,
            end_to_end: if whole_run {
                summarize(e2e_total)
            } else {
                summarize(&e2e)
            },
            end_to_end_total: summarize(e2e_total),
            nodes: snapshots,
            process: ProcessSnapshot {
                rss_bytes: proc.rss_bytes,
                threads: proc.threads,
                open_fds: proc.open_fds,
                cpu_percent: proc.cpu_percent,
                event_loop_lag_ms: core.lag_us.swap(0, Ordering::Relaxed) as f64 / 1000.0,
                async_tasks: core.handle.metrics().num_alive_tasks() as u64,
            },
        };
        self.seq += 1;
        snapshot
    }
}

struct Supervisor {
    core: Arc<JobCore>,
    spec: PipelineSpec,
    nodes: Vec<Node>,
    threads: Vec<JoinHandle<()>>,
    runtime: Option<EngineRuntime>,
    lag_stop: CancellationToken,
    done_rx: crossbeam_channel::Receiver<Result<(), String>>,
    snapshots: watch::Sender<Arc<JobSnapshot>>,
    report: Arc<ReportSlot>,
    sampler: Sampler,
}

impl Supervisor {
    fn publish(&mut self) {
        let snap = self.sampler.sample(&self.core, &self.nodes, false);
        self.snapshots.send_replace(Arc::new(snap));
    }

    fn run(mut self) {
        let period = Duration::from_secs_f64(1.0 / self.spec.sample_hz);
        let deadline = Duration::from_millis(self.spec.drain_deadline_ms);
        let mut next = Instant::now() + period;
        loop {
            match self
                .done_rx
                .recv_timeout(next.saturating_duration_since(Instant::now()))
            {
                Ok(result) => {
                    if let Err(e) = result {
                        self.core.fail(e);
                    }
                    // Requests arriving from now on come too late to change
                    // how the run ended.
                    self.core.lifecycle().closed = true;
                    break;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.core.fail("the sink thread died".into());
                    break;
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.publish();
                    next = (next + period).max(Instant::now());
                    let overdue = {
                        let lc = self.core.lifecycle();
                        let limit = lc.drain_deadline.unwrap_or(deadline);
                        lc.drain_started.is_some_and(|t| t.elapsed() > limit)
                    };
                    if overdue {
                        let limit = self.core.lifecycle().drain_deadline.unwrap_or(deadline);
                        self.core.request_abort(format!(
                            "drain deadline of {} ms exceeded",
                            limit.as_millis()
                        ));
                    }
                }
            }
        }
        self.teardown();
    }

    fn teardown(mut self) {
        // Join every thread; they all end once their input closed or the
        // abort flag is up.
        let mut handles = std::mem::take(&mut self.threads);
        for node in &self.nodes {
            if let Some(stage) = &node.stage {
                handles.extend(stage.finish());
            }
        }
        handles.extend(
            self.core
                .retired_threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        for h in handles {
            if h.join().is_err() {
                self.core.fail("an engine thread panicked".into());
            }
        }
        self.core.tracker.close();
        self.lag_stop.cancel();
        if let Some(rt) = &self.runtime {
            rt.handle().block_on(self.core.tracker.wait());
        }
        // Whatever is still queued was never processed: leftovers.
        for node in &self.nodes {
            for item in node.rx.drain_all() {
                self.core.leftovers.put(&node.stats, item);
            }
        }
        let leftovers_file = match self.core.leftovers.finish() {
            Ok(place) => place.map(|p| p.display().to_string()),
            Err(e) => {
                self.core.fail(e);
                None
            }
        };
        let dead_letters = match self.core.dead_letters.finish() {
            Ok(kept) => kept,
            Err(e) => {
                self.core.fail(e);
                None
            }
        };
        // The final state is announced only once the report is in place,
        // so whoever sees a finished job can read its report.
        let (final_state, final_event) = {
            let lc = self.core.lifecycle();
            let (state, reason) = if let Some(f) = &lc.failure {
                (JobState::Failed, Some(f.clone()))
            } else if let Some(r) = &lc.abort_reason {
                (JobState::Aborted, Some(r.clone()))
            } else if lc.drain_started.is_some() {
                (JobState::Stopped, None)
            } else {
                (JobState::Completed, None)
            };
            let event = JobEvent {
                at_ms: now_ms(),
                elapsed_ms: self.core.started.elapsed().as_millis() as u64,
                kind: EventKind::State { state, reason },
            };
            (state, event)
        };
        let mut whole = self.sampler.sample(&self.core, &self.nodes, true);
        whole.state = Some(final_state);
        let mut drop_reasons = BTreeMap::new();
        for node in &self.nodes {
            for (reason, n) in node
                .stats
                .reasons
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                *drop_reasons.entry(reason.clone()).or_insert(0) += n;
            }
        }
        let (events, error) = {
            let lc = self.core.lifecycle();
            let mut events = lc.events.clone();
            events.push(final_event.clone());
            (events, lc.failure.clone())
        };
        let report = JobReport {
            job: self.core.id.clone(),
            name: self.spec.name.clone(),
            state: final_state,
            error,
            elapsed_s: self.core.started.elapsed().as_secs_f64(),
            accounting: whole.accounting,
            balanced: whole.accounting.balanced(),
            throughput: whole.throughput,
            end_to_end: whole.end_to_end_total,
            nodes: whole.nodes.clone(),
            skipped_lines: self.core.skipped_lines.load(Ordering::Relaxed),
            drop_reasons,
            dead_letters_file: dead_letters.as_ref().map(|k| k.path.clone()),
            dead_letters_table: dead_letters.and_then(|k| k.table),
            leftovers_file,
            events,
        };
        if !report.balanced {
            tracing::error!(job = %self.core.id, accounting = %report.accounting, "accounting mismatch");
        }
        // The final snapshot goes out before the report, so whoever sees
        // the report finds the final snapshot too.
        let mut last = whole;
        last.seq = self.sampler.seq;
        self.snapshots.send_replace(Arc::new(last));
        {
            let mut slot = self.report.report.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Arc::new(report));
            // Still under the report's lock, so `wait` returns only once
            // the state is final too.
            let mut lc = self.core.lifecycle();
            tracing::info!(job = %self.core.id, from = %lc.state, to = %final_state, "job state");
            lc.state = final_state;
            lc.events.push(final_event);
            drop(lc);
            self.report.ready.notify_all();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown(Duration::from_secs(1));
        }
    }
}
