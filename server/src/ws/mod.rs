//! The WebSocket hub at `/api/v1/ws`.
//!
//! Each connection is a task of its own. It sends a heartbeat on connect
//! and then every `heartbeat_every`; clients subscribe to jobs and to the
//! job list with [`ClientFrame`](shared::ws::ClientFrame)s and receive [`ServerFrame`](shared::ws::ServerFrame)s:
//!
//! * on subscribing, the current state first (the newest snapshot, the
//!   events so far, the job list), then changes;
//! * snapshots come from the job's `watch` channel, which holds only the
//!   newest one: a slow client receives fewer, newer snapshots, and since
//!   each connection sends on its own task, it slows neither the pipeline
//!   nor other clients;
//! * a malformed message gets an `error` frame; repeated abuse a Close
//!   frame (1008, policy) with the reason;
//! * the server pings idle clients, and on shutdown closes every socket
//!   with 1001 ("going away") so clients know to reconnect;
//! * connections are capped (`--max-ws-clients`); beyond the cap the
//!   upgrade is refused with 503.
//!
//! [`hub`] holds the connections; [`frames`] the serialised snapshots they
//! share, which [`crate::state::AppState`] keeps.

pub mod frames;
pub mod hub;

pub use frames::FrameCache;
pub use hub::{MAX_CLIENT_MESSAGE, MAX_STRIKES, heartbeat, router};
