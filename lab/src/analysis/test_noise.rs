//! Deterministic noise for the analysis tests (test builds only).
//!
//! A tiny linear congruential generator keeps the tests reproducible without
//! adding a random-number crate.

/// Knuth's MMIX linear congruential generator.
///
/// Why: reproducible pseudo-noise for tests, identical on every platform.
#[derive(Debug, Clone)]
pub(crate) struct Lcg(u64);

impl Lcg {
    /// A generator started from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[-1, 1)`.
    pub(crate) fn next_signed(&mut self) -> f64 {
        self.next_unit() * 2.0 - 1.0
    }
}
