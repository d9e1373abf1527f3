//! Answers that say what happened: a drain after an abort is a conflict,
//! out-of-range history steps are refused rather than wrapped, and record
//! places are typed (a `#` in a path is just a character).

use serde_json::json;
use shared::api::{ErrorBody, JobDetail};

use crate::helpers::{running_job, spawn_app, start, stop, wait_job};

#[tokio::test]
async fn a_drain_after_an_abort_is_a_conflict() {
    let app = spawn_app().await;
    let id = running_job(&app).await;
    assert_eq!(stop(&app, &id, "abort").await.status(), 202);
    let drain = stop(&app, &id, "drain").await;
    assert_eq!(drain.status(), 409);
    assert_eq!(drain.json::<ErrorBody>().await.unwrap().code, "conflict");
    let d = wait_job(&app, &id, "aborted", |d| d.report.is_some()).await;
    assert_eq!(d.summary.state, shared::metrics::JobState::Aborted);
}

#[tokio::test]
async fn history_steps_out_of_range_are_refused() {
    let app = spawn_app().await;
    let id = start(
        &app,
        json!({"template": "thread-io-pool", "overrides": {"source": {"count": 10}}}),
    )
    .await;
    wait_job(&app, &id, "finished", |d| d.report.is_some()).await;
    for step in ["0", "18446744073709551615", "86400001"] {
        let r = reqwest::get(app.url(&format!("/api/v1/jobs/{id}/metrics?step_ms={step}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "step {step}");
        assert_eq!(
            r.json::<ErrorBody>().await.unwrap().field.as_deref(),
            Some("step_ms")
        );
    }
    let r = reqwest::get(app.url(&format!(
        "/api/v1/jobs/{id}/metrics?step_ms=86400000&to_ms=18446744073709551615"
    )))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_finished_job_names_its_files_without_the_servers_absolute_paths() {
    let app = spawn_app().await;
    let id = running_job(&app).await;
    stop(&app, &id, "abort").await;
    let d: JobDetail = wait_job(&app, &id, "aborted", |d| d.report.is_some()).await;
    let file = d.report.unwrap().leftovers_file.expect("leftovers");
    assert_eq!(file, format!("jobs/{id}/leftovers.jsonl"));
    let page: serde_json::Value =
        reqwest::get(app.url(&format!("/api/v1/jobs/{id}/leftovers?limit=2")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(page["file"], file.as_str());
    assert_eq!(page["records"].as_array().unwrap().len(), 2);
}
