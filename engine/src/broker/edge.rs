//! One broker edge on NATS JetStream: its names, how its streams and
//! consumers are made, what the broker says about it, and what is swept
//! out of it when a job ends.
//!
//! A broker stage has two streams of its own per job:
//!
//! * **input** (`QLI_<job>_<stage>`): work-queue retention; the
//!   publisher holds it to the stage's capacity in items, and `max_msgs`
//!   (twice that, in messages) with discard new is the broker's backstop
//!   (a full stream refuses a publish, and the publisher retries); a duplicate window so a publish retried
//!   after a lost ack is stored once. One durable pull consumer, `work`,
//!   is shared by every worker on every host: explicit acks, `ack_wait`
//!   from the stage's timeout, `max_deliver` from its retries,
//!   `max_ack_pending` bounding what is in flight.
//! * **output** (`QLO_<job>_<stage>`): the workers' results, with the
//!   same limits; the server's collector is its one consumer. A worker
//!   acks its input only once its result is stored here, so an item is
//!   never lost between the two, and a result republished after a
//!   redelivery carries the same message id and is stored once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use shared::metrics::EdgeSnapshot;
use shared::spec::{Capacity, StageSpec};
pub use shared::workers::EdgeNames;

use super::BrokerError;

/// Name of the consumer every worker of a stage shares.
pub const WORK_CONSUMER: &str = "work";
/// Name of the server's consumer of a stage's results.
pub const COLLECT_CONSUMER: &str = "collect";
/// `ack_wait` of a stage without a timeout.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(10);
/// Deliveries beyond a stage's attempts before an item that keeps losing
/// its worker (a crash, a kill) becomes a dead letter.
pub const EXTRA_DELIVERIES: u32 = 2;
/// How long a message id is remembered at least, so a republish is stored
/// once (longer when redeliveries can take longer: see
/// [`EdgeLimits::duplicate_window`]).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// The limits of an edge, from its stage's spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// `max_msgs` of each stream.
    pub capacity: u64,
    /// How long a delivered item may go unacknowledged before it is
    /// delivered again.
    pub ack_wait: Duration,
    /// Deliveries before the broker gives up on an item.
    pub max_deliver: u32,
    /// Items delivered and not acknowledged, across every worker.
    pub max_ack_pending: u64,
}

impl EdgeLimits {
    /// The limits `stage` asks for. `ack_wait` is twice the stage's
    /// timeout (at least a second), so an attempt that times out is
    /// settled before its item is redelivered; long items also send
    /// in-progress acks.
    pub fn of(stage: &StageSpec) -> Self {
        let capacity = match stage.queue.capacity {
            Capacity::Bounded(n) => n,
            Capacity::Unbounded => shared::spec::limits::MAX_CAPACITY,
        };
        let ack_wait = stage
            .timeout_ms
            .map(|t| Duration::from_millis(t.saturating_mul(2)).max(Duration::from_secs(1)))
            .unwrap_or(DEFAULT_ACK_WAIT)
            .min(Duration::from_secs(3600));
        let attempts = stage.retry.map_or(1, |r| r.max_attempts.max(1));
        Self {
            capacity,
            ack_wait,
            max_deliver: attempts + EXTRA_DELIVERIES,
            max_ack_pending: capacity.clamp(1, 10_000),
        }
    }
}

impl EdgeLimits {
    /// How long the streams remember a message id: at least as long as an
    /// item can keep being delivered (`max_deliver × ack_wait`), so a
    /// result stored again after the last redelivery is still a duplicate.
    pub fn duplicate_window(&self) -> Duration {
        DUPLICATE_WINDOW.max(self.ack_wait * self.max_deliver)
    }
}

fn stream_config(name: String, subject: String, limits: &EdgeLimits) -> stream::Config {
    stream::Config {
        name,
        subjects: vec![subject],
        retention: stream::RetentionPolicy::WorkQueue,
        // The publisher holds the edge to `capacity` items exactly (its
        // ledger); this bound is the broker's backstop. A message stays
        // stored from the booking of its results until its worker's ack
        // lands, so the publisher may already have reopened that room:
        // twice the capacity leaves space for those.
        max_messages: limits.capacity.saturating_mul(2).min(i64::MAX as u64) as i64,
        discard: stream::DiscardPolicy::New,
        storage: stream::StorageType::File,
        duplicate_window: limits.duplicate_window(),
        num_replicas: 1,
        ..Default::default()
    }
}

fn consumer_config(name: &str, limits: &EdgeLimits) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: limits.ack_wait,
        max_deliver: limits.max_deliver as i64,
        max_ack_pending: limits.max_ack_pending as i64,
        ..Default::default()
    }
}

/// Creates an edge's streams and consumers (the server, at job start).
pub async fn create(
    js: &jetstream::Context,
    names: &EdgeNames,
    limits: &EdgeLimits,
) -> Result<(), BrokerError> {
    for (stream, subject, consumer) in [
        (names.input_stream(), names.input_subject(), WORK_CONSUMER),
        (
            names.output_stream(),
            names.output_subject(),
            COLLECT_CONSUMER,
        ),
    ] {
        // Job ids are unique: a stream of the same name is what a process
        // that died with this job left behind.
        let _ = js.delete_stream(&stream).await;
        let s = js
            .create_stream(stream_config(stream, subject, limits))
            .await
            .map_err(BrokerError::setup)?;
        // The collector waits on its results; a late one is only slow.
        let mut config = consumer_config(consumer, limits);
        if consumer == COLLECT_CONSUMER {
            config.max_deliver = -1;
        }
        s.create_consumer(config)
            .await
            .map_err(BrokerError::setup)?;
    }
    Ok(())
}

/// The shared consumer of an edge's input (a worker, when assigned).
pub async fn work_consumer(
    js: &jetstream::Context,
    names: &EdgeNames,
) -> Result<consumer::PullConsumer, BrokerError> {
    pull_consumer(js, &names.input_stream(), WORK_CONSUMER).await
}

/// The collector's consumer of an edge's results.
pub async fn collect_consumer(
    js: &jetstream::Context,
    names: &EdgeNames,
) -> Result<consumer::PullConsumer, BrokerError> {
    pull_consumer(js, &names.output_stream(), COLLECT_CONSUMER).await
}

async fn pull_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<consumer::PullConsumer, BrokerError> {
    js.get_stream(stream)
        .await
        .map_err(BrokerError::setup)?
        .get_consumer(name)
        .await
        .map_err(BrokerError::setup)
}

/// Messages a sweep reads per request.
const SWEEP_BATCH: usize = 1000;

/// Reads every message still stored in a stream (what an abort leaves
/// behind), a batch per request with a consumer of its own, so gaps of
/// acknowledged messages cost nothing. Call it once the stream's own
/// consumers are gone (a work queue takes one consumer at a time).
pub async fn stored(
    js: &jetstream::Context,
    stream: &str,
) -> Result<Vec<bytes::Bytes>, BrokerError> {
    let mut s = js.get_stream(stream).await.map_err(BrokerError::setup)?;
    let total = s.info().await.map_err(BrokerError::setup)?.state.messages;
    let mut out = Vec::new();
    if total == 0 {
        return Ok(out);
    }
    let sweep: consumer::PullConsumer = s
        .create_consumer(consumer::pull::Config {
            name: Some("sweep".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(BrokerError::setup)?;
    out.reserve(total.min(1 << 20) as usize);
    while (out.len() as u64) < total {
        let mut batch = sweep
            .fetch()
            .max_messages(SWEEP_BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(BrokerError::setup)?;
        let before = out.len();
        while let Some(m) = batch.next().await {
            out.push(m.map_err(BrokerError::setup)?.payload.clone());
        }
        if out.len() == before {
            return Err(BrokerError::Setup(format!(
                "read {before} of the {total} messages of {stream}"
            )));
        }
    }
    Ok(out)
}

/// Deletes an edge's streams (and with them their consumers).
pub async fn delete(js: &jetstream::Context, names: &EdgeNames) {
    for stream in [names.input_stream(), names.output_stream()] {
        if let Err(e) = js.delete_stream(&stream).await {
            tracing::debug!(stream = %stream, error = %e, "stream not deleted");
        }
    }
}

/// An edge's figures, read from the broker by a poller and by the
/// publisher, and read into snapshots by the sampler (atomics: the
/// sampler's thread never waits on the broker).
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// The input stream's name.
    pub stream: String,
    /// Messages stored.
    pub depth: AtomicU64,
    /// Not yet delivered.
    pub pending: AtomicU64,
    /// Delivered, not acknowledged.
    pub in_flight: AtomicU64,
    /// Redeliveries the broker counts now.
    pub redeliveries: AtomicU64,
    /// Age of the oldest stored message.
    pub oldest_ms: AtomicU64,
    /// Times the publisher found the edge at capacity (and items it
    /// dropped there).
    pub refusals: AtomicU64,
    /// Items published and not yet booked (the edge's depth in items).
    pub open: AtomicU64,
    /// Messages the stream stored.
    pub messages: AtomicU64,
    /// Items those messages carried.
    pub items: AtomicU64,
    /// Workers consuming the edge.
    pub workers: AtomicU32,
    /// Where the workers run (name, count), as the server placed them.
    pub placement: Mutex<Vec<(String, u32)>>,
}

impl EdgeStats {
    /// Figures for a snapshot.
    pub fn snapshot(&self) -> EdgeSnapshot {
        EdgeSnapshot {
            stream: self.stream.clone(),
            depth: self.depth.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            redeliveries: self.redeliveries.load(Ordering::Relaxed),
            oldest_pending_ms: self.oldest_ms.load(Ordering::Relaxed),
            publish_refusals: self.refusals.load(Ordering::Relaxed),
            depth_items: self.open.load(Ordering::Relaxed),
            messages_published: self.messages.load(Ordering::Relaxed),
            items_published: self.items.load(Ordering::Relaxed),
            workers_attached: self.workers.load(Ordering::Relaxed),
            placement: self
                .placement
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Reads the input stream and its consumer once.
    pub(crate) async fn poll(&self, js: &jetstream::Context, names: &EdgeNames) {
        let Ok(mut s) = js.get_stream(names.input_stream()).await else {
            return;
        };
        if let Ok(info) = s.info().await {
            let state = &info.state;
            self.depth.store(state.messages, Ordering::Relaxed);
            let oldest = if state.messages == 0 {
                0
            } else {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i128);
                ((now - state.first_timestamp.unix_timestamp_nanos()).max(0) / 1_000_000) as u64
            };
            self.oldest_ms.store(oldest, Ordering::Relaxed);
        }
        if let Ok(info) = s.consumer_info(WORK_CONSUMER).await {
            self.pending.store(info.num_pending, Ordering::Relaxed);
            self.in_flight
                .store(info.num_ack_pending as u64, Ordering::Relaxed);
            self.redeliveries
                .store(info.num_redelivered as u64, Ordering::Relaxed);
        }
    }
}

/// True when a publish was refused because the stream is full (discard
/// new: JetStream's "maximum messages exceeded").
pub fn is_full(e: &jetstream::context::PublishError) -> bool {
    let text = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
        + &e.to_string();
    text.contains("maximum messages")
}
