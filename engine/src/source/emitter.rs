//! The emitter: how a producing thread numbers, stamps and hands on its
//! items in chunks. Every source produces through one; below them all.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::core::JobCore;
use crate::item::{Item, Payload, Stamp};
use crate::queue::{CHUNK, PushError, Pushed, Tx};
use crate::stats::{Laps, NodeStats, SourceTime, Stride};

/// A producing thread's connection to the first node. Several may run at
/// once (one per TCP client); the item sequence is the shared `produced`
/// counter.
pub(super) struct Emitter<'a> {
    pub(super) core: &'a JobCore,
    pub(super) tx: Tx,
    pub(super) first: &'a Arc<NodeStats>,
    /// Which items to stamp with a birth time (for end-to-end latency).
    pub(super) stride: Stride,
    pub(super) last_timed: Option<(Instant, u64)>,
    /// Items produced and not yet pushed: handed on a chunk at a time,
    /// and before the source waits for anything (see [`crate::queue`]).
    pub(super) out: VecDeque<Item>,
    /// Splits this producer's time into the source's busy, idle and
    /// blocked time; `None` for producers driven from outside (ingest
    /// requests), whose time is the clients'.
    pub(super) laps: Option<Laps>,
}

impl<'a> Emitter<'a> {
    pub(super) fn new(core: &'a JobCore, tx: Tx, first: &'a Arc<NodeStats>) -> Self {
        Self {
            core,
            tx,
            first,
            stride: Stride::default(),
            last_timed: None,
            out: VecDeque::with_capacity(CHUNK),
            laps: Some(Laps::start()),
        }
    }

    /// An emitter for items that arrive from outside (HTTP ingest): it
    /// numbers them but does not measure the source's time.
    pub(super) fn driven(core: &'a JobCore, tx: Tx, first: &'a Arc<NodeStats>) -> Self {
        let mut out = Self::new(core, tx, first);
        out.laps = None;
        out
    }

    /// Books the time since the last lap to one of the source's counters.
    pub(super) fn lap(&mut self, counter: fn(&SourceTime) -> &AtomicU64) {
        if let Some(laps) = &mut self.laps {
            laps.lap(counter(&self.core.source_time));
        }
    }

    /// Runs `wait` (for a timer, a file being followed, a client) as the
    /// source's idle time.
    pub(super) fn wait<T>(&mut self, wait: impl FnOnce() -> T) -> T {
        self.lap(|t| &t.busy_ns);
        let got = wait();
        self.lap(|t| &t.idle_ns);
        got
    }

    /// Produces one item; false when the job is aborting and the source
    /// must stop (what it held went to leftovers).
    pub(super) fn emit(&mut self, payload: Payload) -> bool {
        self.emit_due(payload, None)
    }

    /// [`Emitter::emit`] for an item of a schedule (a rated source), due at
    /// `due`: its end-to-end latency counts from then, so a source held
    /// back by a slow pipeline does not hide that wait (no coordinated
    /// omission).
    pub(super) fn emit_due(&mut self, payload: Payload, due: Option<Instant>) -> bool {
        let item = self.next_item(payload, due);
        self.out.push_back(item);
        self.out.len() < CHUNK || self.flush()
    }

    /// [`Emitter::emit_due`] from a task: yields after every chunk.
    pub(super) async fn emit_async(&mut self, payload: Payload, due: Option<Instant>) -> bool {
        let item = self.next_item(payload, due);
        self.out.push_back(item);
        if self.out.len() < CHUNK {
            return true;
        }
        let pushed = self.flush_async().await;
        tokio::task::yield_now().await;
        pushed
    }

    /// [`Emitter::flush`] from a task: awaits room instead of blocking.
    pub(super) async fn flush_async(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        self.lap(|t| &t.busy_ns);
        let pushed = self.tx.push(&mut self.out).await;
        self.after_push(pushed)
    }

    /// [`Emitter::wait`] from a task.
    pub(super) async fn wait_async<T>(&mut self, wait: impl std::future::Future<Output = T>) -> T {
        self.lap(|t| &t.busy_ns);
        let got = wait.await;
        self.lap(|t| &t.idle_ns);
        got
    }

    /// Hands on what was produced, waiting for room under `block`; false
    /// when the job is aborting (what was not pushed went to leftovers).
    /// Called when the chunk is full and before every wait.
    pub(super) fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        self.lap(|t| &t.busy_ns);
        let pushed = self.tx.push_blocking(&mut self.out, &self.core.abort);
        self.after_push(pushed)
    }

    /// Books a push's time; on an error, what was not pushed goes to
    /// leftovers and the source must stop (false).
    pub(super) fn after_push(&mut self, pushed: Result<Pushed, PushError>) -> bool {
        match pushed {
            Ok(p) if !p.waited => self.lap(|t| &t.busy_ns),
            _ => self.lap(|t| &t.blocked_ns),
        }
        match pushed {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(job = %self.core.id, error = %e, "source: push stopped");
                for item in self.out.drain(..) {
                    self.core.leftovers.put(self.first, item);
                }
                false
            }
        }
    }

    /// Numbers and stamps the next item (born when `due`, if it had a due
    /// time, else now); it counts as produced from now on (see
    /// [`Emitter::unproduce`] for one that is handed back).
    pub(super) fn next_item(&mut self, payload: Payload, due: Option<Instant>) -> Item {
        let seq = self.core.produced.fetch_add(1, Ordering::Relaxed);
        let born = self.stride.tick().then(Instant::now);
        if let Some(now) = born {
            if let Some((then, then_seq)) = self.last_timed {
                // Saturating: a handed-back item may have lowered the count.
                let per_item = (now - then) / seq.saturating_sub(then_seq).max(1) as u32;
                self.stride.adapt(per_item);
            }
            self.last_timed = Some((now, seq));
        }
        let mut item = Item::new(seq, payload, born.map(|now| due.unwrap_or(now).min(now)));
        // Its wait for the first queue starts now, whatever it was due.
        item.enqueued = born.map(Stamp::from);
        item
    }

    pub(super) fn stopping(&self) -> bool {
        self.core.stop.is_set()
    }
}

impl Drop for Emitter<'_> {
    /// Whatever way the source ends, what it produced goes on (or, on an
    /// abort, to leftovers).
    fn drop(&mut self) {
        self.flush();
        self.lap(|t| &t.busy_ns);
    }
}
