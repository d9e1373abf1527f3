//! One item's way through a stage: its attempts under the stage's policy
//! (rate limit, timeout, retries with backoff), how it settles (passed on,
//! filtered, dropped, dead-lettered, or to leftovers on abort), and how a
//! worker hands its results on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use shared::spec::OnError;
use tokio::sync::Semaphore;

use super::StageCtl;
use super::policy::backoff;
use crate::core::JobCore;
use crate::item::Item;
use crate::ops::{OpError, OpFailure, Verdict};
use crate::queue::{CHUNK, Chunk, PushError, Pushed, Tx};
use crate::signal::Flag;
use crate::stats::{Laps, ShardRef};

/// How an item's attempts ended without a verdict.
pub(crate) enum Unsettled {
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
    pub(super) fn settle(
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
    /// tune that sets a rate limit takes effect from the next chunk. (A
    /// `drop_oldest` queue hands out one item at a time whatever is asked.)
    pub(super) fn chunk_bound(&self) -> usize {
        if self.spec.op.is_instant() && self.policy.never_waits() {
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
    pub(super) fn flush_blocking(
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
    pub(super) async fn flush_async(
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
    pub(super) fn leave(&self, core: &JobCore, input: &mut Chunk, out: &mut VecDeque<Item>) {
        for item in out.drain(..).chain(input.drain()) {
            core.leftovers.put(&self.stats, item);
        }
    }

    /// Runs the operation on a thread, with the rate limit, timeout and
    /// retries of the stage's policy.
    pub(crate) fn attempt_blocking(
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
    pub(super) fn attempt_instant(
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
    pub(crate) async fn attempt_async(
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
