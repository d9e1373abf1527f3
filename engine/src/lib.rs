//! # `engine` — where QueueLab's pipelines run
//!
//! The engine turns pipeline specs (from `shared`) into running stages. It
//! has no HTTP in it: the server drives it, and so can a headless CLI or a
//! benchmark.
//!
//! A short tour:
//!
//! * [`runtime`] — the engine's own tokio runtime. Async stages run there,
//!   never on the server's runtime, so a pipeline that blocks its event
//!   loop (the article's classic pitfall, reproduced on purpose) cannot
//!   freeze the API or the dashboard.
//!
//! Stages, queues, bridges and metrics arrive with the engine issue; this
//! crate starts with the isolation guarantee every later piece relies on.

pub mod runtime;

pub use runtime::{EngineRuntime, RuntimeError};
