//! The audit log: who changed what, from where. Mutating handlers write to
//! it through `audit()` with the [`Caller`] extractor; admins read it at
//! `/api/v1/audit`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::auth::Identity;
use crate::error::AppError;
use crate::registry::now_ms;
use crate::store::AuditEntry;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(audit_log))
}

/// The newest 500 audit entries (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin",
    responses(crate::openapi::Guarded, (status = 200, body = Vec<AuditEntry>)),
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

/// Who and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    who: Identity,
    remote: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let who = Identity::from_request_parts(parts, state).await?;
        let remote = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
        Ok(Caller { who, remote })
    }
}

/// Writes an audit entry for a mutation, on the store's threads; the
/// request waits for it, so the log is in order with the answers.
pub(super) async fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &impl serde::Serialize,
) {
    let entry = AuditEntry {
        at_ms: now_ms(),
        who: caller.who.label.clone(),
        action: action.into(),
        target: target.into(),
        detail: serde_json::to_string(detail).unwrap_or_default(),
        remote: caller.remote.clone(),
    };
    if let Err(e) = state.jobs().db().call(move |s| s.audit(&entry)).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}
