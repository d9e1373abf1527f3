//! Stages and bridges: the workers that move items from one queue to the
//! next.
//!
//! * A **thread stage** runs N named OS threads, each looping
//!   `recv → op → push` on a blocking queue.
//! * An **async stage** runs N tokio tasks on the job's runtime, each
//!   looping `recv().await → permit → op → push().await`, with a semaphore
//!   bounding the operations in flight (`concurrency`).
//! * A **bridge** is one OS thread that hands items across worlds: it
//!   blocks on one side and pushes with the blocking API of the other, so
//!   neither threads nor tasks ever wait in the other world's way.
//!
//! Workers stop when their input queue is empty and closed (a drain
//! cascading down the pipeline), when they are retired by a tune, or when
//! the job aborts, in which case whatever they hold goes to leftovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::SmallRng;

use shared::spec::{OnError, Runtime, StageSpec};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::item::Item;
use crate::job::JobCore;
use crate::ops::{Op, OpError, OpFailure, Verdict, worker_rng};
use crate::policy::{Policy, backoff};
use crate::queue::{PushError, Recv, Rx, Tx};
use crate::signal::Flag;
use crate::stats::{NodeStats, ShardRef, Stride};

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
                let Rx::Awaiting(input) = rx else {
                    unreachable!("async stages read awaiting queues")
                };
                let semaphore = inner.semaphore.clone().expect("async stage semaphore");
                while inner.tasks.len() < target {
                    let n = inner.next_worker;
                    inner.next_worker += 1;
                    let retire = CancellationToken::new();
                    let worker = TaskWorker {
                        n,
                        ctl: self.clone(),
                        rx: input.clone(),
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

    /// Books a push downstream; false when the job is aborting (the item
    /// it handed back went to leftovers) and the worker must stop.
    fn after_push(
        &self,
        shard: ShardRef<'_>,
        core: &JobCore,
        done: Option<Instant>,
        pushed: Result<crate::queue::Pushed, PushError>,
    ) -> bool {
        match pushed {
            Ok(pushed) => {
                shard.0.out.fetch_add(1, Ordering::Relaxed);
                book_blocked(shard, done, pushed.waited);
                true
            }
            Err(PushError::Aborted(item)) => {
                core.leftovers.put(&self.stats, item);
                false
            }
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

/// Books one worker iteration's times when it was timed: idle before the
/// item arrived, busy in the operation, and the latencies.
#[inline]
fn book(
    shard: ShardRef<'_>,
    stride: &mut Stride,
    t0: Option<Instant>,
    start: Option<Instant>,
    done: Option<Instant>,
    enqueued: Option<Instant>,
) {
    if let (Some(t0), Some(start), Some(done)) = (t0, start, done) {
        shard.add_time(&shard.0.idle_ns, start - t0);
        shard.add_time(&shard.0.busy_ns, done - start);
        let wait = enqueued.map(|e| start.saturating_duration_since(e));
        shard.record(wait, Some(done - start), None);
        stride.adapt(done - t0);
    }
}

/// Books the time a timed push spent waiting for room downstream.
#[inline]
fn book_blocked(shard: ShardRef<'_>, done: Option<Instant>, waited: bool) {
    if let (Some(done), true) = (done, waited) {
        shard.add_time(&shard.0.blocked_ns, done.elapsed());
    }
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
        let stats = &self.ctl.stats;
        let shard = stats.shard(self.n);
        let mut rng = worker_rng(self.core.seed, self.ctl.index, self.n);
        let mut stride = Stride::default();
        let abort = &self.core.abort;
        loop {
            if self.retire.load(Ordering::Relaxed) {
                break;
            }
            let t0 = stride.tick().then(Instant::now);
            let item = match self.rx.recv_blocking() {
                Recv::Item(item) => item,
                Recv::Timeout => {
                    if let Some(t0) = t0 {
                        shard.add_time(&shard.0.idle_ns, t0.elapsed());
                    }
                    if abort.is_set() {
                        break;
                    }
                    continue;
                }
                Recv::Closed => {
                    self.ctl.input_closed();
                    break;
                }
            };
            if abort.is_set() {
                self.core.leftovers.put(stats, item);
                break;
            }
            let start = t0.map(|_| Instant::now());
            let mut item = item;
            // A panicking operation must not take the item with it: it
            // becomes a dead letter and the worker carries on.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.ctl.attempt_blocking(shard, &mut item, &mut rng, abort)
            }))
            .unwrap_or_else(|panic| Err(Unsettled::Failed(panicked(panic), 1)));
            let done = start.map(|_| Instant::now());
            book(shard, &mut stride, t0, start, done, item.enqueued);
            let go_on = match self.ctl.settle(shard, &self.core, item, outcome) {
                Some(item) => {
                    let pushed = self.tx.push_blocking(item, done, abort);
                    self.ctl.after_push(shard, &self.core, done, pushed)
                }
                None => !abort.is_set(),
            };
            if !go_on {
                break;
            }
        }
        self.ctl.worker_exited();
    }
}

struct TaskWorker {
    n: usize,
    ctl: Arc<StageCtl>,
    rx: async_channel::Receiver<Item>,
    tx: Tx,
    core: Arc<JobCore>,
    retire: CancellationToken,
    semaphore: Arc<Semaphore>,
}

impl TaskWorker {
    async fn run(self) {
        let stats = &self.ctl.stats;
        let shard = stats.shard(self.n);
        let mut rng = worker_rng(self.core.seed, self.ctl.index, self.n);
        let mut stride = Stride::default();
        let abort = &self.core.abort;
        loop {
            let t0 = stride.tick().then(Instant::now);
            // `recv` is cancel-safe: losing the race loses no item.
            let got = tokio::select! {
                biased;
                _ = self.retire.cancelled() => break,
                _ = abort.cancelled() => break,
                got = self.rx.recv() => got,
            };
            let Ok(item) = got else {
                self.ctl.input_closed();
                break;
            };
            let start = t0.map(|_| Instant::now());
            let mut item = item;
            let outcome = self
                .ctl
                .attempt_async(shard, &mut item, &mut rng, abort, &self.semaphore)
                .await;
            let done = start.map(|_| Instant::now());
            book(shard, &mut stride, t0, start, done, item.enqueued);
            let go_on = match self.ctl.settle(shard, &self.core, item, outcome) {
                Some(item) => {
                    let pushed = self.tx.push_async(item, done).await;
                    self.ctl.after_push(shard, &self.core, done, pushed)
                }
                None => !abort.is_set(),
            };
            if !go_on {
                break;
            }
        }
        self.ctl.worker_exited();
    }
}

/// Runs a bridge on the current thread: takes items from `rx` (blocking
/// on either kind of queue) and pushes them into `tx` with the blocking
/// API, until `rx` closes or the job aborts.
pub fn run_bridge(rx: Rx, tx: Tx, stats: Arc<NodeStats>, core: &JobCore) {
    let shard = stats.shard(0);
    let mut stride = Stride::default();
    loop {
        let t0 = stride.tick().then(Instant::now);
        let item = match rx.recv_blocking() {
            Recv::Item(item) => item,
            Recv::Timeout => {
                if core.abort.is_set() {
                    break;
                }
                continue;
            }
            Recv::Closed => break,
        };
        if core.abort.is_set() {
            core.leftovers.put(&stats, item);
            break;
        }
        let now = t0.map(|_| Instant::now());
        let enqueued = item.enqueued;
        book(shard, &mut stride, t0, now, now, enqueued);
        match tx.push_blocking(item, now, &core.abort) {
            Ok(pushed) => {
                shard.0.out.fetch_add(1, Ordering::Relaxed);
                book_blocked(shard, now, pushed.waited);
            }
            Err(PushError::Aborted(item)) => {
                core.leftovers.put(&stats, item);
                break;
            }
        }
    }
}
