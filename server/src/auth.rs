//! Bearer tokens with roles, for a team sharing one server.
//!
//! * **viewer** reads (every `GET`, and spec validation);
//! * **operator** also starts, tunes and stops jobs;
//! * **admin** also deletes jobs and reads the audit log.
//!
//! Tokens are random, shown once by `queuelab token create`, and stored
//! only as SHA-256 hashes. Auth is off by default when the server binds a
//! loopback address and on otherwise (`--auth on|off|auto`). Browsers pass
//! the token of a WebSocket as `?token=`, since they cannot set headers.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;

/// What a token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, starts, tunes and stops jobs.
    Operator,
    /// Everything, including deletions and the audit log.
    Admin,
}

impl Role {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the API asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Off on a loopback address, on otherwise.
    Auto,
    /// Always.
    On,
    /// Never (anyone who can connect is admin).
    Off,
}

/// Who made a request, as the handlers and the audit log see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's label, or `anonymous` with auth off.
    pub label: String,
    /// What it may do.
    pub role: Role,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Identity>()
            .cloned()
            .unwrap_or(Identity {
                label: "anonymous".into(),
                role: Role::Admin,
            }))
    }
}

/// A fresh random token: `ql_` and 48 hex digits.
pub fn generate() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ql_{hex}")
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The role a request needs.
fn needed(method: &Method, path: &str) -> Role {
    let is_job = path.starts_with("/api/v1/jobs/") && path.matches('/').count() == 4;
    if path.starts_with("/api/v1/audit") || (*method == Method::DELETE && is_job) {
        Role::Admin
    } else if *method == Method::GET || *method == Method::HEAD || path == "/api/v1/validate" {
        Role::Viewer
    } else {
        Role::Operator
    }
}

fn token_of(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token=").map(str::to_owned))
    })
}

/// Middleware: checks the token and the role, and tells the handlers who
/// is calling.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !state.auth_enabled() {
        return next.run(req).await;
    }
    let Some(token) = token_of(&req) else {
        return AppError::Unauthorized(
            "an API token is required: Authorization: Bearer <token>".into(),
        )
        .into_response();
    };
    let store = state.jobs().clone();
    let found = tokio::task::spawn_blocking(move || store.store().find_token(&hash(&token))).await;
    let (label, role) = match found {
        Ok(Ok(Some((label, role)))) => (label, Role::parse(&role).unwrap_or(Role::Viewer)),
        Ok(Ok(None)) => {
            return AppError::Unauthorized("unknown API token".into()).into_response();
        }
        Ok(Err(e)) => return AppError::Internal(e.to_string()).into_response(),
        Err(e) => return AppError::Internal(e.to_string()).into_response(),
    };
    let need = needed(req.method(), req.uri().path());
    if role < need {
        return AppError::Forbidden(format!(
            "this needs the {need} role; the token `{label}` is {role}"
        ))
        .into_response();
    }
    req.extensions_mut().insert(Identity { label, role });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_needed_by_route() {
        let cases = [
            (Method::GET, "/api/v1/jobs", Role::Viewer),
            (Method::GET, "/api/v1/ws", Role::Viewer),
            (Method::POST, "/api/v1/validate", Role::Viewer),
            (Method::POST, "/api/v1/jobs", Role::Operator),
            (Method::PATCH, "/api/v1/jobs/j1", Role::Operator),
            (Method::POST, "/api/v1/jobs/j1/stop", Role::Operator),
            (Method::DELETE, "/api/v1/jobs/j1", Role::Admin),
            (Method::GET, "/api/v1/audit", Role::Admin),
        ];
        for (m, p, r) in cases {
            assert_eq!(needed(&m, p), r, "{m} {p}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("ql_") && a.len() == 51);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
        assert_eq!(hash(&a), hash(&a));
    }
}
