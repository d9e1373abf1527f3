//! # `shared` — the vocabulary of QueueLab
//!
//! Every type that crosses the wire between the server (`server`), the
//! pipeline runtime (`engine`) and the WebAssembly dashboard (`frontend`)
//! lives here, so both sides agree by construction instead of by
//! convention.
//!
//! A short tour:
//!
//! * [`ws`] — the frames the server pushes over `/api/v1/ws`. Every frame
//!   is a JSON object with a `type` tag, so a client can dispatch on it
//!   and ignore frame types it does not know yet.
//! * [`api`] — bodies of the REST API under `/api/v1` (version info, the
//!   JSON error body).
//! * [`spec`] — pipeline specs (source, stages, sink) as TOML or JSON, and
//!   their validation, which reports every problem with its field path;
//!   one file per part, `spec::pipeline` on top.
//! * [`templates`] — the article's scenarios as built-in specs.
//! * [`lessons`] — the article's lessons: a template each, what it
//!   teaches and what to do in English and Chinese, and the part of the
//!   job page that shows its signal.
//! * [`lab`] — the tuning lab's specs (sweeps, capacity searches, soaks:
//!   `lab::specs`), the SLO they check (`lab::slo`), their knobs and
//!   limits, and their reports (`lab::figures`, `lab::reports`,
//!   `lab::runs`); one file per concept, every type at `shared::lab::…`.
//! * [`metrics`] — job states, live snapshots (with the event loop's
//!   health), events, tune requests and the final report with its
//!   accounting line; each node's state (bottleneck, backpressured, busy,
//!   idle) is read off a snapshot here, so the CLI and the dashboard agree.
//!
//! * [`workers`] — worker processes: registration, heartbeats and the
//!   assignments they carry (a broker stage's edge names, its spec, how
//!   many of its workers run there), and what `GET /api/v1/workers` shows.
//!
//! The crate compiles for native targets and for `wasm32-unknown-unknown`
//! alike: it depends on `serde` only, never on tokio or axum.

pub mod api;
pub mod lab;
pub mod lessons;
pub mod metrics;
pub mod spec;
pub mod templates;
pub mod workers;
pub mod ws;

/// The product version, shared so the dashboard can show which build of
/// the protocol it was compiled against.
pub const PROTOCOL_VERSION: u32 = 1;

/// Path of the WebSocket endpoint, relative to the server root; one
/// constant so the server route and the dashboard's URL never drift.
pub const WS_PATH: &str = "/api/v1/ws";
