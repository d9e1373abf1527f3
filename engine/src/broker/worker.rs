//! A broker stage's workers, wherever they run: a `queuelab worker`
//! process on another host, or the server's own share.
//!
//! Each worker takes items from the stage's shared durable consumer (a
//! few at a time when the operation is instant, one at a time when it may
//! wait), runs each with the stage's own machinery — the same rate limit,
//! timeout, retries and `on_error` as in memory — stores every result in
//! the output stream with the id `job:stage.out:seq`, and only once the
//! broker has acknowledged the results acks the inputs. A worker killed
//! in between leaves its items unacknowledged: after `ack_wait` the broker
//! delivers them to another worker, whose results carry the same ids and
//! are stored once. Long operations send in-progress acks so they are not
//! redelivered while still running. An item delivered `max_deliver` times
//! (its workers kept dying) becomes a dead letter with its delivery count.
//!
//! Thread stages run each worker on an OS thread of its own (their
//! operations may block); async stages run tasks under the stage's
//! concurrency semaphore, as in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind, consumer::PullConsumer, message::PublishMessage as Publish,
};
use futures_util::{FutureExt, StreamExt};
use shared::spec::{OnError, Runtime};
pub use shared::workers::Assignment;
use shared::workers::StageCounts;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::edge::{EdgeLimits, is_full, work_consumer};
use super::wire::{Outcome, decode_item, encode_settled};
use super::{BrokerError, backoff};
use crate::egress::Egress;
use crate::item::{Item, Payload};
use crate::ops::{OpError, Verdict, worker_rng};
use crate::queue::CHUNK;
use crate::signal::Flag;
use crate::stage::{StageCtl, Unsettled};
use crate::stats::{NodeInfo, NodeStats};

/// The fault point of the crash tests: a worker started with
/// `QUEUELAB_FAULT_CRASH_BEFORE_ACK=N` kills itself after storing its
/// `N`th batch of results and before acking their inputs — the window in
/// which a real crash forces a redelivery.
pub const CRASH_BEFORE_ACK_ENV: &str = "QUEUELAB_FAULT_CRASH_BEFORE_ACK";

/// A stage's counts on one host.
#[derive(Debug, Default)]
pub struct WorkerCounts {
    processed: AtomicU64,
    passed: AtomicU64,
    filtered: AtomicU64,
    failed: AtomicU64,
    redelivered: AtomicU64,
}

impl WorkerCounts {
    fn snapshot(&self) -> StageCounts {
        StageCounts {
            processed: self.processed.load(Ordering::Relaxed),
            passed: self.passed.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            redelivered: self.redelivered.load(Ordering::Relaxed),
        }
    }
}

/// Items a worker asks the broker for ahead of those it works on.
const PREFETCH: usize = 4;
/// Batches a worker may have in storing at once while it works on more.
const FINISHING: usize = 8;

/// What a worker made of one delivery.
enum Step {
    /// A result to store.
    Done(Outcome),
    /// A message that is not an item, refused for good.
    Refused,
    /// The assignment ended first.
    Stopped,
}

/// One broker stage's workers on this host.
pub struct RemoteStage {
    assignment: Assignment,
    ctl: Arc<StageCtl>,
    limits: EdgeLimits,
    js: jetstream::Context,
    consumer: PullConsumer,
    handle: tokio::runtime::Handle,
    /// Set when the assignment ends: operations stop waiting.
    stop: Flag,
    semaphore: Arc<Semaphore>,
    workers: Mutex<Vec<CancellationToken>>,
    next: AtomicU64,
    counts: WorkerCounts,
    stored_batches: AtomicU64,
    crash_after: Option<u64>,
    /// Workers still running (a retired one counts until it has settled
    /// what it held).
    live: std::sync::atomic::AtomicU32,
    /// Batches whose results are being stored and inputs acked.
    finishing: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for RemoteStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStage")
            .field("names", &self.assignment.names)
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

impl RemoteStage {
    /// Connects to the assignment's broker (or uses `client`) and finds
    /// the stage's consumer; [`RemoteStage::scale_to`] starts workers on
    /// `handle`.
    pub async fn start(
        assignment: Assignment,
        client: Option<async_nats::Client>,
        handle: tokio::runtime::Handle,
        egress: &Egress,
    ) -> Result<Arc<Self>, BrokerError> {
        let client = match client {
            Some(c) => c,
            None => super::connect(&assignment.url).await?,
        };
        let js = jetstream::new(client);
        let consumer = work_consumer(&js, &assignment.names).await?;
        let info = NodeInfo {
            name: assignment.stage.name.clone(),
            kind: shared::metrics::NodeKind::Stage,
            runtime: assignment.stage.runtime,
            capacity: assignment.stage.queue.capacity,
            when_full: assignment.stage.queue.when_full,
        };
        let ctl = StageCtl::detached(
            assignment.index,
            assignment.stage.clone(),
            Arc::new(NodeStats::new(info)),
            &handle,
            egress,
        );
        let crash_after = std::env::var(CRASH_BEFORE_ACK_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        Ok(Arc::new(Self {
            limits: EdgeLimits::of(&assignment.stage),
            semaphore: Arc::new(Semaphore::new(
                assignment.stage.effective_concurrency() as usize
            )),
            assignment,
            ctl,
            js,
            consumer,
            handle,
            stop: Flag::new(),
            workers: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            counts: WorkerCounts::default(),
            stored_batches: AtomicU64::new(0),
            crash_after,
            live: std::sync::atomic::AtomicU32::new(0),
            finishing: std::sync::atomic::AtomicU32::new(0),
        }))
    }

    /// The assignment this runs.
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Live workers.
    pub fn workers(&self) -> u32 {
        self.lock().len() as u32
    }

    /// Workers still running, retired ones settling what they hold
    /// included.
    pub fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed) + self.finishing.load(Ordering::Relaxed)
    }

    /// What this host's workers did so far.
    pub fn counts(&self) -> StageCounts {
        self.counts.snapshot()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CancellationToken>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts or retires workers until `n` run; a retired worker first
    /// settles what it holds.
    pub fn scale_to(self: &Arc<Self>, n: u32) {
        let mut workers = self.lock();
        while workers.len() > n as usize {
            workers.pop().expect("len > n").cancel();
        }
        while workers.len() < n as usize {
            let token = CancellationToken::new();
            workers.push(token.clone());
            let me = self.clone();
            let k = self.next.fetch_add(1, Ordering::Relaxed) as usize;
            match self.assignment.stage.runtime {
                Runtime::Async => {
                    self.handle
                        .spawn(async move { me.run(k, token, false).await });
                }
                Runtime::Thread => {
                    let handle = self.handle.clone();
                    let name = format!("ql-w-{}-{k}", self.assignment.stage.name);
                    let spawned = std::thread::Builder::new()
                        .name(name)
                        .spawn(move || handle.block_on(me.run(k, token, true)));
                    if let Err(e) = spawned {
                        tracing::warn!(stage = %self.assignment.stage.name, error = %e, "cannot start a worker thread");
                        workers.pop();
                        break;
                    }
                }
            }
        }
    }

    /// Ends the assignment: every worker stops; what they hold unacked is
    /// delivered again elsewhere (or swept by the server if the job ended).
    pub fn stop(&self) {
        self.stop.set();
        for token in self.lock().drain(..) {
            token.cancel();
        }
    }

    async fn run(self: Arc<Self>, k: usize, retire: CancellationToken, blocking: bool) {
        self.live.fetch_add(1, Ordering::Relaxed);
        self.pull(k, retire, blocking).await;
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    async fn pull(self: &Arc<Self>, k: usize, retire: CancellationToken, blocking: bool) {
        // Storing a batch's results and acking its inputs overlaps the next
        // batch's work, a few batches deep.
        let finishing = Arc::new(Semaphore::new(FINISHING));
        let instant = self.ctl.op.is_instant() && self.ctl.policy.never_waits();
        let batch = if instant {
            CHUNK.min(self.limits.max_ack_pending as usize).max(1)
        } else {
            1
        };
        // One pull request per item costs a round trip to the broker each
        // time: a worker asks for a few ahead (still settling one at a
        // time when items may wait).
        let prefetch = batch.max(PREFETCH);
        let mut rng = worker_rng(self.assignment.seed, self.assignment.index, k);
        let mut tries = 0;
        'connect: while !retire.is_cancelled() {
            let stream = self
                .consumer
                .stream()
                .max_messages_per_batch(prefetch)
                .messages()
                .await;
            let mut messages = match stream {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(stage = %self.assignment.stage.name, error = %e, "cannot pull from the stage's stream");
                    tokio::select! {
                        _ = retire.cancelled() => break,
                        _ = tokio::time::sleep(backoff(tries) * 10) => {}
                    }
                    tries += 1;
                    continue;
                }
            };
            loop {
                let first = tokio::select! {
                    biased;
                    _ = retire.cancelled() => break 'connect,
                    m = messages.next() => m,
                };
                let mut held = Vec::with_capacity(batch);
                match first {
                    Some(Ok(m)) => held.push(m),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "pull interrupted");
                        continue;
                    }
                    None => continue 'connect,
                }
                // Whatever else is already here joins the batch.
                while held.len() < batch {
                    match messages.next().now_or_never() {
                        Some(Some(Ok(m))) => held.push(m),
                        _ => break,
                    }
                }
                let Ok(permit) = finishing.clone().acquire_owned().await else {
                    break 'connect;
                };
                self.settle_batch(k, held, &mut rng, blocking, permit).await;
            }
        }
    }

    /// Runs each held item, stores every result, then acks the inputs.
    async fn settle_batch(
        self: &Arc<Self>,
        k: usize,
        held: Vec<jetstream::Message>,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let mut results = Vec::with_capacity(held.len());
        for msg in &held {
            let delivered = msg.info().map_or(1, |i| i.delivered.max(1) as u32);
            if delivered > 1 {
                self.counts.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            let outcome = match self.outcome(k, msg, delivered, rng, blocking).await {
                Step::Done(outcome) => outcome,
                Step::Refused => continue,
                // Stopped mid-item: unacked, it is delivered again.
                Step::Stopped => return,
            };
            self.counts.processed.fetch_add(1, Ordering::Relaxed);
            match &outcome {
                Outcome::Passed(_) => &self.counts.passed,
                Outcome::Filtered(_) => &self.counts.filtered,
                _ => &self.counts.failed,
            }
            .fetch_add(1, Ordering::Relaxed);
            results.push((outcome.seq(), encode_settled(&outcome, delivered)));
        }
        let me = self.clone();
        self.finishing.fetch_add(1, Ordering::Relaxed);
        self.handle.spawn(async move {
            me.finish(results, held).await;
            me.finishing.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }

    /// Stores a batch's results, then (only then) acks its inputs.
    async fn finish(&self, results: Vec<(u64, bytes::Bytes)>, held: Vec<jetstream::Message>) {
        if !self.store(results).await {
            return;
        }
        let n = self.stored_batches.fetch_add(1, Ordering::Relaxed) + 1;
        if self.crash_after == Some(n) {
            tracing::error!(stage = %self.assignment.stage.name, "fault point: crashing after storing results, before acking them");
            std::process::abort();
        }
        for msg in &held {
            if let Err(e) = msg.ack().await {
                tracing::debug!(error = %e, "ack not sent");
            }
        }
    }

    /// Stores results in the output stream, retrying until each is stored
    /// (a full stream is backpressure); false if stopped first.
    async fn store(&self, results: Vec<(u64, bytes::Bytes)>) -> bool {
        let subject = self.assignment.names.output_subject();
        let mut tries = 0;
        let mut todo = results;
        while !todo.is_empty() {
            let mut acks = Vec::with_capacity(todo.len());
            for (seq, payload) in &todo {
                let msg = Publish::build()
                    .payload(payload.clone())
                    .message_id(self.assignment.names.output_id(*seq));
                acks.push(self.js.send_publish(subject.clone(), msg).await);
            }
            let mut again = Vec::new();
            for ((seq, payload), ack) in todo.into_iter().zip(acks) {
                let stored = match ack {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                if let Err(e) = stored {
                    if !is_full(&e) && tries == 0 {
                        tracing::warn!(stage = %self.assignment.stage.name, error = %e, "storing a result failed; retrying");
                    }
                    again.push((seq, payload));
                }
            }
            todo = again;
            if !todo.is_empty() {
                if self.stop.is_set() {
                    return false;
                }
                tokio::time::sleep(backoff(tries)).await;
                tries += 1;
            }
        }
        true
    }

    /// What the stage makes of one delivered item; `None` if stopped.
    async fn outcome(
        &self,
        k: usize,
        msg: &jetstream::Message,
        delivered: u32,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
    ) -> Step {
        let mut item = match decode_item(&msg.payload) {
            Ok(item) => item,
            Err(e) => {
                // Not from a QueueLab publisher: a dead letter when it
                // names its item, else refused for good.
                let Some(seq) = msg.payload.get(..8) else {
                    tracing::error!(stage = %self.assignment.stage.name, "a message without an item on the stage's stream: refused");
                    let _ = msg.ack_with(AckKind::Term).await;
                    return Step::Refused;
                };
                let seq = u64::from_le_bytes(seq.try_into().expect("8 bytes"));
                let text = String::from_utf8_lossy(&msg.payload[8..]).into_owned();
                return Step::Done(Outcome::Failed {
                    item: Item::new(seq, Payload::Line(text), None),
                    attempts: 0,
                    kind: "undecodable".into(),
                    detail: e.to_string(),
                });
            }
        };
        if delivered >= self.limits.max_deliver {
            return Step::Done(Outcome::Failed {
                item,
                attempts: 0,
                kind: "redelivered".into(),
                detail: format!(
                    "delivered {delivered} times without an ack: the workers holding it were lost"
                ),
            });
        }
        let shard = self.ctl.stats.shard(k);
        // Long items tell the broker they are still being worked on.
        let progress = (!self.ctl.op.is_instant() || self.ctl.policy.timeout.is_some())
            .then(|| self.progress(msg.clone()));
        let result = if blocking {
            self.ctl.attempt_blocking(shard, &mut item, rng, &self.stop)
        } else {
            self.ctl
                .attempt_async(shard, &mut item, rng, &self.stop, &self.semaphore)
                .await
        };
        drop(progress);
        match result {
            Ok(Verdict::Pass) => Step::Done(Outcome::Passed(item)),
            Ok(Verdict::Filter) => Step::Done(Outcome::Filtered(item.seq)),
            Err(Unsettled::Interrupted) => Step::Stopped,
            Err(Unsettled::Failed(err, attempts)) => Step::Done(self.failed(item, err, attempts)),
        }
    }

    fn failed(&self, item: Item, err: OpError, attempts: u32) -> Outcome {
        match self.ctl.policy.on_error {
            OnError::Drop => Outcome::Dropped {
                seq: item.seq,
                kind: err.kind.to_owned(),
            },
            OnError::DeadLetter | OnError::FailJob => Outcome::Failed {
                item,
                attempts,
                kind: err.kind.to_owned(),
                detail: err.detail,
            },
        }
    }

    /// Sends in-progress acks every half `ack_wait` until dropped.
    fn progress(&self, msg: jetstream::Message) -> tokio_util::sync::DropGuard {
        let token = CancellationToken::new();
        let every = (self.limits.ack_wait / 2).max(Duration::from_millis(100));
        let done = token.clone();
        self.handle.spawn(async move {
            loop {
                tokio::select! {
                    _ = done.cancelled() => break,
                    _ = tokio::time::sleep(every) => {
                        let _ = msg.ack_with(AckKind::Progress).await;
                    }
                }
            }
        });
        token.drop_guard()
    }
}
