//! Pipeline throughput with 100 WebSocket clients subscribed to the job,
//! against none, in the same run (the hub must not slow pipelines down).
//!
//!     cargo bench -p server --bench ws_clients
#![allow(clippy::print_stdout)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::api::JobDetail;
use shared::ws::ClientFrame;
use tokio_tungstenite::tungstenite::Message;

const ITEMS: u64 = 2_000_000;
const CLIENTS: usize = 100;
const RUNS: usize = 3;

async fn run_once(base: &str, ws: &str, clients: usize) -> f64 {
    let http = reqwest::Client::new();
    let d: JobDetail = http
        .post(format!("{base}/api/v1/jobs"))
        .json(&json!({
            "name": "bench",
            "sample_hz": 20.0,
            "source": {"kind": "synthetic", "count": ITEMS, "payload": "counter"},
            "stages": [{"name": "work", "workers": 2, "op": {"kind": "spin", "micros": 0}}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = d.summary.id;
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
        let frame = ClientFrame::Subscribe { job: id.clone() };
        socket
            .send(Message::Text(frame.to_json().into()))
            .await
            .unwrap();
        readers.push(tokio::spawn(async move {
            let mut frames = 0u64;
            while let Some(Ok(_)) = socket.next().await {
                frames += 1;
            }
            frames
        }));
    }
    let report = loop {
        let d: JobDetail = http
            .get(format!("{base}/api/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(r) = d.report {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for r in readers {
        r.abort();
    }
    assert_eq!(report.accounting.sunk, ITEMS);
    report.throughput
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = server::AppState::new(None, Duration::from_secs(1), dir.path().to_path_buf()).unwrap();
        tokio::spawn(server::run(listener, state, std::future::pending(), Duration::from_secs(1)));
        let base = format!("http://{addr}");
        let ws = format!("ws://{addr}{}", shared::WS_PATH);
        let mut none = Vec::new();
        let mut many = Vec::new();
        for _ in 0..RUNS {
            none.push(run_once(&base, &ws, 0).await);
            many.push(run_once(&base, &ws, CLIENTS).await);
        }
        let (none, many) = (median(none), median(many));
        println!("QueueLab: pipeline throughput with WebSocket subscribers, {ITEMS} items, median of {RUNS}\n");
        println!("no subscribers          {none:>12.0} items/s");
        println!("{CLIENTS} subscribers        {many:>12.0} items/s");
        println!("ratio                   {:>12.2}", many / none);
    });
}
