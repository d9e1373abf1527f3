//! Operational endpoints (`/healthz`, `/readyz`, `/metrics`), the
//! version, and JSON 404s for unknown API paths; none of them needs a
//! token. Jobs live in [`super::jobs`], templates in [`super::templates`].

use axum::extract::OriginalUri;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::api::VersionInfo;

use crate::error::AppError;
use crate::state::{AppState, VERSION};

/// Routes of this module, merged into the app by [`crate::app`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/api/v1/version", get(version))
        // Unknown API paths answer JSON 404s, never the dashboard's HTML.
        .route("/api/{*rest}", axum::routing::any(unknown_api))
}

/// Body of `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `"ok"` while the process can answer at all.
    pub status: &'static str,
    /// Seconds since the server started.
    pub uptime_s: u64,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(crate::api::Always, (status = 200, body = Health)))]
pub async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        uptime_s: state.uptime().as_secs(),
    })
}

/// Body of `GET /readyz` when ready.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Always `"ready"`.
    pub status: &'static str,
}

/// Ready to take work: not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(crate::api::Always, (status = 200, description = "Ready", body = Ready),
        (status = 503, response = crate::api::Unavailable)))]
pub async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<Ready>, AppError> {
    if state.is_stopping() {
        return Err(AppError::Unavailable("shutting down".into()));
    }
    Ok(Json(Ready { status: "ready" }))
}

/// The server's name, version and protocol revision.
#[utoipa::path(get, path = "/api/v1/version", tag = "operations",
    responses(crate::api::Always, (status = 200, body = VersionInfo)))]
pub async fn version() -> Json<VersionInfo> {
    Json(VersionInfo {
        name: "queuelab".to_owned(),
        version: VERSION.to_owned(),
        protocol: shared::PROTOCOL_VERSION,
    })
}

async fn unknown_api(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("no API endpoint at {}", uri.path()))
}
