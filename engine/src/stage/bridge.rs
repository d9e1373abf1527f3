//! Bridges: one task on the job's runtime per change of world, handing
//! chunks from one queue to the next. Both of its queues serve threads and
//! tasks alike, so the bridge awaits on both sides while the thread on
//! the other side blocks on the same queue: neither world ever waits in
//! the other's way. A task, not a thread of its own: on two cores a
//! bridge thread cost two more context switches per chunk (measured with
//! `perf stat`, docs/benchmarks.md), a task's wake-ups mostly stay inside
//! the runtime.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::in_poll::InPoll;
use super::workers::book_item;
use crate::core::JobCore;
use crate::queue::{CHUNK, Chunk, Rx, Tx};
use crate::stats::{Laps, NodeStats, Stride};

/// Starts a bridge on the job's runtime, its time inside polls booked as
/// its share of the event loop.
pub(crate) fn spawn_bridge(rx: Rx, tx: Tx, stats: Arc<NodeStats>, core: Arc<JobCore>) {
    let run = run_bridge(rx, tx, stats.clone(), core.clone());
    core.tracker.spawn_on(InPoll::new(run, stats), &core.handle);
}

/// Runs a bridge: takes chunks from `rx` and pushes them into `tx`,
/// awaiting on both sides, until `rx` is done or the job aborts (then
/// what it holds goes to leftovers).
async fn run_bridge(rx: Rx, tx: Tx, stats: Arc<NodeStats>, core: Arc<JobCore>) {
    let shard = stats.shard(0);
    let abort = &core.abort;
    let mut stride = Stride::default();
    let mut input = Chunk::new(&rx);
    let mut out = VecDeque::with_capacity(CHUNK);
    let mut laps = Laps::start();
    loop {
        if rx.try_take(CHUNK, &mut input) == 0 {
            laps.lap(&shard.0.busy_ns);
            // `take` is cancel-safe: losing the race loses no item.
            let got = tokio::select! {
                biased;
                _ = abort.cancelled() => break,
                got = rx.take(CHUNK, &mut input) => got,
            };
            laps.lap(&shard.0.idle_ns);
            if !got {
                break;
            }
        }
        if abort.is_set() {
            break;
        }
        for item in input.iter() {
            if stride.tick() {
                // A bridge does no work: only its queue wait is worth timing.
                let start = Instant::now();
                book_item(shard, &mut stride, start, item);
            }
        }
        // The chunk crosses as its buffer, not item by item.
        input.move_into(&mut out);
        laps.lap(&shard.0.busy_ns);
        let handed = out.len() as u64;
        // An abort closes the queues, which ends a push that waits.
        let pushed = tx.push(&mut out).await;
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
    stats.workers.store(0, Ordering::Relaxed);
}
