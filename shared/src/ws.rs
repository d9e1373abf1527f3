//! WebSocket frames on `/api/v1/ws`.
//!
//! Frames are internally tagged (`{"type": "heartbeat", ...}`) so adding a
//! new frame type never breaks an older client: it can skip tags it does
//! not recognise (see [`ServerFrame::parse`]).
//!
//! A client subscribes to jobs ([`ClientFrame::Subscribe`]) and to the job
//! list ([`ClientFrame::SubscribeJobs`]). On subscribing it first gets the
//! current state (a snapshot, the events so far), then changes as they
//! happen. Snapshots are sampled: a slow client gets fewer, newer ones.

use serde::{Deserialize, Serialize};

use crate::api::JobSummary;
use crate::metrics::{JobEvent, JobSnapshot, JobState};

/// One message from the server to a WebSocket client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Sent on connect and then periodically, so a client can tell a live
    /// connection from a stalled one and show the server's identity.
    Heartbeat(Heartbeat),
    /// The newest metrics of a subscribed job.
    Snapshot {
        /// Job id.
        job: String,
        /// The snapshot.
        snapshot: Box<JobSnapshot>,
    },
    /// A subscribed job changed state.
    State {
        /// Job id.
        job: String,
        /// The new state.
        state: JobState,
    },
    /// Something happened to a subscribed job (state changes and tunes).
    Event {
        /// Job id.
        job: String,
        /// The event.
        event: JobEvent,
    },
    /// The job list, sent on subscribing and whenever it changes.
    Jobs {
        /// Every job, newest first.
        jobs: Vec<JobSummary>,
    },
    /// A subscribed sweep or soak changed: a run started or finished, or
    /// an interval was judged. Only that it changed: the client reads it
    /// with `GET /api/v1/sweeps/{id}` (a sweep's runs can be many, and the
    /// dashboard need not decode them on two paths).
    Sweep {
        /// Sweep id.
        sweep: String,
        /// Its version now.
        version: u64,
        /// Its state now.
        state: crate::lab::LabState,
    },
    /// The worker processes changed: one joined, left or was lost. Only
    /// the counts and a version: the client reads the list with
    /// `GET /api/v1/workers`.
    Workers {
        /// Bumped at every change.
        version: u64,
        /// Workers beating within their lease.
        active: u32,
        /// Workers whose lease ran out.
        lost: u32,
    },
    /// A message from the client could not be honoured.
    Error {
        /// Stable code: `malformed`, `not_found`.
        code: String,
        /// What went wrong.
        message: String,
    },
}

/// One message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Start receiving a job's snapshots and events.
    Subscribe {
        /// Job id.
        job: String,
    },
    /// Stop receiving a job's frames.
    Unsubscribe {
        /// Job id.
        job: String,
    },
    /// Start receiving a sweep's or soak's changes.
    SubscribeSweep {
        /// Sweep id.
        sweep: String,
    },
    /// Stop receiving them.
    UnsubscribeSweep {
        /// Sweep id.
        sweep: String,
    },
    /// Start receiving the job list.
    SubscribeJobs,
    /// Stop receiving the job list.
    UnsubscribeJobs,
    /// Start receiving worker changes.
    SubscribeWorkers,
    /// Stop receiving them.
    UnsubscribeWorkers,
}

impl ClientFrame {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialise")
    }
}

/// Liveness and identity of the server at the moment the frame was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Version of the `queuelab` binary (its Cargo package version).
    pub server_version: String,
    /// Protocol revision the server speaks ([`crate::PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// Milliseconds since the server started serving.
    pub uptime_ms: u64,
    /// Server wall-clock time, milliseconds since the Unix epoch.
    pub server_time_ms: u64,
    /// Sequence number of this heartbeat on this connection, from 0; a gap
    /// tells the client it missed frames.
    pub seq: u64,
}

/// Why a frame could not be understood.
#[derive(Debug)]
pub enum FrameError {
    /// Not JSON, or JSON of the wrong shape for a known frame type.
    Malformed(serde_json::Error),
    /// Well-formed JSON whose `type` tag this build does not know; newer
    /// servers may send such frames, so clients should skip them.
    UnknownType(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Malformed(e) => write!(f, "malformed frame: {e}"),
            FrameError::UnknownType(t) => write!(f, "unknown frame type `{t}`"),
        }
    }
}

impl std::error::Error for FrameError {}

impl ServerFrame {
    /// Serialises the frame as the JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with
        // non-string keys, no custom serialisers.
        serde_json::to_string(self).expect("frames always serialise")
    }

    /// Parses a text frame, telling an unknown-but-valid frame type apart
    /// from garbage so clients can be forward compatible.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => Ok(frame),
            Err(err) => {
                let tag = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
                match tag {
                    Some(t) if !KNOWN_TYPES.contains(&t.as_str()) => {
                        Err(FrameError::UnknownType(t))
                    }
                    _ => Err(FrameError::Malformed(err)),
                }
            }
        }
    }
}

/// The `type` tags this build understands.
const KNOWN_TYPES: &[&str] = &[
    "heartbeat",
    "snapshot",
    "state",
    "event",
    "jobs",
    "sweep",
    "error",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn beat() -> ServerFrame {
        ServerFrame::Heartbeat(Heartbeat {
            server_version: "0.1.0".into(),
            protocol: crate::PROTOCOL_VERSION,
            uptime_ms: 1500,
            server_time_ms: 1_764_000_000_000,
            seq: 3,
        })
    }

    #[test]
    fn heartbeat_is_tagged_and_round_trips() {
        let json = beat().to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "heartbeat");
        assert_eq!(value["uptime_ms"], 1500);
        assert_eq!(ServerFrame::parse(&json).unwrap(), beat());
    }

    #[test]
    fn unknown_type_is_told_apart_from_garbage() {
        assert!(matches!(
            ServerFrame::parse(r#"{"type":"from_the_future","x":1}"#),
            Err(FrameError::UnknownType(t)) if t == "from_the_future"
        ));
        assert!(matches!(
            ServerFrame::parse("not json"),
            Err(FrameError::Malformed(_))
        ));
        // A known tag with a missing field is malformed, not unknown.
        assert!(matches!(
            ServerFrame::parse(r#"{"type":"heartbeat"}"#),
            Err(FrameError::Malformed(_))
        ));
    }
}
