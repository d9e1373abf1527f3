//! Worker processes over REST, as `queuelab worker` speaks it: register,
//! heartbeat, the assignments a reply carries, leases, and the refusals
//! of broker specs. (The processes themselves are in `tests/tests/workers.rs`.)

use std::time::Duration;

use shared::api::{ErrorBody, JobDetail};
use shared::workers::{Heartbeat, HeartbeatReply, Registered, WorkerInfo, WorkerState};

use crate::helpers::{TestApp, create, get, get_json, spawn_configured, wait_job};

fn nats_url() -> String {
    std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn app() -> TestApp {
    spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_nats_url(Some(nats_url()))
    })
    .await
}

async fn post(app: &TestApp, path: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp, name: &str, labels: &[&str]) -> Registered {
    let r = post(
        app,
        "/api/v1/workers",
        serde_json::json!({"name": name, "host": "h1", "version": "t", "labels": labels}),
    )
    .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn tune(app: &TestApp, job: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .patch(app.url(&format!("/api/v1/jobs/{job}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn beat(app: &TestApp, id: &str) -> reqwest::Response {
    post(
        app,
        &format!("/api/v1/workers/{id}/heartbeat"),
        serde_json::to_value(Heartbeat::default()).unwrap(),
    )
    .await
}

fn broker_job(count: u64, labels: Option<&[&str]>) -> serde_json::Value {
    let mut stage = serde_json::json!({
        "name": "parse", "workers": 4, "transport": {"kind": "nats"},
        "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": 1.0}}
    });
    if let Some(l) = labels {
        stage["placement"] = serde_json::json!({ "labels": l });
    }
    serde_json::json!({
        "name": "brokered",
        "source": {"kind": "synthetic", "count": count, "rate": 500.0, "payload": "counter"},
        "stages": [stage]
    })
}

#[tokio::test]
async fn a_worker_registers_beats_and_is_listed() {
    let app = app().await;
    let me = register(&app, "host-1", &["gpu"]).await;
    assert!(me.lease_ms > me.heartbeat_ms);
    let r = beat(&app, &me.id).await;
    assert_eq!(r.status(), 200);
    let reply: HeartbeatReply = r.json().await.unwrap();
    assert!(reply.assignments.is_empty());
    let list: Vec<WorkerInfo> = get_json(&app, "/api/v1/workers").await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].name.as_str(), list[0].state),
        ("host-1", WorkerState::Active)
    );
    assert_eq!(list[0].labels, ["gpu"]);
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics.contains("queuelab_workers{state=\"active\"} 1"),
        "{metrics}"
    );
    // Leaving frees the name; an unknown id is told to register again.
    assert_eq!(
        post(
            &app,
            &format!("/api/v1/workers/{}/leave", me.id),
            serde_json::json!({})
        )
        .await
        .status(),
        204
    );
    let r = beat(&app, &me.id).await;
    assert_eq!(r.status(), 404);
    let body: ErrorBody = r.json().await.unwrap();
    assert!(body.message.contains("register again"), "{}", body.message);
}

#[tokio::test]
async fn a_bad_registration_names_its_field() {
    let app = app().await;
    for (body, field) in [
        (
            serde_json::json!({"name": "a b", "host": "h", "version": "1"}),
            "name",
        ),
        (
            serde_json::json!({"name": "ok", "host": "", "version": "1"}),
            "host",
        ),
        (
            serde_json::json!({"name": "ok", "host": "h", "version": "1", "labels": ["no spaces"]}),
            "labels[0]",
        ),
        (
            serde_json::json!({"name": "ok", "host": "h", "version": "1", "capacity_hint": 0}),
            "capacity_hint",
        ),
    ] {
        let r = post(&app, "/api/v1/workers", body).await;
        assert_eq!(r.status(), 422);
        let e: ErrorBody = r.json().await.unwrap();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    }
    let r = post(
        &app,
        "/api/v1/workers/x/heartbeat",
        serde_json::json!({"running": [], "extra": 1}),
    )
    .await;
    assert_eq!(r.status(), 422);
    // A beat's names and counts are bounded too, before the worker is
    // even looked up.
    let running = |job: &str, stage: &str, workers: u32| {
        serde_json::json!({"running": [{
            "names": {"job": job, "stage": stage}, "workers": workers,
            "counts": {"processed": 0, "passed": 0, "filtered": 0, "failed": 0, "redelivered": 0}
        }]})
    };
    let long = "j".repeat(65);
    for (body, field) in [
        (running(&long, "s", 1), "running[0].names.job"),
        (running("j1", "a\nb", 1), "running[0].names.stage"),
        (running("j1", "s", 1_000_000), "running[0].workers"),
    ] {
        let r = post(&app, "/api/v1/workers/x/heartbeat", body).await;
        assert_eq!(r.status(), 422);
        let e: ErrorBody = r.json().await.unwrap();
        assert_eq!(e.field.as_deref(), Some(field), "{e:?}");
    }
}

#[tokio::test]
async fn a_heartbeat_carries_the_workers_share_of_a_broker_stage() {
    let app = app().await;
    let w = register(&app, "host-1", &[]).await;
    let r = create(&app, broker_job(1_000_000, None)).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<JobDetail>().await.unwrap().summary.id;
    // Four workers over this worker and the server: two each.
    let share = |reply: &HeartbeatReply| {
        reply
            .assignments
            .iter()
            .find(|p| p.assignment.names.job == id)
            .map(|p| (p.assignment.stage.name.clone(), p.workers))
    };
    let mut reply = HeartbeatReply::default();
    for _ in 0..100 {
        reply = beat(&app, &w.id).await.json().await.unwrap();
        if share(&reply).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(share(&reply), Some(("parse".into(), 2)), "{reply:?}");
    let d = wait_job(&app, &id, "the placement in the snapshot", |d| {
        d.snapshot.nodes[0]
            .edge
            .as_ref()
            .is_some_and(|e| e.placement.len() == 2)
    })
    .await;
    let edge = d.snapshot.nodes[0].edge.clone().unwrap();
    assert_eq!(edge.workers_attached, 2);
    assert!(edge.placement.contains(&("server".into(), 2)), "{edge:?}");
    assert!(edge.placement.contains(&("host-1".into(), 2)), "{edge:?}");
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(metrics.contains("queuelab_edge_messages{"), "{metrics}");
    assert!(metrics.contains("queuelab_edge_items{"), "{metrics}");
    assert!(
        metrics.contains("queuelab_edge_published_items_total{"),
        "{metrics}"
    );
    // A tune spreads again.
    let r = tune(
        &app,
        &id,
        serde_json::json!({"stage": "parse", "workers": 6}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    for _ in 0..100 {
        reply = beat(&app, &w.id).await.json().await.unwrap();
        if share(&reply).is_some_and(|(_, n)| n == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(share(&reply), Some(("parse".into(), 3)));
    // The rate limit is a job-wide budget: this host runs half the
    // workers, so it gets half the rate.
    let r = tune(
        &app,
        &id,
        serde_json::json!({"stage": "parse", "rate_limit": 90.0}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let rate = |reply: &HeartbeatReply| {
        reply
            .assignments
            .iter()
            .find(|p| p.assignment.names.job == id)
            .and_then(|p| p.limits.rate_limit)
    };
    for _ in 0..100 {
        reply = beat(&app, &w.id).await.json().await.unwrap();
        if rate(&reply) == Some(45.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rate(&reply), Some(45.0), "{reply:?}");
    let d = wait_job(&app, &id, "the job-wide rate in the snapshot", |d| {
        d.snapshot.nodes[0].rate_limit == Some(90.0)
    })
    .await;
    assert_eq!(d.snapshot.nodes[0].name, "parse");
    // A thread stage has no concurrency limit, over a broker or not.
    let r = tune(
        &app,
        &id,
        serde_json::json!({"stage": "parse", "concurrency": 4}),
    )
    .await;
    assert_eq!(r.status(), 422);
    // Once the job ends, the assignment is withdrawn.
    let r = post(
        &app,
        &format!("/api/v1/jobs/{id}/stop"),
        serde_json::json!({"mode": "abort"}),
    )
    .await;
    assert!(r.status().is_success());
    wait_job(&app, &id, "the end", |d| d.report.is_some()).await;
    for _ in 0..100 {
        reply = beat(&app, &w.id).await.json().await.unwrap();
        if share(&reply).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(share(&reply), None);
}

#[tokio::test]
async fn a_worker_that_stops_beating_is_lost_and_its_share_goes_elsewhere() {
    let app = app().await;
    let w = register(&app, "quiet", &["gpu"]).await;
    let gpu = register(&app, "beating", &["gpu"]).await;
    let r = create(&app, broker_job(1_000_000, Some(&["gpu"]))).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<JobDetail>().await.unwrap().summary.id;
    // Only `beating` beats; past the lease `quiet` is lost, and the
    // pinned stage's four workers all go to `beating` (never the server,
    // which has no labels).
    let mut all = false;
    for _ in 0..300 {
        let reply: HeartbeatReply = beat(&app, &gpu.id).await.json().await.unwrap();
        if reply
            .assignments
            .iter()
            .any(|p| p.assignment.names.job == id && p.workers == 4)
        {
            all = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(all, "the lost worker's share went to the live one");
    let list: Vec<WorkerInfo> = get_json(&app, "/api/v1/workers").await;
    let quiet = list.iter().find(|x| x.id == w.id).unwrap();
    assert_eq!(quiet.state, WorkerState::Lost);
    assert_eq!(beat(&app, &w.id).await.status(), 404);
    let r = post(
        &app,
        &format!("/api/v1/jobs/{id}/stop"),
        serde_json::json!({"mode": "abort"}),
    )
    .await;
    assert!(r.status().is_success());
}

#[tokio::test]
async fn broker_specs_are_checked_before_they_run() {
    let app = app().await;
    let mut spec = broker_job(10, None);
    spec["stages"][0]["queue"] = serde_json::json!({"when_full": "drop_oldest"});
    let r = create(&app, spec).await;
    assert_eq!(r.status(), 422);
    let e: ErrorBody = r.json().await.unwrap();
    let f = e
        .errors
        .iter()
        .find(|f| f.path == "stages[0].queue.when_full")
        .expect("when_full refused");
    assert!(f.message.contains("discard new"), "{}", f.message);
    // A broker the allow-list does not name is refused like any URL.
    let mut spec = broker_job(10, None);
    spec["stages"][0]["transport"]["url"] = serde_json::json!("nats://10.1.2.3:4222");
    let r = create(&app, spec).await;
    assert_eq!(r.status(), 422);
    let e: ErrorBody = r.json().await.unwrap();
    assert!(
        e.errors.iter().any(|f| f.path == "stages[0].transport.url"),
        "{e:?}"
    );
    // The only variable a spec may name is the broker's.
    let mut spec = broker_job(10, None);
    spec["stages"][0]["transport"]["url"] = serde_json::json!("env:HOME");
    let r = create(&app, spec).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn an_unreachable_broker_is_named_without_its_address() {
    // Port 1 answers nothing: the broker the server is configured with is
    // down. The client learns that, and a request id to ask about; the
    // URL and the client library's words stay in the server's log.
    let app = spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_nats_url(Some("nats://127.0.0.1:1".into()))
    })
    .await;
    let r = create(&app, broker_job(10, None)).await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("127.0.0.1") && !text.contains("nats://"),
        "{text}"
    );
    let e: ErrorBody = serde_json::from_str(&text).unwrap();
    assert!(
        e.errors
            .iter()
            .any(|f| f.message.contains("the broker is unreachable")),
        "{e:?}"
    );
    assert!(
        e.request_id.as_ref().is_some_and(|id| !id.is_empty()),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_websocket_says_when_workers_join_and_leave() {
    use futures_util::{SinkExt, StreamExt};
    use shared::ws::{ClientFrame, ServerFrame};
    use tokio_tungstenite::tungstenite::Message;
    let app = app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    ws.send(Message::Text(
        ClientFrame::SubscribeWorkers.to_json().into(),
    ))
    .await
    .unwrap();
    let mut next_census = async || loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        if let Ok(ServerFrame::Workers { active, lost, .. }) = ServerFrame::parse(&text) {
            return (active, lost);
        }
    };
    assert_eq!(next_census().await, (0, 0));
    let w = register(&app, "joining", &[]).await;
    assert_eq!(next_census().await, (1, 0));
    post(
        &app,
        &format!("/api/v1/workers/{}/leave", w.id),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(next_census().await, (0, 0));
}
