//! # `lab` — QueueLab's tuning lab
//!
//! The article's §7 as a tool: turn one knob at a time, watch throughput,
//! latency and errors, stop at the knee; search for the capacity that keeps
//! an SLO; soak to catch leaks. Every measurement is an ordinary engine job,
//! so what the lab measures is exactly what a user runs.
//!
//! ## The path of a sweep
//!
//! A [`shared::lab::SweepSpec`] (data: a pipeline, a knob path, values,
//! windows, repeats, an optional SLO) goes to [`sweep::run`]:
//!
//! * [`knob`] sets the value in the spec by its path (`stages[io].workers`,
//!   `source.rate`, `sink.batch.size`) and validates the result with the
//!   spec's own limits; it also lists the knobs a spec offers.
//! * [`point`] runs one value as a job started through a [`point::Launcher`]
//!   ([`launch::LocalLauncher`] in-process, or the server's registry): warm-up, a
//!   measured window cut out of the job's snapshots and exact latency
//!   marks, then an abort whose leftovers keep the accounting whole. A
//!   source with a rate is an open model: latency counts from each item's
//!   due time.
//! * [`sweep`] repeats, takes medians, and reads them with [`analysis`]:
//!   the knee (Kneedle, and where P99 or errors first climb), the USL fit
//!   for concurrency knobs, Little's-law flags; or runs the capacity
//!   search, which picks the values itself.
//! * [`verdict`] says what it means in sentences; [`svg`] draws it.
//!
//! [`soak`] runs one pipeline long and judges RSS, open files, threads and
//! queue depth for leaks (Mann–Kendall with Sen's slope, against budgets),
//! after every interval.
//!
//! Nothing here serves HTTP or draws a terminal: the server and the CLI
//! watch a sweep through [`sweep::SweepWatch`] and [`soak::SoakWatch`].

pub mod analysis;
pub mod knob;
pub mod launch;
pub mod point;
pub mod soak;
pub mod svg;
pub mod sweep;
pub mod verdict;
