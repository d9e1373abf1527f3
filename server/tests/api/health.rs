use shared::api::{ErrorBody, VersionInfo};

use crate::helpers::{get, spawn_app, spawn_app_with_assets};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = get(&app, "/healthz").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
}

#[tokio::test]
async fn version_names_the_product_and_build() {
    let app = spawn_app().await;
    let (status, body) = get(&app, "/api/v1/version").await;
    assert_eq!(status, 200);
    let info: VersionInfo = serde_json::from_str(&body).unwrap();
    assert_eq!(info.name, "queuelab");
    assert_eq!(info.version, server::VERSION);
    assert_eq!(info.protocol, shared::PROTOCOL_VERSION);
}

#[tokio::test]
async fn unknown_api_path_is_a_json_404_not_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>dashboard</p>").unwrap();
    let app = spawn_app_with_assets(Some(dir.path().to_path_buf())).await;
    let (status, body) = get(&app, "/api/v1/nope").await;
    assert_eq!(status, 404);
    let err: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(err.code, "not_found");
    assert!(err.message.contains("/api/v1/nope"), "{}", err.message);
    // Client-side routes still reach the dashboard.
    let (status, body) = get(&app, "/history").await;
    assert_eq!(status, 200);
    assert_eq!(body, "<p>dashboard</p>");
}

#[tokio::test]
async fn healthcheck_probe_accepts_a_live_server() {
    let app = spawn_app().await;
    let url = app.url("/healthz");
    let result = tokio::task::spawn_blocking(move || {
        server::healthcheck::probe(&url, std::time::Duration::from_secs(3))
    })
    .await
    .unwrap();
    result.unwrap();
    // A path that is not healthy (404) fails the probe.
    let url = app.url("/api/v1/missing");
    let result = tokio::task::spawn_blocking(move || {
        server::healthcheck::probe(&url, std::time::Duration::from_secs(3))
    })
    .await
    .unwrap();
    assert!(matches!(result, Err(server::healthcheck::ProbeError::Status(s)) if s.contains("404")));
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_app().await;
    let (status, body) = get(&app, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/stop",
        "/api/v1/templates",
        "/api/v1/lessons",
        "/api/v1/validate",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    for schema in [
        "PipelineSpec",
        "JobDetail",
        "TuneRequest",
        "ErrorBody",
        "Capacity",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} documented"
        );
    }
    let (status, page) = get(&app, "/api/docs/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("swagger"),
        "the docs page comes from the binary"
    );
}
