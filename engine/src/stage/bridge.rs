//! Bridges: one OS thread per runtime change that hands items across
//! worlds. It blocks on one side and pushes with the blocking API of the
//! other, so neither threads nor tasks ever wait in the other world's way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::workers::book_item;
use crate::core::JobCore;
use crate::queue::{CHUNK, Chunk, Rx, Took, Tx};
use crate::stats::{Laps, NodeStats, Stride};

/// Runs a bridge on the current thread: takes chunks from `rx` and pushes
/// them into `tx`, blocking on both sides (a thread can wait on either
/// kind of queue), until `rx` closes or the job aborts.
pub(crate) fn run_bridge(rx: Rx, tx: Tx, stats: Arc<NodeStats>, core: &JobCore) {
    let shard = stats.shard(0);
    let _cpu = stats.enlist_thread();
    let mut stride = Stride::default();
    let mut input = Chunk::new(&rx);
    let mut out = VecDeque::with_capacity(CHUNK);
    let mut laps = Laps::start();
    loop {
        if rx.try_take(CHUNK, &mut input) == 0 {
            laps.lap(&shard.0.busy_ns);
            let took = rx.take_blocking(CHUNK, None, &mut input);
            laps.lap(&shard.0.idle_ns);
            match took {
                Took::Items => {}
                Took::Timeout if core.abort.is_set() => break,
                Took::Timeout => continue,
                Took::Closed => break,
            }
        }
        if core.abort.is_set() {
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
        let pushed = tx.push_blocking(&mut out, &core.abort);
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
}
