//! The `build` step: [`start`] turns a spec into running nodes. It opens
//! the source and sink, lays out the nodes (stages, with a bridge wherever
//! the runtime changes, then the sink), creates each node's queue, starts
//! every consumer back to front and finally the source, then hands the
//! nodes to the supervisor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use shared::metrics::{EventKind, JobState, NodeKind};
use shared::spec::{
    Capacity, DeadLetterSpec, PipelineSpec, Runtime, SourceSpec, SpecError, Transport, WhenFull,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Node;
use super::handle::{HandleInner, JobHandle, ReportSlot};
use super::options::JobOptions;
use super::probe::LoopProbe;
use super::sampler::Sampler;
use super::supervisor::Supervisor;
use crate::auto::{AutoStage, AutoSwitch, Target};
use crate::broker::{
    BrokerError, BrokerStage, EdgeLimits, EdgeNames, EdgeStats, Flow, resolve_url,
};
use crate::core::{JobCore, Lifecycle};
use crate::leftovers::{DeadLetters, Leftovers};
use crate::queue::channel;
use crate::runtime::{EngineRuntime, RuntimeError};
use crate::signal::Flag;
use crate::sink::{BatchCtl, Sink};
use crate::source::Source;
use crate::stage::{ScaleError, StageCtl, spawn_bridge};
use crate::stats::{NodeInfo, NodeStats, SourceTime};

/// Capacity of the handoff queue of an automatic bridge.
pub const BRIDGE_CAPACITY: u64 = 256;
/// Capacity of the sink's input queue.
pub const SINK_CAPACITY: u64 = 1000;

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

/// Builds and starts a job from a spec. It opens files and connects to
/// databases before returning, so errors name the culprit; being blocking,
/// call it from a blocking context (`spawn_blocking` in a server).
pub fn start(spec: PipelineSpec, opts: JobOptions) -> Result<JobHandle, StartError> {
    spec.validate()?;
    // The job runs with `/target…` resolved; its handle shows the spec as
    // given, so a stored run or a replay still means "the target of
    // whatever runs it".
    let given = spec.clone();
    let spec = opts.resolve_builtin_target(spec)?;
    let paths = opts.check(&spec)?;
    let source = Source::open(&spec.source, &paths).map_err(|e| StartError::Io(e.to_string()))?;
    let source_addr = source.local_addr();
    let ingest = source.ingest();
    let runtime = EngineRuntime::named(opts.runtime_threads, &format!("ql-{}-rt", spec.name))?;
    let sink = Sink::open(&spec.sink, runtime.handle(), &paths, &opts.egress)
        .map_err(|e| StartError::Io(e.to_string()))?;
    let seed = match spec.source {
        SourceSpec::Synthetic { seed, .. } => seed,
        _ => 0,
    };
    let job_dir = opts.data_dir.join("jobs").join(&opts.id);
    let leftovers_path = job_dir.join("leftovers.jsonl");
    let dead_letters = match &spec.dead_letter {
        DeadLetterSpec::File => DeadLetters::new(job_dir.join("dead_letters.jsonl")),
        DeadLetterSpec::FileAt { path } => DeadLetters::new(
            paths
                .get(path)
                .map_err(|e| StartError::Io(e.to_string()))?
                .to_owned(),
        ),
        DeadLetterSpec::Sqlite { path, table } => DeadLetters::sqlite(
            paths.get(path).map_err(|e| StartError::Io(e.to_string()))?,
            table,
        )
        .map_err(|e| StartError::Io(e.to_string()))?,
    };
    // Broker stages: their streams exist before anything can publish.
    let mut spec = spec;
    let edges = runtime
        .handle()
        .block_on(open_edges(&mut spec, &opts))
        .map_err(|e| {
            // The URL and the client's words are in the log (`connect`
            // wrote them); the error's text names neither.
            tracing::warn!(job = %opts.id, error = ?e, "cannot set up the job's streams");
            StartError::Io(e.to_string())
        })?;
    let core = Arc::new(JobCore {
        id: opts.id.clone(),
        name: spec.name.clone(),
        seed,
        abort: Flag::new(),
        stop: Flag::new(),
        produced: AtomicU64::new(0),
        skipped_lines: AtomicU64::new(0),
        source_time: SourceTime::default(),
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
        latency: Mutex::new(crate::stats::new_histogram()),
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
    // changes, the sink last. Every queue serves threads and tasks alike;
    // bridges stand where the world changes, so the hand-off shows.
    enum Plan {
        Stage(usize),
        /// A bridge into the world of the runtime it names.
        Bridge(Runtime),
        Sink,
    }
    let mut plan = Vec::new();
    let mut prev: Option<Runtime> = None;
    for (i, stage) in spec.stages.iter().enumerate() {
        if let Some(p) = prev
            && p != stage.runtime
        {
            plan.push(Plan::Bridge(stage.runtime));
        }
        plan.push(Plan::Stage(i));
        prev = Some(stage.runtime);
    }
    // The sink is a thread: an async last stage reaches it through a bridge.
    if prev == Some(Runtime::Async) {
        plan.push(Plan::Bridge(Runtime::Thread));
    }
    plan.push(Plan::Sink);

    let mut infos = Vec::new();
    for (k, p) in plan.iter().enumerate() {
        let info = match *p {
            Plan::Stage(i) => {
                let s = &spec.stages[i];
                NodeInfo {
                    name: s.name.clone(),
                    kind: NodeKind::Stage,
                    runtime: s.runtime,
                    capacity: s.queue.capacity,
                    when_full: s.queue.when_full,
                }
            }
            Plan::Bridge(to) => {
                let name = |j: usize| match plan.get(j) {
                    Some(Plan::Stage(i)) => spec.stages[*i].name.clone(),
                    _ => "sink".into(),
                };
                NodeInfo {
                    name: format!("bridge:{}->{}", name(k - 1), name(k + 1)),
                    kind: NodeKind::Bridge,
                    runtime: to,
                    capacity: Capacity::Bounded(BRIDGE_CAPACITY),
                    when_full: WhenFull::Block,
                }
            }
            Plan::Sink => NodeInfo {
                name: "sink".into(),
                kind: NodeKind::Sink,
                runtime: Runtime::Thread,
                capacity: Capacity::Bounded(SINK_CAPACITY),
                when_full: WhenFull::Block,
            },
        };
        infos.push(info);
    }
    let batch_ctl = Arc::new(BatchCtl::new(spec.sink.batch()));
    let mut txs = Vec::new();
    let mut nodes = Vec::new();
    for (k, info) in infos.into_iter().enumerate() {
        let stats = Arc::new(NodeStats::new(info.clone()));
        // A broker stage's queue is its stream; in memory only a hand-off.
        let broker = matches!(plan[k], Plan::Stage(i) if spec.stages[i].is_broker());
        let (tx, rx) = if broker {
            channel(
                Capacity::Bounded(BRIDGE_CAPACITY),
                WhenFull::Block,
                stats.clone(),
            )
        } else {
            channel(info.capacity, info.when_full, stats.clone())
        };
        txs.push(tx);
        nodes.push(Node {
            stats,
            rx,
            stage: None,
            broker: None,
        });
    }
    *core.queues.lock().unwrap_or_else(|e| e.into_inner()) =
        nodes.iter().map(|n| n.rx.clone()).collect();

    // Start consumers back to front, then the source.
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Result<(), crate::sink::RunError>>(1);
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
                stats.configured.store(1, Ordering::Relaxed);
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
            Plan::Bridge(_) => {
                let tx = txs[k + 1].clone();
                stats.workers.store(1, Ordering::Relaxed);
                stats.configured.store(1, Ordering::Relaxed);
                spawn_bridge(rx, tx, stats, c);
            }
            Plan::Stage(i) if spec.stages[i].is_broker() => {
                let (js, edge) = edges
                    .iter()
                    .find(|(j, ..)| *j == i)
                    .map(|(_, js, edge)| (js.clone(), edge.clone()))
                    .expect("an edge per broker stage");
                let stage = &spec.stages[i];
                let limits = EdgeLimits::of(stage);
                let flow = Arc::new(Flow::new(
                    EdgeNames::new(&core.id, &stage.name),
                    edge,
                    limits.capacity,
                ));
                let broker = Arc::new(BrokerStage::new(
                    i,
                    stage.clone(),
                    flow.clone(),
                    stats.clone(),
                    js.clone(),
                    c.clone(),
                ));
                core.tracker.spawn_on(
                    crate::broker::publish(
                        rx,
                        js.clone(),
                        flow.clone(),
                        stats.clone(),
                        c.clone(),
                        stage.queue.when_full,
                        crate::broker::per_message(stage, limits.capacity),
                    ),
                    &core.handle,
                );
                core.tracker.spawn_on(
                    crate::broker::collect(
                        js.clone(),
                        flow.clone(),
                        stats.clone(),
                        c.clone(),
                        txs[k + 1].clone(),
                        stage.on_error,
                    ),
                    &core.handle,
                );
                core.tracker
                    .spawn_on(crate::broker::watch(js, flow, c), &core.handle);
                nodes[k].broker = Some(broker);
            }
            Plan::Stage(i) => {
                let ctl =
                    StageCtl::new(i, spec.stages[i].clone(), stats, rx, txs[k + 1].clone(), c);
                let scaled = ctl.scale_to(spec.stages[i].start_workers());
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
        let async_first =
            first.info.kind == NodeKind::Stage && first.info.runtime == Runtime::Async;
        if async_first && source.can_run_async() {
            // Its items start on the runtime of the stage that takes them.
            core.tracker
                .spawn_on(crate::source::run_async(source, c, tx, first), &core.handle);
        } else {
            let started = spawn_thread(format!("ql-{}-source", spec.name), move || {
                if let Err(e) = crate::source::run(source, &c, tx, first) {
                    c.fail(e.to_string());
                }
            });
            match started {
                Ok(t) => threads.push(t),
                Err(e) => return Err(abandon(&core, threads, &nodes, e)),
            }
        }
    }
    // Only workers hold senders now: their exits drive the drain cascade.
    drop(txs);

    let lag_stop = CancellationToken::new();
    let probe = LoopProbe::new();
    runtime
        .handle()
        .spawn(super::probe::run(probe.clone(), lag_stop.clone()));

    {
        let mut lc = core.lifecycle();
        core.set_state(&mut lc, JobState::Running, None);
    }
    let stages: Vec<Arc<StageCtl>> = nodes.iter().filter_map(|n| n.stage.clone()).collect();
    let brokers: Vec<Arc<BrokerStage>> = nodes.iter().filter_map(|n| n.broker.clone()).collect();
    // The first snapshot is taken before returning, so every subscriber
    // sees the full list of nodes from the start.
    let mut sampler = Sampler::new(probe);
    // Every stage has an auto switch (a manual `auto: true` turns one on);
    // those of `"auto"` stages start on.
    let mut autos = Vec::new();
    let mut switches = Vec::new();
    for (k, n) in nodes.iter().enumerate() {
        let (target, spec) = match (&n.stage, &n.broker) {
            (Some(ctl), _) => (Target::Local(ctl.clone()), &ctl.spec),
            (_, Some(b)) => (Target::Broker(b.clone()), &b.spec),
            _ => continue,
        };
        let switch = AutoSwitch::new(spec);
        switches.push(switch.clone());
        sampler.keep_service(k);
        autos.push(AutoStage::new(
            k,
            target,
            switch,
            opts.worker_budget.clone(),
        ));
    }
    let mut first = sampler.sample(&core, &nodes, false);
    for auto in &autos {
        auto.annotate(&mut first.nodes[auto.node]);
    }
    let (snap_tx, snap_rx) = watch::channel(Arc::new(first));
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
        autos,
    };
    let _ = hand_over.send(supervisor);
    Ok(JobHandle {
        inner: Arc::new(HandleInner {
            core,
            spec: given,
            stages,
            brokers,
            autos: switches,
            batch: batch_ctl,
            source_addr,
            ingest,
            snapshots: snap_rx,
            report,
        }),
    })
}

/// Resolves each broker stage's URL in `spec`, connects, and creates its
/// streams: `(stage index, context, figures)` per broker stage.
async fn open_edges(
    spec: &mut PipelineSpec,
    opts: &JobOptions,
) -> Result<Vec<(usize, async_nats::jetstream::Context, Arc<EdgeStats>)>, BrokerError> {
    let mut edges = Vec::new();
    let mut clients: Vec<(String, async_nats::Client)> = Vec::new();
    for (i, stage) in spec.stages.iter_mut().enumerate() {
        let Some(transport) = &mut stage.transport else {
            continue;
        };
        let url = resolve_url(transport.url(), opts.nats_url.as_deref())?;
        let client = match clients.iter().find(|(u, _)| *u == url) {
            Some((_, c)) => c.clone(),
            None => {
                let c = crate::broker::connect(&url).await?;
                clients.push((url.clone(), c.clone()));
                c
            }
        };
        *transport = Transport::Nats { url };
        let js = async_nats::jetstream::new(client);
        let names = EdgeNames::new(&opts.id, &stage.name);
        crate::broker::edge::create(&js, &names, &EdgeLimits::of(stage)).await?;
        let edge = Arc::new(EdgeStats {
            stream: names.input_stream(),
            ..Default::default()
        });
        edges.push((i, js, edge));
    }
    Ok(edges)
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

/// Starts one of a job's own threads (source, sink, supervisor);
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
