//! The connections of the hub: the upgrade, the heartbeat, and each
//! connection's task with its subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use engine::JobHandle;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use shared::metrics::{EventKind, JobSnapshot};
use shared::ws::{ClientFrame, Heartbeat, ServerFrame};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::error::AppError;
use crate::registry::Kind;
use crate::state::{AppState, VERSION};

/// How often subscribed jobs are looked at for news.
const PUSH_EVERY: Duration = Duration::from_millis(100);
/// How often the job list is recomputed for its subscribers.
const JOBS_EVERY: Duration = Duration::from_secs(1);
/// Malformed messages tolerated before the connection is closed.
pub const MAX_STRIKES: u32 = 5;
/// Sweeps one connection may follow at once.
const MAX_SWEEP_SUBS: usize = 16;
/// Idle time after which the server pings the client.
const PING_AFTER: Duration = Duration::from_secs(20);

/// Routes of this module, merged into the app by [`crate::app`].
pub fn router() -> Router<AppState> {
    Router::new().route(shared::WS_PATH, get(upgrade))
}

/// Largest message a client may send. The protocol's frames are a few
/// hundred bytes; anything bigger closes the connection (1009) before it
/// is buffered.
pub const MAX_CLIENT_MESSAGE: usize = 16 << 10;

async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !crate::browser::origin_allowed(&headers, state.cors_origins()) {
        tracing::warn!(origin = ?headers.get(axum::http::header::ORIGIN), "refused a WebSocket from a foreign origin");
        return AppError::Forbidden(
            "this page's origin may not open the live link; the server's operator can allow it with --cors-origin".into(),
        )
        .into_response();
    }
    let ws = ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE);
    let Ok(slot) = state.ws_slots().clone().try_acquire_owned() else {
        return AppError::Unavailable("too many WebSocket clients; try again later".into())
            .into_response();
    };
    ws.on_upgrade(move |socket| async move {
        serve_socket(socket, state).await;
        drop(slot);
    })
}

/// The heartbeat this server would send now, as frame number `seq`.
pub fn heartbeat(state: &AppState, seq: u64) -> ServerFrame {
    let server_time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    ServerFrame::Heartbeat(Heartbeat {
        server_version: VERSION.to_owned(),
        protocol: shared::PROTOCOL_VERSION,
        uptime_ms: state.uptime().as_millis() as u64,
        server_time_ms,
        seq,
    })
}

/// One subscribed job.
enum Sub {
    /// A job in the engine: its snapshots as they come, and its events.
    Live {
        handle: JobHandle,
        snapshots: watch::Receiver<Arc<JobSnapshot>>,
        /// Number of the last snapshot sent. Compared rather than asking
        /// the channel whether it changed: once a job ends its sender is
        /// gone, and the final snapshot must still go out.
        sent_seq: Option<u64>,
        events_sent: usize,
    },
    /// A finished job: its final snapshot and events, sent once.
    Finished(Arc<crate::store::JobRecord>),
}

type Sink = SplitSink<WebSocket, Message>;

/// What one connection is subscribed to.
#[derive(Default)]
struct Session {
    subs: HashMap<String, Sub>,
    /// The last job list sent, when subscribed to it.
    jobs: Option<String>,
    /// Subscribed sweeps: their changes, and the version last sent.
    sweeps: HashMap<String, (watch::Receiver<Arc<shared::lab::LabDetail>>, Option<u64>)>,
    /// When subscribed to worker changes: the census version last sent.
    workers: Option<Option<u64>>,
    strikes: u32,
}

async fn send(sink: &mut Sink, frame: &ServerFrame) -> bool {
    sink.send(Message::Text(frame.to_json().into()))
        .await
        .is_ok()
}

/// A job's events as frames: each state change also as a `state` frame.
fn event_frames(job: &str, events: Vec<shared::metrics::JobEvent>) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    for event in events {
        if let EventKind::State { state, .. } = &event.kind {
            frames.push(ServerFrame::State {
                job: job.to_owned(),
                state: *state,
            });
        }
        frames.push(ServerFrame::Event {
            job: job.to_owned(),
            event,
        });
    }
    frames
}

impl Session {
    /// Sends what changed in the subscribed jobs; false if the socket broke.
    /// A job whose last frames went out is let go of, so a finished job's
    /// engine handle is not kept alive by a dashboard left open.
    async fn push(&mut self, state: &AppState, sink: &mut Sink) -> bool {
        let mut done = Vec::new();
        for (id, sub) in &mut self.subs {
            let frames = match sub {
                Sub::Live {
                    handle,
                    snapshots,
                    sent_seq,
                    events_sent,
                } => {
                    let snapshot = snapshots.borrow_and_update().clone();
                    if *sent_seq != Some(snapshot.seq) {
                        *sent_seq = Some(snapshot.seq);
                        let text = state.frames().snapshot_frame(id, &snapshot);
                        if sink.send(Message::Text(text)).await.is_err() {
                            return false;
                        }
                    }
                    let events = handle.events_since(*events_sent);
                    *events_sent += events.len();
                    // The final snapshot goes out before the report is
                    // set, and the last event with it: nothing follows.
                    if handle.report().is_some()
                        && snapshot.state.is_some_and(|s| s.is_finished())
                        && handle.events_since(*events_sent).is_empty()
                    {
                        done.push(id.clone());
                    }
                    event_frames(id, events)
                }
                Sub::Finished(record) => {
                    done.push(id.clone());
                    let mut frames = Vec::new();
                    if let Some(snapshot) = &record.snapshot {
                        frames.push(ServerFrame::Snapshot {
                            job: id.clone(),
                            snapshot: Box::new(snapshot.clone()),
                        });
                    }
                    let events = record.report.as_ref().map(|r| r.events.clone());
                    frames.extend(event_frames(id, events.unwrap_or_default()));
                    frames
                }
            };
            for frame in &frames {
                if !send(sink, frame).await {
                    return false;
                }
            }
        }
        for id in done {
            self.subs.remove(&id);
        }
        true
    }

    /// Sends what changed in the subscribed sweeps; false if the socket
    /// broke. A finished one is let go of once its last state went out.
    async fn push_sweeps(&mut self, sink: &mut Sink) -> bool {
        let mut done = Vec::new();
        for (id, (rx, sent)) in &mut self.sweeps {
            let d = rx.borrow_and_update().clone();
            if *sent != Some(d.version) {
                *sent = Some(d.version);
                let frame = ServerFrame::Sweep {
                    sweep: id.clone(),
                    version: d.version,
                    state: d.summary.state,
                };
                if !send(sink, &frame).await {
                    return false;
                }
            }
            if !d.summary.state.is_running() {
                done.push(id.clone());
            }
        }
        for id in done {
            self.sweeps.remove(&id);
        }
        true
    }

    /// Sends the workers' census if it changed; false if the socket broke.
    async fn push_workers(&mut self, state: &AppState, sink: &mut Sink) -> bool {
        let Some(sent) = &mut self.workers else {
            return true;
        };
        let (version, active, lost) = state.workers().census();
        if *sent == Some(version) {
            return true;
        }
        *sent = Some(version);
        send(
            sink,
            &ServerFrame::Workers {
                version,
                active,
                lost,
            },
        )
        .await
    }

    /// Sends the job list if it changed; false if the socket broke.
    async fn push_jobs(&mut self, state: &AppState, sink: &mut Sink) -> bool {
        let Some(last) = &self.jobs else {
            return true;
        };
        let frame = ServerFrame::Jobs {
            jobs: state.jobs().summaries(),
        };
        let json = frame.to_json();
        if &json == last {
            return true;
        }
        self.jobs = Some(json.clone());
        sink.send(Message::Text(json.into())).await.is_ok()
    }

    /// Handles one client message; returns the frame to answer with, if any.
    fn handle(&mut self, state: &AppState, text: &str) -> Option<ServerFrame> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                self.strikes += 1;
                return Some(ServerFrame::Error {
                    code: "malformed".into(),
                    message: format!("cannot read that message: {e}"),
                });
            }
        };
        match frame {
            ClientFrame::Subscribe { job } => match state.jobs().get(&job).map(|e| e.kind) {
                Ok(Kind::Live(handle)) => {
                    // The current snapshot goes out on the next push.
                    let snapshots = handle.subscribe();
                    self.subs.insert(
                        job,
                        Sub::Live {
                            handle,
                            snapshots,
                            sent_seq: None,
                            events_sent: 0,
                        },
                    );
                    None
                }
                Ok(Kind::Archived(record)) => {
                    self.subs.insert(job, Sub::Finished(record));
                    None
                }
                Err(_) => Some(ServerFrame::Error {
                    code: "not_found".into(),
                    message: format!("no job `{job}`"),
                }),
            },
            ClientFrame::Unsubscribe { job } => {
                self.subs.remove(&job);
                None
            }
            ClientFrame::SubscribeSweep { sweep } => match state.lab().subscribe(&sweep) {
                Some(rx) if self.sweeps.len() < MAX_SWEEP_SUBS => {
                    self.sweeps.insert(sweep, (rx, None));
                    None
                }
                Some(_) => Some(ServerFrame::Error {
                    code: "limit_reached".into(),
                    message: format!("at most {MAX_SWEEP_SUBS} sweeps per connection"),
                }),
                None => Some(ServerFrame::Error {
                    code: "not_found".into(),
                    message: format!("no sweep `{sweep}`"),
                }),
            },
            ClientFrame::UnsubscribeSweep { sweep } => {
                self.sweeps.remove(&sweep);
                None
            }
            ClientFrame::SubscribeJobs => {
                // An empty "last list" makes the next push send it.
                self.jobs = Some(String::new());
                None
            }
            ClientFrame::UnsubscribeJobs => {
                self.jobs = None;
                None
            }
            ClientFrame::SubscribeWorkers => {
                self.workers = Some(None);
                None
            }
            ClientFrame::UnsubscribeWorkers => {
                self.workers = None;
                None
            }
        }
    }
}

async fn serve_socket(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    // Fixed-rate tickers that skip missed ticks instead of bursting them:
    // only the newest heartbeat or snapshot means anything.
    let mut beat = tokio::time::interval(state.heartbeat_every());
    beat.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut push = tokio::time::interval(PUSH_EVERY);
    push.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut jobs_tick = tokio::time::interval(JOBS_EVERY);
    jobs_tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = 0u64;
    let mut session = Session::default();
    let mut heard = Instant::now();
    let mut pinged = false;
    let shutdown = state.shutdown_token().clone();
    let close = |code, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = sink.send(close(close_code::AWAY, "server shutting down")).await;
                break;
            }
            _ = beat.tick() => {
                if !send(&mut sink, &heartbeat(&state, seq)).await {
                    break;
                }
                seq += 1;
                if heard.elapsed() > PING_AFTER && !pinged {
                    pinged = true;
                    if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                } else if heard.elapsed() > 3 * PING_AFTER {
                    let _ = sink.send(close(close_code::AWAY, "no answer to pings")).await;
                    break;
                }
            }
            _ = push.tick() => {
                if !session.push(&state, &mut sink).await
                    || !session.push_sweeps(&mut sink).await
                    || !session.push_workers(&state, &mut sink).await
                {
                    break;
                }
            }
            _ = jobs_tick.tick(), if session.jobs.is_some() => {
                if !session.push_jobs(&state, &mut sink).await {
                    break;
                }
            }
            incoming = stream.next() => {
                heard = Instant::now();
                pinged = false;
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let subscribed_jobs = session.jobs.is_some();
                        if let Some(answer) = session.handle(&state, &text)
                            && !send(&mut sink, &answer).await
                        {
                            break;
                        }
                        if session.strikes >= MAX_STRIKES {
                            let _ = sink
                                .send(close(close_code::POLICY, "too many malformed messages"))
                                .await;
                            break;
                        }
                        // Answer a list subscription (and a job's current
                        // state) right away rather than at the next tick.
                        if (!subscribed_jobs && !session.push_jobs(&state, &mut sink).await)
                            || !session.push(&state, &mut sink).await
                            || !session.push_sweeps(&mut sink).await
                            || !session.push_workers(&state, &mut sink).await
                        {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        session.strikes += 1;
                        let frame = ServerFrame::Error {
                            code: "malformed".into(),
                            message: "binary messages are not understood; send JSON text".into(),
                        };
                        if !send(&mut sink, &frame).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "websocket read failed");
                        break;
                    }
                    // Pings are answered by the protocol layer; pongs only
                    // prove the client is alive.
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    tracing::debug!(frames = seq, "websocket closed");
}
