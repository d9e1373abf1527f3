//! The ops that take time: latency distributions ([`Latency`], for
//! `sleep` and `blocking_sleep`), the blocking sleep itself and `spin`.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand_distr::Distribution as _;
use shared::spec::Distribution;

use crate::signal::Flag;

/// A sampler for a latency distribution.
#[derive(Debug, Clone)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds, in ms.
    Uniform(rand_distr::Uniform<f64>),
    /// Exponential, in ms.
    Exponential(rand_distr::Exp<f64>),
    /// Log-normal, in ms.
    LogNormal(rand_distr::LogNormal<f64>),
}

impl Latency {
    /// Compiles a validated distribution.
    pub fn new(d: &Distribution) -> Self {
        match *d {
            Distribution::Fixed { ms } => Latency::Fixed(ms_to_duration(ms)),
            Distribution::Uniform { min_ms, max_ms } => Latency::Uniform(
                rand_distr::Uniform::new_inclusive(min_ms, max_ms).expect("validated bounds"),
            ),
            Distribution::Exponential { mean_ms } if mean_ms > 0.0 => {
                Latency::Exponential(rand_distr::Exp::new(1.0 / mean_ms).expect("positive rate"))
            }
            Distribution::Exponential { .. } => Latency::Fixed(Duration::ZERO),
            Distribution::LogNormal { median_ms, sigma } if median_ms > 0.0 => Latency::LogNormal(
                rand_distr::LogNormal::new(median_ms.ln(), sigma).expect("validated sigma"),
            ),
            Distribution::LogNormal { .. } => Latency::Fixed(Duration::ZERO),
        }
    }

    /// Draws one latency.
    pub fn sample(&self, rng: &mut SmallRng) -> Duration {
        let ms = match self {
            Latency::Fixed(d) => return *d,
            Latency::Uniform(u) => u.sample(rng),
            Latency::Exponential(e) => e.sample(rng),
            Latency::LogNormal(l) => l.sample(rng),
        };
        ms_to_duration(ms.min(shared::spec::limits::MAX_LATENCY_MS))
    }
}

pub(super) fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

/// Blocks the calling thread for `d` (the pitfall, on an async stage),
/// in short slices so an abort is noticed within one slice; returns false
/// if `abort` was set meanwhile.
pub(super) fn blocking_sleep(d: Duration, abort: &Flag) -> bool {
    const SLICE: Duration = Duration::from_millis(10);
    let end = Instant::now() + d;
    loop {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        if abort.is_set() {
            return false;
        }
        std::thread::sleep((end - now).min(SLICE));
    }
}

/// Busy-waits for `d`; returns false if `abort` was set meanwhile.
pub(super) fn spin(d: Duration, abort: &Flag) -> bool {
    if d.is_zero() {
        return true;
    }
    let end = Instant::now() + d;
    let mut x = 0u64;
    loop {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        if Instant::now() >= end {
            return true;
        }
        if abort.is_set() {
            return false;
        }
    }
}
