//! Stages and bridges: the workers that move items from one queue to the
//! next.
//!
//! * A **thread stage** runs N named OS threads, each looping
//!   `take → op → push` on its input queue.
//! * An **async stage** runs N tokio tasks on the job's runtime, each
//!   looping `take().await → permit → op → push().await`, with a semaphore
//!   bounding the operations in flight (`concurrency`).
//! * A **bridge** is one OS thread that hands items across worlds: it
//!   blocks on one side and pushes with the blocking API of the other, so
//!   neither threads nor tasks ever wait in the other world's way.
//!
//! Items move in chunks where no item can wait (see
//! [`crate::queue`]): a worker takes up to [`CHUNK`] items in one go, runs
//! them one by one, and hands its results on when it has a chunk or is
//! about to wait, whichever comes first. An async worker holds one permit
//! for a chunk of instant items. Stages whose items may wait (sleeps,
//! HTTP, rate limits, retries) take and hand on one item at a time.
//!
//! Workers stop when their input queue is empty and closed (a drain
//! cascading down the pipeline), when they are retired by a tune (after
//! the chunk they hold), or when the job aborts, in which case whatever
//! they hold goes to leftovers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::SmallRng;

use shared::spec::{OnError, Runtime, StageSpec};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::core::JobCore;
use crate::item::Item;
use crate::ops::{Op, OpError, OpFailure, Verdict, worker_rng};
use crate::policy::{Policy, backoff};
use crate::queue::{CHUNK, Chunk, PushError, Pushed, Rx, Took, Tx};
use crate::signal::Flag;
use crate::stats::{Laps, NodeStats, ShardRef, Stride};

/// Control of one stage: spawning and retiring workers while it runs.
#[derive(Debug)]
pub struct StageCtl {
    /// Position in the spec's `stages`.
    pub index: usize,
    /// The stage's spec (its `workers` is the starting value).
    pub spec: StageSpec,
    /// The stage's measurements.
    pub stats: Arc<NodeStats>,
    /// Timeout, retry, rate limit and error policy.
    pub policy: Policy,
    op: Arc<Op>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// What a new worker needs. Dropped as soon as the input closes, so
    /// its clone of the downstream sender cannot hold the drain cascade up.
    spawner: Option<Spawner>,
    threads: Vec<(Arc<AtomicBool>, JoinHandle<()>)>,
    tasks: Vec<CancellationToken>,
    next_worker: usize,
    /// Async stages: the permits bounding operations in flight.
    semaphore: Option<Arc<Semaphore>>,
    concurrency: u32,
}

#[derive(Debug)]
struct Spawner {
    rx: Rx,
    tx: Tx,
    core: Arc<JobCore>,
}

/// Why a tune could not be applied to a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// The stage's input has closed; it is finishing and takes no new workers.
    #[error("stage `{0}` has finished its input")]
    Finished(String),
    /// `concurrency` was asked of a thread stage.
    #[error("stage `{0}` runs on threads; only async stages have a concurrency limit")]
    NotAsync(String),
    /// The operating system refused another thread (a process or memory
    /// limit); the stage was put back to the workers it had.
    #[error(
        "the server could not start {wanted} threads for stage `{stage}` (a system limit); it keeps its {kept} workers"
    )]
    Spawn {
        /// The stage.
        stage: String,
        /// Workers asked for.
        wanted: u32,
        /// Workers it still has.
        kept: u32,
    },
}

impl StageCtl {
    /// A stage that reads `rx` and writes `tx`; call [`StageCtl::scale_to`]
    /// to start its workers.
    pub fn new(
        index: usize,
        spec: StageSpec,
        stats: Arc<NodeStats>,
        rx: Rx,
        tx: Tx,
        core: Arc<JobCore>,
    ) -> Arc<Self> {
        let concurrency = spec.effective_concurrency();
        let semaphore = (spec.runtime == Runtime::Async)
            .then(|| Arc::new(Semaphore::new(concurrency as usize)));
        if semaphore.is_some() {
            stats.concurrency.store(concurrency, Ordering::Relaxed);
        }
        Arc::new(Self {
            index,
            policy: Policy::new(&spec),
            op: Arc::new(Op::for_job(&spec.op, &core.handle, &core.egress)),
            spec,
            stats,
            inner: Mutex::new(Inner {
                spawner: Some(Spawner { rx, tx, core }),
                threads: Vec::new(),
                tasks: Vec::new(),
                next_worker: 0,
                semaphore,
                concurrency,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live workers.
    pub fn workers(&self) -> u32 {
        let inner = self.lock();
        (inner.threads.len() + inner.tasks.len()) as u32
    }

    /// Current concurrency limit (async stages).
    pub fn concurrency(&self) -> Option<u32> {
        let inner = self.lock();
        inner.semaphore.as_ref().map(|_| inner.concurrency)
    }

    /// Starts or retires workers until `target` are live. Retired workers
    /// finish the item they hold, then exit.
    pub fn scale_to(self: &Arc<Self>, target: u32) -> Result<(), ScaleError> {
        let mut inner = self.lock();
        let Some(spawner) = &inner.spawner else {
            return Err(ScaleError::Finished(self.spec.name.clone()));
        };
        let (rx, tx, core) = (spawner.rx.clone(), spawner.tx.clone(), spawner.core.clone());
        let target = target as usize;
        match self.spec.runtime {
            Runtime::Thread => {
                while inner.threads.len() > target {
                    let (retire, handle) = inner.threads.pop().expect("len > target");
                    retire.store(true, Ordering::Relaxed);
                    core.retired_threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle);
                }
                let before = inner.threads.len();
                while inner.threads.len() < target {
                    let n = inner.next_worker;
                    inner.next_worker += 1;
                    let retire = Arc::new(AtomicBool::new(false));
                    let worker = ThreadWorker {
                        n,
                        ctl: self.clone(),
                        rx: rx.clone(),
                        tx: tx.clone(),
                        core: core.clone(),
                        retire: retire.clone(),
                    };
                    let name = format!("ql-{}-{}-{n}", core.name, self.spec.name);
                    self.worker_started();
                    match std::thread::Builder::new()
                        .name(name)
                        .spawn(move || worker.run())
                    {
                        Ok(handle) => inner.threads.push((retire, handle)),
                        Err(e) => {
                            self.worker_exited();
                            tracing::warn!(job = %core.id, stage = %self.spec.name, error = %e, wanted = target, "cannot start a stage thread; scaling back");
                            // Leave the stage as it was: retire what this
                            // call started.
                            while inner.threads.len() > before {
                                let (retire, handle) = inner.threads.pop().expect("len > before");
                                retire.store(true, Ordering::Relaxed);
                                core.retired_threads
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(handle);
                            }
                            return Err(ScaleError::Spawn {
                                stage: self.spec.name.clone(),
                                wanted: target as u32,
                                kept: before as u32,
                            });
                        }
                    }
                }
            }
            Runtime::Async => {
                while inner.tasks.len() > target {
                    inner.tasks.pop().expect("len > target").cancel();
                }
                let semaphore = inner.semaphore.clone().expect("async stage semaphore");
                while inner.tasks.len() < target {
                    let n = inner.next_worker;
                    inner.next_worker += 1;
                    let retire = CancellationToken::new();
                    let worker = TaskWorker {
                        n,
                        ctl: self.clone(),
                        rx: rx.clone(),
                        tx: tx.clone(),
                        core: core.clone(),
                        retire: retire.clone(),
                        semaphore: semaphore.clone(),
                    };
                    self.worker_started();
                    core.tracker.spawn_on(worker.run(), &core.handle);
                    inner.tasks.push(retire);
                }
            }
        }
        Ok(())
    }

    /// Changes an async stage's concurrency limit. Raising adds permits at
    /// once; lowering takes permits back as operations finish.
    pub fn set_concurrency(&self, target: u32) -> Result<(), ScaleError> {
        let mut inner = self.lock();
        let Some(semaphore) = inner.semaphore.clone() else {
            return Err(ScaleError::NotAsync(self.spec.name.clone()));
        };
        let Some(spawner) = &inner.spawner else {
            return Err(ScaleError::Finished(self.spec.name.clone()));
        };
        let core = spawner.core.clone();
        let current = inner.concurrency;
        if target > current {
            semaphore.add_permits((target - current) as usize);
        } else if target < current {
            let take = current - target;
            core.tracker.spawn_on(
                async move {
                    if let Ok(permits) = semaphore.acquire_many(take).await {
                        permits.forget();
                    }
                },
                &core.handle,
            );
        }
        inner.concurrency = target;
        self.stats.concurrency.store(target, Ordering::Relaxed);
        Ok(())
    }

    /// Called by a worker that found the input closed: no new workers from
    /// now on, and the spawner's downstream sender is released.
    fn input_closed(&self) {
        let spawner = self.lock().spawner.take();
        drop(spawner);
    }

    /// Releases the spawner and hands back the stage's threads to join.
    pub fn finish(&self) -> Vec<JoinHandle<()>> {
        let mut inner = self.lock();
        inner.spawner = None;
        inner.tasks.clear();
        inner.threads.drain(..).map(|(_, h)| h).collect()
    }

    /// Counts a worker in; paired with [`StageCtl::worker_exited`], so the
    /// gauge shows workers actually running (a retired one counts until it
    /// has finished its item).
    fn worker_started(&self) {
        self.stats.workers.fetch_add(1, Ordering::Relaxed);
    }

    fn worker_exited(&self) {
        self.stats.workers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How an item's attempts ended without a verdict.
enum Unsettled {
    /// Failed for good after this many attempts.
    Failed(OpError, u32),
    /// The job aborted meanwhile.
    Interrupted,
}

impl StageCtl {
    /// Counts a failed attempt; returns the backoff before the next one,
    /// or `None` if the error is final.
    fn on_attempt_error(
        &self,
        shard: ShardRef<'_>,
        err: &OpError,
        attempt: u32,
        rng: &mut SmallRng,
    ) -> Option<Duration> {
        if err.kind == OpError::timed_out(Duration::ZERO).kind {
            shard.0.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        let retry = self.policy.retry.as_ref()?;
        if !err.retryable || attempt >= retry.max_attempts {
            return None;
        }
        shard.0.retries.fetch_add(1, Ordering::Relaxed);
        Some(backoff(retry, attempt, rng.random()))
    }

    /// Settles an item that failed for good, by the stage's `on_error`.
    fn settle_failure(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        item: &Item,
        err: &OpError,
        attempts: u32,
    ) {
        let stats = &self.stats;
        match self.policy.on_error {
            OnError::Drop => {
                shard.0.errors.fetch_add(1, Ordering::Relaxed);
                stats.note_reason(format!("op error at `{}`: {}", stats.info.name, err.kind));
            }
            OnError::DeadLetter | OnError::FailJob => {
                core.dead_letters.put(stats, item, err, attempts);
                shard.0.dead_lettered.fetch_add(1, Ordering::Relaxed);
                if self.policy.on_error == OnError::FailJob {
                    core.fail(format!(
                        "stage `{}` failed an item (on_error = fail_job): {}",
                        stats.info.name, err.detail
                    ));
                }
            }
        }
    }

    /// Settles what the attempts decided about `item`: `Some(item)` to
    /// pass it downstream; `None` when it was filtered, failed for good
    /// (by `on_error`) or interrupted (to leftovers).
    fn settle(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        item: Item,
        outcome: Result<Verdict, Unsettled>,
    ) -> Option<Item> {
        match outcome {
            Ok(Verdict::Pass) => return Some(item),
            Ok(Verdict::Filter) => {
                shard.0.filtered.fetch_add(1, Ordering::Relaxed);
            }
            Err(Unsettled::Failed(err, attempts)) => {
                self.settle_failure(shard, core, &item, &err, attempts);
            }
            Err(Unsettled::Interrupted) => core.leftovers.put(&self.stats, item),
        }
        None
    }

    /// How many items a worker takes at once: a chunk when no item can
    /// wait (an instant op, no rate limit, no retries), else one, so a
    /// slow item never holds others back. Asked at every refill, so a
    /// tune that sets a rate limit takes effect from the next chunk.
    fn chunk_bound(&self) -> usize {
        if self.op.is_instant() && self.policy.never_waits() {
            CHUNK
        } else {
            1
        }
    }

    /// Books a flush downstream: what was handed on counts as out, and the
    /// time as blocked if the push waited for room. False when the push
    /// stopped (an abort): what it did not hand on went to leftovers.
    fn after_flush(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        handed: usize,
        out: &mut VecDeque<Item>,
        pushed: Result<Pushed, PushError>,
        laps: &mut Laps,
    ) -> bool {
        let gone = (handed - out.len()) as u64;
        shard.0.out.fetch_add(gone, Ordering::Relaxed);
        match pushed {
            Ok(pushed) => {
                laps.lap(if pushed.waited {
                    &shard.0.blocked_ns
                } else {
                    &shard.0.busy_ns
                });
                true
            }
            Err(e) => {
                laps.lap(&shard.0.blocked_ns);
                tracing::debug!(job = %core.id, stage = %self.spec.name, error = %e, "push stopped");
                for item in out.drain(..) {
                    core.leftovers.put(&self.stats, item);
                }
                false
            }
        }
    }

    /// Hands on what the worker finished, from a thread.
    fn flush_blocking(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        tx: &Tx,
        out: &mut VecDeque<Item>,
        laps: &mut Laps,
    ) -> bool {
        if out.is_empty() {
            return true;
        }
        laps.lap(&shard.0.busy_ns);
        let handed = out.len();
        let pushed = tx.push_blocking(out, &core.abort);
        self.after_flush(shard, core, handed, out, pushed, laps)
    }

    /// Hands on what the worker finished, from a task.
    async fn flush_async(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        tx: &Tx,
        out: &mut VecDeque<Item>,
        laps: &mut Laps,
    ) -> bool {
        if out.is_empty() {
            return true;
        }
        laps.lap(&shard.0.busy_ns);
        let handed = out.len();
        let pushed = tx.push(out).await;
        self.after_flush(shard, core, handed, out, pushed, laps)
    }

    /// A worker leaving: on an abort what it holds goes to leftovers;
    /// otherwise what it finished has been handed on already.
    fn leave(&self, core: &JobCore, input: &mut Chunk, out: &mut VecDeque<Item>) {
        for item in out.drain(..).chain(input.drain()) {
            core.leftovers.put(&self.stats, item);
        }
    }

    /// Runs the operation on a thread, with the rate limit, timeout and
    /// retries of the stage's policy.
    fn attempt_blocking(
        &self,
        shard: ShardRef<'_>,
        item: &mut Item,
        rng: &mut SmallRng,
        abort: &Flag,
    ) -> Result<Verdict, Unsettled> {
        let mut attempt = 1;
        loop {
            if !self.policy.gate.wait_blocking(abort) {
                return Err(Unsettled::Interrupted);
            }
            match self.op.run_blocking(item, rng, abort, self.policy.timeout) {
                Ok(verdict) => return Ok(verdict),
                Err(OpFailure::Interrupted) => return Err(Unsettled::Interrupted),
                Err(OpFailure::Error(err)) => {
                    let Some(wait) = self.on_attempt_error(shard, &err, attempt, rng) else {
                        return Err(Unsettled::Failed(err, attempt));
                    };
                    if abort.wait_timeout(wait) {
                        return Err(Unsettled::Interrupted);
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// Runs an instant operation (no waits, no retries) inline, from a
    /// task working through a chunk.
    fn attempt_instant(
        &self,
        item: &mut Item,
        rng: &mut SmallRng,
        abort: &Flag,
    ) -> Result<Verdict, Unsettled> {
        match self.op.run_blocking(item, rng, abort, None) {
            Ok(verdict) => Ok(verdict),
            Err(OpFailure::Interrupted) => Err(Unsettled::Interrupted),
            Err(OpFailure::Error(err)) => Err(Unsettled::Failed(err, 1)),
        }
    }

    /// Runs the operation on a task: a concurrency permit is held per
    /// attempt only, so backoff waits do not take a slot; the timeout
    /// cancels the attempt (the item is only borrowed by it).
    async fn attempt_async(
        &self,
        shard: ShardRef<'_>,
        item: &mut Item,
        rng: &mut SmallRng,
        abort: &Flag,
        semaphore: &Arc<Semaphore>,
    ) -> Result<Verdict, Unsettled> {
        let mut attempt = 1;
        loop {
            if !self.policy.gate.wait_async(abort).await {
                return Err(Unsettled::Interrupted);
            }
            let permit = tokio::select! {
                biased;
                _ = abort.cancelled() => None,
                permit = semaphore.clone().acquire_owned() => permit.ok(),
            };
            let Some(permit) = permit else {
                return Err(Unsettled::Interrupted);
            };
            let result = match self.policy.timeout {
                Some(limit) => {
                    match tokio::time::timeout(limit, self.op.run_async(item, rng, abort)).await {
                        Ok(result) => result,
                        Err(_elapsed) => Err(OpError::timed_out(limit).into()),
                    }
                }
                None => self.op.run_async(item, rng, abort).await,
            };
            drop(permit);
            match result {
                Ok(verdict) => return Ok(verdict),
                Err(OpFailure::Interrupted) => return Err(Unsettled::Interrupted),
                Err(OpFailure::Error(err)) => {
                    let Some(wait) = self.on_attempt_error(shard, &err, attempt, rng) else {
                        return Err(Unsettled::Failed(err, attempt));
                    };
                    tokio::select! {
                        biased;
                        _ = abort.cancelled() => return Err(Unsettled::Interrupted),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// The error recorded for an operation that panicked.
fn panicked(panic: Box<dyn std::any::Any + Send>) -> OpError {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    OpError {
        kind: "panic",
        detail: format!("the operation panicked: {detail}"),
        retryable: false,
    }
}

/// Records what was timed of one item: its queue wait and service time.
/// Only items picked by the stride are timed; time shares are booked by
/// [`Laps`], exactly, per chunk.
#[inline]
fn book_item(shard: ShardRef<'_>, stride: &mut Stride, start: Instant, item: &Item) {
    let done = Instant::now();
    let wait = item.enqueued.map(|e| start.saturating_duration_since(e));
    shard.record(wait, Some(done - start), None);
    stride.adapt(done - start);
}

struct ThreadWorker {
    n: usize,
    ctl: Arc<StageCtl>,
    rx: Rx,
    tx: Tx,
    core: Arc<JobCore>,
    retire: Arc<AtomicBool>,
}

impl ThreadWorker {
    fn run(self) {
        let ctl = &*self.ctl;
        let core = &*self.core;
        let shard = ctl.stats.shard(self.n);
        let mut rng = worker_rng(core.seed, ctl.index, self.n);
        let mut stride = Stride::default();
        let abort = &core.abort;
        let mut input = Chunk::new(&self.rx);
        let mut out = VecDeque::with_capacity(CHUNK);
        let mut laps = Laps::start();
        let mut bound = 1;
        loop {
            if input.is_empty() {
                // A retired worker finishes the chunk it holds first.
                if self.retire.load(Ordering::Relaxed) {
                    break;
                }
                bound = ctl.chunk_bound();
                if self.rx.try_take(bound, &mut input) == 0 {
                    // About to wait: hand on what is finished first.
                    if !ctl.flush_blocking(shard, core, &self.tx, &mut out, &mut laps) {
                        break;
                    }
                    laps.lap(&shard.0.busy_ns);
                    let took = self.rx.take_blocking(bound, None, &mut input);
                    laps.lap(&shard.0.idle_ns);
                    match took {
                        Took::Items => {}
                        Took::Timeout if abort.is_set() => break,
                        Took::Timeout => continue,
                        Took::Closed => {
                            ctl.input_closed();
                            break;
                        }
                    }
                }
            }
            if abort.is_set() {
                break;
            }
            let Some(mut item) = input.pop() else {
                continue;
            };
            let start = stride.tick().then(Instant::now);
            // A panicking operation must not take the item with it: it
            // becomes a dead letter and the worker carries on.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctl.attempt_blocking(shard, &mut item, &mut rng, abort)
            }))
            .unwrap_or_else(|panic| Err(Unsettled::Failed(panicked(panic), 1)));
            if let Some(start) = start {
                book_item(shard, &mut stride, start, &item);
            }
            match ctl.settle(shard, core, item, outcome) {
                Some(item) => {
                    out.push_back(item);
                    if out.len() >= bound
                        && !ctl.flush_blocking(shard, core, &self.tx, &mut out, &mut laps)
                    {
                        break;
                    }
                }
                None if abort.is_set() => break,
                None => {}
            }
        }
        if !abort.is_set() {
            ctl.flush_blocking(shard, core, &self.tx, &mut out, &mut laps);
        }
        ctl.leave(core, &mut input, &mut out);
        laps.lap(&shard.0.busy_ns);
        ctl.worker_exited();
    }
}

struct TaskWorker {
    n: usize,
    ctl: Arc<StageCtl>,
    rx: Rx,
    tx: Tx,
    core: Arc<JobCore>,
    retire: CancellationToken,
    semaphore: Arc<Semaphore>,
}

impl TaskWorker {
    async fn run(self) {
        let ctl = &*self.ctl;
        let core = &*self.core;
        let shard = ctl.stats.shard(self.n);
        let mut rng = worker_rng(core.seed, ctl.index, self.n);
        let mut stride = Stride::default();
        let abort = &core.abort;
        let mut input = Chunk::new(&self.rx);
        let mut out = VecDeque::with_capacity(CHUNK);
        let mut laps = Laps::start();
        let mut bound = 1;
        // While working through a chunk of instant items, one permit: this
        // task runs one of them at a time.
        let mut permit: Option<OwnedSemaphorePermit> = None;
        loop {
            if input.is_empty() {
                permit = None;
                if self.retire.is_cancelled() {
                    break;
                }
                bound = ctl.chunk_bound();
                if self.rx.try_take(bound, &mut input) == 0 {
                    if !ctl
                        .flush_async(shard, core, &self.tx, &mut out, &mut laps)
                        .await
                    {
                        break;
                    }
                    laps.lap(&shard.0.busy_ns);
                    // `take` is cancel-safe: losing the race loses no item.
                    let got = tokio::select! {
                        biased;
                        _ = self.retire.cancelled() => break,
                        _ = abort.cancelled() => break,
                        got = self.rx.take(bound, &mut input) => got,
                    };
                    laps.lap(&shard.0.idle_ns);
                    if !got {
                        ctl.input_closed();
                        break;
                    }
                }
            }
            if abort.is_set() {
                break;
            }
            let Some(mut item) = input.pop() else {
                continue;
            };
            let start = stride.tick().then(Instant::now);
            let outcome = if bound > 1 && ctl.policy.never_waits() {
                if permit.is_none() {
                    permit = tokio::select! {
                        biased;
                        _ = abort.cancelled() => None,
                        p = self.semaphore.clone().acquire_owned() => p.ok(),
                    };
                }
                if permit.is_some() {
                    ctl.attempt_instant(&mut item, &mut rng, abort)
                } else {
                    Err(Unsettled::Interrupted)
                }
            } else {
                ctl.attempt_async(shard, &mut item, &mut rng, abort, &self.semaphore)
                    .await
            };
            if let Some(start) = start {
                book_item(shard, &mut stride, start, &item);
            }
            match ctl.settle(shard, core, item, outcome) {
                Some(item) => {
                    out.push_back(item);
                    if out.len() >= bound {
                        permit = None;
                        if !ctl
                            .flush_async(shard, core, &self.tx, &mut out, &mut laps)
                            .await
                        {
                            break;
                        }
                    }
                }
                None if abort.is_set() => break,
                None => {}
            }
        }
        drop(permit);
        if !abort.is_set() {
            ctl.flush_async(shard, core, &self.tx, &mut out, &mut laps)
                .await;
        }
        ctl.leave(core, &mut input, &mut out);
        laps.lap(&shard.0.busy_ns);
        ctl.worker_exited();
    }
}

/// Runs a bridge on the current thread: takes chunks from `rx` and pushes
/// them into `tx`, blocking on both sides (a thread can wait on either
/// kind of queue), until `rx` closes or the job aborts.
pub fn run_bridge(rx: Rx, tx: Tx, stats: Arc<NodeStats>, core: &JobCore) {
    let shard = stats.shard(0);
    let mut stride = Stride::default();
    let mut input = Chunk::new(&rx);
    let mut out = VecDeque::with_capacity(CHUNK);
    let mut laps = Laps::start();
    loop {
        if rx.try_take(CHUNK, &mut input) == 0 {
            laps.lap(&shard.0.busy_ns);
            let took = rx.take_blocking(CHUNK, None, &mut input);
            laps.lap(&shard.0.idle_ns);
            match took {
                Took::Items => {}
                Took::Timeout if core.abort.is_set() => break,
                Took::Timeout => continue,
                Took::Closed => break,
            }
        }
        if core.abort.is_set() {
            break;
        }
        while let Some(item) = input.pop() {
            if stride.tick() {
                // A bridge does no work: only its queue wait is worth timing.
                let start = Instant::now();
                book_item(shard, &mut stride, start, &item);
            }
            out.push_back(item);
        }
        laps.lap(&shard.0.busy_ns);
        let handed = out.len() as u64;
        let pushed = tx.push_blocking(&mut out, &core.abort);
        shard
            .0
            .out
            .fetch_add(handed - out.len() as u64, Ordering::Relaxed);
        match pushed {
            Ok(p) if p.waited => laps.lap(&shard.0.blocked_ns),
            Ok(_) => laps.lap(&shard.0.busy_ns),
            Err(_) => break,
        }
    }
    for item in out.drain(..).chain(input.drain()) {
        core.leftovers.put(&stats, item);
    }
    laps.lap(&shard.0.busy_ns);
}
