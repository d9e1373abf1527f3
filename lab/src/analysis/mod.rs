//! The statistics that read a sweep or a soak run.
//!
//! * `knee` — where throughput gains flatten (Kneedle, every knee found)
//!   and where a latency or error figure first climbs past its baseline.
//! * `usl` — Gunther's Universal Scalability Law fitted by bounded least
//!   squares (`rmpfit`): σ, κ, λ, N*, the predicted peak, r², and whether
//!   scaling is contention- or coherency-bound.
//!
//! Still to come for the tuning lab: the soak's trend test (Mann–Kendall
//! with Sen's slope), the Little's-law check and the capacity search.

pub mod knee;
pub mod usl;

#[cfg(test)]
mod test_noise;
