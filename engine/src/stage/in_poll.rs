//! `InPoll`: counts a task worker as "inside a poll" while its future runs.
//!
//! A task that makes a blocking call never returns from `poll`, so its
//! stage's `in_poll` count stays up while the event loop stalls; the
//! sampler (on its own thread) names such stages as the ones blocking
//! the loop. The time spent inside polls is summed too: over the
//! runtime's threads, it is the share of the event loop the stage takes.
//! The cost is two clock reads and three atomic operations per wake-up of
//! the worker, not per item.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::stats::NodeStats;

/// A worker's future, counted in its stage's `in_poll` while polled.
pub(super) struct InPoll<F> {
    /// Boxed so the wrapper is `Unpin` without unsafe pin projection.
    inner: Pin<Box<F>>,
    stats: Arc<NodeStats>,
}

impl<F: Future> InPoll<F> {
    pub(super) fn new(inner: F, stats: Arc<NodeStats>) -> Self {
        Self {
            inner: Box::pin(inner),
            stats,
        }
    }
}

/// Takes the count back down and books the poll's time, even when the
/// poll unwinds.
struct Leave<'a>(&'a NodeStats, Instant);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let spent = self.1.elapsed().as_nanos() as u64;
        self.0.poll_ns.fetch_add(spent, Ordering::Relaxed);
        self.0.in_poll.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<F: Future> Future for InPoll<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.stats.in_poll.fetch_add(1, Ordering::Relaxed);
        let _leave = Leave(&this.stats, Instant::now());
        this.inner.as_mut().poll(cx)
    }
}
