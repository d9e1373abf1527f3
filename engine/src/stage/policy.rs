//! Resilience policies of a stage: per-attempt timeout, retries with
//! exponential backoff and jitter, and a live-tunable rate limit.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use shared::spec::{Jitter, OnError, RetrySpec, StageSpec};

use crate::signal::Flag;

/// The backoff before retry number `retry` (1 = before the second
/// attempt): `d = min(cap, base * 2^(retry-1))`, then jittered with `unit`,
/// a random number in `[0, 1)`.
pub fn backoff(spec: &RetrySpec, retry: u32, unit: f64) -> Duration {
    let exp = 2f64.powi(retry.saturating_sub(1).min(62) as i32);
    let d = (spec.base_ms * exp).min(spec.cap_ms).max(0.0);
    let unit = unit.clamp(0.0, 1.0);
    let ms = match spec.jitter {
        Jitter::Full => d * unit,
        Jitter::Equal => d / 2.0 + d / 2.0 * unit,
        Jitter::None => d,
    };
    Duration::from_secs_f64(ms / 1000.0)
}

/// A stage's policies, compiled from its spec.
#[derive(Debug)]
pub struct Policy {
    /// Per-attempt time limit.
    pub timeout: Option<Duration>,
    /// Retry policy; `None` means one attempt.
    pub retry: Option<RetrySpec>,
    /// What to do with items that failed for good.
    pub on_error: OnError,
    /// The rate limit, shared by all workers of the stage.
    pub gate: RateGate,
}

impl Policy {
    /// Compiles `spec`'s policies.
    pub fn new(spec: &StageSpec) -> Self {
        Self {
            timeout: spec.timeout_ms.map(Duration::from_millis),
            retry: spec.retry,
            on_error: spec.on_error,
            gate: RateGate::new(spec.rate_limit),
        }
    }

    /// Whether no item ever waits in this policy (no rate limit now, no
    /// retry backoff), so a worker may take its input in chunks.
    pub fn never_waits(&self) -> bool {
        self.retry.is_none() && self.gate.is_open()
    }
}

/// A token bucket (governor) that lets at most `rate` items per second
/// through, with a burst of one, so no window ever sees more than its
/// share. It can be changed or removed while workers wait on it.
#[derive(Debug)]
pub struct RateGate {
    /// Fast path: no lock at all when there is no limit.
    active: AtomicBool,
    limiter: Mutex<Option<(f64, Arc<DefaultDirectRateLimiter>)>>,
}

fn limiter(rate: f64) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a positive period")
        .allow_burst(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
}

impl RateGate {
    /// A gate at `rate` items per second, or open.
    pub fn new(rate: Option<f64>) -> Self {
        let gate = Self {
            active: AtomicBool::new(false),
            limiter: Mutex::new(None),
        };
        gate.set(rate);
        gate
    }

    /// Changes the rate (`None` opens the gate).
    pub fn set(&self, rate: Option<f64>) {
        let mut guard = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        *guard = rate.map(|r| (r, limiter(r)));
        self.active.store(guard.is_some(), Ordering::Relaxed);
    }

    /// Whether no limit is set (no item waits at this gate).
    pub fn is_open(&self) -> bool {
        !self.active.load(Ordering::Relaxed)
    }

    /// The current rate.
    pub fn rate(&self) -> Option<f64> {
        self.current().map(|(r, _)| r)
    }

    fn current(&self) -> Option<(f64, Arc<DefaultDirectRateLimiter>)> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        self.limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes a token if one is due: `Ok` (or no limit), or how long to
    /// wait before asking again. The wait is capped so a tune that
    /// replaces the limiter is noticed.
    fn try_pass(&self) -> Result<(), Duration> {
        let Some((_, limiter)) = self.current() else {
            return Ok(());
        };
        limiter.check().map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .min(Duration::from_millis(100))
        })
    }

    /// Waits for a token on a thread; false if the job aborted meanwhile.
    pub fn wait_blocking(&self, abort: &Flag) -> bool {
        while let Err(wait) = self.try_pass() {
            if abort.wait_timeout(wait) {
                return false;
            }
        }
        true
    }

    /// Waits for a token on a task; false if the job aborted meanwhile.
    pub async fn wait_async(&self, abort: &Flag) -> bool {
        while let Err(wait) = self.try_pass() {
            tokio::select! {
                biased;
                _ = abort.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn retry(jitter: Jitter) -> RetrySpec {
        RetrySpec {
            max_attempts: 10,
            base_ms: 100.0,
            cap_ms: 1000.0,
            jitter,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let none = retry(Jitter::None);
        let ms: Vec<u128> = (1..=6)
            .map(|n| backoff(&none, n, 0.5).as_millis())
            .collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&none, 1000, 0.5).as_millis(), 1000, "no overflow");
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for n in 1..=8 {
            let d = backoff(&retry(Jitter::None), n, 0.0);
            for i in 0..=20 {
                let unit = f64::from(i) / 20.0;
                let full = backoff(&retry(Jitter::Full), n, unit);
                assert!(full <= d, "full jitter within [0, d]");
                let equal = backoff(&retry(Jitter::Equal), n, unit);
                assert!(equal >= d / 2 && equal <= d, "equal jitter within [d/2, d]");
            }
            assert_eq!(backoff(&retry(Jitter::Full), n, 0.0), Duration::ZERO);
            assert_eq!(backoff(&retry(Jitter::Equal), n, 1.0), d);
        }
    }

    #[test]
    fn a_gate_never_lets_more_than_its_rate_through() {
        // Count-based: 50 tokens at 500/s need at least 49 periods of 2 ms
        // (a burst of one). A slow machine only takes longer.
        let gate = RateGate::new(Some(500.0));
        let abort = Flag::new();
        let start = Instant::now();
        for _ in 0..50 {
            assert!(gate.wait_blocking(&abort));
        }
        assert!(
            start.elapsed() >= Duration::from_millis(49 * 2 - 1),
            "{:?}",
            start.elapsed()
        );
        gate.set(None);
        assert!(gate.rate().is_none());
        assert!(
            gate.wait_blocking(&abort),
            "an open gate lets everything through"
        );
    }

    #[test]
    fn abort_wakes_a_waiting_worker() {
        let gate = RateGate::new(Some(0.001));
        let abort = Flag::new();
        assert!(gate.wait_blocking(&abort), "first token is free");
        abort.set();
        assert!(!gate.wait_blocking(&abort));
    }
}
