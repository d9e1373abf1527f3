//! The ledger of one broker edge: where each of its items stands, under
//! one lock, so that every item is booked exactly once whatever the broker
//! delivers twice.
//!
//! The publisher gives each item an **edge sequence** (0, 1, 2, … in the
//! order it publishes them; a message carries a run of them), and the
//! item is *open* from then until it is *settled*: booked from its result
//! (passed on, filtered, dropped, a dead letter) by the collector or the
//! abort sweep, or put in leftovers by whoever holds it when the job
//! aborts. Settling removes it, so a second result of the same item (a
//! redelivery, a result stored twice past the duplicate window, a sweep
//! meeting what the collector already booked) finds nothing and counts
//! nothing. An edge sequence below the next one that is not open has
//! been settled: the ledger holds only the open items, never the run's
//! history.
//!
//! The open items are also the edge's exact depth in items (messages
//! carry many), which the publisher holds to the stage's `capacity`.

use crate::item::Stamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use shared::spec::OnError;

use super::edge::EdgeStats;
use super::wire::{Outcome, Results, Settled};
use crate::core::JobCore;
use crate::item::Item;
use crate::ops::OpError;
use crate::stats::NodeStats;
use shared::workers::EdgeNames;

/// Why an item was delivered more than once, as the report words it.
pub const REDELIVERED: &str =
    "redelivered after ack_wait: the worker holding it was lost or stalled";

/// An item published and not yet settled.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// When it was born, when timed (clocks do not cross processes, so
    /// its latency is restored from here when it comes back).
    born: Option<Stamp>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// The next edge sequence to hand out.
    next: u64,
    /// Items published (or being published) and not settled.
    open: HashMap<u64, Open>,
    /// The publisher has finished: no item will open any more.
    done: bool,
}

/// What the publisher, the collector and the sweep of one edge share.
#[derive(Debug)]
pub(crate) struct Flow {
    pub(crate) names: EdgeNames,
    pub(crate) edge: Arc<EdgeStats>,
    /// Items that may be open at once (the stage's capacity).
    pub(crate) capacity: u64,
    /// The per-item state; one short lock per message.
    ledger: Mutex<Ledger>,
    /// Items whose result said they were delivered more than once.
    pub(crate) redelivered: AtomicU64,
    /// Wakes the collector and the watcher when the publisher finishes or
    /// the last item settles.
    pub(crate) changed: tokio::sync::Notify,
    /// Wakes a publisher waiting for room.
    room: tokio::sync::Notify,
}

impl Flow {
    pub(crate) fn new(names: EdgeNames, edge: Arc<EdgeStats>, capacity: u64) -> Self {
        Self {
            names,
            edge,
            capacity: capacity.max(1),
            ledger: Mutex::new(Ledger::default()),
            redelivered: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            room: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Items that may open now without passing the capacity.
    pub(crate) fn room_now(&self) -> usize {
        self.capacity.saturating_sub(self.lock().open.len() as u64) as usize
    }

    /// Waits until some item may open.
    pub(crate) async fn room(&self) {
        self.room_for(1).await;
    }

    /// Waits until `n` items may open (at most the capacity).
    pub(crate) async fn room_for(&self, n: usize) {
        let n = n.min(self.capacity as usize).max(1);
        loop {
            let notified = self.room.notified();
            if self.room_now() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Opens `items` (the publisher, before it sends their message):
    /// their first edge sequence; they follow one by one.
    pub(crate) fn open(&self, items: &[Item]) -> u64 {
        let mut ledger = self.lock();
        let first = ledger.next;
        ledger.next += items.len() as u64;
        for (k, item) in items.iter().enumerate() {
            ledger
                .open
                .insert(first + k as u64, Open { born: item.born });
        }
        self.edge
            .open
            .store(ledger.open.len() as u64, Ordering::Relaxed);
        first
    }

    /// The items open now (what the edge holds, in items).
    pub(crate) fn open_items(&self) -> u64 {
        self.lock().open.len() as u64
    }

    /// Settles `edge` without a result (to leftovers or a dead letter by
    /// whoever holds the item): true if it was open, so the caller counts
    /// it; false if it was settled already.
    pub(crate) fn settle(&self, edge: u64) -> bool {
        let settled = {
            let mut ledger = self.lock();
            let settled = ledger.open.remove(&edge).is_some();
            self.edge
                .open
                .store(ledger.open.len() as u64, Ordering::Relaxed);
            settled
        };
        if settled {
            self.settled();
        }
        settled
    }

    /// Settles every open item, for the one who gives them up for good
    /// (the sweep, when the broker could not be read): how many there were.
    pub(crate) fn settle_rest(&self) -> u64 {
        let n = {
            let mut ledger = self.lock();
            let n = ledger.open.len() as u64;
            ledger.open.clear();
            self.edge.open.store(0, Ordering::Relaxed);
            n
        };
        self.settled();
        n
    }

    fn settled(&self) {
        self.room.notify_one();
        if self.all_back() {
            self.changed.notify_waiters();
        }
    }

    pub(crate) fn publishing_done(&self) {
        self.lock().done = true;
        self.changed.notify_waiters();
    }

    /// The publisher has finished and every item it opened is settled.
    pub(crate) fn all_back(&self) -> bool {
        let ledger = self.lock();
        ledger.done && ledger.open.is_empty()
    }

    /// Settles the items of `results` that are still open, under one
    /// lock: what each was and what became of it. Those settled already
    /// (by an earlier result, the publisher, the sweep) are left out.
    fn take(&self, results: Vec<Settled>) -> Vec<(Open, Outcome)> {
        let mut taken = Vec::with_capacity(results.len());
        {
            let mut ledger = self.lock();
            for settled in results {
                if let Some(open) = ledger.open.remove(&settled.edge) {
                    taken.push((open, settled.outcome));
                }
            }
            self.edge
                .open
                .store(ledger.open.len() as u64, Ordering::Relaxed);
        }
        if !taken.is_empty() {
            self.settled();
        }
        taken
    }

    /// Books a result message: each item still open is settled from its
    /// result (filtered, dropped, a dead letter), the passed ones come
    /// back to go on downstream; an item settled already is skipped.
    pub(crate) fn book(
        &self,
        results: Results,
        node: &NodeStats,
        core: &JobCore,
        on_error: OnError,
    ) -> Vec<Item> {
        let mut passed = Vec::new();
        let booked = self.take(results.items);
        if booked.is_empty() {
            return passed;
        }
        if results.delivered > 1 {
            self.redelivered
                .fetch_add(booked.len() as u64, Ordering::Relaxed);
        }
        let shard = node.shard(0);
        for (open, outcome) in booked {
            match outcome {
                Outcome::Passed(mut item) => {
                    item.born = open.born;
                    passed.push(item);
                }
                Outcome::Filtered(_) => {
                    shard.0.filtered.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Dropped { kind, .. } => {
                    shard.0.errors.fetch_add(1, Ordering::Relaxed);
                    node.note_reason(format!("op error at `{}`: {kind}", node.info.name));
                }
                Outcome::Failed {
                    item,
                    attempts,
                    kind,
                    detail,
                } => {
                    let err = OpError {
                        kind: static_kind(&kind),
                        detail,
                        retryable: false,
                    };
                    dead_letter(core, node, &item, &err, attempts);
                    if on_error == OnError::FailJob && kind != "redelivered" {
                        core.fail(format!(
                            "stage `{}` failed an item (on_error = fail_job): {}",
                            node.info.name, err.detail
                        ));
                    }
                }
            }
        }
        passed
    }
}

/// Keeps `item` as a dead letter of `node` and counts it.
pub(crate) fn dead_letter(
    core: &JobCore,
    node: &NodeStats,
    item: &Item,
    err: &OpError,
    attempts: u32,
) {
    core.dead_letters.put(node, item, err, attempts);
    node.shard(0)
        .0
        .dead_lettered
        .fetch_add(1, Ordering::Relaxed);
}

/// Error kinds as `&'static str` (a dead letter's kind is a bounded
/// metric label); one from elsewhere reads as `remote error`.
fn static_kind(kind: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "timed out",
        "injected failure",
        "not a record",
        "not JSON",
        "missing field",
        "wrong type",
        "panic",
        "http",
        "http status",
        "redelivered",
        "undecodable",
        "no runtime",
        super::TOO_LARGE,
    ];
    KNOWN
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("remote error")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Payload;

    fn flow(capacity: u64) -> Flow {
        Flow::new(
            EdgeNames::new("j1", "s"),
            Arc::new(EdgeStats::default()),
            capacity,
        )
    }

    fn items(n: u64) -> Vec<Item> {
        (0..n)
            .map(|s| Item::new(s, Payload::Counter(s), None))
            .collect()
    }

    fn passed(edges: &[u64]) -> Vec<Settled> {
        edges
            .iter()
            .map(|&edge| Settled {
                edge,
                outcome: Outcome::Passed(Item::new(edge, Payload::Counter(edge), None)),
            })
            .collect()
    }

    #[test]
    fn an_item_the_publisher_left_is_not_booked_from_its_result() {
        let f = flow(8);
        assert_eq!(f.open(&items(3)), 0);
        // The job aborts while item 1's publish ack is awaited: the
        // publisher puts it in leftovers, settling it.
        assert!(f.settle(1));
        // Its result was stored all the same and comes back: only the
        // other two are booked.
        let taken: Vec<u64> = f
            .take(passed(&[0, 1, 2]))
            .into_iter()
            .map(|(_, o)| match o {
                Outcome::Passed(i) => i.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(taken, [0, 2]);
        // And an item booked already is not left again.
        assert!(!f.settle(0));
    }

    #[test]
    fn a_result_delivered_twice_is_booked_once() {
        let f = flow(8);
        f.open(&items(2));
        assert_eq!(f.take(passed(&[0, 1])).len(), 2);
        assert!(f.take(passed(&[0, 1])).is_empty());
        assert_eq!(f.settle_rest(), 0);
    }

    #[test]
    fn the_open_items_are_the_depth_held_to_capacity() {
        let f = flow(4);
        f.open(&items(3));
        assert_eq!((f.open_items(), f.room_now()), (3, 1));
        assert_eq!(f.edge.open.load(Ordering::Relaxed), 3);
        f.take(passed(&[1]));
        assert_eq!(f.room_now(), 2);
        assert!(!f.all_back());
        f.publishing_done();
        assert_eq!(f.settle_rest(), 2);
        assert!(f.all_back());
    }
}
