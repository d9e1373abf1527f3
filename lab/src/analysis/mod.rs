//! The statistics that read a sweep or a soak run.
//!
//! * `knee` — where throughput gains flatten (Kneedle, every knee found)
//!   and where a latency or error figure first climbs past its baseline.
//! * `usl` — Gunther's Universal Scalability Law fitted by bounded least
//!   squares (`rmpfit`): σ, κ, λ, N*, the predicted peak, r², and whether
//!   scaling is contention- or coherency-bound.
//! * `trend` — a soak's drift: Mann–Kendall with Sen's slope, the leak
//!   verdict (significant *and* over budget), and a series' spread.
//! * `little` — Little's law per stage and window, to catch a metric that
//!   is wrong.
//! * `capacity` — the bracketing search for the best knob value that
//!   keeps an SLO, as a state machine the driver feeds.

pub mod capacity;
pub mod knee;
pub mod little;
pub mod trend;
pub mod usl;

#[cfg(test)]
mod test_noise;
