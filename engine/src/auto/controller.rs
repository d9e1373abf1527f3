//! The controller of one automatic limit: what it reads each window, what
//! it decides, and why. Pure arithmetic over [`Window`]s, so its rules are
//! tested without a running stage.
//!
//! ## The algorithm
//!
//! An AIMD controller on the stage's service time, the family of TCP's
//! congestion control (Jacobson, *Congestion Avoidance and Control*,
//! SIGCOMM 1988) as Vector's adaptive request concurrency applies it to
//! HTTP sinks (vector.dev, "Adaptive Request Concurrency", 2020) and
//! Netflix's `concurrency-limits` (the `AIMDLimit` and `Gradient2Limit`
//! of github.com/Netflix/concurrency-limits) to services:
//!
//! * The **baseline** is the lowest median service time (the "RTT") seen
//!   in a window, like Vegas' and ARC's minimum RTT: what one operation
//!   costs when nothing queues for the resource behind it.
//! * **Multiplicative decrease** (×0.75) when the window's median service
//!   time is over [`TOLERANCE`] × the baseline (operations queue for the
//!   resource: a thread pool past the core count, an HTTP service past
//!   its capacity), or when more than [`ERROR_SHARE`] of the window's
//!   attempts timed out or failed.
//! * **Additive increase** (+10%, at least one) while the service time
//!   stays near the baseline *and* the limit binds: the workers are busy
//!   ([`BUSY`]) with items waiting in the input queue, and the output is
//!   not what holds them up. A limit that does not bind is not raised:
//!   more workers could only wait for items. A **slow start** doubles the
//!   limit until the first decrease or the first window where it does not
//!   bind, so a stage that needs 64 gets there in a few seconds.
//! * **Idle release**: workers under half busy with nothing queued are
//!   more than the load needs; the limit drops to what it needs (Little's
//!   law: busy share × limit) over [`BUSY`].
//! * **The service slowed, not us**: a decrease is meant to bring the
//!   service time back down. When the next window at the lower limit is
//!   as slow, the resource itself got slower (a downstream whose latency
//!   doubled), so the baseline moves up to it and the limit goes back to
//!   where it was; this is what Gradient2's long-term RTT does smoothly,
//!   done in one step here because it is a step that the test shows.
//! * **Throughput gradient**: after an increase, a window at capacity
//!   whose throughput grew less than a quarter ([`FLAT_GAIN`]) of the
//!   proportional gain undoes it. This is what finds the knee of a stage
//!   whose service time does not show the contention (a CPU-bound op
//!   measures its own wall time, which stays the same while threads
//!   queue for the cores; a broker stage's operations run on other
//!   hosts). Each increase undone doubles the wait before the next probe
//!   (up to [`MAX_PROBE_BACKOFF_SECS`]), so a settled stage probes
//!   rarely.
//!
//! After every change the window in flight is thrown away (it mixes the
//! two limits), and after a decrease no increase comes for
//! [`COOL_DOWN_SECS`], so on a stationary load the limit sits at the knee
//! or one step above it instead of sawing.

/// Service time over the baseline by more than this is overload.
pub const TOLERANCE: f64 = 1.3;
/// A share of timed-out or failed attempts over this is overload.
pub const ERROR_SHARE: f64 = 0.01;
/// What a decrease keeps of the limit.
pub const DECREASE: f64 = 0.75;
/// Busy share over which the limit binds.
pub const BUSY: f64 = 0.85;
/// Busy share under which, with nothing queued, workers are idle.
pub const IDLE: f64 = 0.5;
/// Blocked share (on a full output) over which the output holds the
/// stage up, and more workers would not help.
pub const BLOCKED: f64 = 0.2;
/// Service-time samples a window needs before the controller reads it.
pub const MIN_SAMPLES: u64 = 10;
/// Items a window needs before the controller reads it.
pub const MIN_ITEMS: u64 = 10;
/// Shortest window the controller reads: a throughput read over one
/// 250 ms sample swings with whatever else the machine ran in it.
pub const MIN_WINDOW_SECS: f64 = 0.75;
/// Longest a window grows before the controller reads what it has.
pub const MAX_WINDOW_SECS: f64 = 5.0;
/// No increase this long after a decrease.
pub const COOL_DOWN_SECS: f64 = 2.0;
/// An increase that brought less than this share of the proportional
/// throughput gain is undone.
pub const FLAT_GAIN: f64 = 0.25;
/// Longest wait before probing above a limit whose increases brought
/// nothing (the wait doubles with each such probe).
pub const MAX_PROBE_BACKOFF_SECS: f64 = 60.0;

/// What one stage did over a window (one sample interval or more).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Seconds the window covers.
    pub secs: f64,
    /// Items the stage finished (passed on, filtered, dropped or failed).
    pub items: u64,
    /// Service-time samples, and their median in microseconds.
    pub samples: u64,
    /// Median service time, microseconds (`None`: no samples to read).
    pub rtt_us: Option<f64>,
    /// Attempts that timed out, were retried or failed.
    pub errors: u64,
    /// Share of the workers' time spent on items.
    pub busy: f64,
    /// Share spent waiting for room downstream.
    pub blocked: f64,
    /// Items waiting in the input at the end of the window.
    pub backlog: u64,
}

impl Window {
    /// Adds a later interval to this window.
    pub fn merge(&mut self, later: &Window) {
        let total = self.secs + later.secs;
        let weigh = |a: f64, b: f64| {
            if total > 0.0 {
                (a * self.secs + b * later.secs) / total
            } else {
                b
            }
        };
        self.busy = weigh(self.busy, later.busy);
        self.blocked = weigh(self.blocked, later.blocked);
        self.secs = total;
        self.items += later.items;
        self.errors += later.errors;
        self.samples += later.samples;
        self.rtt_us = later.rtt_us.or(self.rtt_us);
        self.backlog = later.backlog;
    }

    /// Items per second.
    fn throughput(&self) -> f64 {
        self.items as f64 / self.secs.max(1e-9)
    }
}

/// Why the limit changed, as the stage card and the events say it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Slow start: service time near the baseline, limit binding.
    SlowStart {
        /// Service time over the baseline.
        ratio: f64,
    },
    /// Additive increase.
    Increase {
        /// Service time over the baseline.
        ratio: f64,
    },
    /// Service time too far over the baseline.
    Latency {
        /// Service time over the baseline.
        ratio: f64,
    },
    /// Too many attempts timed out or failed.
    Errors {
        /// Their share of the window's attempts.
        share: f64,
    },
    /// Workers idle with nothing queued.
    Idle {
        /// Busy share.
        busy: f64,
    },
    /// The service got slower by itself; the baseline follows.
    Rebased {
        /// The new baseline, microseconds.
        baseline_us: f64,
        /// What the old baseline was.
        was_us: f64,
    },
    /// An increase did not raise throughput (stages with no service time).
    Flat {
        /// Throughput gain over the proportional gain.
        gain: f64,
    },
}

impl Reason {
    /// In words, with the change: `latency 2.1× baseline → −25%`.
    pub fn describe(&self, from: u32, to: u32) -> String {
        let change = if to >= from {
            format!("+{}", to - from)
        } else {
            format!("−{}%", ((from - to) as f64 / from as f64 * 100.0).round())
        };
        match self {
            Reason::SlowStart { ratio } => {
                format!("slow start: latency {ratio:.1}× baseline, all busy with a backlog → ×2")
            }
            Reason::Increase { ratio } => {
                format!("latency {ratio:.1}× baseline, all busy with a backlog → {change}")
            }
            Reason::Latency { ratio } => format!("latency {ratio:.1}× baseline → {change}"),
            Reason::Errors { share } => {
                format!("{:.1}% timeouts or errors → {change}", share * 100.0)
            }
            Reason::Idle { busy } => {
                format!("workers {:.0}% busy, nothing queued → {to}", busy * 100.0)
            }
            Reason::Rebased {
                baseline_us,
                was_us,
            } => format!(
                "the service slowed by itself ({} → {} baseline): back to {to}",
                duration(*was_us),
                duration(*baseline_us)
            ),
            Reason::Flat { gain } => format!(
                "throughput rose {:.0}% of the added workers' share → {to}",
                gain * 100.0
            ),
        }
    }
}

/// Microseconds in the unit that reads best.
fn duration(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// One change of the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The limit before.
    pub from: u32,
    /// The limit after.
    pub to: u32,
    /// Why.
    pub reason: Reason,
}

/// The last change, to judge the window after it.
#[derive(Debug, Clone, Copy)]
struct Last {
    from: u32,
    /// The service time that made a latency decrease (`None` for other
    /// changes).
    decreased_at_us: Option<f64>,
    /// The window's throughput before an increase.
    increased_from_tps: Option<f64>,
}

/// The state of one automatic limit.
#[derive(Debug, Clone)]
pub struct Controller {
    min: u32,
    max: u32,
    limit: u32,
    baseline_us: Option<f64>,
    slow_start: bool,
    window: Option<Window>,
    /// Intervals to throw away (they straddle a change).
    skip: u32,
    /// Seconds until increases may come again.
    cool_down: f64,
    /// The wait after the next increase that brings nothing.
    probe_backoff: f64,
    last: Option<Last>,
    last_ratio: Option<f64>,
}

impl Controller {
    /// A controller for a limit in `min..=max`, now at `limit`.
    pub fn new(min: u32, max: u32, limit: u32) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            limit: limit.clamp(min, max),
            baseline_us: None,
            slow_start: true,
            window: None,
            skip: 0,
            cool_down: 0.0,
            probe_backoff: COOL_DOWN_SECS,
            last: None,
            last_ratio: None,
        }
    }

    /// The limit now.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The range it keeps to.
    pub fn range(&self) -> (u32, u32) {
        (self.min, self.max)
    }

    /// The service-time baseline, microseconds.
    pub fn baseline_us(&self) -> Option<f64> {
        self.baseline_us
    }

    /// Whether a window is being gathered (its service times must be
    /// kept until it completes).
    pub fn pending(&self) -> bool {
        self.window.is_some()
    }

    /// The last window's service time over the baseline.
    pub fn last_ratio(&self) -> Option<f64> {
        self.last_ratio
    }

    /// Takes the limit from elsewhere (a refused change, a turn back to
    /// auto): the next window starts clean, the baseline is kept.
    pub fn reset_to(&mut self, limit: u32) {
        self.limit = limit.clamp(self.min, self.max);
        self.window = None;
        self.skip = 1;
        self.last = None;
        self.slow_start = false;
    }

    /// Reads one more interval; returns a change when the window is
    /// complete and calls for one.
    pub fn observe(&mut self, interval: Window) -> Option<Decision> {
        self.cool_down = (self.cool_down - interval.secs).max(0.0);
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        let w = match &mut self.window {
            Some(w) => {
                w.merge(&interval);
                *w
            }
            None => {
                self.window = Some(interval);
                interval
            }
        };
        let enough = w.secs >= MIN_WINDOW_SECS
            && w.items >= MIN_ITEMS
            && (w.rtt_us.is_none() || w.samples >= MIN_SAMPLES);
        if !enough {
            if w.secs >= MAX_WINDOW_SECS && w.items < MIN_ITEMS {
                // A stage with almost no work: nothing to learn, start over.
                self.window = None;
            }
            return None;
        }
        self.window = None;
        let decision = self.decide(&w);
        if let Some(d) = &decision {
            self.limit = d.to;
            self.skip = 1;
        }
        decision
    }

    fn decide(&mut self, w: &Window) -> Option<Decision> {
        let attempts = w.items + w.errors;
        let error_share = w.errors as f64 / attempts.max(1) as f64;
        let ratio = w.rtt_us.map(|rtt| {
            let base = *self.baseline_us.get_or_insert(rtt);
            rtt / base.max(1.0)
        });
        self.last_ratio = ratio;
        let last = self.last.take();
        if error_share > ERROR_SHARE {
            return self.decrease(Reason::Errors { share: error_share }, None);
        }
        if let (Some(rtt), Some(ratio)) = (w.rtt_us, ratio) {
            if ratio > TOLERANCE {
                // A decrease that did not bring the service time down: the
                // service itself is slower now.
                if let Some(Last {
                    from,
                    decreased_at_us: Some(before),
                    ..
                }) = last
                    && rtt >= 0.85 * before
                {
                    let was = self.baseline_us.unwrap_or(rtt);
                    self.baseline_us = Some(rtt);
                    self.last_ratio = Some(1.0);
                    return self.change(
                        from,
                        Reason::Rebased {
                            baseline_us: rtt,
                            was_us: was,
                        },
                        None,
                    );
                }
                return self.decrease(Reason::Latency { ratio }, Some(rtt));
            }
            if rtt < self.baseline_us.unwrap_or(rtt) {
                self.baseline_us = Some(rtt);
            }
        }
        let binds = w.busy >= BUSY && w.backlog > 0 && w.blocked < BLOCKED;
        if binds
            && let Some(Last {
                from,
                increased_from_tps: Some(before),
                ..
            }) = last
        {
            // Judge the last increase by what it brought: a stage that was
            // and is at capacity should have gained in proportion.
            let expected = before * (self.limit as f64 / from.max(1) as f64 - 1.0);
            let gain = (w.throughput() - before) / expected.max(1e-9);
            if expected > 0.0 && gain < FLAT_GAIN {
                self.slow_start = false;
                self.cool_down = self.probe_backoff;
                self.probe_backoff = (self.probe_backoff * 2.0).min(MAX_PROBE_BACKOFF_SECS);
                return self.change(
                    from,
                    Reason::Flat {
                        gain: gain.max(0.0),
                    },
                    None,
                );
            }
            self.probe_backoff = COOL_DOWN_SECS;
        }
        if binds {
            if self.cool_down > 0.0 || self.limit >= self.max {
                return None;
            }
            let ratio = ratio.unwrap_or(1.0);
            let (to, reason) = if self.slow_start {
                (self.limit.saturating_mul(2), Reason::SlowStart { ratio })
            } else {
                (
                    self.limit + (self.limit / 10).max(1),
                    Reason::Increase { ratio },
                )
            };
            return self.change(to, reason, Some(w.throughput()));
        }
        self.slow_start = false;
        if w.busy < IDLE && w.backlog == 0 && self.limit > self.min {
            let needed = (w.busy * self.limit as f64 / BUSY).ceil() as u32;
            if needed < self.limit {
                return self.change(needed, Reason::Idle { busy: w.busy }, None);
            }
        }
        None
    }

    fn decrease(&mut self, reason: Reason, at_us: Option<f64>) -> Option<Decision> {
        self.slow_start = false;
        self.cool_down = COOL_DOWN_SECS;
        let to = ((self.limit as f64 * DECREASE) as u32).min(self.limit.saturating_sub(1));
        let d = self.change(to, reason, None)?;
        self.last = Some(Last {
            from: d.from,
            decreased_at_us: at_us,
            increased_from_tps: None,
        });
        Some(d)
    }

    /// A change to `to` (clamped to the range), `None` when that is no
    /// change.
    fn change(&mut self, to: u32, reason: Reason, tps: Option<f64>) -> Option<Decision> {
        let to = to.clamp(self.min, self.max);
        if to == self.limit {
            return None;
        }
        self.last = Some(Last {
            from: self.limit,
            decreased_at_us: None,
            increased_from_tps: tps.filter(|_| to > self.limit),
        });
        Some(Decision {
            from: self.limit,
            to,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of a stage at `limit` whose resource serves `knee`
    /// operations at once in `base_us` each: beyond the knee, operations
    /// queue for it and the service time grows in proportion.
    fn window(limit: u32, knee: u32, base_us: f64) -> Window {
        let rtt = base_us * (limit as f64 / knee as f64).max(1.0);
        let busy = limit.min(knee) as f64;
        Window {
            secs: 1.0,
            items: (busy / (base_us / 1e6)) as u64,
            samples: 100,
            rtt_us: Some(rtt),
            errors: 0,
            busy: 1.0,
            blocked: 0.0,
            backlog: 500,
        }
    }

    fn run(c: &mut Controller, ticks: usize, knee: u32, base_us: f64) -> Vec<u32> {
        (0..ticks)
            .map(|_| {
                let w = window(c.limit(), knee, base_us);
                c.observe(w);
                c.limit()
            })
            .collect()
    }

    #[test]
    fn it_climbs_to_the_knee_and_stays_within_a_step_of_it() {
        for knee in [2, 16, 100] {
            let mut c = Controller::new(1, 4096, 1);
            let limits = run(&mut c, 400, knee, 200.0);
            let tail = &limits[200..];
            let (lo, hi) = (*tail.iter().min().unwrap(), *tail.iter().max().unwrap());
            assert!(
                lo >= knee / 2 && hi <= knee * 2,
                "knee {knee}: settled in {lo}..={hi}: {limits:?}"
            );
            // At most a step of the sweep (×2) wide.
            assert!(hi <= lo * 2, "knee {knee}: saws {lo}..={hi}");
        }
    }

    #[test]
    fn a_knee_the_service_time_does_not_show_is_found_by_throughput() {
        // CPU-bound work timed by its own wall clock: the service time
        // stays the same past the core count, only throughput stops.
        for cores in [2, 8] {
            let mut c = Controller::new(1, 4096, 1);
            let mut changes = 0;
            let mut tail = Vec::new();
            for t in 0..2000 {
                let mut w = window(c.limit(), cores, 200.0);
                w.rtt_us = Some(200.0);
                if c.observe(w).is_some() && t >= 1000 {
                    changes += 1;
                }
                if t >= 1000 {
                    tail.push(c.limit());
                }
            }
            let (lo, hi) = (*tail.iter().min().unwrap(), *tail.iter().max().unwrap());
            assert!(
                lo >= cores / 2 && hi <= cores * 2,
                "{cores} cores: settled in {lo}..={hi}"
            );
            // Settled, it probes rarely: the waits double up to a minute,
            // so 1000 windows of a second see a probe (two changes) a
            // minute at most.
            assert!(changes <= 36, "{cores} cores: {changes} changes in 1000 s");
        }
    }

    #[test]
    fn a_latency_step_is_followed_not_mistaken_for_overload() {
        let mut c = Controller::new(1, 4096, 1);
        run(&mut c, 200, 16, 20_000.0);
        let before = c.limit();
        // The service doubles its latency at the same capacity.
        let mut after = Vec::new();
        let mut decreased = false;
        for _ in 0..40 {
            let mut w = window(c.limit(), 16, 40_000.0);
            w.items = 500;
            if let Some(d) = c.observe(w) {
                decreased |= d.to < d.from;
                after.push(d);
            }
        }
        assert!(decreased, "the step reads as latency first: {after:?}");
        assert!(
            after
                .iter()
                .any(|d| matches!(d.reason, Reason::Rebased { .. })),
            "then as the service's own: {after:?}"
        );
        let now = c.limit();
        assert!(
            (8..=32).contains(&now),
            "back near the knee: {before} → {now}, {after:?}"
        );
        assert!(c.baseline_us().unwrap() >= 35_000.0);
    }

    #[test]
    fn overload_decreases_by_a_quarter_and_says_why() {
        let mut c = Controller::new(1, 64, 32);
        // The baseline from a comfortable load earlier.
        c.baseline_us = Some(100.0);
        let d = c.observe(window(32, 16, 100.0)).unwrap();
        assert_eq!((d.from, d.to), (32, 24));
        assert_eq!(
            d.reason.describe(d.from, d.to),
            "latency 2.0× baseline → −25%"
        );
    }

    #[test]
    fn errors_decrease_and_min_and_max_are_kept() {
        let mut c = Controller::new(4, 8, 8);
        let mut w = window(8, 100, 100.0);
        w.errors = w.items / 10;
        let d = c.observe(w).unwrap();
        assert_eq!((d.from, d.to), (8, 6));
        assert!(d.reason.describe(8, 6).contains("timeouts or errors"));
        for _ in 0..50 {
            c.observe(w);
            assert!(c.limit() >= 4);
        }
        assert_eq!(c.limit(), 4);
        let mut c = Controller::new(1, 8, 1);
        run(&mut c, 100, 1000, 100.0);
        assert_eq!(c.limit(), 8, "a binding limit stops at max");
    }

    #[test]
    fn a_limit_that_does_not_bind_is_not_raised_and_idle_workers_go() {
        let mut c = Controller::new(1, 4096, 16);
        let mut w = window(16, 1000, 100.0);
        w.busy = 0.9;
        w.backlog = 0;
        for _ in 0..20 {
            assert_eq!(c.observe(w), None);
        }
        w.busy = 0.2;
        let d = c.observe(w).unwrap();
        assert_eq!((d.from, d.to), (16, 4), "{d:?}");
        assert!(matches!(d.reason, Reason::Idle { .. }));
        // A full output holds the stage up: more workers would not help.
        let mut c = Controller::new(1, 4096, 4);
        let mut w = window(4, 1000, 100.0);
        w.blocked = 0.5;
        for _ in 0..20 {
            c.observe(w);
        }
        assert_eq!(c.limit(), 4);
    }

    #[test]
    fn without_service_times_an_increase_that_brings_nothing_is_undone() {
        let mut c = Controller::new(1, 4096, 4);
        let mut w = window(4, 1000, 100.0);
        w.rtt_us = None;
        w.samples = 0;
        // Throughput stays at 4000/s whatever the limit.
        let d = c.observe(w).unwrap();
        assert_eq!((d.from, d.to), (4, 8));
        c.observe(w); // thrown away: straddles the change
        let d = c.observe(w).unwrap();
        assert_eq!((d.from, d.to), (8, 4));
        assert!(matches!(d.reason, Reason::Flat { .. }), "{d:?}");
    }

    #[test]
    fn a_thin_window_waits_for_more() {
        let mut c = Controller::new(1, 4096, 1);
        let mut w = window(1, 1000, 100.0);
        w.items = 3;
        w.samples = 3;
        assert_eq!(c.observe(w), None);
        assert_eq!(c.observe(w), None);
        assert_eq!(c.observe(w), None);
        // Nine samples so far: the fourth makes the window.
        assert!(c.observe(w).is_some());
    }
}
