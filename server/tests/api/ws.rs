use std::time::Duration;

use futures_util::StreamExt;
use shared::ws::ServerFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::spawn_app;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Next heartbeat, skipping other frames.
async fn next_beat(ws: &mut Socket) -> shared::ws::Heartbeat {
    loop {
        if let ServerFrame::Heartbeat(beat) = next_frame(ws).await {
            return beat;
        }
    }
}

/// Next text frame, parsed; skips control frames.
pub async fn next_frame(ws: &mut Socket) -> ServerFrame {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("valid message");
        if let Message::Text(text) = msg {
            return ServerFrame::parse(&text).expect("a known frame");
        }
    }
}

#[tokio::test]
async fn websocket_streams_heartbeats_with_growing_uptime() {
    let app = spawn_app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    let mut beats = Vec::new();
    for _ in 0..3 {
        let beat = next_beat(&mut ws).await;
        beats.push(beat);
    }
    assert_eq!(
        beats.iter().map(|b| b.seq).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "sequence numbers count up from 0 without gaps"
    );
    assert!(beats.iter().all(|b| b.server_version == server::VERSION));
    assert!(beats.iter().all(|b| b.protocol == shared::PROTOCOL_VERSION));
    assert!(
        beats.windows(2).all(|w| w[0].uptime_ms < w[1].uptime_ms),
        "uptime grows: {beats:?}"
    );
    assert!(
        beats[0].server_time_ms > 1_600_000_000_000,
        "epoch milliseconds"
    );
}

#[tokio::test]
async fn each_client_gets_its_own_stream() {
    let app = spawn_app().await;
    let (mut a, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    let first_a = next_beat(&mut a).await;
    let (mut b, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    let first_b = next_beat(&mut b).await;
    assert_eq!(first_a.seq, 0);
    assert_eq!(first_b.seq, 0);
    assert!(first_b.uptime_ms >= first_a.uptime_ms);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_going_away() {
    let app = spawn_app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    next_frame(&mut ws).await;
    let stopping = tokio::spawn(app.shutdown());
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a Close frame, got {other:?}"),
        }
    };
    let close = close.expect("close frame carries a code");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "server shutting down");
    drop(ws);
    stopping.await.unwrap();
}
