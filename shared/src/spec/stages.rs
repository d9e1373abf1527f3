//! Stages: where each runs, its input queue, and what happens to an item
//! whose operation fails (retries, `on_error`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::defaults;
use super::limit::{AutoRange, Limit};
use super::limits::{self, NATS_URL_ENV};
use super::ops::OpSpec;
use super::retry::{RetrySpec, validate_retry};
use super::validation::Validator;

/// Where a stage runs: the two worlds of the article.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// N OS threads blocking on a bounded queue (Python's `queue.Queue`).
    #[default]
    Thread,
    /// N tokio tasks awaiting a bounded queue (Python's `asyncio.Queue`).
    Async,
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Thread => "thread",
            Runtime::Async => "async",
        })
    }
}

/// One processing stage.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Unique within the pipeline.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub name: String,
    /// Threads or tasks.
    #[serde(default)]
    pub runtime: Runtime,
    /// Number of threads (thread stage) or tasks (async stage), 1 to
    /// 4096; or `"auto"` / `{ min, max }`: the engine finds the knee and
    /// follows it (see [`Limit`]).
    #[serde(default = "defaults::workers")]
    #[cfg_attr(feature = "openapi", schema(value_type = super::limit::WorkersLimit))]
    pub workers: Limit,
    /// The stage's input queue.
    #[serde(default)]
    pub queue: QueueSpec,
    /// Async stages only: most operations in flight at once (a semaphore),
    /// 1 to 100000, or `"auto"` / `{ min, max }`; defaults to `workers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<super::limit::ConcurrencyLimit>)
    )]
    pub concurrency: Option<Limit>,
    /// The work done on each item.
    pub op: OpSpec,
    /// Longest an operation may take on one item; it then fails as timed
    /// out (retryable). Async operations are cancelled; on threads,
    /// operations that wait stop waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries of retryable errors, with exponential backoff and jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Most items per second this stage starts (all workers together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// What happens to an item whose operation failed for good.
    #[serde(default)]
    pub on_error: OnError,
    /// Where the stage's input queue lives: in the server's memory (the
    /// default), or a NATS JetStream stream that worker processes on other
    /// hosts consume too ([`Transport::Nats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Broker stages only: which workers may run it (by label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// A stage's input carried by a message broker instead of an in-memory
/// queue, so its workers can run in other processes and on other hosts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// NATS JetStream: one work-queue stream per job and edge, one durable
    /// pull consumer shared by every worker of the stage.
    Nats {
        /// `nats://host:port`, or `env:QUEUELAB_NATS_URL` (also what an
        /// omitted URL means): the server's configured broker.
        #[serde(default = "defaults::nats_url")]
        #[cfg_attr(feature = "openapi", schema(max_length = 256))]
        url: String,
    },
}

/// Which workers may run a broker stage.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// A worker runs the stage only if it carries every one of these labels.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub labels: Vec<String>,
}

impl Transport {
    /// The broker URL as written (`env:…` unresolved).
    pub fn url(&self) -> &str {
        match self {
            Transport::Nats { url } => url,
        }
    }
}

/// Checks a broker URL's form: `env:QUEUELAB_NATS_URL`, or
/// `nats://host[:port]` with nothing else (no credentials, no path).
pub fn check_nats_url(url: &str) -> Result<(), String> {
    if let Some(var) = url.strip_prefix("env:") {
        return if var == NATS_URL_ENV {
            Ok(())
        } else {
            Err(format!(
                "only `env:{NATS_URL_ENV}` may name the broker's URL"
            ))
        };
    }
    let Some(rest) = url.strip_prefix("nats://") else {
        return Err("must start with nats:// (or be env:QUEUELAB_NATS_URL)".into());
    };
    if url.len() > 256 {
        return Err("must be at most 256 characters".into());
    }
    let ok = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err("must be nats://host[:port], without credentials or a path".into())
    }
}

/// What happens to an item whose operation failed for good.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Keep it in the dead-letter sink, with the error and the attempts.
    #[default]
    DeadLetter,
    /// Discard it (counted, with the reason).
    Drop,
    /// Fail the whole job (the item is dead-lettered first).
    FailJob,
}

/// A stage's input queue: its size and what producers do when it is full.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Bounded by default; unbounded only when written out.
    #[serde(default)]
    pub capacity: Capacity,
    /// Policy when the queue is full.
    #[serde(default)]
    pub when_full: WhenFull,
}

impl Default for QueueSpec {
    fn default() -> Self {
        Self {
            capacity: Capacity::default(),
            when_full: WhenFull::Block,
        }
    }
}

/// How many items a queue holds: a number, or `"unbounded"` (a memory risk,
/// shown as such).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CapacityRepr", into = "CapacityRepr")]
pub enum Capacity {
    /// At most this many items; producers meet `when_full` beyond it.
    Bounded(u64),
    /// No limit: the article's memory pitfall, available on purpose.
    Unbounded,
}

/// The schema of what a capacity looks like on the wire: a positive
/// number, or the word `unbounded`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Capacity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["unbounded"])),
            )
            .description(Some(
                "Items the queue holds, or \"unbounded\" (a memory risk)",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Capacity {}

impl Default for Capacity {
    fn default() -> Self {
        Capacity::Bounded(defaults::CAPACITY)
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Bounded(n) => write!(f, "{n}"),
            Capacity::Unbounded => f.write_str("unbounded"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum CapacityRepr {
    Number(u64),
    Word(String),
}

impl TryFrom<CapacityRepr> for Capacity {
    type Error = String;
    fn try_from(repr: CapacityRepr) -> Result<Self, Self::Error> {
        match repr {
            CapacityRepr::Number(n) => Ok(Capacity::Bounded(n)),
            CapacityRepr::Word(w) if w == "unbounded" => Ok(Capacity::Unbounded),
            CapacityRepr::Word(w) => Err(format!(
                "capacity must be a number or \"unbounded\", not {w:?}"
            )),
        }
    }
}

impl From<Capacity> for CapacityRepr {
    fn from(c: Capacity) -> Self {
        match c {
            Capacity::Bounded(n) => CapacityRepr::Number(n),
            Capacity::Unbounded => CapacityRepr::Word("unbounded".into()),
        }
    }
}

/// What a producer does when the queue it feeds is full.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: backpressure (`q.put()` / `await q.put()`).
    #[default]
    Block,
    /// Discard the item being offered (counted).
    DropNewest,
    /// Discard the oldest queued item to make room (counted).
    DropOldest,
    /// Refuse the item: an error for the producer (counted as dropped).
    Reject,
}

impl fmt::Display for WhenFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WhenFull::Block => "block",
            WhenFull::DropNewest => "drop_newest",
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::Reject => "reject",
        })
    }
}

impl StageSpec {
    /// Effective async concurrency at the start: the explicit value, or
    /// one per worker.
    pub fn effective_concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(self.workers).start()
    }

    /// Workers (threads or tasks) at the start. An async stage whose
    /// limit is automatic runs one task per operation in flight, so an
    /// operation's service time never includes a wait for a permit (the
    /// controller reads it as the downstream's latency).
    pub fn start_workers(&self) -> u32 {
        match self.runtime {
            Runtime::Thread => self.workers.start(),
            Runtime::Async if self.auto_range().is_some() => self.effective_concurrency(),
            Runtime::Async => self.workers.start(),
        }
    }

    /// The range the engine's controller keeps the stage in, when it
    /// chooses: the thread count of a thread stage, the operations in
    /// flight of an async one (from `concurrency`, else `workers`).
    pub fn auto_range(&self) -> Option<AutoRange> {
        match self.runtime {
            Runtime::Thread => self.workers.auto(),
            Runtime::Async => match self.concurrency {
                Some(c) => c.auto(),
                None => self.workers.auto(),
            },
        }
    }

    /// The field an automatic limit drives: `workers` on threads,
    /// `concurrency` (operations in flight) on tasks.
    pub fn auto_field(&self) -> &'static str {
        match self.runtime {
            Runtime::Thread => "workers",
            Runtime::Async => "concurrency",
        }
    }

    /// The spec's bound of [`StageSpec::auto_field`].
    pub fn auto_bound(&self) -> u32 {
        match self.runtime {
            Runtime::Thread => limits::MAX_WORKERS,
            Runtime::Async => limits::MAX_CONCURRENCY,
        }
    }

    /// True when the stage's input is a broker stream.
    pub fn is_broker(&self) -> bool {
        self.transport.is_some()
    }

    /// Checks the stage's own fields, then its operation's.
    pub(super) fn validate(&self, at: &str, v: &mut Validator) {
        self.validate_transport(at, v);
        if let Err(e) = self.workers.check(limits::MAX_WORKERS) {
            v.err(&format!("{at}.workers"), e);
        }
        if let Capacity::Bounded(n) = self.queue.capacity
            && !(1..=limits::MAX_CAPACITY).contains(&n)
        {
            v.err(
                &format!("{at}.queue.capacity"),
                format!(
                    "must be between 1 and {} (or \"unbounded\")",
                    limits::MAX_CAPACITY
                ),
            );
        }
        match (self.runtime, self.concurrency) {
            (Runtime::Thread, Some(_)) => v.err(
                &format!("{at}.concurrency"),
                "only async stages have a concurrency limit; a thread stage's is its `workers`"
                    .into(),
            ),
            (Runtime::Async, Some(c)) => {
                if let Err(e) = c.check(limits::MAX_CONCURRENCY) {
                    v.err(&format!("{at}.concurrency"), e);
                }
            }
            _ => {}
        }
        if let Some(t) = self.timeout_ms
            && !(1..=limits::MAX_WAIT_MS as u64).contains(&t)
        {
            v.err(
                &format!("{at}.timeout_ms"),
                format!("must be between 1 and {}", limits::MAX_WAIT_MS),
            );
        }
        if let Some(r) = &self.retry {
            validate_retry(&format!("{at}.retry"), r, v);
        }
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && (limits::MIN_RATE..=limits::MAX_RATE).contains(&rate))
        {
            v.err(
                &format!("{at}.rate_limit"),
                format!(
                    "must be between {} and {}",
                    limits::MIN_RATE,
                    limits::MAX_RATE
                ),
            );
        }
        self.op.validate(&format!("{at}.op"), v);
    }
}

impl StageSpec {
    /// A broker edge is a stream: it has a size, and it refuses new
    /// messages when full, so it cannot make room by dropping old ones.
    fn validate_transport(&self, at: &str, v: &mut Validator) {
        let Some(transport) = &self.transport else {
            if self.placement.is_some() {
                v.err(
                    &format!("{at}.placement"),
                    "only a stage with a broker transport runs on workers".into(),
                );
            }
            return;
        };
        if let Err(e) = check_nats_url(transport.url()) {
            v.err(&format!("{at}.transport.url"), e);
        }
        if self.queue.when_full == WhenFull::DropOldest {
            v.err(
                &format!("{at}.queue.when_full"),
                "drop_oldest cannot apply to a broker edge: its stream refuses new messages when full (discard new) and workers may already hold the oldest ones; use block, drop_newest or reject".into(),
            );
        }
        if self.queue.capacity == Capacity::Unbounded {
            v.err(
                &format!("{at}.queue.capacity"),
                "a broker edge's stream needs a size (its max_msgs)".into(),
            );
        }
        if let Some(p) = &self.placement {
            if p.labels.len() > 16 {
                v.err(
                    &format!("{at}.placement.labels"),
                    "at most 16 labels".into(),
                );
            }
            for (i, l) in p.labels.iter().enumerate() {
                if !is_label(l) {
                    v.err(
                        &format!("{at}.placement.labels[{i}]"),
                        "a label is 1 to 64 letters, digits, `-` or `_`".into(),
                    );
                }
            }
        }
    }
}

/// A worker label: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn is_label(l: &str) -> bool {
    (1..=64).contains(&l.len())
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::spec::{MINIMAL, PipelineSpec, SinkSpec, SpecFormat};

    use super::*;

    #[test]
    fn minimal_toml_gets_defaults() {
        let spec = PipelineSpec::parse(MINIMAL, SpecFormat::Toml).unwrap();
        let stage = &spec.stages[0];
        assert_eq!(stage.runtime, Runtime::Thread);
        assert_eq!(stage.workers, 1);
        assert_eq!(stage.queue.capacity, Capacity::Bounded(1000));
        assert_eq!(stage.queue.when_full, WhenFull::Block);
        assert_eq!(spec.sink, SinkSpec::Null);
        assert_eq!(spec.drain_deadline_ms, 30_000);
        assert_eq!(spec.sample_hz, 4.0);
    }

    #[test]
    fn unbounded_must_be_written_out() {
        let text = MINIMAL.replace(
            "name = \"work\"",
            "name = \"work\"\nqueue = { capacity = \"unbounded\" }",
        );
        let spec = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap();
        assert_eq!(spec.stages[0].queue.capacity, Capacity::Unbounded);
        let text = MINIMAL.replace(
            "name = \"work\"",
            "name = \"work\"\nqueue = { capacity = \"lots\" }",
        );
        let err = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap_err();
        assert_eq!(err.errors[0].path, "stages[0].queue.capacity");
        assert!(err.errors[0].message.contains("unbounded"), "{err}");
    }

    #[test]
    fn a_broker_edge_is_a_bounded_stream_that_refuses_new_messages() {
        let with = |extra: &str| {
            MINIMAL.replace(
                "name = \"work\"",
                &format!("name = \"work\"\ntransport = {{ kind = \"nats\" }}\n{extra}"),
            )
        };
        let spec = PipelineSpec::parse(&with(""), SpecFormat::Toml).unwrap();
        let t = spec.stages[0].transport.as_ref().unwrap();
        assert_eq!(
            t.url(),
            "env:QUEUELAB_NATS_URL",
            "the server's broker by default"
        );
        let paths = |text: &str| -> Vec<(String, String)> {
            PipelineSpec::parse(text, SpecFormat::Toml)
                .unwrap_err()
                .errors
                .into_iter()
                .map(|e| (e.path, e.message))
                .collect()
        };
        let e = paths(&with("queue = { when_full = \"drop_oldest\" }"));
        assert_eq!(e[0].0, "stages[0].queue.when_full");
        assert!(e[0].1.contains("discard new"), "says why: {}", e[0].1);
        let e = paths(&with("queue = { capacity = \"unbounded\" }"));
        assert_eq!(e[0].0, "stages[0].queue.capacity");
        let e = paths(&with("placement = { labels = [\"has space\"] }"));
        assert_eq!(e[0].0, "stages[0].placement.labels[0]");
        let text = MINIMAL.replace(
            "name = \"work\"",
            "name = \"work\"\nplacement = { labels = [\"gpu\"] }",
        );
        assert_eq!(paths(&text)[0].0, "stages[0].placement");
        for bad in [
            "env:HOME",
            "http://x:1",
            "nats://user:pw@x:4222",
            "nats://x/path",
            "nats://",
        ] {
            assert!(check_nats_url(bad).is_err(), "{bad}");
        }
        for good in [
            "env:QUEUELAB_NATS_URL",
            "nats://127.0.0.1:4222",
            "nats://broker.internal",
            "nats://[::1]:4222",
        ] {
            assert!(check_nats_url(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn concurrency_is_for_async_stages() {
        let text = MINIMAL.replace(
            "name = \"work\"",
            "name = \"work\"\nruntime = \"async\"\nconcurrency = 8\nworkers = 2",
        );
        let spec = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap();
        assert_eq!(spec.stages[0].effective_concurrency(), 8);
    }
}
