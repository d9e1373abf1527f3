//! What a running job looks like from outside: states, live snapshots,
//! events and the final report. The engine produces these; the server
//! stores and streams them; the dashboard and the CLI draw them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::spec::{Capacity, Runtime, WhenFull};

/// Where a job is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started yet.
    Pending,
    /// Source producing, stages working.
    Running,
    /// Source stopped; stages finishing what they hold.
    Draining,
    /// The source ran out and everything was processed.
    Completed,
    /// Drained on request: stopped with nothing left over.
    Stopped,
    /// Cancelled; what was queued or in flight went to leftovers.
    Aborted,
    /// Could not run or could not continue (an I/O error, say).
    Failed,
    /// Found running after a server crash.
    Interrupted,
}

impl JobState {
    /// True once the job can no longer change.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            JobState::Pending | JobState::Running | JobState::Draining
        )
    }

    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Draining => "draining",
            JobState::Completed => "completed",
            JobState::Stopped => "stopped",
            JobState::Aborted => "aborted",
            JobState::Failed => "failed",
            JobState::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where every item a source produced ended up. The product's promise:
/// `produced = sunk + filtered + dead_lettered + dropped_by_policy +
/// leftovers` at the end of every run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Items the source emitted.
    pub produced: u64,
    /// Items the sink accepted.
    pub sunk: u64,
    /// Items a filter removed on purpose.
    pub filtered: u64,
    /// Items routed to the dead-letter sink.
    pub dead_lettered: u64,
    /// Items discarded by a `when_full` policy, or by an operation error
    /// with `on_error = drop`.
    pub dropped_by_policy: u64,
    /// Items still queued or in flight when the job was aborted, saved to
    /// the leftovers file.
    pub leftovers: u64,
}

impl Accounting {
    /// Items accounted for in a final bucket.
    pub fn settled(&self) -> u64 {
        self.sunk + self.filtered + self.dead_lettered + self.dropped_by_policy + self.leftovers
    }

    /// Items produced but not settled yet (queued or in flight).
    pub fn in_flight(&self) -> i64 {
        self.produced as i64 - self.settled() as i64
    }

    /// Whether the invariant holds (meaningful once the job finished).
    pub fn balanced(&self) -> bool {
        self.produced == self.settled()
    }
}

impl fmt::Display for Accounting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "produced {} {} sunk {} + filtered {} + dead_lettered {} + dropped_by_policy {} + leftovers {}",
            self.produced,
            if self.balanced() { "=" } else { "≠" },
            self.sunk,
            self.filtered,
            self.dead_lettered,
            self.dropped_by_policy,
            self.leftovers
        )
    }
}

/// Percentiles of one latency histogram, in microseconds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples in the histogram.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest sample.
    pub max_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
}

/// What kind of node of the pipeline a [`NodeSnapshot`] describes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A processing stage with its input queue.
    Stage,
    /// An automatic handoff between a thread stage and an async stage.
    Bridge,
    /// The sink with its input queue.
    Sink,
}

/// One queue-and-workers node: a stage, a bridge or the sink.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Stage name; bridges are `bridge:<from>-><to>`, the sink is `sink`.
    pub name: String,
    /// Stage, bridge or sink.
    pub kind: Option<NodeKind>,
    /// Threads or tasks.
    pub runtime: Option<Runtime>,
    /// Live workers (threads or tasks) right now.
    pub workers: u32,
    /// The workers the spec or the last tune asked for. It stays when
    /// they exit at the end, so a finished job's report says what ran
    /// (its `workers` is then 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_workers: Option<u32>,
    /// Async concurrency limit, where there is one.
    pub concurrency: Option<u32>,
    /// Rate limit in items per second, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Queue capacity.
    pub capacity: Option<Capacity>,
    /// Full-queue policy.
    pub when_full: Option<WhenFull>,
    /// Items in the queue now.
    pub depth: u64,
    /// Items accepted into the queue, cumulative.
    pub items_in: u64,
    /// Items passed downstream, cumulative.
    pub items_out: u64,
    /// Items a filter removed, cumulative.
    pub filtered: u64,
    /// Items refused or discarded at this queue by `when_full`, cumulative.
    pub dropped: u64,
    /// Items whose operation failed for good and were discarded
    /// (`on_error = "drop"`), cumulative.
    pub errors: u64,
    /// Items whose operation failed for good and went to the dead-letter
    /// sink, cumulative.
    pub dead_lettered: u64,
    /// Retried attempts, cumulative.
    pub retries: u64,
    /// Attempts that timed out, cumulative.
    pub timeouts: u64,
    /// Items this node held when the job was aborted.
    pub leftovers: u64,
    /// Sink only: rows written twice into a target that keeps both (a
    /// non-idempotent `insert` sink retrying a batch that was committed).
    /// Each item is still counted once as sunk.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: u64,
    /// Items accepted per second over the last interval.
    pub in_rate: f64,
    /// Items passed on per second over the last interval.
    pub out_rate: f64,
    /// Share of worker time spent working over the last interval.
    pub busy: f64,
    /// Share of worker time spent waiting for input.
    pub idle: f64,
    /// Share of worker time spent blocked on a full downstream queue:
    /// when high, the *next* node is the bottleneck (backpressure).
    pub blocked: f64,
    /// Async stages and bridges (tasks on the loop): share of the event loop's threads spent inside this
    /// stage's code over the last interval (1.0 = it holds every thread of
    /// the loop). A blocking call inside a coroutine reads near 1.0 here
    /// while its busy share stays low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_share: Option<f64>,
    /// Nodes on OS threads (thread stages, the sink): CPU time
    /// their threads used per second of the interval, in cores (1.0 = one
    /// core kept busy). A CPU-bound stage stops gaining past the machine's
    /// core count; a blocking-I/O stage stays near 0 however many workers
    /// it has. Async stages share the job's event loop: see `loop_share`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Time items waited in this queue, last interval.
    pub queue_wait: Latency,
    /// Time the operation took, last interval.
    pub service: Latency,
    /// Time items waited in this queue, whole run.
    pub queue_wait_total: Latency,
    /// Time the operation took, whole run.
    pub service_total: Latency,
    /// Items a broker stage's workers received more than once (a worker
    /// lost or killed while holding them); each still counts once in its
    /// bucket.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redelivered: u64,
    /// A broker stage's input stream, as the broker sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<EdgeSnapshot>,
    /// A stage whose limit the engine chooses (`"auto"`): what it chose
    /// and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<AutoSnapshot>,
}

/// An automatic limit as its controller sees it, for the stage card and
/// `/metrics`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoSnapshot {
    /// What it drives: `workers` (threads) or `concurrency` (operations in
    /// flight on tasks).
    pub field: String,
    /// The limit chosen now.
    pub limit: u32,
    /// The lowest it may choose.
    pub min: u32,
    /// The highest it may choose.
    pub max: u32,
    /// A manual tune fixed the value: the controller stays out until auto
    /// is turned back on.
    #[serde(default)]
    pub pinned: bool,
    /// The service time the controller compares with: the lowest it has
    /// seen at a comfortable load, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_us: Option<u64>,
    /// The last service time measured over the baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ratio: Option<f64>,
    /// Why the limit last changed (or why it holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A broker edge (a NATS JetStream stream and its shared consumer), read
/// from the broker at each snapshot.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeSnapshot {
    /// The stream's name.
    pub stream: String,
    /// Messages in the stream (pending plus in flight); each carries one
    /// or more items.
    pub depth: u64,
    /// Messages not yet delivered to any worker.
    pub pending: u64,
    /// Delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Deliveries after the first, as the broker counts them.
    pub redeliveries: u64,
    /// Age of the oldest message in the stream.
    pub oldest_pending_ms: u64,
    /// Times the publisher found the edge at capacity, and items it
    /// dropped there.
    pub publish_refusals: u64,
    /// Items published and not yet booked: the edge's depth in items (a
    /// message carries many; `capacity` counts these).
    #[serde(default)]
    pub depth_items: u64,
    /// Messages the input stream stored so far.
    #[serde(default)]
    pub messages_published: u64,
    /// Items those messages carried (items per message = this over
    /// `messages_published`).
    #[serde(default)]
    pub items_published: u64,
    /// Worker processes (and the server) consuming it.
    pub workers_attached: u32,
    /// Where the stage's workers run: worker name and its worker count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<(String, u32)>,
}

/// The server process's health, sampled with each snapshot: the same for
/// every job the process runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    /// Resident memory.
    pub rss_bytes: u64,
    /// OS threads of the process.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// CPU use over the last interval, 100 = one core.
    pub cpu_percent: f64,
}

/// The health of the job's own async runtime (its event loop), measured
/// from outside it: a probe ticks on the runtime and the sampler, on its
/// own thread, reads how late the ticks are, so a blocked loop shows as
/// lag even though nothing on it can run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventLoopSnapshot {
    /// Worst delay of the loop over the last interval, in milliseconds: a
    /// tick that ran late, or the one overdue right now (a loop blocked for
    /// two seconds reads two seconds, not zero).
    pub lag_ms: f64,
    /// Probe ticks (one per 10 ms) that could not run in the interval.
    pub missed_ticks: u64,
    /// Async stages caught inside one poll while the loop was stalled:
    /// the stages making a blocking call on the event loop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking_stages: Vec<String>,
    /// Live tasks on the job's runtime.
    pub async_tasks: u64,
}

/// The live view of a job, published several times a second.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSnapshot {
    /// Job id.
    pub job: String,
    /// Lifecycle state.
    pub state: Option<JobState>,
    /// Snapshot number, from 0.
    pub seq: u64,
    /// Time since the job started.
    pub elapsed_ms: u64,
    /// Buckets so far (balanced only at the end).
    pub accounting: Accounting,
    /// Items reaching the sink per second, last interval.
    pub throughput: f64,
    /// Source to sink latency, last interval.
    pub end_to_end: Latency,
    /// Source to sink latency, whole run.
    pub end_to_end_total: Latency,
    /// The source's own figures: what it produces and where its time goes.
    #[serde(default)]
    pub source: SourceSnapshot,
    /// Stages, bridges and sink in pipeline order.
    pub nodes: Vec<NodeSnapshot>,
    /// The whole server process's health (not this job's alone).
    pub process: ProcessSnapshot,
    /// The job's event loop, when it has async nodes (`None` for a job
    /// that runs only on threads: it has no loop to block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_loop: Option<EventLoopSnapshot>,
}

/// The source's own cost, so a user can tell a slow source (busy making
/// items, e.g. formatting log lines) from a slow pipeline (the source
/// blocked on a full first queue). Shares are of the source's measured
/// time; sources driven from outside (HTTP ingest) measure none.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    /// Items produced per second (interval; whole run in reports).
    pub rate: f64,
    /// Share of its time spent making items (reading, formatting).
    pub busy: f64,
    /// Share of its time spent waiting for input (a rate, a file being
    /// followed, a client).
    pub idle: f64,
    /// Share of its time spent waiting for room in the first queue
    /// (backpressure reaching the source).
    pub blocked: f64,
}

/// Something that happened to a job, with when.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Time since the job started.
    pub elapsed_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of [`JobEvent`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The lifecycle state changed.
    State {
        /// New state.
        state: JobState,
        /// Why, when there is more to say.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A knob was turned while running.
    Tuned {
        /// Stage name.
        stage: String,
        /// `workers`, `concurrency`, `rate_limit`, `batch_size` or `linger_ms`.
        field: String,
        /// Value before (0: none).
        from: f64,
        /// Value after.
        to: f64,
    },
    /// The controller of an automatic limit (`"auto"`) changed it, was
    /// pinned by a manual tune, or was turned back on.
    Auto {
        /// Stage name.
        stage: String,
        /// `workers` or `concurrency`.
        field: String,
        /// Value before.
        from: f64,
        /// Value after (the same as `from` when only the mode changed).
        to: f64,
        /// Why, in words: `latency 2.1× baseline → −25%`.
        reason: String,
    },
}

/// A change to a running job's knobs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneRequest {
    /// Stage to change.
    pub stage: String,
    /// New number of workers (threads or tasks), 1 to 4096
    /// (`spec::limits::MAX_WORKERS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4096))]
    pub workers: Option<u32>,
    /// New async concurrency limit (async stages only), 1 to 100000
    /// (`spec::limits::MAX_CONCURRENCY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub concurrency: Option<u32>,
    /// New rate limit, items per second, 0.001 to 100000000
    /// (`spec::limits::MIN_RATE`..=`MAX_RATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.001, maximum = 100000000))]
    pub rate_limit: Option<f64>,
    /// New sink batch size (stage `sink`), 1 to 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub batch_size: Option<u32>,
    /// New sink batch linger in milliseconds (stage `sink`), at most 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 60000))]
    pub linger_ms: Option<u64>,
    /// `true`: let the engine choose the stage's workers (threads) or
    /// concurrency (tasks) again, within the spec's auto range (or 1 to
    /// the limit); `false`: pin it at its current value. Setting workers
    /// or concurrency by hand pins it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
}

/// The summary of a finished job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// Job id.
    pub job: String,
    /// Pipeline name.
    pub name: String,
    /// Final state.
    pub state: JobState,
    /// Why the job failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Where every item went.
    #[serde(flatten)]
    pub accounting: Accounting,
    /// `produced` equals the sum of the buckets.
    pub balanced: bool,
    /// Items sunk per second over the whole run.
    pub throughput: f64,
    /// Source to sink latency over the whole run.
    pub end_to_end: Latency,
    /// The source's figures over the whole run.
    #[serde(default)]
    pub source: SourceSnapshot,
    /// Per node, cumulative.
    pub nodes: Vec<NodeSnapshot>,
    /// Blank lines a `file` or `tcp` source read and skipped. They never
    /// became items, so no bucket counts them; they are counted here so
    /// nothing the source read disappears silently. Reports stored before
    /// this count existed read it as 0.
    #[serde(default)]
    pub skipped_lines: u64,
    /// Why items were dropped or dead-lettered, with counts (`queue full
    /// at stage x`, `op error at stage y: ...`).
    pub drop_reasons: BTreeMap<String, u64>,
    /// Broker stages: items delivered to workers more than once, by why
    /// (each is still counted once in its bucket).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redeliveries: BTreeMap<String, u64>,
    /// Broker stages: leftovers that stayed on the broker because their
    /// streams could not be read back at the end (kept, not deleted), by
    /// why. They are counted in `leftovers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept_on_broker: BTreeMap<String, u64>,
    /// File holding the dead letters, when there were any: a JSON-lines
    /// file, or the SQLite database named with `dead_letters_table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters_file: Option<String>,
    /// The SQLite table of `dead_letters_file` holding the letters, when
    /// they went to SQLite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letters_table: Option<String>,
    /// File holding the leftovers, when there were any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leftovers_file: Option<String>,
    /// Lifecycle and tuning events.
    pub events: Vec<JobEvent>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a node reads on the job page, the way Flink colours operators: the
/// bottleneck hot, backpressured nodes by how blocked they are, idle grey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Busy, not held up downstream, with a full input or a blocked
    /// neighbour upstream: the stage that sets the pipeline's pace.
    Bottleneck,
    /// Waiting for room downstream most of the time.
    Backpressured,
    /// Working most of the time, but not holding anyone up.
    Busy,
    /// Mostly waiting for input.
    Idle,
}

impl NodeState {
    /// The word for it, as in CSS classes and legends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bottleneck => "bottleneck",
            Self::Backpressured => "backpressured",
            Self::Busy => "busy",
            Self::Idle => "idle",
        }
    }
}

/// A node counts as backpressured from this blocked share on.
pub const BACKPRESSURED: f64 = 0.3;

/// A queue this full (share of its capacity) counts as full.
const FULL: f64 = 0.8;

impl NodeSnapshot {
    /// Its queue's depth as a share of its capacity (`None` when unbounded).
    pub fn fill(&self) -> Option<f64> {
        match self.capacity {
            Some(crate::spec::Capacity::Bounded(c)) if c > 0 => Some(self.depth as f64 / c as f64),
            _ => None,
        }
    }

    /// Busy share, or for an async stage its share of the event loop when
    /// that is higher (a blocking call keeps the loop, not its tasks, busy).
    pub fn working(&self) -> f64 {
        self.busy.max(self.loop_share.unwrap_or(0.0))
    }
}

impl JobSnapshot {
    /// Each node's state, in pipeline order. The bottleneck is the first
    /// node that is not itself blocked, downstream of a blocked one (or of
    /// a blocked source), that is busy or has a full queue; with nobody
    /// blocked, a busy node with a full queue.
    pub fn node_states(&self) -> Vec<NodeState> {
        let mut upstream_blocked = self.source.blocked >= BACKPRESSURED;
        let mut found = false;
        self.nodes
            .iter()
            .map(|n| {
                let full = n.fill().is_some_and(|f| f >= FULL);
                let state = if n.blocked >= BACKPRESSURED {
                    NodeState::Backpressured
                } else if !found && n.working() > 0.5 && (upstream_blocked || full) {
                    found = true;
                    NodeState::Bottleneck
                } else if n.working() > 0.5 {
                    NodeState::Busy
                } else {
                    NodeState::Idle
                };
                upstream_blocked = n.blocked >= BACKPRESSURED;
                state
            })
            .collect()
    }

    /// The bottleneck's name, if the pipeline has one right now.
    pub fn bottleneck(&self) -> Option<&str> {
        let states = self.node_states();
        self.nodes
            .iter()
            .zip(states)
            .find(|(_, s)| *s == NodeState::Bottleneck)
            .map(|(n, _)| n.name.as_str())
    }
}

/// What the job page's diagnosis says, each backed by the snapshots.
///
/// Why: the three mistakes of the article a person should be told of in
/// words, not left to read off the charts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The stage setting the pace, downstream of backpressured ones.
    Bottleneck {
        /// The stage.
        stage: String,
        /// The stages it holds up.
        held_up: Vec<String>,
    },
    /// The event loop stalls: a blocking call inside a coroutine.
    BlockingCall {
        /// The stages caught inside a poll while the loop stalled.
        stages: Vec<String>,
        /// Typical lag over the window, milliseconds.
        lag_ms: u64,
    },
    /// An unbounded queue that only grows: the memory risk.
    UnboundedGrowth {
        /// The stage whose input queue grows.
        stage: String,
        /// How much it grew over the window, items.
        grew_by: u64,
    },
}

/// Event-loop lag from which the loop counts as stalled, milliseconds.
pub const STALLED_LAG_MS: f64 = 20.0;

/// The diagnosis over recent snapshots, oldest first: a finding holds in
/// at least three quarters of them (sustained, not one noisy sample), and
/// needs at least four.
pub fn diagnose(window: &[&JobSnapshot]) -> Vec<Finding> {
    let n = window.len();
    if n < 4 {
        return Vec::new();
    }
    let most = |k: usize| 4 * k >= 3 * n;
    let mut out = Vec::new();
    // The bottleneck: the same stage in most snapshots.
    let mut names: Vec<(&str, usize)> = Vec::new();
    for s in window {
        if let Some(b) = s.bottleneck() {
            match names.iter_mut().find(|(m, _)| *m == b) {
                Some((_, c)) => *c += 1,
                None => names.push((b, 1)),
            }
        }
    }
    if let Some((stage, c)) = names.into_iter().max_by_key(|(_, c)| *c)
        && most(c)
    {
        let last = window[n - 1];
        let states = last.node_states();
        let held_up = last
            .nodes
            .iter()
            .zip(&states)
            .take_while(|(m, _)| m.name != stage)
            .filter(|(_, st)| **st == NodeState::Backpressured)
            .map(|(m, _)| m.name.clone())
            .collect();
        out.push(Finding::Bottleneck {
            stage: stage.to_string(),
            held_up,
        });
    }
    // A stalled loop on a job with async stages.
    let stalled: Vec<&EventLoopSnapshot> = window
        .iter()
        .filter_map(|s| s.event_loop.as_ref())
        .filter(|l| l.lag_ms >= STALLED_LAG_MS)
        .collect();
    if most(stalled.len()) {
        let mut stages: Vec<String> = Vec::new();
        for l in &stalled {
            for b in &l.blocking_stages {
                if !stages.contains(b) {
                    stages.push(b.clone());
                }
            }
        }
        let mut lags: Vec<f64> = stalled.iter().map(|l| l.lag_ms).collect();
        lags.sort_by(f64::total_cmp);
        out.push(Finding::BlockingCall {
            stages,
            lag_ms: lags[lags.len() / 2] as u64,
        });
    }
    // An unbounded queue growing in (nearly) every step.
    let first = window[0];
    for (i, node) in window[n - 1].nodes.iter().enumerate() {
        if node.capacity != Some(crate::spec::Capacity::Unbounded) {
            continue;
        }
        let depths: Vec<u64> = window
            .iter()
            .filter_map(|s| s.nodes.get(i).map(|m| m.depth))
            .collect();
        let rises = depths.windows(2).filter(|w| w[1] > w[0]).count();
        let start = first.nodes.get(i).map_or(0, |m| m.depth);
        if depths.len() == n && 4 * rises >= 3 * (n - 1) && node.depth > start {
            out.push(Finding::UnboundedGrowth {
                stage: node.name.clone(),
                grew_by: node.depth - start,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bottleneck_is_the_busy_node_below_the_blocked_ones() {
        let node = |name: &str, busy: f64, blocked: f64, depth: u64| NodeSnapshot {
            name: name.into(),
            busy,
            blocked,
            depth,
            capacity: Some(crate::spec::Capacity::Bounded(100)),
            ..Default::default()
        };
        let mut snap = JobSnapshot {
            nodes: vec![
                node("parse", 0.1, 0.9, 50),
                node("slow", 0.99, 0.0, 100),
                node("sink", 0.2, 0.0, 0),
            ],
            ..Default::default()
        };
        use NodeState::*;
        assert_eq!(snap.node_states(), vec![Backpressured, Bottleneck, Idle]);
        assert_eq!(snap.bottleneck(), Some("slow"));
        // Nobody blocked and no full queue: busy, but nobody's bottleneck.
        snap.nodes = vec![node("a", 0.9, 0.0, 10), node("b", 0.1, 0.0, 0)];
        assert_eq!(snap.node_states(), vec![Busy, Idle]);
        assert_eq!(snap.bottleneck(), None);
        // A blocked source makes the first busy stage the bottleneck; a
        // blocking call shows as the loop share, not the busy share.
        snap.source.blocked = 0.8;
        snap.nodes = vec![NodeSnapshot {
            loop_share: Some(0.97),
            ..node("fetch", 0.02, 0.0, 10)
        }];
        assert_eq!(snap.bottleneck(), Some("fetch"));
    }

    #[test]
    fn the_diagnosis_names_what_holds_in_most_recent_snapshots() {
        let node = |name: &str, busy: f64, blocked: f64, depth: u64, cap: crate::spec::Capacity| {
            NodeSnapshot {
                name: name.into(),
                busy,
                blocked,
                depth,
                capacity: Some(cap),
                ..Default::default()
            }
        };
        let bounded = crate::spec::Capacity::Bounded(100);
        // Backpressure: parse held up by slow, in every snapshot.
        let bp: Vec<JobSnapshot> = (0..6)
            .map(|_| JobSnapshot {
                nodes: vec![
                    node("parse", 0.1, 0.9, 50, bounded),
                    node("slow", 0.99, 0.0, 100, bounded),
                ],
                ..Default::default()
            })
            .collect();
        let refs: Vec<&JobSnapshot> = bp.iter().collect();
        assert_eq!(
            diagnose(&refs),
            vec![Finding::Bottleneck {
                stage: "slow".into(),
                held_up: vec!["parse".into()]
            }]
        );
        assert!(diagnose(&refs[..3]).is_empty(), "too few snapshots to say");
        // A stalled loop, with the stage named; one calm sample is noise.
        let lagging: Vec<JobSnapshot> = (0..8)
            .map(|i| JobSnapshot {
                event_loop: Some(EventLoopSnapshot {
                    lag_ms: if i == 3 { 0.5 } else { 480.0 },
                    blocking_stages: vec!["fetch".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let refs: Vec<&JobSnapshot> = lagging.iter().collect();
        assert_eq!(
            diagnose(&refs),
            vec![Finding::BlockingCall {
                stages: vec!["fetch".into()],
                lag_ms: 480
            }]
        );
        // An unbounded queue that keeps growing; a bounded one that is
        // full is not a memory risk.
        let growing: Vec<JobSnapshot> = (0..6u64)
            .map(|i| JobSnapshot {
                nodes: vec![
                    node("slow", 0.3, 0.0, 1000 * i, crate::spec::Capacity::Unbounded),
                    node("steady", 0.3, 0.0, 100, bounded),
                ],
                ..Default::default()
            })
            .collect();
        let refs: Vec<&JobSnapshot> = growing.iter().collect();
        assert_eq!(
            diagnose(&refs),
            vec![Finding::UnboundedGrowth {
                stage: "slow".into(),
                grew_by: 5000
            }]
        );
        // A quiet pipeline: nothing to say.
        let quiet: Vec<JobSnapshot> = (0..6).map(|_| JobSnapshot::default()).collect();
        let refs: Vec<&JobSnapshot> = quiet.iter().collect();
        assert!(diagnose(&refs).is_empty());
    }

    #[test]
    fn accounting_balances_and_prints_its_line() {
        let a = Accounting {
            produced: 10,
            sunk: 5,
            filtered: 2,
            dead_lettered: 1,
            dropped_by_policy: 1,
            leftovers: 1,
        };
        assert!(a.balanced());
        assert_eq!(a.in_flight(), 0);
        assert_eq!(
            a.to_string(),
            "produced 10 = sunk 5 + filtered 2 + dead_lettered 1 + dropped_by_policy 1 + leftovers 1"
        );
        let b = Accounting { sunk: 4, ..a };
        assert!(!b.balanced());
        assert_eq!(b.in_flight(), 1);
    }

    #[test]
    fn report_flattens_the_buckets() {
        let report = JobReport {
            job: "j1".into(),
            name: "demo".into(),
            state: JobState::Completed,
            error: None,
            elapsed_s: 1.5,
            accounting: Accounting {
                produced: 3,
                sunk: 3,
                ..Default::default()
            },
            balanced: true,
            throughput: 2.0,
            end_to_end: Latency::default(),
            source: SourceSnapshot::default(),
            nodes: vec![],
            skipped_lines: 2,
            drop_reasons: BTreeMap::new(),
            redeliveries: Default::default(),
            kept_on_broker: Default::default(),
            dead_letters_file: None,
            dead_letters_table: None,
            leftovers_file: None,
            events: vec![JobEvent {
                at_ms: 1,
                elapsed_ms: 0,
                kind: EventKind::State {
                    state: JobState::Running,
                    reason: None,
                },
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["produced"], 3);
        assert_eq!(json["leftovers"], 0);
        assert_eq!(json["state"], "completed");
        assert_eq!(json["events"][0]["event"], "state");
        assert_eq!(json["skipped_lines"], 2);
        let back: JobReport = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, report);
        // A report stored before blank lines were counted still reads.
        let mut old = json;
        old.as_object_mut().unwrap().remove("skipped_lines");
        let back: JobReport = serde_json::from_value(old).unwrap();
        assert_eq!(back.skipped_lines, 0);
    }
}
