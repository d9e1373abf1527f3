//! Queues between pipeline nodes, and the `when_full` policies applied
//! when pushing into them.
//!
//! A queue is one of two kinds, chosen by who consumes it:
//!
//! * **blocking** — a `crossbeam-channel`: consumers are OS threads that
//!   block on `recv` (the analogue of Python's `queue.Queue`);
//! * **awaiting** — an `async-channel`: consumers are tokio tasks that
//!   await `recv` (the analogue of `asyncio.Queue`). Its blocking
//!   `send_blocking`/`recv_blocking` let a thread sit on the other end,
//!   which is what bridges and the source thread do.
//!
//! Both are bounded MPMC channels unless a spec writes out `"unbounded"`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use shared::spec::{Capacity, WhenFull};

use crate::item::Item;
use crate::signal::Flag;
use crate::stats::NodeStats;

/// How often a thread blocked on a queue looks at the abort flag.
pub const POLL: Duration = Duration::from_millis(50);

/// The receiving end of a node's queue.
#[derive(Debug, Clone)]
pub enum Rx {
    /// Consumed by threads.
    Blocking(crossbeam_channel::Receiver<Item>),
    /// Consumed by tasks (or by a thread with `recv_blocking`).
    Awaiting(async_channel::Receiver<Item>),
}

/// What a thread waiting for input got.
#[derive(Debug)]
pub enum Recv {
    /// An item.
    Item(Item),
    /// Nothing yet; look at your flags and wait again.
    Timeout,
    /// The queue is empty and every producer has gone: time to stop.
    Closed,
}

impl Rx {
    /// Waits up to [`POLL`] for an item, from a thread.
    pub fn recv_blocking(&self) -> Recv {
        // Spin briefly before parking: a timed wait reads the clock for its
        // deadline and parking costs a futex round trip, both dearer than
        // the queue operation when items are about to arrive.
        let backoff = Backoff::new();
        loop {
            if let Some(item) = self.try_recv() {
                return Recv::Item(item);
            }
            if backoff.is_completed() {
                break;
            }
            backoff.snooze();
        }
        match self {
            Rx::Blocking(rx) => match rx.recv_timeout(POLL) {
                Ok(item) => Recv::Item(item),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => Recv::Timeout,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Recv::Closed,
            },
            // async-channel has no timed blocking receive; aborts close the
            // channel instead, which wakes this call.
            Rx::Awaiting(rx) => match rx.recv_blocking() {
                Ok(item) => Recv::Item(item),
                Err(_) => Recv::Closed,
            },
        }
    }

    /// Waits for an item until `deadline` (at most [`POLL`] at a time),
    /// from a thread. Only blocking queues support deadlines; awaiting
    /// ones wait as [`Rx::recv_blocking`] does.
    pub fn recv_until(&self, deadline: Instant) -> Recv {
        if let Some(item) = self.try_recv() {
            return Recv::Item(item);
        }
        match self {
            Rx::Blocking(rx) => {
                let wait = deadline.saturating_duration_since(Instant::now()).min(POLL);
                match rx.recv_timeout(wait) {
                    Ok(item) => Recv::Item(item),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => Recv::Timeout,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Recv::Closed,
                }
            }
            Rx::Awaiting(_) => self.recv_blocking(),
        }
    }

    /// Takes an item if one is queued right now.
    pub fn try_recv(&self) -> Option<Item> {
        match self {
            Rx::Blocking(rx) => rx.try_recv().ok(),
            Rx::Awaiting(rx) => rx.try_recv().ok(),
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        match self {
            Rx::Blocking(rx) => rx.len(),
            Rx::Awaiting(rx) => rx.len(),
        }
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes an awaiting queue so every blocked sender and receiver wakes
    /// (abort). Blocking queues close when their senders drop.
    pub fn close(&self) {
        if let Rx::Awaiting(rx) = self {
            rx.close();
        }
    }
}

#[derive(Debug, Clone)]
enum Sender {
    Blocking(crossbeam_channel::Sender<Item>),
    Awaiting(async_channel::Sender<Item>),
}

/// A producer's end of a node's queue, applying the node's `when_full`
/// policy and counting what it accepts and drops.
#[derive(Debug, Clone)]
pub struct Tx {
    sender: Sender,
    policy: WhenFull,
    /// A receiver used only by `drop_oldest` to evict the head.
    reclaim: Option<Rx>,
    stats: Arc<NodeStats>,
}

/// What a successful push did with the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The pusher had to wait for room (`block` on a full queue).
    pub waited: bool,
    /// The policy settled the item instead of queueing it (dropped or
    /// rejected; already counted).
    pub refused: bool,
}

/// Why a push did not put the item in the queue.
#[derive(Debug)]
pub enum PushError {
    /// The job is aborting (or the queue is gone): the item is handed back
    /// so it can go to leftovers.
    Aborted(Item),
}

/// Creates a node's queue: blocking (`awaiting == false`) or awaiting.
pub fn channel(
    capacity: Capacity,
    policy: WhenFull,
    awaiting: bool,
    stats: Arc<NodeStats>,
) -> (Tx, Rx) {
    let (sender, rx) = match (awaiting, capacity) {
        (false, Capacity::Bounded(n)) => {
            let (tx, rx) = crossbeam_channel::bounded(n as usize);
            (Sender::Blocking(tx), Rx::Blocking(rx))
        }
        (false, Capacity::Unbounded) => {
            let (tx, rx) = crossbeam_channel::unbounded();
            (Sender::Blocking(tx), Rx::Blocking(rx))
        }
        (true, Capacity::Bounded(n)) => {
            let (tx, rx) = async_channel::bounded(n as usize);
            (Sender::Awaiting(tx), Rx::Awaiting(rx))
        }
        (true, Capacity::Unbounded) => {
            let (tx, rx) = async_channel::unbounded();
            (Sender::Awaiting(tx), Rx::Awaiting(rx))
        }
    };
    let reclaim = (policy == WhenFull::DropOldest).then(|| rx.clone());
    (
        Tx {
            sender,
            policy,
            reclaim,
            stats,
        },
        rx,
    )
}

impl Pushed {
    /// A push settled without waiting: queued, or `refused` by the policy.
    fn at_once(refused: bool) -> Self {
        Self {
            waited: false,
            refused,
        }
    }
}

/// A push that queued its item after waiting for room.
const WAITED: Pushed = Pushed {
    waited: true,
    refused: false,
};

/// Result of one non-blocking attempt.
enum Try {
    Sent,
    Full(Item),
    Closed(Item),
}

impl Tx {
    fn try_send(&self, item: Item) -> Try {
        match &self.sender {
            Sender::Blocking(tx) => match tx.try_send(item) {
                Ok(()) => Try::Sent,
                Err(crossbeam_channel::TrySendError::Full(item)) => Try::Full(item),
                Err(crossbeam_channel::TrySendError::Disconnected(item)) => Try::Closed(item),
            },
            Sender::Awaiting(tx) => match tx.try_send(item) {
                Ok(()) => Try::Sent,
                Err(async_channel::TrySendError::Full(item)) => Try::Full(item),
                Err(async_channel::TrySendError::Closed(item)) => Try::Closed(item),
            },
        }
    }

    fn accepted(&self) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_one(&self, why: &str) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.stats
            .note_reason(format!("{why} at `{}`", self.stats.info.name));
    }

    /// Applies the policy to an item that met a full queue: `None` when
    /// the policy settled it (dropped or rejected), `Some` when it should
    /// still go in (`block` waits for room; `drop_oldest` made some).
    fn on_full(&self, item: Item) -> Option<Item> {
        match self.policy {
            WhenFull::Block => Some(item),
            WhenFull::DropNewest => {
                self.drop_one("dropped newest: queue full");
                None
            }
            WhenFull::Reject => {
                self.drop_one("rejected: queue full");
                None
            }
            WhenFull::DropOldest => {
                if let Some(oldest) = self.reclaim.as_ref().and_then(Rx::try_recv) {
                    drop(oldest);
                    self.drop_one("dropped oldest: queue full");
                }
                Some(item)
            }
        }
    }

    /// Tries without waiting until the item is in (`Ok(Ok(refused))`,
    /// `refused` when the policy settled it) or must wait for room
    /// (`Ok(Err(item))`, `block` only). `now` is the caller's latest clock
    /// reading, used as the enqueue time so the hot path reads no clock.
    fn push_now(
        &self,
        mut item: Item,
        now: Option<Instant>,
    ) -> Result<Result<bool, Item>, PushError> {
        item.enqueued = now;
        loop {
            match self.try_send(item) {
                Try::Sent => {
                    self.accepted();
                    return Ok(Ok(false));
                }
                Try::Closed(item) => return Err(PushError::Aborted(item)),
                Try::Full(full) => match self.on_full(full) {
                    None => return Ok(Ok(true)),
                    Some(full) if self.policy == WhenFull::Block => return Ok(Err(full)),
                    Some(again) => item = again,
                },
            }
        }
    }

    /// Pushes from a thread: blocks under `block` (checking `abort` every
    /// [`POLL`]), drops or rejects under the other policies. Returns whether
    /// it had to wait for room, so callers read the clock only then.
    pub fn push_blocking(
        &self,
        item: Item,
        now: Option<Instant>,
        abort: &Flag,
    ) -> Result<Pushed, PushError> {
        let mut item = match self.push_now(item, now)? {
            Ok(refused) => return Ok(Pushed::at_once(refused)),
            Err(item) => item,
        };
        // Full: spin a little before blocking, as in `Rx::recv_blocking`.
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            backoff.snooze();
            item = match self.try_send(item) {
                Try::Sent => {
                    self.accepted();
                    return Ok(WAITED);
                }
                Try::Closed(item) => return Err(PushError::Aborted(item)),
                Try::Full(item) => item,
            };
        }
        loop {
            if abort.is_set() {
                return Err(PushError::Aborted(item));
            }
            // The item enters the queue during this attempt.
            if item.enqueued.is_some() {
                item.enqueued = Some(Instant::now());
            }
            match &self.sender {
                Sender::Blocking(tx) => match tx.send_timeout(item, POLL) {
                    Ok(()) => break,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(again)) => item = again,
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(item)) => {
                        return Err(PushError::Aborted(item));
                    }
                },
                // Aborts close awaiting queues, which wakes this call.
                Sender::Awaiting(tx) => match tx.send_blocking(item) {
                    Ok(()) => break,
                    Err(async_channel::SendError(item)) => return Err(PushError::Aborted(item)),
                },
            }
        }
        self.accepted();
        Ok(WAITED)
    }

    /// Pushes from a task: awaits room under `block`; drops or rejects
    /// under the other policies. Tasks only ever feed awaiting queues
    /// (bridges see to that).
    pub async fn push_async(&self, item: Item, now: Option<Instant>) -> Result<Pushed, PushError> {
        let mut item = match self.push_now(item, now)? {
            Ok(refused) => return Ok(Pushed::at_once(refused)),
            Err(item) => item,
        };
        if item.enqueued.is_some() {
            item.enqueued = Some(Instant::now());
        }
        let Sender::Awaiting(tx) = &self.sender else {
            unreachable!("async workers only feed awaiting queues");
        };
        // Not raced against the abort signal: dropping a pending send would
        // drop its item. An abort closes the queue instead, which hands the
        // item back here.
        match tx.send(item).await {
            Ok(()) => {
                self.accepted();
                Ok(WAITED)
            }
            Err(async_channel::SendError(item)) => Err(PushError::Aborted(item)),
        }
    }
}

impl Tx {
    /// Pushes from a task into either kind of queue, with the same
    /// `when_full` semantics as [`Tx::push_blocking`]. Why: the server's
    /// ingest requests wait on its runtime, holding no thread, yet a job's
    /// first queue may be a blocking one. An awaiting queue is awaited; a
    /// full blocking queue is polled with a backoff of 1 ms doubling to
    /// [`POLL`], which also bounds how late an abort is noticed.
    pub async fn push_async_any(
        &self,
        item: Item,
        now: Option<Instant>,
        abort: &Flag,
    ) -> Result<Pushed, PushError> {
        if matches!(self.sender, Sender::Awaiting(_)) {
            return self.push_async(item, now).await;
        }
        let mut item = match self.push_now(item, now)? {
            Ok(refused) => return Ok(Pushed::at_once(refused)),
            Err(item) => item,
        };
        let mut pause = Duration::from_millis(1);
        loop {
            if abort.is_set() {
                return Err(PushError::Aborted(item));
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = abort.cancelled() => {}
            }
            pause = (pause * 2).min(POLL);
            if item.enqueued.is_some() {
                item.enqueued = Some(Instant::now());
            }
            item = match self.try_send(item) {
                Try::Sent => {
                    self.accepted();
                    return Ok(WAITED);
                }
                Try::Closed(item) => return Err(PushError::Aborted(item)),
                Try::Full(item) => item,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Payload;
    use crate::stats::NodeInfo;
    use shared::metrics::NodeKind;
    use shared::spec::Runtime;

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

    fn drain(rx: &Rx) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv())
            .map(|i| i.seq)
            .collect()
    }

    #[test]
    fn policies_on_a_full_queue() {
        let abort = Flag::new();
        for awaiting in [false, true] {
            for (policy, kept, dropped) in [
                (WhenFull::DropNewest, vec![0, 1], 2),
                (WhenFull::Reject, vec![0, 1], 2),
                (WhenFull::DropOldest, vec![2, 3], 2),
            ] {
                let s = stats();
                let (tx, rx) = channel(Capacity::Bounded(2), policy, awaiting, s.clone());
                for n in 0..4 {
                    tx.push_blocking(item(n), None, &abort).unwrap();
                }
                assert_eq!(drain(&rx), kept, "{policy} awaiting={awaiting}");
                assert_eq!(s.dropped.load(Ordering::Relaxed), dropped);
                let accepted = s.accepted.load(Ordering::Relaxed);
                let expect_accepted = if policy == WhenFull::DropOldest { 4 } else { 2 };
                assert_eq!(accepted, expect_accepted, "{policy}");
                assert_eq!(s.reasons.lock().unwrap().values().sum::<u64>(), dropped);
            }
        }
    }

    #[test]
    fn block_waits_for_room_then_aborts_with_the_item_back() {
        let abort = Arc::new(Flag::new());
        let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Block, false, stats());
        tx.push_blocking(item(0), None, &abort).unwrap();
        let a = abort.clone();
        let t = std::thread::spawn(move || tx.push_blocking(item(1), None, &a));
        std::thread::sleep(Duration::from_millis(20));
        abort.set();
        match t.join().unwrap() {
            Err(PushError::Aborted(item)) => assert_eq!(item.seq, 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(drain(&rx), vec![0]);
    }

    #[test]
    fn a_task_waits_for_room_in_either_kind_of_queue_and_aborts_with_the_item_back() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for awaiting in [false, true] {
            // Policies other than `block` settle at once, as from a thread.
            let s = stats();
            let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Reject, awaiting, s.clone());
            let abort = Flag::new();
            for n in 0..2 {
                rt.block_on(tx.push_async_any(item(n), None, &abort))
                    .unwrap();
            }
            assert_eq!(drain(&rx), vec![0], "awaiting={awaiting}");
            assert_eq!(s.dropped.load(Ordering::Relaxed), 1);
            // `block` waits until a consumer makes room.
            let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Block, awaiting, stats());
            rt.block_on(tx.push_async_any(item(0), None, &abort))
                .unwrap();
            let consumer = {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    rx.try_recv().map(|i| i.seq)
                })
            };
            let pushed = rt
                .block_on(tx.push_async_any(item(1), None, &abort))
                .unwrap();
            assert!(pushed.waited && !pushed.refused);
            assert_eq!(consumer.join().unwrap(), Some(0));
            assert_eq!(drain(&rx), vec![1]);
            // An abort hands the waiting item back (awaiting queues are
            // closed by the abort, as `JobCore` does).
            let abort = Arc::new(Flag::new());
            rt.block_on(tx.push_async_any(item(2), None, &abort))
                .unwrap();
            let (a, r) = (abort.clone(), rx.clone());
            let aborter = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                a.set();
                r.close();
            });
            match rt.block_on(tx.push_async_any(item(3), None, &abort)) {
                Err(PushError::Aborted(i)) => assert_eq!(i.seq, 3),
                other => panic!("awaiting={awaiting}: {other:?}"),
            }
            aborter.join().unwrap();
            assert_eq!(drain(&rx), vec![2]);
        }
    }

    #[test]
    fn closing_an_awaiting_queue_wakes_a_blocked_thread() {
        let abort = Flag::new();
        let (tx, rx) = channel(Capacity::Bounded(1), WhenFull::Block, true, stats());
        tx.push_blocking(item(0), None, &abort).unwrap();
        let t = std::thread::spawn(move || tx.push_blocking(item(1), None, &Flag::new()));
        std::thread::sleep(Duration::from_millis(20));
        rx.close();
        assert!(matches!(t.join().unwrap(), Err(PushError::Aborted(i)) if i.seq == 1));
        assert_eq!(
            rx.try_recv().map(|i| i.seq),
            Some(0),
            "queued items stay readable"
        );
    }
}
