//! The tuning lab over REST and the WebSocket: a sweep's runs are jobs of
//! the server, its progress is pushed, it is stored, stopped and refused
//! as a user would expect.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use shared::lab::{LabDetail, LabState, LabSummary};
use shared::ws::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, get, get_json, spawn_app, spawn_app_in};

fn pipeline() -> serde_json::Value {
    serde_json::json!({
        "name": "pool",
        "source": {"kind": "synthetic", "count": 10, "payload": "counter"},
        "stages": [{"name": "io", "workers": 1, "queue": {"capacity": 100},
            "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": 2.0}}}]
    })
}

fn sweep_body(values: &[f64], measure_ms: u64) -> serde_json::Value {
    serde_json::json!({
        "pipeline": pipeline(),
        "knob": "stages[io].workers",
        "values": values,
        "warmup_ms": 200,
        "measure_ms": measure_ms,
    })
}

async fn post(app: &TestApp, path: &str, body: &serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn wait_sweep(app: &TestApp, id: &str, pred: impl Fn(&LabDetail) -> bool) -> LabDetail {
    for _ in 0..1200 {
        let d: LabDetail = get_json(app, &format!("/api/v1/sweeps/{id}")).await;
        if pred(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for sweep {id}");
}

#[tokio::test]
async fn a_sweep_runs_each_point_as_a_job_and_pushes_its_progress() {
    let app = spawn_app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    let r = post(&app, "/api/v1/sweeps", &sweep_body(&[1.0, 2.0, 4.0], 800)).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let first: LabDetail = r.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/sweeps/{}", first.summary.id));
    assert_eq!(first.summary.state, LabState::Running);
    let id = first.summary.id.clone();
    ws.send(Message::Text(
        ClientFrame::SubscribeSweep { sweep: id.clone() }
            .to_json()
            .into(),
    ))
    .await
    .unwrap();
    // Frames arrive as runs finish: the runs so far, read afresh.
    let mut pushed_runs = Vec::new();
    let last = loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        if let Ok(ServerFrame::Sweep {
            sweep,
            version,
            state,
        }) = ServerFrame::parse(&text)
        {
            assert_eq!(sweep, id);
            // Each frame says it changed; the sweep is read over REST.
            let d: LabDetail = get_json(&app, &format!("/api/v1/sweeps/{id}")).await;
            assert!(d.version >= version);
            if let Some(r) = &d.sweep_report {
                pushed_runs.push(r.runs.len());
            }
            if !state.is_running() {
                break d;
            }
        }
    };
    assert_eq!(last.summary.state, LabState::Done, "{last:#?}");
    assert!(
        pushed_runs.windows(2).all(|w| w[0] <= w[1]),
        "{pushed_runs:?}"
    );
    assert!(
        pushed_runs.contains(&1),
        "a frame after the first run: {pushed_runs:?}"
    );
    let report = last.sweep_report.clone().unwrap();
    assert_eq!(report.runs.len(), 3);
    assert_eq!(report.points.len(), 3);
    assert!(!report.verdict.is_empty());
    // Each point links to a job of this server, finished and balanced.
    for run in &report.runs {
        let job: shared::api::JobDetail =
            get_json(&app, &format!("/api/v1/jobs/{}", run.job)).await;
        assert!(job.summary.state.is_finished(), "{job:#?}");
        assert!(run.balanced);
        assert!(run.figures.throughput > 0.0);
    }
    // Listed, with its headline.
    let list: Vec<LabSummary> = get_json(&app, "/api/v1/sweeps").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].measured, 3);
    assert!(list[0].headline.is_some());
    // Finished: it can be deleted; its jobs stay.
    let r = reqwest::Client::new()
        .delete(app.url(&format!("/api/v1/sweeps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&app, &format!("/api/v1/sweeps/{id}")).await.0, 404);
    assert_eq!(
        get(&app, &format!("/api/v1/jobs/{}", report.runs[0].job))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_stopped_sweep_keeps_what_it_measured_and_a_restart_reopens_it() {
    let dir = tempfile::tempdir().unwrap().keep();
    let app = spawn_app_in(None, server::DEFAULT_MAX_WS_CLIENTS, dir.clone()).await;
    let r = post(
        &app,
        "/api/v1/sweeps",
        &sweep_body(&[1.0, 2.0, 4.0, 8.0], 3_000),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<LabDetail>().await.unwrap().summary.id;
    // Deleting a running sweep is refused.
    let r = reqwest::Client::new()
        .delete(app.url(&format!("/api/v1/sweeps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // Once the first run is in, stop it.
    wait_sweep(&app, &id, |d| d.summary.measured >= 1).await;
    let r = post(
        &app,
        &format!("/api/v1/sweeps/{id}/stop"),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let d = wait_sweep(&app, &id, |d| !d.summary.state.is_running()).await;
    assert_eq!(d.summary.state, LabState::Stopped, "{d:#?}");
    let runs = d.sweep_report.as_ref().unwrap().runs.len();
    assert!((1..4).contains(&runs), "{runs} runs");
    // Stopping again is a conflict.
    let r = post(
        &app,
        &format!("/api/v1/sweeps/{id}/stop"),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(r.status(), 409);
    app.shutdown().await;
    // The store has it, as it ended.
    let again = spawn_app_in(None, server::DEFAULT_MAX_WS_CLIENTS, dir).await;
    let d2: LabDetail = get_json(&again, &format!("/api/v1/sweeps/{id}")).await;
    assert_eq!(d2.summary.state, LabState::Stopped);
    assert_eq!(d2.sweep_report.unwrap().runs.len(), runs);
}

#[tokio::test]
async fn bad_sweeps_are_refused_with_the_field_at_fault_before_anything_runs() {
    let app = spawn_app().await;
    let cases = [
        (serde_json::json!({"knob": "stages[db].workers"}), "knob"),
        (serde_json::json!({"values": [1.0, 0.0]}), "knob"),
        (serde_json::json!({"repeat": 1000}), "repeat"),
        (serde_json::json!({"measure_ms": 10}), "measure_ms"),
        (
            serde_json::json!({"values": {"from": 1, "to": 1e9, "step": {"linear": 1}}}),
            "values",
        ),
        (serde_json::json!({"mode": {"kind": "capacity"}}), "slo"),
        (
            serde_json::json!({"warmup_ms": 600_000, "measure_ms": 600_000, "values": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}),
            "measure_ms",
        ),
    ];
    for (patch, field) in cases {
        let mut body = sweep_body(&[1.0], 1000);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = post(&app, "/api/v1/sweeps", &body).await;
        assert_eq!(r.status(), 422, "{patch}");
        let e: shared::api::ErrorBody = r.json().await.unwrap();
        assert_eq!(e.field.as_deref(), Some(field), "{patch}: {e:?}");
    }
    // A pipeline reaching outside the files root is refused like a job's.
    let mut body = sweep_body(&[1.0], 1000);
    body["pipeline"]["sink"] = serde_json::json!({"kind": "file", "path": "/etc/queuelab-owned"});
    let r = post(&app, "/api/v1/sweeps", &body).await;
    assert_eq!(r.status(), 422);
    let e: shared::api::ErrorBody = r.json().await.unwrap();
    assert!(
        e.field.unwrap().starts_with("pipeline.sink"),
        "{:?}",
        e.errors
    );
    // Nothing ran.
    let jobs: shared::api::JobPage = get_json(&app, "/api/v1/jobs").await;
    assert_eq!(jobs.total, 0);
    let list: Vec<LabSummary> = get_json(&app, "/api/v1/sweeps").await;
    assert!(list.is_empty());
}

#[tokio::test]
async fn at_most_two_lab_runs_measure_at_once_and_knobs_are_listed() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = post(&app, "/api/v1/sweeps", &sweep_body(&[1.0, 2.0], 5_000)).await;
        assert_eq!(r.status(), 201);
        ids.push(r.json::<LabDetail>().await.unwrap().summary.id);
    }
    let soak = serde_json::json!({"pipeline": pipeline(), "duration_ms": 10_000, "warmup_ms": 1000, "interval_ms": 1000});
    let r = post(&app, "/api/v1/soaks", &soak).await;
    assert_eq!(r.status(), 429);
    for id in &ids {
        post(
            &app,
            &format!("/api/v1/sweeps/{id}/stop"),
            &serde_json::json!({}),
        )
        .await;
    }
    let r = post(&app, "/api/v1/knobs", &pipeline()).await;
    assert_eq!(r.status(), 200);
    let knobs: Vec<shared::lab::Tunable> = r.json().await.unwrap();
    let paths: Vec<&str> = knobs.iter().map(|k| k.path.as_str()).collect();
    assert!(
        paths.contains(&"stages[io].workers") && paths.contains(&"source.rate"),
        "{paths:?}"
    );
    for id in &ids {
        wait_sweep(&app, id, |d| !d.summary.state.is_running()).await;
    }
}

#[tokio::test]
async fn a_soak_over_the_api_reports_each_interval() {
    let app = spawn_app().await;
    let soak = serde_json::json!({"pipeline": pipeline(), "duration_ms": 4_500, "warmup_ms": 500, "interval_ms": 1000});
    let r = post(&app, "/api/v1/soaks", &soak).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<LabDetail>().await.unwrap().summary.id;
    let d = wait_sweep(&app, &id, |d| !d.summary.state.is_running()).await;
    assert_eq!(d.summary.state, LabState::Done, "{d:#?}");
    let report = d.soak_report.unwrap();
    assert!(report.intervals.len() >= 3, "{report:#?}");
    assert!(report.finished && report.balanced);
    assert_eq!(report.trends.len(), 4);
    let job: shared::api::JobDetail = get_json(&app, &format!("/api/v1/jobs/{}", report.job)).await;
    assert!(job.summary.state.is_finished());
}
