//! Ingest requests blocked on a full queue never stall the control plane
//! (issue 10, part 4), and each gets an answer whose counts add up to
//! what the job counted (part 3).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::api::JobDetail;

use crate::auth::token;
use crate::helpers::{TestApp, spawn_app_with_auth, spawn_configured};

/// A capacity-1 `block` queue before a stage taking `ms` per line.
fn slow_ingest_job(ms: f64) -> Value {
    json!({
        "name": "blocked",
        "sample_hz": 20.0,
        "source": {"kind": "http_ingest"},
        "stages": [{
            "name": "slow",
            "queue": {"capacity": 1, "when_full": "block"},
            "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": ms}}
        }]
    })
}

/// A client that gives up after 10 s, so a stalled server fails the test
/// instead of hanging it.
fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn detail(app: &TestApp, client: &reqwest::Client, token: &str, id: &str) -> JobDetail {
    let r = client
        .get(app.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /api/v1/jobs/{id}: {e}"));
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Creates the job and waits until its ingest endpoint takes lines.
async fn start_ingest_job(app: &TestApp, client: &reqwest::Client, token: &str, ms: f64) -> String {
    let r = client
        .post(app.url("/api/v1/jobs"))
        .bearer_auth(token)
        .json(&slow_ingest_job(ms))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<JobDetail>().await.unwrap().summary.id;
    for _ in 0..500 {
        let r = client
            .post(app.url(&format!("/api/v1/jobs/{id}/ingest")))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body("")
            .send()
            .await
            .unwrap();
        if r.status() != StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.status(), 202);
            return id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the ingest source never opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_blocked_ingests_leave_the_api_answering() {
    const CLIENTS: usize = 1000;
    let app = spawn_app_with_auth().await;
    let admin = token(&app, "admin");
    let api = api_client();
    let id = start_ingest_job(&app, &api, &admin, 1000.0).await;

    // 1,000 one-line requests, each on a connection of its own; they stay
    // blocked until the abort (a minute at most, so nothing hangs).
    let ingest = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = app.url(&format!("/api/v1/jobs/{id}/ingest"));
    let blocked: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (ingest, url, admin) = (ingest.clone(), url.clone(), admin.clone());
            tokio::spawn(async move {
                let r = ingest
                    .post(url)
                    .bearer_auth(admin)
                    .header("content-type", "application/x-ndjson")
                    .body(format!("line {c}\n"))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("ingest {c}: {e}"));
                let status = r.status();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    // Every request is in: each has its line numbered, and all but the
    // first couple wait for room.
    // (Bounded at a minute; the old server, one blocking thread per
    // request, got there only after ~500 s, a line a second.)
    let mut waiting = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let d = detail(&app, &api, &admin, &id).await;
        if d.snapshot.accounting.produced == CLIENTS as u64 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting, "the 1,000 requests never all reached the queue");

    // Meanwhile the control plane answers, token checks included.
    let list = api
        .get(app.url("/api/v1/jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET /api/v1/jobs answers");
    assert_eq!(list.status(), 200);
    let d = detail(&app, &api, &admin, &id).await;
    assert_eq!(d.summary.state, shared::metrics::JobState::Running);
    let other = api
        .post(app.url("/api/v1/jobs"))
        .bearer_auth(&admin)
        .json(&json!({"name": "other", "source": {"kind": "synthetic", "count": 10}}))
        .send()
        .await
        .expect("POST /api/v1/jobs answers");
    assert_eq!(other.status(), 201);
    let health = api
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("GET /healthz answers");
    assert_eq!(health.status(), 200);

    // Abort: every blocked client gets an answer whose counts add up, and
    // the job counted exactly the lines the clients were told it took.
    let stop = api
        .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .bearer_auth(&admin)
        .json(&json!({"mode": "abort"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 202);
    let mut accepted = 0;
    let mut handed_back = 0;
    for b in blocked {
        let (status, body) = b.await.unwrap();
        let (a, n) = (
            body["accepted"].as_u64().unwrap(),
            body["not_taken"].as_u64().unwrap(),
        );
        assert_eq!(a + n, 1, "{status} {body}");
        match status {
            StatusCode::ACCEPTED => assert_eq!(a, 1),
            StatusCode::CONFLICT => assert_eq!(body["code"], "stopped"),
            other => panic!("unexpected {other}: {body}"),
        }
        accepted += a;
        handed_back += n;
    }
    assert!(handed_back > 0, "the abort handed blocked lines back");
    let report = loop {
        if let Some(r) = detail(&app, &api, &admin, &id).await.report {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(report.balanced, "{}", report.accounting);
    assert_eq!(report.accounting.produced, accepted);
    // A finished job takes no more input: 409, not "try again".
    let late = api
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/x-ndjson")
        .body("x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 409);
}

#[tokio::test]
async fn ingest_requests_beyond_the_waiting_cap_get_503_with_retry_after() {
    let app = spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_max_ingest_waiting(3)
    })
    .await;
    let api = api_client();
    // Slow enough that no waiting line gets in while the test sets up.
    let id = start_ingest_job(&app, &api, "unused", 60_000.0).await;
    let url = app.url(&format!("/api/v1/jobs/{id}/ingest"));
    // One line in service, one queued, then three wait: the cap.
    let mut held = Vec::new();
    for c in 0..5 {
        let (client, url) = (api_client(), url.clone());
        held.push(tokio::spawn(async move {
            client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .body(format!("line {c}\n"))
                .send()
                .await
                .unwrap()
                .status()
        }));
        // In order, so the first two are surely the ones not waiting.
        loop {
            let d = detail(&app, &api, "unused", &id).await;
            if d.snapshot.accounting.produced > c {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let refused = api
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body("one more\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    api.post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .json(&json!({"mode": "abort"}))
        .send()
        .await
        .unwrap();
    for h in held {
        let status = h.await.unwrap();
        assert!(status == 202 || status == 409, "{status}");
    }
}
