//! Queues between pipeline nodes, moved in chunks, and the `when_full`
//! policies applied when pushing into them.
//!
//! Every queue is one bounded FIFO ([`channel`]) that both worlds can wait
//! on: a thread blocks (with a timeout, to look at its flags), a task
//! awaits. What differs between a "blocking" queue (the analogue of
//! Python's `queue.Queue`) and an "awaiting" one (`asyncio.Queue`) is who
//! consumes it, which the job's plan decides; bridges still stand wherever
//! the world changes, so the lesson stays visible.
//!
//! * [`tx`] — the producer's end: pushes a chunk of items in one lock,
//!   applying the policy to each item in order, and waits for room only
//!   under `block`.
//! * [`rx`] — the consumer's end: takes up to a bound of what is queued in
//!   one lock, into a [`Chunk`] the worker owns.
//! * [`blocks`] — what is queued, kept in the chunks it was pushed in, so
//!   a whole chunk crosses as its buffer rather than item by item.
//!
//! ## Why chunks, and why this queue
//!
//! A no-op pipeline is bound by its hand-offs, not its work: with one
//! channel operation, and sometimes one cross-thread wake-up, per item,
//! the engine's own cost would be the knee users find. So items cross in
//! chunks (up to [`CHUNK`]): one lock and at most one wake-up per chunk.
//! Measured on the bench (`cargo bench -p engine --bench throughput`,
//! figures in `docs/benchmarks.md`), a mutex around a `VecDeque` moved in
//! chunks beats per-item `crossbeam-channel` and `async-channel`
//! operations, and it keeps the per-item semantics exact, which a channel
//! of `Vec<Item>` would not: the policy sees each item, and drops,
//! evictions and depth count items. Waiting uses `event-listener` (what
//! `async-channel` is built on), whose listeners serve threads and tasks
//! alike and cost one atomic load to notify when nobody listens.
//!
//! ## Capacity counts items
//!
//! Items a consumer has taken in a chunk but not all started are still
//! counted against the capacity (and in the depth) until the last of them
//! starts, so `capacity` bounds what waits for a stage, chunk or not.
//! Consumers whose items may wait or take long (sleeps, HTTP, rate limits,
//! retries) take one item at a time, exactly as before, and so do the
//! consumers of a `drop_oldest` queue, whose policy must always find the
//! oldest item still queued.
//!
//! Low rates do not pay for chunks: producers hand a chunk on as soon as
//! they would otherwise wait (for input, a timer, a socket), never after a
//! linger.

mod blocks;
mod rx;
mod tx;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use event_listener::Event;
use shared::spec::{Capacity, WhenFull};

use crate::stats::NodeStats;
use blocks::Blocks;

pub use blocks::CHUNK;
pub use rx::{Chunk, Rx, Took};
pub use tx::{PushError, Pushed, Tx};

/// How often a thread blocked on a queue looks at the abort flag.
pub const POLL: Duration = Duration::from_millis(50);

/// What both ends share.
#[derive(Debug)]
struct Shared {
    /// The queued items and the ends' bookkeeping; one short lock per
    /// chunk.
    state: Mutex<State>,
    /// Items consumers took in a chunk and have not all started: still
    /// counted against `capacity` and in the depth. Released outside the
    /// lock, hence atomic.
    held: AtomicUsize,
    /// `state.items.len()` as of the last change, so that ends spinning
    /// before they park look at an atomic, not at the lock the other end
    /// needs.
    queued: AtomicUsize,
    /// Most items queued plus held (`usize::MAX` when unbounded).
    capacity: usize,
    /// The most items a consumer may take at once: 1 for `drop_oldest`,
    /// whose policy must always find the oldest item still queued (items
    /// held in a chunk could not be evicted), else [`CHUNK`].
    max_take: usize,
    /// Signalled when items arrive or the queue closes: wakes consumers.
    not_empty: Event,
    /// Signalled when room is made or the queue closes: wakes producers.
    not_full: Event,
}

#[derive(Debug)]
struct State {
    /// The queued items, in the chunks they came in (see [`blocks`]).
    items: Blocks,
    /// Live producer ends; the queue is done when none is left and it is
    /// empty (the drain cascade).
    senders: usize,
    /// Live consumer ends; with none, producers are told downstream has
    /// closed.
    receivers: usize,
    /// Closed by an abort: producers are refused, blocked ends wake.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a spinning consumer should try the lock.
    fn maybe_items(&self) -> bool {
        self.queued.load(Ordering::Acquire) > 0
    }

    /// Whether a spinning producer should try the lock.
    fn maybe_room(&self) -> bool {
        self.queued.load(Ordering::Acquire) + self.held.load(Ordering::Acquire) < self.capacity
    }
}

/// Creates a node's queue; threads and tasks use it alike.
pub fn channel(capacity: Capacity, policy: WhenFull, stats: Arc<NodeStats>) -> (Tx, Rx) {
    let capacity = match capacity {
        Capacity::Bounded(n) => usize::try_from(n).unwrap_or(usize::MAX).max(1),
        Capacity::Unbounded => usize::MAX,
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: Blocks::default(),
            senders: 1,
            receivers: 1,
            closed: false,
        }),
        held: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        capacity,
        max_take: if policy == WhenFull::DropOldest {
            1
        } else {
            CHUNK
        },
        not_empty: Event::new(),
        not_full: Event::new(),
    });
    (Tx::new(shared.clone(), policy, stats), Rx::new(shared))
}

#[cfg(test)]
mod tests;
