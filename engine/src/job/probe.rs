//! The event-loop lag probe, read from outside the loop it measures.
//!
//! A task on the job's runtime ticks every [`PERIOD`] and stamps the time
//! of each tick. A probe that only reported its own lateness could not
//! report while the runtime is blocked (it would not run), so the sampler,
//! on its own thread, also reads how long ago the last tick ran: a tick
//! that is overdue counts as lag, and every tick that did not run in an
//! interval is counted as missed. While the loop is stalled, the async
//! stages whose workers are inside one `poll` are the ones blocking it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Period of the probe's tick.
pub(super) const PERIOD: Duration = Duration::from_millis(10);

/// Lag beyond which the loop counts as stalled and the stages inside a
/// poll are named as blocking it: a few ticks, so a scheduler hiccup of
/// a loaded machine does not name anyone.
pub(super) const STALLED: Duration = Duration::from_millis(50);

/// What the probe task writes and the sampler reads; atomics only, so
/// neither side ever waits for the other.
#[derive(Debug)]
pub(super) struct LoopProbe {
    /// Where the tick stamps count from.
    origin: Instant,
    /// When the last tick ran, in nanoseconds since `origin`.
    last_tick_ns: AtomicU64,
    /// Ticks run so far.
    ticks: AtomicU64,
    /// Worst lateness of a tick since the sampler last read it.
    worst_late_ns: AtomicU64,
}

/// The loop's health over one sampling interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LoopReading {
    /// Worst delay of the loop in the interval: a late tick, or the tick
    /// that is overdue right now.
    pub(super) lag: Duration,
    /// Ticks that should have run in the interval and did not.
    pub(super) missed_ticks: u64,
    /// The loop is stalled right now (its tick is overdue by more than
    /// [`STALLED`]).
    pub(super) stalled: bool,
}

impl LoopProbe {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            last_tick_ns: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            worst_late_ns: AtomicU64::new(0),
        })
    }

    fn since_origin(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// Books one tick that ran at `now`, `late` after it was due.
    fn tick(&self, now: Instant, late: Duration) {
        self.worst_late_ns
            .fetch_max(late.as_nanos() as u64, Ordering::Relaxed);
        self.last_tick_ns
            .store(self.since_origin(now), Ordering::Relaxed);
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }

    /// The reading for the interval since the last call, taken at `now`;
    /// `cursor` is the caller's memory of the previous call (ticks seen,
    /// when).
    pub(super) fn read(&self, now: Instant, cursor: &mut ProbeCursor) -> LoopReading {
        let ticks = self.ticks.load(Ordering::Relaxed);
        let last = Duration::from_nanos(self.last_tick_ns.load(Ordering::Relaxed));
        let since_last = now.saturating_duration_since(self.origin + last);
        // The next tick was due one period after the last one.
        let overdue = since_last.saturating_sub(PERIOD);
        let late = Duration::from_nanos(self.worst_late_ns.swap(0, Ordering::Relaxed));
        let dt = now.saturating_duration_since(cursor.at.unwrap_or(self.origin));
        let expected = (dt.as_nanos() / PERIOD.as_nanos()) as u64;
        let seen = ticks - cursor.ticks;
        // One tick of slack: a sleep loop runs a little slower than its
        // period, and the interval's edges cut ticks in two.
        let missed_ticks = expected.saturating_sub(seen + 1);
        cursor.ticks = ticks;
        cursor.at = Some(now);
        LoopReading {
            lag: late.max(overdue),
            missed_ticks,
            stalled: overdue > STALLED,
        }
    }
}

/// The sampler's memory of its previous reading.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ProbeCursor {
    ticks: u64,
    at: Option<Instant>,
}

/// Ticks on the runtime it measures until `stop`; its lateness and the
/// time of its last tick go to `probe`.
pub(super) async fn run(probe: Arc<LoopProbe>, stop: CancellationToken) {
    probe.tick(Instant::now(), Duration::ZERO);
    loop {
        let due = Instant::now() + PERIOD;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        let now = Instant::now();
        probe.tick(now, now.saturating_duration_since(due));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_stopped_ticking_reads_as_lag_and_missed_ticks() {
        let probe = LoopProbe::new();
        let mut cursor = ProbeCursor::default();
        let t0 = probe.origin;
        probe.tick(t0, Duration::ZERO);
        // Ticks every period for 100 ms: no lag, nothing missed.
        for i in 1..=10 {
            probe.tick(t0 + PERIOD * i, Duration::ZERO);
        }
        let r = probe.read(t0 + Duration::from_millis(105), &mut cursor);
        assert_eq!(r.missed_ticks, 0);
        assert_eq!(r.lag, Duration::ZERO);
        assert!(!r.stalled);
        // Then the loop is blocked for 400 ms: no tick runs at all.
        let r = probe.read(t0 + Duration::from_millis(505), &mut cursor);
        assert_eq!(r.lag, Duration::from_millis(505 - 100 - 10));
        assert!(r.missed_ticks >= 38, "{r:?}");
        assert!(r.stalled);
        // It runs again, one tick 400 ms late, then on time.
        probe.tick(t0 + Duration::from_millis(510), Duration::from_millis(400));
        for i in 1..=5 {
            probe.tick(t0 + Duration::from_millis(510) + PERIOD * i, Duration::ZERO);
        }
        let r = probe.read(t0 + Duration::from_millis(565), &mut cursor);
        assert_eq!(
            r.lag,
            Duration::from_millis(400),
            "the late tick is reported once"
        );
        assert!(!r.stalled);
        let r = probe.read(t0 + Duration::from_millis(566), &mut cursor);
        assert_eq!(r.lag, Duration::ZERO);
    }

    #[test]
    fn the_probe_task_ticks_on_a_free_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        let probe = LoopProbe::new();
        let stop = CancellationToken::new();
        rt.spawn(run(probe.clone(), stop.clone()));
        while probe.ticks.load(Ordering::Relaxed) < 5 {
            std::thread::sleep(PERIOD);
        }
        stop.cancel();
    }
}
