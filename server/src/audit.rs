//! Writing the audit log: who changed what, from where. Mutating handlers
//! (and the tuning lab, for the jobs it starts) write to it through
//! [`audit()`] with the [`Caller`] extractor; admins read it at
//! `/api/v1/audit` ([`crate::routes::audit`]). Below the routes, so they
//! share it without importing one another.

use crate::auth::Identity;
use crate::registry::now_ms;
use crate::state::AppState;
use crate::store::AuditEntry;

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
pub async fn audit(
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
