use std::net::SocketAddr;

use shared::metrics::JobState;
use shared::spec::{PipelineSpec, SpecFormat};

async fn start(toml: &str) -> (engine::JobHandle, String, tempfile::TempDir) {
    let spec = PipelineSpec::parse(toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let opts = engine::JobOptions::new("ingest-test", dir.path());
    let job = tokio::task::spawn_blocking(move || engine::start(spec, opts).unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = server::ingest::router(job.ingest().expect("an ingest source"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (job, format!("http://{addr}/ingest"), dir)
}

/// Posts until the job's source is open (the first request may race it).
async fn post(client: &reqwest::Client, url: &str, body: String) -> reqwest::Response {
    loop {
        let r = client.post(url).body(body.clone()).send().await.unwrap();
        if r.status() != 503 {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn concurrent_posts_under_backpressure_lose_nothing() {
    let (job, url, _dir) = start(
        r#"
name = "ingest-block"
source = { kind = "http_ingest" }
[[stages]]
name = "parse"
queue = { capacity = 8, when_full = "block" }
op = { kind = "parse_json" }
[[stages]]
name = "slow"
queue = { capacity = 8 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 0.3 } }
"#,
    )
    .await;
    let client = reqwest::Client::new();
    let posts = (0..8).map(|c| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let body: String = (0..250)
                .map(|i| format!("{{\"id\":\"c{c}-{i}\",\"level\":\"INFO\",\"msg\":\"m\"}}\n"))
                .collect();
            let r = post(&client, &url, body).await;
            assert_eq!(r.status(), 202);
            let done: serde_json::Value = r.json().await.unwrap();
            assert_eq!(done["accepted"], 250);
        })
    });
    for p in posts.collect::<Vec<_>>() {
        p.await.unwrap();
    }
    job.drain().unwrap();
    let report = job.finished().await;
    assert_eq!(report.state, JobState::Stopped);
    assert!(report.balanced);
    assert_eq!(report.accounting.produced, 2000);
    assert_eq!(report.accounting.sunk, 2000);
    // After the drain the endpoint says so: 409, never "try again".
    let late = client.post(&url).body("x\n").send().await.unwrap();
    assert_eq!(late.status(), 409);
}

#[tokio::test]
async fn a_full_reject_queue_answers_429_with_what_it_took() {
    let (job, url, _dir) = start(
        r#"
name = "ingest-reject"
source = { kind = "http_ingest" }
[[stages]]
name = "slow"
queue = { capacity = 5, when_full = "reject" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 50.0 } }
"#,
    )
    .await;
    let client = reqwest::Client::new();
    let body: String = (0..100).map(|i| format!("line {i}\n")).collect();
    let r = post(&client, &url, body).await;
    assert_eq!(r.status(), 429);
    let done: serde_json::Value = r.json().await.unwrap();
    let (accepted, refused) = (
        done["accepted"].as_u64().unwrap(),
        done["refused"].as_u64().unwrap(),
    );
    assert_eq!(accepted + refused, 100);
    assert!(refused > 0 && accepted >= 5);
    job.abort().unwrap();
    let report = job.finished().await;
    assert!(report.balanced);
    assert_eq!(report.accounting.produced, 100);
    assert_eq!(
        report.accounting.dropped_by_policy, refused,
        "refused lines are counted, not lost"
    );
}
