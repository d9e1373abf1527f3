//! Whole jobs run by the engine: lifecycle, accounting, tuning, bridges.
//! One test binary for the area, with shared helpers.

mod accounting;
mod auto;
mod broker;
mod helpers;
mod ingest;
mod lifecycle;
mod policies;
mod postgres;
mod properties;
mod schema;
mod sinks;
mod sources;
