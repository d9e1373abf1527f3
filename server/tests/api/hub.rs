//! Job subscriptions over the WebSocket hub.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::api::JobDetail;
use shared::metrics::JobState;
use shared::ws::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, start};
use crate::ws::{Socket, next_frame};

async fn connect(app: &TestApp) -> Socket {
    tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap()
        .0
}

async fn say(ws: &mut Socket, frame: ClientFrame) {
    ws.send(Message::Text(frame.to_json().into()))
        .await
        .unwrap();
}

fn slow_job(count: u64, rate: f64) -> serde_json::Value {
    json!({
        "name": "ws-job",
        "sample_hz": 20.0,
        "source": {"kind": "synthetic", "count": count, "rate": rate, "payload": "counter"},
        "stages": [{"name": "work", "op": {"kind": "spin", "micros": 10}}]
    })
}

#[tokio::test]
async fn a_subscriber_gets_the_current_state_then_changes_until_the_end() {
    let app = spawn_app().await;
    let id = start(&app, slow_job(300, 1000.0)).await;
    let mut ws = connect(&app).await;
    say(&mut ws, ClientFrame::Subscribe { job: id.clone() }).await;
    let (mut snapshots, mut saw_running, mut completed) = (0, false, false);
    while !completed {
        match next_frame(&mut ws).await {
            ServerFrame::Snapshot { job, snapshot } => {
                assert_eq!(job, id);
                assert!(snapshot.nodes.iter().any(|n| n.name == "work"));
                snapshots += 1;
            }
            ServerFrame::Event { job, event } => {
                assert_eq!(job, id);
                assert!(event.at_ms > 0);
            }
            ServerFrame::State { state, .. } => {
                saw_running |= state == JobState::Running;
                completed = state == JobState::Completed;
            }
            _ => {}
        }
    }
    assert!(snapshots >= 1);
    assert!(saw_running, "the events so far are replayed on subscribing");
}

#[tokio::test]
async fn the_job_list_comes_on_subscribing() {
    let app = spawn_app().await;
    let id = start(&app, slow_job(50, 1000.0)).await;
    let mut ws = connect(&app).await;
    say(&mut ws, ClientFrame::SubscribeJobs).await;
    loop {
        if let ServerFrame::Jobs { jobs } = next_frame(&mut ws).await {
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].id, id);
            break;
        }
    }
}

#[tokio::test]
async fn bad_messages_get_error_frames_and_abuse_gets_a_close() {
    let app = spawn_app().await;
    let mut ws = connect(&app).await;
    say(&mut ws, ClientFrame::Subscribe { job: "nope".into() }).await;
    loop {
        if let ServerFrame::Error { code, .. } = next_frame(&mut ws).await {
            assert_eq!(code, "not_found");
            break;
        }
    }
    for i in 0..server::ws::MAX_STRIKES {
        ws.send(Message::Text(format!("{{not json {i}").into()))
            .await
            .unwrap();
    }
    let (mut errors, mut closed) = (0, None);
    while closed.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerFrame::Error { code, .. }) = ServerFrame::parse(&t) {
                    assert_eq!(code, "malformed");
                    errors += 1;
                }
            }
            Some(Ok(Message::Close(frame))) => closed = Some(frame.expect("a close frame")),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(errors, server::ws::MAX_STRIKES);
    let close = closed.unwrap();
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "too many malformed messages");
}

#[tokio::test]
async fn a_slow_reader_gets_fewer_newer_snapshots_and_the_job_keeps_its_pace() {
    let app = spawn_app().await;
    // 20 snapshots a second for 3 s.
    let id = start(&app, slow_job(3000, 1000.0)).await;
    let mut ws = connect(&app).await;
    say(&mut ws, ClientFrame::Subscribe { job: id.clone() }).await;
    // Read nothing for a while: frames pile up on our side of the socket
    // only as far as the hub sends them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut seqs = Vec::new();
    let mut done = false;
    while !done {
        match next_frame(&mut ws).await {
            ServerFrame::Snapshot { snapshot, .. } => seqs.push(snapshot.seq),
            ServerFrame::State { state, .. } => done = state.is_finished(),
            _ => {}
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "newer each time: {seqs:?}"
    );
    assert!(
        seqs.windows(2).any(|w| w[1] > w[0] + 1),
        "some snapshots were skipped rather than queued: {seqs:?}"
    );
    let d: JobDetail = reqwest::get(app.url(&format!("/api/v1/jobs/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = d.report.expect("finished");
    assert_eq!(
        report.accounting.sunk, 3000,
        "the pipeline did all its work"
    );
}

#[tokio::test]
async fn two_hundred_clients_at_once() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(connect(&app).await);
    }
    for ws in &mut clients {
        loop {
            if let ServerFrame::Heartbeat(_) = next_frame(ws).await {
                break;
            }
        }
    }
}

#[tokio::test]
async fn the_connection_cap_refuses_extra_clients() {
    let app = spawn_app_with(None, 2).await;
    let _a = connect(&app).await;
    let _b = connect(&app).await;
    let third = tokio_tungstenite::connect_async(app.ws_url()).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
}

#[tokio::test]
async fn a_finished_job_released_by_the_engine_still_answers_a_subscription() {
    let app = spawn_app().await;
    let id = start(&app, slow_job(20, 1000.0)).await;
    crate::helpers::wait_job(&app, &id, "finished", |d| d.report.is_some()).await;
    // Once its record is stored the engine's handle is let go of.
    for _ in 0..100 {
        if app.state.jobs().handle(&id).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.state.jobs().handle(&id).is_none(), "handle released");
    let mut ws = connect(&app).await;
    say(&mut ws, ClientFrame::Subscribe { job: id.clone() }).await;
    let (mut sunk, mut finished) = (None, None);
    while finished.is_none() {
        match next_frame(&mut ws).await {
            ServerFrame::Snapshot { snapshot, .. } => sunk = Some(snapshot.accounting.sunk),
            ServerFrame::State { state, .. } if state.is_finished() => finished = Some(state),
            ServerFrame::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert_eq!(sunk, Some(20), "the final snapshot first");
    assert_eq!(finished, Some(JobState::Completed));
}
