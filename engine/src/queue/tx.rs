//! The producer's end of a queue: pushes chunks, applying `when_full` to
//! each item in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_utils::Backoff;
use event_listener::Listener;
use shared::spec::WhenFull;

use super::{POLL, Shared};
use crate::item::{Item, Stamp};
use crate::signal::Flag;
use crate::stats::NodeStats;

/// A producer's end of a node's queue, applying the node's `when_full`
/// policy and counting what it accepts and drops.
#[derive(Debug)]
pub struct Tx {
    shared: Arc<Shared>,
    policy: WhenFull,
    stats: Arc<NodeStats>,
}

/// What a successful push did with its items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The pusher had to wait for room (`block` on a full queue).
    pub waited: bool,
    /// Items of this push the policy settled instead of queueing them
    /// (dropped or rejected; already counted).
    pub refused: usize,
}

/// Why a push stopped before all its items were in; the items not pushed
/// stay with the caller (for leftovers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The job is aborting: its queues are closed.
    #[error("the job is aborting")]
    Aborted,
    /// Every consumer of the queue has gone.
    #[error("the queue's consumers have gone")]
    Disconnected,
}

/// What one locked pass did, booked into the stats after unlocking.
#[derive(Debug, Default)]
struct Pass {
    accepted: u64,
    dropped_newest: u64,
    rejected: u64,
    dropped_oldest: u64,
}

impl Pass {
    fn refused(&self) -> usize {
        (self.dropped_newest + self.rejected) as usize
    }
}

impl Tx {
    pub(super) fn new(shared: Arc<Shared>, policy: WhenFull, stats: Arc<NodeStats>) -> Self {
        Self {
            shared,
            policy,
            stats,
        }
    }

    /// One locked pass: queues what fits, settles what the policy refuses,
    /// and stops at the first item that must wait for room (`block`).
    /// `Ok(true)` when every item was settled.
    fn push_now(&self, items: &mut VecDeque<Item>, pass: &mut Pass) -> Result<bool, PushError> {
        if items.is_empty() {
            return Ok(true);
        }
        // The enqueue time of the whole chunk, for queue-wait figures: one
        // clock reading per chunk, stamped outside the lock.
        let now = Some(Stamp::now());
        for item in items.iter_mut() {
            item.enqueued = now;
        }
        let shared = &*self.shared;
        let mut state = shared.lock();
        if state.closed {
            return Err(PushError::Aborted);
        }
        if state.receivers == 0 {
            return Err(PushError::Disconnected);
        }
        let held = shared.held.load(Ordering::SeqCst);
        let room = shared
            .capacity
            .saturating_sub(state.items.len() + held)
            .min(items.len());
        state.items.push(items, room);
        let mut accepted = room;
        let mut refused = 0;
        if !items.is_empty() {
            match self.policy {
                WhenFull::Block => {}
                WhenFull::DropNewest | WhenFull::Reject => refused = items.len(),
                WhenFull::DropOldest => {
                    for item in items.drain(..) {
                        if let Some(oldest) = state.items.pop_front() {
                            drop(oldest);
                            pass.dropped_oldest += 1;
                            state.items.push_back(item);
                            accepted += 1;
                        } else {
                            // Everything counted is held by consumers
                            // about to start it: nothing to evict.
                            pass.dropped_newest += 1;
                        }
                    }
                }
            }
        }
        shared.queued.store(state.items.len(), Ordering::Release);
        let room_left = state.items.len() + held < shared.capacity;
        drop(state);
        if refused > 0 {
            match self.policy {
                WhenFull::Reject => pass.rejected += refused as u64,
                _ => pass.dropped_newest += refused as u64,
            }
            items.clear();
        }
        pass.accepted += accepted as u64;
        if accepted > 0 {
            shared.not_empty.notify(1);
        }
        if room_left {
            // Pass the baton: another producer may wait for this room.
            shared.not_full.notify(1);
        }
        Ok(items.is_empty())
    }

    /// Books a push's counts: one atomic add per counter, and the drop
    /// reasons once per kind.
    fn book(&self, pass: &Pass) {
        let stats = &self.stats;
        if pass.accepted > 0 {
            stats.accepted.fetch_add(pass.accepted, Ordering::Relaxed);
        }
        let name = &stats.info.name;
        for (n, why) in [
            (pass.dropped_newest, "dropped newest: queue full"),
            (pass.rejected, "rejected: queue full"),
            (pass.dropped_oldest, "dropped oldest: queue full"),
        ] {
            if n > 0 {
                stats.dropped.fetch_add(n, Ordering::Relaxed);
                stats.note_reasons(format!("{why} at `{name}`"), n);
            }
        }
    }

    /// Pushes `items` from a thread, in order: waits for room under
    /// `block` (looking at `abort` every [`POLL`]), drops or rejects under
    /// the other policies. On an error the items not pushed are still in
    /// `items`.
    pub fn push_blocking(
        &self,
        items: &mut VecDeque<Item>,
        abort: &Flag,
    ) -> Result<Pushed, PushError> {
        let mut pass = Pass::default();
        let result = self.push_blocking_pass(items, abort, &mut pass);
        self.book(&pass);
        result.map(|waited| Pushed {
            waited,
            refused: pass.refused(),
        })
    }

    fn push_blocking_pass(
        &self,
        items: &mut VecDeque<Item>,
        abort: &Flag,
        pass: &mut Pass,
    ) -> Result<bool, PushError> {
        if self.push_now(items, pass)? {
            return Ok(false);
        }
        // Full: spin a little before blocking, as consumers do.
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if self.shared.maybe_room() && self.push_now(items, pass)? {
                return Ok(true);
            }
        }
        loop {
            if abort.is_set() {
                return Err(PushError::Aborted);
            }
            let listener = self.shared.not_full.listen();
            if self.push_now(items, pass)? {
                return Ok(true);
            }
            listener.wait_timeout(POLL);
        }
    }

    /// Pushes `items` from a task: awaits room under `block` (an abort
    /// closes the queue, which wakes it); drops or rejects under the other
    /// policies. Cancel-safe: the items not pushed stay in `items`.
    pub async fn push(&self, items: &mut VecDeque<Item>) -> Result<Pushed, PushError> {
        let mut pass = Pass::default();
        let result = self.push_async_pass(items, &mut pass).await;
        self.book(&pass);
        result.map(|waited| Pushed {
            waited,
            refused: pass.refused(),
        })
    }

    async fn push_async_pass(
        &self,
        items: &mut VecDeque<Item>,
        pass: &mut Pass,
    ) -> Result<bool, PushError> {
        if self.push_now(items, pass)? {
            return Ok(false);
        }
        loop {
            let listener = self.shared.not_full.listen();
            if self.push_now(items, pass)? {
                return Ok(true);
            }
            // Booked as we go, so a cancelled push loses no count.
            self.book(&std::mem::take(pass));
            listener.await;
        }
    }

    /// Pushes one item from a thread; on an error the item comes back.
    pub fn push_one_blocking(&self, item: Item, abort: &Flag) -> Result<Pushed, (PushError, Item)> {
        let mut items = VecDeque::from([item]);
        self.push_blocking(&mut items, abort)
            .map_err(|e| (e, items.pop_front().expect("an unpushed item")))
    }

    /// Pushes one item from a task; on an error the item comes back.
    /// Cancelling it drops the item, which the caller then owns no more:
    /// callers that must account for it use [`Tx::push`] with their own
    /// buffer.
    pub async fn push_one(&self, item: Item) -> Result<Pushed, (PushError, Item)> {
        let mut items = VecDeque::from([item]);
        self.push(&mut items)
            .await
            .map_err(|e| (e, items.pop_front().expect("an unpushed item")))
    }
}

impl Clone for Tx {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
            policy: self.policy,
            stats: self.stats.clone(),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            // Consumers waiting on an empty queue learn it is done.
            self.shared.not_empty.notify(usize::MAX);
        }
    }
}
