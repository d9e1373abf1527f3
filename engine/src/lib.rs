//! # `engine` — where QueueLab's pipelines run
//!
//! The engine turns pipeline specs (from `shared`) into running stages. It
//! serves no HTTP: the server drives it, and so can a headless CLI or a
//! benchmark.
//!
//! ## The data path, as the folders show it
//!
//! An item is born in a **source**, crosses a **queue** into each
//! **stage** in turn (with a **bridge** wherever the runtime changes
//! between threads and tasks), and ends in the **sink**, which writes it
//! in batches. The **job** builds that path from a spec and watches it.
//!
//! * [`source`] — the thread that produces items (or, for a synthetic
//!   source feeding an async first stage, a task on the job's runtime,
//!   so its items start without a cross-thread wake-up): `mod.rs` holds
//!   `Source` (opened before the run, so a bad path or busy port fails the
//!   start) and its `run` loop, which dispatches to the kinds; below them
//!   `emitter.rs` numbers, stamps and hands on items in chunks and
//!   measures the source's own time (busy, idle, blocked:
//!   `JobSnapshot::source`), and `error.rs` says how a source fails;
//!   `synthetic.rs` (counters, log lines —
//!   [`source::log_line`]; with a rate, each item is stamped with the time
//!   it was due, so latency includes a backlog the pipeline pushed back on
//!   the source), `file.rs` (JSON lines from a saved offset,
//!   optionally following), `tcp.rs` (a thread per client), `ingest.rs`
//!   ([`source::IngestHandle`]: lines pushed from outside).
//! * `queue` — the bounded FIFO between nodes, which threads block on and
//!   tasks await, moved in chunks (one lock and at most one wake-up per
//!   chunk; `capacity` still counts items; `blocks.rs` keeps them in the
//!   chunks they came in, so a whole chunk crosses as its buffer), and
//!   the `when_full` policies
//!   applied to each item pushed. A refused push says whether the job is
//!   aborting or the consumer is gone (`PushError`).
//! * [`stage`] — the stages between: `control.rs` (`StageCtl`: starting
//!   and retiring workers, the concurrency limit; [`stage::ScaleError`]),
//!   `workers.rs` (thread workers, and task workers under a concurrency
//!   semaphore), `attempt.rs` (one item's attempts and how it settles),
//!   `policy.rs` (per-attempt timeouts, retries with backoff and jitter,
//!   rate limits), `bridge.rs` (the task that hands chunks across
//!   worlds).
//! * [`ops`] — the work a stage does (the transforms): sleep (latency
//!   distributions), spin, the deliberately blocking sleep, JSON parsing
//!   with a typed schema, filter, map, HTTP requests, fault injection.
//!   `mod.rs` holds `Op` and its dispatch; one file per family below it —
//!   `timing.rs`, `records.rs`, `http.rs` — over `outcome.rs` (how an
//!   attempt ends) and `rng.rs`.
//! * [`sink`] — where items end: `mod.rs` holds `Sink` (opened before the
//!   run), the runner that batches (`BatchCtl`: size and linger, both
//!   tunable), retries outages and narrows data errors to dead letters;
//!   `writer.rs`, below it and the writers, the `SinkWriter` trait, the
//!   `WriteError` a write fails with and what keyed writers share; one
//!   file per writer — `null.rs`,
//!   `file.rs`, `http.rs`, [`sink::sqlite`] (with `checkpoint.rs`, its
//!   WAL checkpoints on a thread of their own), [`sink::postgres`].
//! * [`broker`] — broker stages: a stage whose input is a NATS JetStream
//!   stream, so its workers run in other processes ([`broker::RemoteStage`],
//!   the same attempts as in memory); the server side publishes into the
//!   stream, collects every result exactly once and carries the drain
//!   across (`publish.rs`, `collect.rs`, `stage.rs`), `edge.rs` makes the
//!   streams and reads their figures, `wire.rs` is the envelope.
//! * [`auto`] — automatic limits (`workers = "auto"`, `concurrency =
//!   "auto"`): [`auto::controller`] is the algorithm (AIMD on the service
//!   time, as TCP, Vector's ARC and Netflix's concurrency-limits), pure
//!   and tested alone; `mod.rs` drives it from the supervisor's samples
//!   and applies each change as a manual tune would, with its reason in
//!   the job's events and the snapshot's `auto`.
//! * `job` — the topology: `plan.rs` ([`start`]: spec → source, stages,
//!   automatic bridges, sink, each with its queue; [`StartError`]),
//!   `options.rs` ([`JobOptions`]), `handle.rs` ([`JobHandle`] to watch,
//!   tune, drain and abort; [`ControlError`]), `supervisor.rs` (samples,
//!   enforces the drain deadline, joins everything and writes the
//!   [`shared::metrics::JobReport`] whose buckets always add up),
//!   `sampler.rs` (counters into snapshots), `probe.rs` (the event-loop
//!   lag probe: a tick on the job's runtime read from the sampler's
//!   thread, so a blocked loop reads as lag and the stage blocking it is
//!   named).
//!
//! ## What the nodes share, below them
//!
//! No node module imports `job`: what they share sits underneath.
//!
//! * `core` — `JobCore`, the state every thread and task of a job holds:
//!   id, seed, stop and abort flags, the produced counter, leftovers and
//!   dead letters, the job's runtime and task tracker, its lifecycle.
//! * [`item`] — what flows: a sequence number, a payload, timestamps
//!   (8-byte [`item::Stamp`]s, so an item moves 48 bytes). A
//!   parsed record is compact: its line plus where each field sits in it,
//!   read in place by sinks and turned into a map only for ops that
//!   change fields. `mod.rs` holds `Item` and `Payload`; below them
//!   `record.rs` (`Record`), `field.rs` (`Field`, `FieldKind`) and
//!   `scan.rs`, the validating scanner that finds each field, and
//!   `stamp.rs`.
//! * [`stats`] — sharded counters and HDR histograms per node, and
//!   [`stats::LatencyMark`] (two marks from [`JobHandle::latency_mark`] give
//!   a window's exact end-to-end percentiles, as the tuning lab measures);
//!   `process` — RSS, threads, FDs and CPU from `/proc`.
//! * `leftovers` — where an abort puts what was queued or in flight, and
//!   the dead letters (a JSON-lines file or a SQLite table).
//! * `fail` — how a failure to open a source or sink is worded: the kind
//!   of failure for the user, the OS's or database's text for the log.
//! * [`confine`] and [`egress`] — what a spec may touch. `queuelab run`
//!   lets it reach anything; a shared server ([`JobOptions`]' `files` and
//!   `egress`) keeps its paths inside files roots and away from the
//!   store, and its HTTP and PostgreSQL connections on an allow-list.
//!   [`start`] resolves every path before opening anything and opens
//!   exactly what it resolved.
//! * `runtime` — each job's own tokio runtime. Async stages run there,
//!   never on the server's runtime, so a pipeline that blocks its event
//!   loop (the article's classic pitfall, reproduced on purpose) cannot
//!   freeze the API or the dashboard ([`RuntimeError`] if it cannot start).
//! * [`signal`] — the stop and abort flags both worlds can wait on.
//!
//! Errors are typed, one enum per operation (opening a source or sink,
//! running one, saving an offset, finishing the leftovers or dead
//! letters); their wording is what users see.
//!
//! Shutdown is by draining: only the source is told to stop; each node
//! stops when its input queue is empty and closed, which cascades to the
//! sink. A deadline escalates a drain to an abort.
//!
//! The public surface is what the server, the benches, the fuzz targets
//! and the tests use; the rest is `pub(crate)`.

#![warn(missing_docs)]

pub mod auto;
pub mod broker;
pub mod confine;
pub(crate) mod core;
pub mod egress;
pub(crate) mod fail;
pub mod item;
pub(crate) mod job;
pub(crate) mod leftovers;
pub mod ops;
pub(crate) mod process;
pub(crate) mod queue;
pub(crate) mod runtime;
pub mod signal;
pub mod sink;
pub mod source;
pub mod stage;
pub mod stats;

pub use job::{ControlError, JobHandle, JobOptions, StartError, start};
pub use runtime::RuntimeError;
