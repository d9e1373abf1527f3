//! The limits a lab run's spec is checked against before anything runs.

/// Most knob values one sweep may measure.
pub const MAX_POINTS: usize = 64;
/// Most repetitions of one point.
pub const MAX_REPEAT: u32 = 10;
/// Longest warm-up or measure window of one point.
pub const MAX_WINDOW_MS: u64 = 600_000;
/// Shortest measure window (a few snapshots must fit in it).
pub const MIN_MEASURE_MS: u64 = 500;
/// Longest soak.
pub const MAX_SOAK_MS: u64 = 24 * 3_600_000;
/// Shortest soak interval (one median per interval).
pub const MIN_INTERVAL_MS: u64 = 500;
/// Most probes a capacity search may make.
pub const MAX_PROBES: usize = 40;
