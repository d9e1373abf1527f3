//! JSON endpoints: liveness and version. Jobs, templates and the rest of
//! `/api/v1` arrive with the control-plane issue.

use axum::extract::OriginalUri;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::api::VersionInfo;

use crate::error::AppError;
use crate::{AppState, VERSION};

/// Routes of this module, merged into the app by [`crate::app`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/version", get(version))
        // Unknown API paths answer JSON 404s, never the dashboard's HTML.
        .route("/api/{*rest}", axum::routing::any(unknown_api))
}

/// Body of `GET /healthz`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Always `"ok"` while the process can answer at all.
    pub status: &'static str,
    /// Seconds since the server started.
    pub uptime_s: u64,
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        uptime_s: state.uptime().as_secs(),
    })
}

async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        name: "queuelab".to_owned(),
        version: VERSION.to_owned(),
        protocol: shared::PROTOCOL_VERSION,
    })
}

async fn unknown_api(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("no API endpoint at {}", uri.path()))
}
