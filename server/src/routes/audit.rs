//! The audit log over REST: admins read it at `/api/v1/audit`. Mutating
//! handlers write to it through [`crate::audit`].

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::AuditEntry;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(audit_log))
}

/// The newest 500 audit entries (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin",
    responses(crate::api::Guarded, (status = 200, body = Vec<AuditEntry>)),
    security(("bearer" = [])))]
pub async fn audit_log(State(state): State<AppState>) -> Result<Json<Vec<AuditEntry>>, AppError> {
    state
        .jobs()
        .db()
        .call(|s| s.audit_log(500))
        .await
        .map(Json)
        .map_err(|e| AppError::Internal(e.to_string()))
}
