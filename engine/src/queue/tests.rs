use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shared::metrics::NodeKind;
use shared::spec::{Capacity, Runtime, WhenFull};

use super::*;
use crate::item::{Item, Payload};
use crate::signal::Flag;
use crate::stats::{NodeInfo, NodeStats};

fn stats() -> Arc<NodeStats> {
    Arc::new(NodeStats::new(NodeInfo {
        name: "q".into(),
        kind: NodeKind::Stage,
        runtime: Runtime::Thread,
        capacity: Capacity::Bounded(2),
        when_full: WhenFull::Block,
    }))
}

fn item(n: u64) -> Item {
    Item::new(n, Payload::Counter(n), None)
}

fn items(ns: impl IntoIterator<Item = u64>) -> VecDeque<Item> {
    ns.into_iter().map(item).collect()
}

fn drain(rx: &Rx) -> Vec<u64> {
    rx.drain_all().into_iter().map(|i| i.seq).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn policies_on_a_full_queue_item_by_item_and_in_one_chunk() {
    let abort = Flag::new();
    for chunked in [false, true] {
        for (policy, kept, dropped) in [
            (WhenFull::DropNewest, vec![0, 1], 2),
            (WhenFull::Reject, vec![0, 1], 2),
            (WhenFull::DropOldest, vec![2, 3], 2),
        ] {
            let s = stats();
            let (tx, rx) = channel(Capacity::Bounded(2), policy, s.clone());
            let mut refused = 0;
            if chunked {
                let mut all = items(0..4);
                refused += tx.push_blocking(&mut all, &abort).unwrap().refused;
                assert!(all.is_empty());
            } else {
                for n in 0..4 {
                    refused += tx.push_one_blocking(item(n), &abort).unwrap().refused;
                }
            }
            assert_eq!(drain(&rx), kept, "{policy} chunked={chunked}");
            assert_eq!(s.dropped.load(Ordering::Relaxed), dropped);
            let expect_refused = if policy == WhenFull::DropOldest { 0 } else { 2 };
            assert_eq!(refused, expect_refused, "{policy}");
            let accepted = s.accepted.load(Ordering::Relaxed);
            let expect_accepted = if policy == WhenFull::DropOldest { 4 } else { 2 };
            assert_eq!(accepted, expect_accepted, "{policy}");
            assert_eq!(s.reasons.lock().unwrap().values().sum::<u64>(), dropped);
        }
    }
}

#[test]
fn a_taken_chunk_counts_against_capacity_until_its_last_item_is_popped() {
    let abort = Flag::new();
    let s = stats();
    let (tx, rx) = channel(Capacity::Bounded(3), WhenFull::Reject, s.clone());
    tx.push_blocking(&mut items(0..3), &abort).unwrap();
    let mut chunk = Chunk::new(&rx);
    assert_eq!(rx.try_take(CHUNK, &mut chunk), 3);
    assert_eq!(
        rx.len(),
        3,
        "taken but not started still waits for the stage"
    );
    // The queue looks empty to the eye but is full by count.
    assert_eq!(tx.push_one_blocking(item(3), &abort).unwrap().refused, 1);
    assert_eq!(chunk.pop().map(|i| i.seq), Some(0));
    assert_eq!(chunk.pop().map(|i| i.seq), Some(1));
    assert_eq!(rx.len(), 3);
    assert_eq!(chunk.pop().map(|i| i.seq), Some(2));
    assert_eq!(rx.len(), 0, "the last pop gives the room back");
    assert_eq!(tx.push_one_blocking(item(4), &abort).unwrap().refused, 0);
    assert_eq!(drain(&rx), vec![4]);
    // A single take leaves the queue at once, as a plain queue does.
    tx.push_one_blocking(item(5), &abort).unwrap();
    assert_eq!(rx.try_take(1, &mut chunk), 1);
    assert_eq!(rx.len(), 0);
    assert_eq!(chunk.pop().map(|i| i.seq), Some(5));
}

#[test]
fn block_pushes_what_fits_waits_for_the_rest_then_aborts_with_the_rest_back() {
    let abort = Arc::new(Flag::new());
    let (tx, rx) = channel(Capacity::Bounded(2), WhenFull::Block, stats());
    let a = abort.clone();
    let t = std::thread::spawn(move || {
        let mut all = items(0..5);
        let result = tx.push_blocking(&mut all, &a);
        (result, all.into_iter().map(|i| i.seq).collect::<Vec<_>>())
    });
    // Room for one more: the producer puts item 2 in, then waits again.
    let mut chunk = Chunk::new(&rx);
    while rx.len() < 2 {
        std::thread::yield_now();
    }
    assert_eq!(rx.try_take(1, &mut chunk), 1);
    assert_eq!(chunk.pop().map(|i| i.seq), Some(0));
    std::thread::sleep(Duration::from_millis(20));
    abort.set();
    rx.close();
    let (result, rest) = t.join().unwrap();
    assert_eq!(result, Err(PushError::Aborted));
    assert_eq!(rest, vec![3, 4]);
    assert_eq!(drain(&rx), vec![1, 2], "queued items stay readable");
}

#[test]
fn a_task_waits_for_room_and_an_abort_hands_the_items_back() {
    let rt = runtime();
    let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Block, stats());
    rt.block_on(tx.push_one(item(0))).unwrap();
    let consumer = {
        let rx = rx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let mut chunk = Chunk::new(&rx);
            rx.try_take(1, &mut chunk);
            chunk.pop().map(|i| i.seq)
        })
    };
    let pushed = rt.block_on(tx.push_one(item(1))).unwrap();
    assert!(pushed.waited && pushed.refused == 0);
    assert_eq!(consumer.join().unwrap(), Some(0));
    let closer = {
        let rx = rx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            rx.close();
        })
    };
    match rt.block_on(tx.push_one(item(2))) {
        Err((PushError::Aborted, i)) => assert_eq!(i.seq, 2),
        other => panic!("{other:?}"),
    }
    closer.join().unwrap();
    assert_eq!(drain(&rx), vec![1]);
}

#[test]
fn consumers_see_the_queue_close_when_the_last_producer_goes() {
    let rt = runtime();
    let abort = Flag::new();
    let (tx, rx) = channel(Capacity::Bounded(4), WhenFull::Block, stats());
    let tx2 = tx.clone();
    tx.push_blocking(&mut items(0..2), &abort).unwrap();
    drop(tx);
    let mut chunk = Chunk::new(&rx);
    assert_eq!(rx.take_blocking(CHUNK, None, &mut chunk), Took::Items);
    assert_eq!(chunk.drain().count(), 2);
    let waiter = {
        let rx = rx.clone();
        std::thread::spawn(move || {
            let rt = runtime();
            let mut chunk = Chunk::new(&rx);
            rt.block_on(rx.take(CHUNK, &mut chunk))
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    drop(tx2);
    assert!(!waiter.join().unwrap(), "closed");
    let mut chunk = Chunk::new(&rx);
    assert_eq!(rx.take_blocking(CHUNK, None, &mut chunk), Took::Closed);
    assert!(!rt.block_on(rx.take(CHUNK, &mut chunk)));
}

#[test]
fn a_push_to_a_queue_without_consumers_says_so() {
    let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Block, stats());
    drop(rx);
    match tx.push_one_blocking(item(0), &Flag::new()) {
        Err((PushError::Disconnected, i)) => assert_eq!(i.seq, 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_producers_and_consumers_move_every_item_once() {
    let abort = Arc::new(Flag::new());
    let (tx, rx) = channel(Capacity::Bounded(7), WhenFull::Block, stats());
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let (tx, abort) = (tx.clone(), abort.clone());
            std::thread::spawn(move || {
                let mut buf = VecDeque::new();
                for n in 0..10_000u64 {
                    buf.push_back(item(p * 1_000_000 + n));
                    if buf.len() == 5 || n % 7 == 0 {
                        tx.push_blocking(&mut buf, &abort).unwrap();
                    }
                }
                tx.push_blocking(&mut buf, &abort).unwrap();
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|c| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut chunk = Chunk::new(&rx);
                let mut seen = Vec::new();
                let max = [1, 3, CHUNK][c];
                loop {
                    match rx.take_blocking(max, None, &mut chunk) {
                        Took::Items => {
                            assert!(rx.len() <= 7, "capacity counts items");
                            seen.extend(std::iter::from_fn(|| chunk.pop()).map(|i| i.seq));
                        }
                        Took::Timeout => {}
                        Took::Closed => return seen,
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let mut want: Vec<u64> = (0..3u64)
        .flat_map(|p| (0..10_000u64).map(move |n| p * 1_000_000 + n))
        .collect();
    want.sort_unstable();
    assert_eq!(all, want);
}

#[test]
fn a_drop_oldest_queue_hands_out_one_item_at_a_time_so_the_oldest_can_always_go() {
    let abort = Flag::new();
    let s = stats();
    let (tx, rx) = channel(Capacity::Bounded(2), WhenFull::DropOldest, s.clone());
    tx.push_blocking(&mut items(0..2), &abort).unwrap();
    let mut chunk = Chunk::new(&rx);
    assert_eq!(rx.try_take(CHUNK, &mut chunk), 1, "one, whatever is asked");
    assert_eq!(rx.len(), 1, "the taken item left the queue at once");
    // Full again: the oldest still queued is evicted, not the newest.
    tx.push_blocking(&mut items(2..4), &abort).unwrap();
    assert_eq!(chunk.pop().map(|i| i.seq), Some(0));
    assert_eq!(drain(&rx), vec![2, 3]);
    assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
}
