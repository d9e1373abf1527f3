//! Latency of `GET /api/v1/jobs` (auth on) while 1,000 ingest requests
//! are blocked on a full queue, against the same server with none blocked,
//! in the same run (blocked clients must not slow the control plane).
//!
//!     cargo bench -p server --bench blocked_ingests
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::json;
use shared::api::JobDetail;

const BLOCKED: usize = 1000;
const REQUESTS: usize = 500;
const RUNS: usize = 3;

/// p50 and p99 of `REQUESTS` sequential `GET /api/v1/jobs`.
async fn measure(http: &reqwest::Client, base: &str, token: &str) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let r = http
            .get(format!("{base}/api/v1/jobs"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    (times[REQUESTS / 2], times[REQUESTS * 99 / 100])
}

async fn produced(http: &reqwest::Client, base: &str, token: &str, id: &str) -> u64 {
    let d: JobDetail = http
        .get(format!("{base}/api/v1/jobs/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    d.snapshot.accounting.produced
}

/// One run: the idle figures, then the figures with `BLOCKED` ingests waiting.
async fn run_once(base: &str, token: &str) -> ((Duration, Duration), (Duration, Duration)) {
    let http = reqwest::Client::new();
    let d: JobDetail = http
        .post(format!("{base}/api/v1/jobs"))
        .bearer_auth(token)
        .json(&json!({
            "name": "bench-blocked",
            "sample_hz": 20.0,
            "source": {"kind": "http_ingest"},
            "stages": [{"name": "slow", "queue": {"capacity": 1, "when_full": "block"},
                        "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": 60000.0}}}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = d.summary.id;
    let url = format!("{base}/api/v1/jobs/{id}/ingest");
    // Warm up, with the job in the list in both measurements.
    measure(&http, base, token).await;
    let idle = measure(&http, base, token).await;
    let ingest = reqwest::Client::new();
    let blocked: Vec<_> = (0..BLOCKED)
        .map(|c| {
            let (ingest, url, token) = (ingest.clone(), url.clone(), token.to_owned());
            tokio::spawn(async move {
                loop {
                    let r = ingest
                        .post(&url)
                        .bearer_auth(&token)
                        .body(format!("line {c}\n"))
                        .send()
                        .await
                        .unwrap();
                    if r.status() != 503 {
                        return r.status();
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .collect();
    while produced(&http, base, token, &id).await < BLOCKED as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded = measure(&http, base, token).await;
    http.post(format!("{base}/api/v1/jobs/{id}/stop"))
        .bearer_auth(token)
        .json(&json!({"mode": "abort"}))
        .send()
        .await
        .unwrap();
    for b in blocked {
        b.await.unwrap();
    }
    (idle, loaded)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
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
        let state = server::AppState::new(None, Duration::from_secs(1), dir.path().to_path_buf())
            .unwrap()
            .with_auth(true);
        let token = server::auth::generate();
        state
            .jobs()
            .store()
            .add_token("bench", "admin", &server::auth::hash(&token))
            .unwrap();
        tokio::spawn(server::run(
            listener,
            state,
            std::future::pending(),
            Duration::from_secs(1),
        ));
        let base = format!("http://{addr}");
        let (mut idle50, mut idle99, mut load50, mut load99) = (vec![], vec![], vec![], vec![]);
        for _ in 0..RUNS {
            let ((i50, i99), (l50, l99)) = run_once(&base, &token).await;
            idle50.push(i50);
            idle99.push(i99);
            load50.push(l50);
            load99.push(l99);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (i50, i99, l50, l99) = (
            median(idle50),
            median(idle99),
            median(load50),
            median(load99),
        );
        println!(
            "QueueLab: GET /api/v1/jobs (auth on), {REQUESTS} requests, median of {RUNS} runs\n"
        );
        println!("                          p50 ms    p99 ms");
        println!("no ingest blocked       {:>8.3}  {:>8.3}", ms(i50), ms(i99));
        println!(
            "{BLOCKED} ingests blocked    {:>8.3}  {:>8.3}",
            ms(l50),
            ms(l99)
        );
        println!(
            "ratio                   {:>8.2}  {:>8.2}",
            ms(l50) / ms(i50),
            ms(l99) / ms(i99)
        );
    });
}
