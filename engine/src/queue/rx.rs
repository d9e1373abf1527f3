//! The consumer's end of a queue: takes chunks into a [`Chunk`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_utils::Backoff;
use event_listener::Listener;

use super::{POLL, Shared, State};
use crate::item::Item;

/// The receiving end of a node's queue. Clones are more consumers of the
/// same queue.
#[derive(Debug)]
pub struct Rx {
    shared: Arc<Shared>,
}

/// What a wait for input ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Took {
    /// Items are in the chunk.
    Items,
    /// Nothing yet: look at your flags and wait again.
    Timeout,
    /// The queue is empty and every producer has gone (or an abort closed
    /// it): time to stop.
    Closed,
}

/// Items a consumer took in one go, in queue order. Until the last one is
/// taken out with [`Chunk::pop`], the queue counts all of them against
/// its capacity (see the module's notes).
#[derive(Debug)]
pub struct Chunk {
    items: VecDeque<Item>,
    /// How many of the queue's `held` this chunk owes back.
    held: usize,
    shared: Arc<Shared>,
}

impl Chunk {
    /// An empty chunk for items of `rx`.
    pub fn new(rx: &Rx) -> Self {
        Self {
            items: VecDeque::with_capacity(super::CHUNK),
            held: 0,
            shared: rx.shared.clone(),
        }
    }

    /// The next item; taking the last one gives its room in the queue back.
    #[inline]
    pub fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front();
        if self.items.is_empty() {
            self.release();
        }
        item
    }

    /// Items left.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether every item was taken out.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items left, in order, without taking them.
    pub fn iter(&self) -> impl Iterator<Item = &Item> + '_ {
        self.items.iter()
    }

    /// Moves every item to the back of `into`, in order, giving their
    /// room in the queue back: as a buffer when `into` is empty (a bridge
    /// hands a chunk on without copying its items), else one by one.
    pub fn move_into(&mut self, into: &mut VecDeque<Item>) {
        if into.is_empty() {
            std::mem::swap(into, &mut self.items);
        } else {
            into.extend(self.items.drain(..));
        }
        self.release();
    }

    /// Takes every item out (to leftovers, on an abort).
    pub fn drain(&mut self) -> impl Iterator<Item = Item> + '_ {
        self.release();
        self.items.drain(..)
    }

    fn release(&mut self) {
        if self.held > 0 {
            self.shared.held.fetch_sub(self.held, Ordering::SeqCst);
            self.held = 0;
            self.shared.not_full.notify(1);
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // Not while unwinding: a second panic would abort the process and
        // hide the first one.
        debug_assert!(
            self.items.is_empty() || std::thread::panicking(),
            "a chunk must be emptied, not dropped"
        );
        self.release();
    }
}

impl Rx {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Moves up to `max` items into `into` under the lock: `Some(Items)`,
    /// `Some(Closed)` when the queue is done, `None` when it is empty.
    fn take_now(&self, max: usize, into: &mut Chunk) -> Option<Took> {
        let mut state = self.shared.lock();
        let n = max.clamp(1, self.shared.max_take).min(state.items.len());
        if n == 0 {
            return is_done(&state).then_some(Took::Closed);
        }
        let n = state.items.take(&mut into.items, n);
        self.shared
            .queued
            .store(state.items.len(), Ordering::Release);
        let more = !state.items.is_empty();
        if n > 1 {
            // Counted until the chunk's last item is popped.
            self.shared.held.fetch_add(n, Ordering::SeqCst);
            into.held += n;
        }
        drop(state);
        if more {
            // Pass the baton: another consumer may take the rest.
            self.shared.not_empty.notify(1);
        }
        if n == 1 {
            // A single item leaves the queue as it is taken.
            self.shared.not_full.notify(1);
        }
        Some(Took::Items)
    }

    /// Takes up to `max` items if any are queued right now; how many.
    pub fn try_take(&self, max: usize, into: &mut Chunk) -> usize {
        let before = into.len();
        self.take_now(max, into);
        into.len() - before
    }

    /// Waits up to [`POLL`] (or until `deadline`, if sooner) for items,
    /// from a thread, and takes up to `max` of them.
    pub fn take_blocking(&self, max: usize, deadline: Option<Instant>, into: &mut Chunk) -> Took {
        // Spin briefly before parking: parking costs a futex round trip,
        // dearer than the queue operation when items are about to arrive.
        if let Some(took) = self.take_now(max, into) {
            return took;
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            if self.shared.maybe_items()
                && let Some(took) = self.take_now(max, into)
            {
                return took;
            }
        }
        let until = Instant::now() + POLL;
        let until = deadline.map_or(until, |d| d.min(until));
        loop {
            let listener = self.shared.not_empty.listen();
            if let Some(took) = self.take_now(max, into) {
                return took;
            }
            if listener.wait_deadline(until).is_none() {
                return self.take_now(max, into).unwrap_or(Took::Timeout);
            }
        }
    }

    /// Awaits items, from a task, and takes up to `max` of them; false when
    /// the queue is done. Cancel-safe: items move only when it returns.
    pub async fn take(&self, max: usize, into: &mut Chunk) -> bool {
        loop {
            if let Some(took) = self.take_now(max, into) {
                return took == Took::Items;
            }
            let listener = self.shared.not_empty.listen();
            if let Some(took) = self.take_now(max, into) {
                return took == Took::Items;
            }
            listener.await;
        }
    }

    /// Items waiting for this node: queued, plus taken in chunks not all
    /// started.
    pub fn len(&self) -> usize {
        // Both read under the lock: a take moves items from the queue to
        // `held` while holding it, so reading one side before and the other
        // after could count the same items twice (seen as a depth above
        // capacity). Releases only lower `held`, lock or not.
        let state = self.shared.lock();
        state.items.len() + self.shared.held.load(Ordering::SeqCst)
    }

    /// Closes the queue (abort): producers are refused from now on and
    /// every blocked end wakes. Queued items stay readable.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.not_empty.notify(usize::MAX);
        self.shared.not_full.notify(usize::MAX);
    }

    /// Takes everything still queued (the final sweep into leftovers).
    pub fn drain_all(&self) -> Vec<Item> {
        let items: Vec<Item> = {
            let mut state = self.shared.lock();
            self.shared.queued.store(0, Ordering::Release);
            state.items.drain_all()
        };
        self.shared.not_full.notify(usize::MAX);
        items
    }
}

/// Whether an empty queue will never get another item.
fn is_done(state: &State) -> bool {
    state.closed || state.senders == 0
}

impl Clone for Rx {
    fn clone(&self) -> Self {
        self.shared.lock().receivers += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.receivers -= 1;
            state.receivers == 0
        };
        if last {
            self.shared.not_full.notify(usize::MAX);
        }
    }
}
