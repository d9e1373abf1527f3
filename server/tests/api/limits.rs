//! Server-wide limits: running jobs, stage workers and queued items over
//! all jobs are capped, with 429 `limit_reached` refusals that leave
//! everything running as it was.

use serde_json::json;
use shared::api::{ErrorBody, JobDetail};

use crate::helpers::{TestApp, create, spawn_configured, start};

async fn limited(max_jobs: usize, max_workers: u64, max_queued: u64) -> TestApp {
    spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_limits(server::limits::Limits {
            max_jobs,
            max_workers,
            max_queued,
        })
    })
    .await
}

fn endless(workers: u32, capacity: u64) -> serde_json::Value {
    json!({"name": "lim", "source": {"kind": "synthetic", "count": 100_000_000, "rate": 100.0},
           "stages": [{"name": "s", "workers": workers, "queue": {"capacity": capacity},
                       "op": {"kind": "sleep", "latency": {"dist": "uniform", "min_ms": 1.0, "max_ms": 2.0}}}]})
}

async fn refused(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 429);
    let err: ErrorBody = resp.json().await.unwrap();
    assert_eq!(err.code, "limit_reached");
    err.message
}

#[tokio::test]
async fn jobs_workers_and_queued_items_are_capped_over_the_whole_server() {
    let app = limited(2, 10, 1000).await;
    let a = start(&app, endless(4, 400)).await;
    // Workers: 4 running + 8 asked > 10.
    let msg = refused(create(&app, endless(8, 10)).await).await;
    assert!(msg.contains("--max-workers"), "{msg}");
    // Queued items: 400 + 700 > 1000.
    let msg = refused(create(&app, endless(1, 700)).await).await;
    assert!(msg.contains("--max-queued"), "{msg}");
    let _b = start(&app, endless(1, 10)).await;
    // Jobs: two run already.
    let msg = refused(create(&app, endless(1, 10)).await).await;
    assert!(msg.contains("--max-jobs"), "{msg}");
    // A scale-up past the worker cap is refused, and the stage keeps its
    // workers; a scale-down is always fine.
    let c = reqwest::Client::new();
    let tune = |workers: u32| {
        c.patch(app.url(&format!("/api/v1/jobs/{a}")))
            .json(&json!({"stage": "s", "workers": workers}))
            .send()
    };
    refused(tune(10).await.unwrap()).await;
    let d: JobDetail = tune(2).await.unwrap().json().await.unwrap();
    let s = d.snapshot.nodes.iter().find(|n| n.name == "s").unwrap();
    assert!(s.workers <= 4, "{}", s.workers);
    assert_eq!(
        tune(5).await.unwrap().status(),
        200,
        "room again after scaling down"
    );
}

/// An automatic limit asks the server before starting more workers: a
/// stage that would grow to dozens (a slow op with a backlog) stays within
/// `--max-workers`, and says the limit holds it.
#[tokio::test]
async fn an_auto_stage_grows_only_within_the_servers_worker_cap() {
    let app = limited(4, 6, 100_000).await;
    let id = start(
        &app,
        json!({"name": "grow", "source": {"kind": "synthetic", "count": 100_000_000},
               "stages": [{"name": "s", "workers": "auto",
                           "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": 5.0}}}]}),
    )
    .await;
    let held = crate::helpers::wait_job(&app, &id, "the cap holding it", |d| {
        d.snapshot.nodes[0]
            .auto
            .as_ref()
            .and_then(|a| a.reason.as_deref())
            .is_some_and(|r| r.contains("worker limit"))
    })
    .await;
    let s = &held.snapshot.nodes[0];
    assert!(s.workers <= 6, "{s:?}");
    assert!(s.auto.as_ref().unwrap().limit <= 6, "{s:?}");
    reqwest::Client::new()
        .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .json(&json!({"mode": "abort"}))
        .send()
        .await
        .unwrap();
}
