//! The tuning lab on a server: sweeps and soaks started over the API, each
//! measured on a thread of its own, every run started as an ordinary job
//! (limited, confined, stored, audited, listed) and linked by id.
//!
//! What a lab run has found so far lives in a `watch` channel per run: the
//! API reads its latest value, the WebSocket pushes each new one, and the
//! store gets it after every run and at the end. The lab thread holds no
//! lock the API needs while it measures; it only blocks on the server's
//! runtime to start a job or write to the store, as a request would.
//!
//! [`runs`] holds what the server knows of its lab runs (kept in
//! [`crate::state::AppState`]); [`runner`] starts them and measures.

pub mod runner;
pub mod runs;

pub use runner::{MAX_RUNNING, MAX_SWEEP_MS, start_soak, start_sweep};
pub use runs::LabRuns;
