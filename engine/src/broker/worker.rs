//! A broker stage's workers, wherever they run: a `queuelab worker`
//! process on another host, or the server's own share.
//!
//! Each worker takes messages (each a batch of items) from the stage's
//! shared durable consumer — a few messages ahead when the operation is
//! instant, one ahead when it may wait, with in-progress acks for every
//! message it holds from the moment it arrives, so none passes `ack_wait`
//! while it waits its turn — and runs each item with the stage's own
//! machinery: the same rate limit, timeout, retries and `on_error` as in
//! memory. An item that fails goes its own retry and dead-letter way; the
//! rest of its batch goes on. The results of a message (split over more
//! than one message when they pass the broker's `max_payload`) are stored
//! in the output stream with ids `job:stage.out:first-last.part`, and only
//! once the broker has stored them all is the input acked. A worker
//! killed in between leaves its message unacknowledged: after `ack_wait`
//! the broker delivers it to another worker, whose results carry the same
//! ids and are stored once (and the server books each item once
//! whatever it gets twice). A message delivered `max_deliver` times (its
//! workers kept dying) becomes dead letters with the delivery count.
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
use futures_util::StreamExt;
use shared::spec::{OnError, Runtime};
pub use shared::workers::Assignment;
use shared::workers::{HostLimits, StageCounts};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::edge::{EdgeLimits, is_full, work_consumer};
use super::wire::{Builder, Outcome, TooLarge, Undecodable, decode_items};
use super::{BrokerError, backoff};
use crate::egress::Egress;
use crate::item::{Item, Payload};
use crate::ops::{OpError, Verdict, worker_rng};
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

/// Messages a worker asks the broker for ahead when its operation is
/// instant.
const PREFETCH: usize = 4;
/// Batches a worker may have in storing at once while it works on more.
const FINISHING: usize = 8;
/// How long a worker's request for one message waits at the broker.
const FETCH_WAIT: Duration = Duration::from_secs(5);

/// A delivered message, with the in-progress acks that keep it from
/// being redelivered while it is held (none for instant operations).
struct Held {
    msg: jetstream::Message,
    _progress: Option<tokio_util::sync::DropGuard>,
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
    /// Operations in flight on this host's async workers.
    semaphore: Arc<Semaphore>,
    /// The permits `semaphore` stands for now.
    concurrency: std::sync::atomic::AtomicU32,
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
            concurrency: std::sync::atomic::AtomicU32::new(
                assignment.stage.effective_concurrency(),
            ),
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
                    let spawned = crate::stage::spawn_running(name, move || {
                        handle.block_on(me.run(k, token, true))
                    });
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
        let mut rng = worker_rng(self.assignment.seed, self.assignment.index, k);
        let instant = self.ctl.spec.op.is_instant() && self.ctl.policy.never_waits();
        if instant {
            self.pull_instant(k, &retire, &mut rng, blocking).await;
        } else {
            self.pull_waiting(k, &retire, &mut rng, blocking).await;
        }
    }

    /// Instant operations: a few messages ahead, from a pull stream.
    async fn pull_instant(
        self: &Arc<Self>,
        k: usize,
        retire: &CancellationToken,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
    ) {
        // Storing a batch's results and acking its input overlaps the next
        // batch's work, a few batches deep.
        let finishing = Arc::new(Semaphore::new(FINISHING));
        let mut tries = 0;
        'connect: while !retire.is_cancelled() {
            let stream = self
                .consumer
                .stream()
                .max_messages_per_batch(PREFETCH)
                .messages()
                .await;
            let mut messages = match stream {
                Ok(m) => m,
                Err(e) => {
                    if !self.wait_after_failed_pull(&e, &mut tries, retire).await {
                        break;
                    }
                    continue;
                }
            };
            tries = 0;
            loop {
                let next = tokio::select! {
                    biased;
                    _ = retire.cancelled() => break 'connect,
                    m = messages.next() => m,
                };
                let msg = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "pull interrupted");
                        continue;
                    }
                    None => continue 'connect,
                };
                let Ok(permit) = finishing.clone().acquire_owned().await else {
                    break 'connect;
                };
                let held = Held {
                    msg,
                    _progress: None,
                };
                if !self.settle_message(k, held, rng, blocking, permit).await {
                    break 'connect;
                }
            }
        }
    }

    /// Operations that may wait: one message at a time, the next one
    /// asked for while this one runs, each kept alive by in-progress acks
    /// from the moment it arrives. A retiring worker settles what it
    /// holds (the prefetched message too) before it goes.
    async fn pull_waiting(
        self: &Arc<Self>,
        k: usize,
        retire: &CancellationToken,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
    ) {
        let finishing = Arc::new(Semaphore::new(FINISHING));
        let mut ahead = Some(self.fetch_one());
        let mut tries = 0;
        while let Some(mut fetch) = ahead.take() {
            let got = tokio::select! {
                biased;
                got = &mut fetch => got,
                _ = retire.cancelled(), if !retire.is_cancelled() => {
                    // Nothing held: gone. A message already on its way
                    // goes back to the broker after ack_wait.
                    fetch.abort();
                    break;
                }
            };
            let held = match joined(got) {
                Ok(Some(held)) => held,
                Ok(None) => {
                    tries = 0;
                    ahead = (!retire.is_cancelled()).then(|| self.fetch_one());
                    continue;
                }
                Err(e) => {
                    if !self.wait_after_failed_pull(&e, &mut tries, retire).await {
                        break;
                    }
                    ahead = Some(self.fetch_one());
                    continue;
                }
            };
            if !retire.is_cancelled() {
                ahead = Some(self.fetch_one());
            }
            let Ok(permit) = finishing.clone().acquire_owned().await else {
                break;
            };
            if !self.settle_message(k, held, rng, blocking, permit).await {
                break;
            }
        }
        if let Some(fetch) = ahead {
            // A retired worker's last request: whatever it brings is
            // settled rather than left to time out.
            if let Ok(Some(held)) = joined(fetch.await)
                && let Ok(permit) = finishing.clone().acquire_owned().await
            {
                self.settle_message(k, held, rng, blocking, permit).await;
            }
        }
    }

    /// After a pull the broker refused: says so, then backs off (longer
    /// each time in a row); false if the worker retired meanwhile.
    async fn wait_after_failed_pull(
        &self,
        e: &(dyn std::fmt::Display + Sync),
        tries: &mut u32,
        retire: &CancellationToken,
    ) -> bool {
        tracing::warn!(stage = %self.assignment.stage.name, error = %e, "cannot pull from the stage's stream");
        let waited = tokio::select! {
            _ = retire.cancelled() => false,
            _ = tokio::time::sleep(backoff(*tries) * 10) => true,
        };
        *tries += 1;
        waited
    }

    /// Asks the broker for one message, in a task of its own, so the
    /// in-progress acks of what it brings start on arrival.
    fn fetch_one(
        self: &Arc<Self>,
    ) -> tokio::task::JoinHandle<Result<Option<Held>, async_nats::Error>> {
        let me = self.clone();
        self.handle.spawn(async move {
            let mut batch = me
                .consumer
                .fetch()
                .max_messages(1)
                .expires(FETCH_WAIT)
                .messages()
                .await?;
            match batch.next().await {
                Some(msg) => {
                    let msg = msg?;
                    let progress = Some(me.progress(msg.clone()));
                    Ok(Some(Held {
                        msg,
                        _progress: progress,
                    }))
                }
                None => Ok(None),
            }
        })
    }

    /// Runs each item of a message, then stores every result and acks
    /// the input in a task of its own; false if the assignment stopped
    /// mid-message (it stays unacked, to be delivered again).
    async fn settle_message(
        self: &Arc<Self>,
        k: usize,
        held: Held,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> bool {
        let msg = &held.msg;
        let delivered = msg.info().map_or(1, |i| i.delivered.max(1) as u32);
        let Ok(decoded) = decode_items(&msg.payload) else {
            tracing::error!(stage = %self.assignment.stage.name, "a message without items on the stage's stream: refused");
            let _ = msg.ack_with(AckKind::Term).await;
            return true;
        };
        if delivered > 1 {
            self.counts
                .redelivered
                .fetch_add(decoded.items.len() as u64, Ordering::Relaxed);
        }
        let mut outcomes = Vec::with_capacity(decoded.items.len());
        for item in decoded.items {
            let outcome = match self.outcome(k, item, delivered, rng, blocking).await {
                Some(outcome) => outcome,
                // Stopped mid-item: unacked, it is delivered again.
                None => return false,
            };
            self.counts.processed.fetch_add(1, Ordering::Relaxed);
            match &outcome {
                Outcome::Passed(_) => &self.counts.passed,
                Outcome::Filtered(_) => &self.counts.filtered,
                _ => &self.counts.failed,
            }
            .fetch_add(1, Ordering::Relaxed);
            outcomes.push(outcome);
        }
        let parts = self.result_messages(decoded.first, delivered, outcomes);
        let last = decoded.first + parts.iter().map(|p| p.1).sum::<u64>().saturating_sub(1);
        let me = self.clone();
        self.finishing.fetch_add(1, Ordering::Relaxed);
        let first = decoded.first;
        self.handle.spawn(async move {
            me.finish(first, last, parts, held).await;
            me.finishing.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
        true
    }

    /// The result messages of a message's outcomes (edge sequences from
    /// `first`), each within the broker's `max_payload`, with how many
    /// results each carries. A result too large for any message becomes
    /// a dead letter of its item's start.
    fn result_messages(
        &self,
        first: u64,
        delivered: u32,
        outcomes: Vec<Outcome>,
    ) -> Vec<(bytes::Bytes, u64)> {
        let limit = self.message_limit();
        let mut parts = Vec::new();
        let mut message = Builder::results(delivered);
        for (k, outcome) in outcomes.into_iter().enumerate() {
            let edge = first + k as u64;
            if message.push_result(edge, &outcome, limit).is_err() {
                if !message.is_empty() {
                    let full = std::mem::replace(&mut message, Builder::results(delivered));
                    let n = u64::from(full.count());
                    parts.push((full.finish(), n));
                }
                if let Err(TooLarge(size)) = message.push_result(edge, &outcome, limit) {
                    let too_large = too_large_result(outcome, size, limit);
                    message
                        .push_result(edge, &too_large, limit)
                        .expect("a dead letter of a kilobyte fits");
                }
            }
        }
        if !message.is_empty() || parts.is_empty() {
            let n = u64::from(message.count());
            parts.push((message.finish(), n));
        }
        parts
    }

    fn message_limit(&self) -> usize {
        let max = self.js.client().server_info().max_payload;
        super::publish::message_limit(if max == 0 { 1 << 20 } else { max })
    }

    /// Stores a message's results, then (only then) acks its input.
    async fn finish(&self, first: u64, last: u64, parts: Vec<(bytes::Bytes, u64)>, held: Held) {
        if !self.store(first, last, parts).await {
            return;
        }
        let n = self.stored_batches.fetch_add(1, Ordering::Relaxed) + 1;
        if self.crash_after == Some(n) {
            tracing::error!(stage = %self.assignment.stage.name, "fault point: crashing after storing results, before acking them");
            std::process::abort();
        }
        if let Err(e) = held.msg.ack().await {
            tracing::debug!(error = %e, "ack not sent");
        }
    }

    /// Stores result messages in the output stream, retrying until each
    /// is stored; false if stopped first.
    async fn store(&self, first: u64, last: u64, parts: Vec<(bytes::Bytes, u64)>) -> bool {
        let subject = self.assignment.names.output_subject();
        let mut tries = 0;
        let mut todo: Vec<(u32, bytes::Bytes)> = parts
            .into_iter()
            .enumerate()
            .map(|(k, (bytes, _))| (k as u32, bytes))
            .collect();
        while !todo.is_empty() {
            let mut acks = Vec::with_capacity(todo.len());
            for (part, payload) in &todo {
                let msg = Publish::build()
                    .payload(payload.clone())
                    .message_id(self.assignment.names.output_id(first, last, *part));
                acks.push(self.js.send_publish(subject.clone(), msg).await);
            }
            let mut again = Vec::new();
            for ((part, payload), ack) in todo.into_iter().zip(acks) {
                let stored = match ack {
                    Ok(fut) => fut.await,
                    Err(e) => Err(e),
                };
                if let Err(e) = stored {
                    if !is_full(&e) && tries == 0 {
                        tracing::warn!(stage = %self.assignment.stage.name, error = %e, "storing a result failed; retrying");
                    }
                    again.push((part, payload));
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
        item: Result<Item, Undecodable>,
        delivered: u32,
        rng: &mut rand::rngs::SmallRng,
        blocking: bool,
    ) -> Option<Outcome> {
        let mut item = match item {
            Ok(item) => item,
            // Not from a QueueLab publisher: a dead letter.
            Err(bad) => {
                return Some(Outcome::Failed {
                    item: Item::new(bad.seq, Payload::Line(bad.text), None),
                    attempts: 0,
                    kind: "undecodable".into(),
                    detail: bad.error.to_string(),
                });
            }
        };
        if delivered >= self.limits.max_deliver {
            return Some(Outcome::Failed {
                item,
                attempts: 0,
                kind: "redelivered".into(),
                detail: format!(
                    "delivered {delivered} times without an ack: the workers holding it were lost"
                ),
            });
        }
        let shard = self.ctl.stats.shard(k);
        let result = if blocking {
            self.ctl.attempt_blocking(shard, &mut item, rng, &self.stop)
        } else {
            self.ctl
                .attempt_async(shard, &mut item, rng, &self.stop, &self.semaphore)
                .await
        };
        match result {
            Ok(Verdict::Pass) => Some(Outcome::Passed(item)),
            Ok(Verdict::Filter) => Some(Outcome::Filtered(item.seq)),
            Err(Unsettled::Interrupted) => None,
            Err(Unsettled::Failed(err, attempts)) => Some(self.failed(item, err, attempts)),
        }
    }

    /// Sets the stage's concurrency on this host (async stages): the
    /// server sends each host its share of a tune.
    pub fn set_concurrency(&self, n: u32) {
        let n = n.max(1);
        let current = self.concurrency.swap(n, Ordering::Relaxed);
        if n > current {
            self.semaphore.add_permits((n - current) as usize);
        } else if n < current {
            let semaphore = self.semaphore.clone();
            self.handle.spawn(async move {
                if let Ok(permits) = semaphore.acquire_many(current - n).await {
                    permits.forget();
                }
            });
        }
    }

    /// Sets the stage's rate limit on this host (its share of the job's).
    pub fn set_rate_limit(&self, rate: Option<f64>) {
        self.ctl.policy.gate.set(rate);
    }

    /// Runs with this host's share of the stage's limits (a limit not
    /// given stays as it is; concurrency applies to async stages only).
    pub fn set_limits(&self, limits: HostLimits) {
        if let Some(c) = limits.concurrency
            && self.assignment.stage.runtime == Runtime::Async
            && c != self.concurrency.load(Ordering::Relaxed)
        {
            self.set_concurrency(c);
        }
        if limits.rate_limit.is_some() && limits.rate_limit != self.ctl.policy.gate.rate() {
            self.set_rate_limit(limits.rate_limit);
        }
    }

    /// The concurrency and rate limit this host runs with now.
    pub fn limits(&self) -> (u32, Option<f64>) {
        (
            self.concurrency.load(Ordering::Relaxed),
            self.ctl.policy.gate.rate(),
        )
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

/// What stands in for a result that no message can carry: a dead letter
/// holding the start of the item, with the sizes.
fn too_large_result(outcome: Outcome, size: usize, limit: usize) -> Outcome {
    let seq = outcome.seq();
    let text = match &outcome {
        Outcome::Passed(item) | Outcome::Failed { item, .. } => item.payload.to_line(),
        Outcome::Filtered(_) | Outcome::Dropped { .. } => String::new(),
    };
    let mut end = text.len().min(1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Outcome::Failed {
        item: Item::new(seq, Payload::Line(text[..end].to_owned()), None),
        attempts: 1,
        kind: super::TOO_LARGE.into(),
        detail: format!("{} ({size} > {limit} bytes)", super::TOO_LARGE),
    }
}

/// A fetch task's answer, its panic or cancellation as an error.
fn joined(
    got: Result<Result<Option<Held>, async_nats::Error>, tokio::task::JoinError>,
) -> Result<Option<Held>, async_nats::Error> {
    got.unwrap_or_else(|e| Err(Box::new(e)))
}
