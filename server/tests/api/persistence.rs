//! The store: history, audit, and finished runs surviving a restart.

use serde_json::{Value, json};
use shared::api::{JobDetail, JobPage};
use shared::metrics::{JobSnapshot, JobState};

use crate::helpers::{get_json, spawn_app_in, start, wait_job};

#[tokio::test]
async fn finished_runs_history_and_audit_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(None, 10, dir.path().to_path_buf()).await;
    let client = reqwest::Client::new();
    let id = start(
        &app,
        json!({"template": "thread-io-pool", "overrides": {"source": {"count": 1500}}}),
    )
    .await;
    let done = wait_job(&app, &id, "its report", |d| d.report.is_some()).await;
    let report = done.report.unwrap();
    let history: Vec<JobSnapshot> =
        get_json(&app, &format!("/api/v1/jobs/{id}/metrics?step_ms=250")).await;
    assert!(history.len() >= 2, "points over the run: {}", history.len());
    assert!(
        history
            .windows(2)
            .all(|w| w[0].elapsed_ms < w[1].elapsed_ms)
    );
    let audit: Vec<Value> = get_json(&app, "/api/v1/audit").await;
    assert_eq!(audit[0]["action"], "create");
    assert_eq!(audit[0]["target"], id.as_str());
    assert!(
        audit[0]["remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    app.shutdown().await;

    // A new server on the same data directory.
    let app = spawn_app_in(None, 10, dir.path().to_path_buf()).await;
    let page: JobPage = get_json(&app, "/api/v1/jobs").await;
    assert_eq!(page.total, 1);
    let again: JobDetail = get_json(&app, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(again.summary.state, JobState::Completed);
    assert_eq!(again.report.as_ref().unwrap().accounting, report.accounting);
    let events: Vec<Value> = get_json(&app, &format!("/api/v1/jobs/{id}/events")).await;
    assert!(
        events.iter().any(|e| e["state"] == "completed"),
        "{events:?}"
    );
    let history_again: Vec<JobSnapshot> =
        get_json(&app, &format!("/api/v1/jobs/{id}/metrics?step_ms=250")).await;
    assert_eq!(history_again.len(), history.len());
    // An archived job cannot be tuned, but can be deleted.
    let tune = client
        .patch(app.url(&format!("/api/v1/jobs/{id}")))
        .json(&json!({"stage": "io", "workers": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(tune.status(), 409);
    let del = client
        .delete(app.url(&format!("/api/v1/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let audit: Vec<Value> = get_json(&app, "/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["delete", "create"]);
    app.shutdown().await;
    let app = spawn_app_in(None, 10, dir.path().to_path_buf()).await;
    let page: JobPage = get_json(&app, "/api/v1/jobs").await;
    assert_eq!(page.total, 0, "deleted for good");
}

/// A fresh database on the local PostgreSQL server (see `.ci/run`).
fn fresh_pg_database() -> String {
    let admin = std::env::var("QUEUELAB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("ql_api_store_{}", std::process::id());
    let admin2 = admin.clone();
    let name2 = name.clone();
    std::thread::spawn(move || {
        let mut c =
            postgres::Client::connect(&admin2, postgres::NoTls).expect("PostgreSQL running");
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name2} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name2}"))
            .unwrap();
    })
    .join()
    .unwrap();
    format!("{}/{name}", admin.rsplit_once('/').unwrap().0)
}

#[tokio::test]
async fn the_postgres_store_keeps_runs_across_restarts_too() {
    let url = fresh_pg_database();
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_app_with_store(dir.path().to_path_buf(), &url).await;
    let id = start(
        &app,
        json!({"template": "thread-io-pool", "overrides": {"source": {"count": 300}}}),
    )
    .await;
    let report = wait_job(&app, &id, "its report", |d| d.report.is_some())
        .await
        .report
        .unwrap();
    app.shutdown().await;
    let app = crate::helpers::spawn_app_with_store(dir.path().to_path_buf(), &url).await;
    let again: JobDetail = get_json(&app, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(again.summary.state, JobState::Completed);
    assert_eq!(again.report.unwrap().accounting, report.accounting);
    let events: Vec<Value> = get_json(&app, &format!("/api/v1/jobs/{id}/events")).await;
    assert!(events.iter().any(|e| e["state"] == "completed"));
    let audit: Vec<Value> = get_json(&app, "/api/v1/audit").await;
    assert_eq!(audit[0]["action"], "create");
    assert!(
        !dir.path().join("queuelab.db").exists(),
        "nothing went to SQLite"
    );
}
