use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use server::target::{TargetConfig, router};
use shared::metrics::JobReport;
use shared::spec::{Distribution, PipelineSpec, SpecFormat};

/// Starts a target on a free port in the background; returns its base URL.
pub async fn spawn_target(latency: Distribution, fail_share: f64, fail_status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = router(TargetConfig {
        latency,
        fail_share,
        fail_status: StatusCode::from_u16(fail_status).unwrap(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// What the target has seen.
pub async fn stats(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/_stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs a TOML spec to its end on a blocking thread (the engine blocks).
pub async fn run(toml: String) -> Arc<JobReport> {
    tokio::task::spawn_blocking(move || {
        let spec = PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let job = engine::start(spec, engine::JobOptions::new("http-test", dir.path())).unwrap();
        let report = job.wait();
        assert!(report.balanced, "{report:#?}");
        report
    })
    .await
    .unwrap()
}

pub fn node<'a>(r: &'a JobReport, name: &str) -> &'a shared::metrics::NodeSnapshot {
    r.nodes.iter().find(|n| n.name == name).unwrap()
}
