//! A stage's workers: named OS threads looping `take → op → push`, and
//! tokio tasks looping `take().await → permit → op → push().await` under
//! the stage's concurrency semaphore. Both take their input in chunks when
//! no item can wait, and leave what they hold to leftovers on abort.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::StageCtl;
use super::attempt::Unsettled;
use crate::core::JobCore;
use crate::item::Item;
use crate::ops::{OpError, worker_rng};
use crate::queue::{CHUNK, Chunk, Rx, Took, Tx};
use crate::stats::{Laps, ShardRef, Stride};

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
pub(super) fn book_item(shard: ShardRef<'_>, stride: &mut Stride, start: Instant, item: &Item) {
    let done = Instant::now();
    let wait = item
        .enqueued
        .map(|e| start.saturating_duration_since(e.instant()));
    shard.record(wait, Some(done - start), None);
    stride.adapt(done - start);
}

pub(super) struct ThreadWorker {
    pub(super) n: usize,
    pub(super) ctl: Arc<StageCtl>,
    pub(super) rx: Rx,
    pub(super) tx: Tx,
    pub(super) core: Arc<JobCore>,
    pub(super) retire: Arc<AtomicBool>,
}

impl ThreadWorker {
    pub(super) fn run(self) {
        let ctl = &*self.ctl;
        let core = &*self.core;
        let shard = ctl.stats.shard(self.n);
        let _cpu = ctl.stats.enlist_thread();
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

pub(super) struct TaskWorker {
    pub(super) n: usize,
    pub(super) ctl: Arc<StageCtl>,
    pub(super) rx: Rx,
    pub(super) tx: Tx,
    pub(super) core: Arc<JobCore>,
    pub(super) retire: CancellationToken,
    pub(super) semaphore: Arc<Semaphore>,
}

impl TaskWorker {
    pub(super) async fn run(self) {
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
            // Let the runtime's other tasks in (the source, the lag probe,
            // other workers): a worker whose input never runs dry would
            // otherwise never return from its poll, and what was woken on
            // its thread would wait behind it. After every item that may
            // take time, and within tokio's budget once per chunk of
            // instant ones.
            if bound == 1 {
                tokio::task::yield_now().await;
            } else if input.is_empty() {
                tokio::task::consume_budget().await;
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
