//! The WebSocket hub at `/api/v1/ws`.
//!
//! Each connection gets a task that pushes [`ServerFrame`]s. Today that is
//! a heartbeat on connect and then every `heartbeat_every`; job
//! subscriptions arrive with the control-plane issue. The task ends when
//! the client goes away, and on server shutdown it sends a Close frame
//! (1001, "going away") so clients know to reconnect rather than guess.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use shared::ws::{Heartbeat, ServerFrame};
use tokio::time::MissedTickBehavior;

use crate::{AppState, VERSION};

/// Routes of this module, merged into the app by [`crate::app`].
pub fn router() -> Router<AppState> {
    Router::new().route(shared::WS_PATH, get(upgrade))
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| serve_socket(socket, state))
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

async fn serve_socket(socket: WebSocket, state: AppState) {
    let (mut sink, mut stream) = socket.split();
    // A fixed-rate ticker; after a stall it skips missed beats instead of
    // bursting them, since only the newest heartbeat means anything.
    let mut ticker = tokio::time::interval(state.heartbeat_every());
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = 0u64;
    let shutdown = state.shutdown_token().clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                let close = CloseFrame {
                    code: close_code::AWAY,
                    reason: "server shutting down".into(),
                };
                let _ = sink.send(Message::Close(Some(close))).await;
                break;
            }
            _ = ticker.tick() => {
                let text = heartbeat(&state, seq).to_json();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                seq += 1;
            }
            incoming = stream.next() => match incoming {
                // Pings are answered by the protocol layer; other client
                // messages have no meaning yet and are ignored.
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "websocket read failed");
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    tracing::debug!(frames = seq, "websocket closed");
}
