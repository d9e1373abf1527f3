//! # `engine` — where QueueLab's pipelines run
//!
//! The engine turns pipeline specs (from `shared`) into running stages. It
//! serves no HTTP: the server drives it, and so can a headless CLI or a
//! benchmark.
//!
//! A short tour:
//!
//! * [`job`] — [`start`] builds a job from a `shared::spec::PipelineSpec`
//!   (source → stages → automatic bridges → sink) and returns a
//!   [`JobHandle`] to watch, tune, drain and abort it. A supervisor thread
//!   samples metrics, enforces the drain deadline, and writes the
//!   [`shared::metrics::JobReport`] whose buckets always add up.
//! * [`queue`] — the bounded FIFO between nodes, which threads block on
//!   and tasks await, moved in chunks (one lock and at most one wake-up
//!   per chunk; `capacity` still counts items), and the `when_full`
//!   policies applied to each item pushed.
//! * [`stage`] — thread workers, task workers with a concurrency
//!   semaphore, and the bridges that hand items across worlds.
//! * [`ops`] — the work: sleep (latency distributions), spin, the
//!   deliberately blocking sleep, JSON parsing, filter, map, HTTP
//!   requests, fault injection.
//! * [`source`] and [`sink`] — synthetic log lines or a JSON-lines file in;
//!   a counter, a JSON-lines file, a SQLite table ([`sqlite`]), a
//!   PostgreSQL table ([`pg`]) or an HTTP endpoint out, in
//!   batches, with retries for outages and dead letters for bad records.
//! * [`policy`] — per-attempt timeouts, retries with backoff and jitter,
//!   rate limits.
//! * [`stats`] — sharded counters and HDR histograms per node;
//!   [`process`] — RSS, threads, FDs and CPU from `/proc`.
//! * [`fail`] — how a failure to open a source or sink is worded: the
//!   kind of failure for the user, the OS's or database's text for the log.
//! * [`leftovers`] — where an abort puts what was queued or in flight.
//! * [`confine`] and [`egress`] — what a spec may touch. `queuelab run`
//!   lets it reach anything; a shared server ([`JobOptions`]' `files` and
//!   `egress`) keeps its paths inside files roots and away from the
//!   store, and its HTTP and PostgreSQL connections on an allow-list.
//!   [`start`] resolves every path before opening anything and opens
//!   exactly what it resolved.
//! * [`runtime`] — each job's own tokio runtime. Async stages run there,
//!   never on the server's runtime, so a pipeline that blocks its event
//!   loop (the article's classic pitfall, reproduced on purpose) cannot
//!   freeze the API or the dashboard.
//! * [`signal`] — the stop and abort flags both worlds can wait on.
//!
//! Shutdown is by draining: only the source is told to stop; each node
//! stops when its input queue is empty and closed, which cascades to the
//! sink. A deadline escalates a drain to an abort.

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
