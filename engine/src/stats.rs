//! Counters and latency histograms of one pipeline node.
//!
//! Workers write, the job's sampler reads. To keep the per-item cost low
//! and contention away, each node has a few cache-padded shards; worker `n`
//! writes shard `n % SHARDS` with relaxed atomics and an uncontended mutex
//! around its histograms. The sampler sums the shards and swaps the
//! interval histograms out at each tick.
//!
//! Counts are exact. Times are *sampled* when items are very cheap: a clock
//! read costs ~30 ns, as much as a queue hop, so a [`Stride`] times every
//! iteration while iterations take longer than `FAST_ITERATION` and one
//! in `FAST_STRIDE` above that rate (~500k items/s per worker). Latency
//! percentiles and busy/idle/blocked shares then come from that sample.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use shared::metrics::Latency;
use shared::spec::{Capacity, Runtime, WhenFull};

/// Number of shards per node.
pub(crate) const SHARDS: usize = 8;

/// Highest latency the histograms track: 10 minutes, in microseconds.
const MAX_TRACKED_US: u64 = 600_000_000;

/// A histogram of microseconds, 1 µs to 10 min, 2 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 2).expect("valid histogram bounds")
}

/// Percentiles of a histogram.
pub(crate) fn summarize(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p95_us: h.value_at_quantile(0.95),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        mean_us: h.mean(),
    }
}

/// The job's end-to-end latency up to a moment, from
/// [`crate::JobHandle::latency_mark`]: two marks give the percentiles of
/// the window between them, which snapshots (per interval, or whole run)
/// cannot.
#[derive(Debug, Clone)]
pub struct LatencyMark(Histogram<u64>);

impl LatencyMark {
    pub(crate) fn new(h: Histogram<u64>) -> Self {
        Self(h)
    }

    /// Latency of the items that reached the sink after `earlier` and up
    /// to this mark.
    pub fn since(&self, earlier: &LatencyMark) -> Latency {
        let mut window = self.0.clone();
        // Both come from one histogram that only grows, so the earlier one
        // is contained in this one.
        if window.subtract(&earlier.0).is_err() {
            return Latency::default();
        }
        summarize(&window)
    }

    /// Latency of everything up to this mark.
    pub fn total(&self) -> Latency {
        summarize(&self.0)
    }
}

/// Iterations faster than this are timed one in `FAST_STRIDE`.
pub(crate) const FAST_ITERATION: Duration = Duration::from_micros(2);
/// How many fast iterations share one timing. 64 rather than 16 took
/// 3-10% off the no-op shapes' per-item cost (`bench/peer`, alternating
/// runs); above ~500k items/s per worker it still times thousands of
/// items a second.
pub(crate) const FAST_STRIDE: u32 = 64;

/// Decides which iterations of a loop read the clock: all of them while
/// iterations are slow, one in `FAST_STRIDE` while they are fast.
#[derive(Debug, Clone, Copy)]
pub struct Stride {
    left: u32,
    every: u32,
}

impl Default for Stride {
    fn default() -> Self {
        Self { left: 0, every: 1 }
    }
}

impl Stride {
    /// Whether this iteration is timed.
    #[inline]
    pub fn tick(&mut self) -> bool {
        if self.left == 0 {
            self.left = self.every - 1;
            true
        } else {
            self.left -= 1;
            false
        }
    }

    /// Adjusts the stride to the duration of one (timed) iteration.
    #[inline]
    pub fn adapt(&mut self, iteration: Duration) {
        self.every = if iteration < FAST_ITERATION {
            FAST_STRIDE
        } else {
            1
        };
    }
}

/// The source's time, split as a worker's is: making items (busy),
/// waiting for input (idle), waiting for room downstream (blocked).
/// Several producing threads (one per TCP client) add to the same sums.
#[derive(Debug, Default)]
pub struct SourceTime {
    /// Time spent making items.
    pub busy_ns: AtomicU64,
    /// Time spent waiting for input.
    pub idle_ns: AtomicU64,
    /// Time spent waiting for room in the first queue.
    pub blocked_ns: AtomicU64,
}

/// Splits a worker's time into busy, idle and blocked exactly, by laps:
/// each [`Laps::lap`] books the time since the last one to a counter. A
/// worker laps where its activity changes (before and after a wait, around
/// a push), which is once per chunk when items come in chunks.
#[derive(Debug)]
pub(crate) struct Laps {
    last: Instant,
}

impl Laps {
    /// Starts the first lap now.
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
        }
    }

    /// Books the time since the last lap to `counter`.
    #[inline]
    pub fn lap(&mut self, counter: &AtomicU64) {
        let now = Instant::now();
        counter.fetch_add((now - self.last).as_nanos() as u64, Ordering::Relaxed);
        self.last = now;
    }
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, MAX_TRACKED_US);
    h.saturating_record(us);
}

/// Interval histograms of one shard.
#[derive(Debug)]
pub(crate) struct Hists {
    /// Time in queue.
    pub queue_wait: Histogram<u64>,
    /// Time in the operation.
    pub service: Histogram<u64>,
    /// Source to here (recorded by the sink only).
    pub end_to_end: Histogram<u64>,
}

impl Default for Hists {
    fn default() -> Self {
        Self {
            queue_wait: new_histogram(),
            service: new_histogram(),
            end_to_end: new_histogram(),
        }
    }
}

/// Counters written by the workers of one shard.
#[derive(Debug, Default)]
pub struct Shard {
    /// Items passed downstream.
    pub out: AtomicU64,
    /// Items a filter removed.
    pub filtered: AtomicU64,
    /// Items that failed for good and were dropped (`on_error = "drop"`).
    pub errors: AtomicU64,
    /// Items that failed for good and were dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Retried attempts.
    pub retries: AtomicU64,
    /// Attempts that timed out.
    pub timeouts: AtomicU64,
    /// Nanoseconds working.
    pub busy_ns: AtomicU64,
    /// Nanoseconds waiting for input.
    pub idle_ns: AtomicU64,
    /// Nanoseconds blocked pushing downstream.
    pub blocked_ns: AtomicU64,
    /// Interval histograms.
    pub(crate) hists: Mutex<Hists>,
}

/// Static description of a node, for snapshots.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Display name.
    pub name: String,
    /// Stage, bridge or sink.
    pub kind: shared::metrics::NodeKind,
    /// Thread or async world of its workers.
    pub runtime: Runtime,
    /// Queue capacity.
    pub capacity: Capacity,
    /// Full-queue policy.
    pub when_full: WhenFull,
}

/// Everything measured about one node.
#[derive(Debug)]
pub struct NodeStats {
    /// What the node is.
    pub info: NodeInfo,
    /// Items accepted into the queue (written by producers).
    pub accepted: CachePadded<AtomicU64>,
    /// Items dropped by the queue's policy (written by producers).
    pub dropped: CachePadded<AtomicU64>,
    /// Items this node held at abort.
    pub leftovers: AtomicU64,
    /// Sink only: rows written twice into a target that keeps both (an
    /// inserting sink retrying a batch that had in fact been committed).
    pub duplicates: AtomicU64,
    /// Live workers.
    pub workers: AtomicU32,
    /// The workers last asked for (0 until the node starts): kept after
    /// they exit, so a finished job's report says what ran.
    pub configured: AtomicU32,
    /// Async concurrency limit (0 when not applicable).
    pub concurrency: AtomicU32,
    /// Async workers inside a `poll` right now: one that stays inside
    /// while the event loop is stalled is making a blocking call.
    pub in_poll: AtomicU32,
    /// Nanoseconds its async workers spent inside `poll`: their share of
    /// the event loop's threads.
    pub poll_ns: AtomicU64,
    /// Kernel ids of the node's OS threads, so the sampler can read their
    /// CPU time from `/proc`; a mutex, as threads join and leave rarely and
    /// the sampler reads it once per interval.
    pub threads: Mutex<Vec<u32>>,
    /// Per-shard counters.
    pub shards: Box<[CachePadded<Shard>]>,
    /// Drop and error reasons with counts; rare events, so a mutex is fine.
    pub reasons: Mutex<BTreeMap<String, u64>>,
}

/// A thread's place in [`NodeStats::threads`], given up when it ends.
#[derive(Debug)]
pub(crate) struct Enlisted<'a> {
    stats: &'a NodeStats,
    tid: Option<u32>,
}

impl Drop for Enlisted<'_> {
    fn drop(&mut self) {
        if let Some(tid) = self.tid {
            self.stats
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|t| *t != tid);
        }
    }
}

/// A worker's handle on its shard, so the hot path indexes nothing.
#[derive(Debug, Clone, Copy)]
pub struct ShardRef<'a>(pub &'a Shard);

impl NodeStats {
    /// Stats for a node.
    pub fn new(info: NodeInfo) -> Self {
        Self {
            info,
            accepted: CachePadded::new(AtomicU64::new(0)),
            dropped: CachePadded::new(AtomicU64::new(0)),
            leftovers: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            workers: AtomicU32::new(0),
            configured: AtomicU32::new(0),
            concurrency: AtomicU32::new(0),
            in_poll: AtomicU32::new(0),
            poll_ns: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Shard::default()))
                .collect(),
            reasons: Mutex::new(BTreeMap::new()),
        }
    }

    /// Lists the calling OS thread among the node's until the guard drops,
    /// so its CPU time counts as the node's.
    pub(crate) fn enlist_thread(&self) -> Enlisted<'_> {
        let tid = crate::process::current_tid();
        if let Some(tid) = tid {
            self.threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tid);
        }
        Enlisted { stats: self, tid }
    }

    /// The shard worker `n` writes.
    pub fn shard(&self, n: usize) -> ShardRef<'_> {
        ShardRef(&self.shards[n % SHARDS])
    }

    /// Counts one occurrence of `reason`.
    pub(crate) fn note_reason(&self, reason: String) {
        self.note_reasons(reason, 1);
    }

    /// Counts `n` occurrences of `reason` at once (a chunk's drops).
    pub(crate) fn note_reasons(&self, reason: String, n: u64) {
        let mut map = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason).or_default() += n;
    }

    /// Sum of a shard counter.
    pub fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    /// Takes the interval histograms of every shard, merged, leaving empty
    /// ones behind.
    pub(crate) fn take_interval(&self) -> Hists {
        let mut total = Hists::default();
        for shard in self.shards.iter() {
            let mut h = shard.hists.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds everywhere, so adding cannot fail.
            let _ = total.queue_wait.add(&h.queue_wait);
            let _ = total.service.add(&h.service);
            let _ = total.end_to_end.add(&h.end_to_end);
            h.queue_wait.reset();
            h.service.reset();
            h.end_to_end.reset();
        }
        total
    }
}

impl ShardRef<'_> {
    /// Adds `d` to a time counter.
    #[inline]
    pub fn add_time(&self, counter: &AtomicU64, d: Duration) {
        counter.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Records what was timed of one item: its queue wait, its service
    /// time, its end-to-end latency (sink only).
    #[inline]
    pub fn record(
        &self,
        queue_wait: Option<Duration>,
        service: Option<Duration>,
        end_to_end: Option<Duration>,
    ) {
        if queue_wait.is_none() && service.is_none() && end_to_end.is_none() {
            return;
        }
        let mut h = self.0.hists.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = queue_wait {
            record(&mut h.queue_wait, d);
        }
        if let Some(d) = service {
            record(&mut h.service, d);
        }
        if let Some(d) = end_to_end {
            record(&mut h.end_to_end, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::NodeKind;

    #[test]
    fn stride_times_everything_slow_and_one_in_n_fast() {
        let mut s = Stride::default();
        assert!((0..10).all(|_| s.tick()));
        s.adapt(Duration::from_nanos(100));
        let timed = (0..10 * FAST_STRIDE).filter(|_| s.tick()).count();
        assert_eq!(timed, 10);
        s.adapt(Duration::from_micros(50));
        let _ = (0..FAST_STRIDE).map(|_| s.tick()).count();
        assert!((0..10).all(|_| s.tick()));
    }

    #[test]
    fn shards_sum_and_intervals_reset() {
        let stats = NodeStats::new(NodeInfo {
            name: "s".into(),
            kind: NodeKind::Stage,
            runtime: Runtime::Thread,
            capacity: Capacity::Bounded(10),
            when_full: WhenFull::Block,
        });
        for n in 0..20 {
            let shard = stats.shard(n);
            shard.0.out.fetch_add(1, Ordering::Relaxed);
            shard.record(
                Some(Duration::from_micros(10)),
                Some(Duration::from_micros(100 * (n as u64 + 1))),
                None,
            );
        }
        assert_eq!(stats.sum(|s| &s.out), 20);
        let interval = stats.take_interval();
        let service = summarize(&interval.service);
        assert_eq!(service.count, 20);
        assert!((1990..=2010).contains(&service.max_us), "{service:?}");
        assert_eq!(summarize(&stats.take_interval().service).count, 0);
    }
}
