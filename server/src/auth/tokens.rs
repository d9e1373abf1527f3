//! Tokens and who holds them: the roles, a request's [`Identity`], how a
//! token is made and stored, and the role each route needs.

use std::fmt;

use axum::http::Method;
use rand::Rng;
use sha2::{Digest, Sha256};

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

    pub(super) fn parse(s: &str) -> Option<Self> {
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
pub(super) fn needed(method: &Method, path: &str) -> Role {
    let is_job = (path.starts_with("/api/v1/jobs/") || path.starts_with("/api/v1/sweeps/"))
        && path.matches('/').count() == 4;
    if path.starts_with("/api/v1/audit") || (*method == Method::DELETE && is_job) {
        Role::Admin
    } else if *method == Method::GET
        || *method == Method::HEAD
        || path == "/api/v1/validate"
        || path == "/api/v1/knobs"
    {
        Role::Viewer
    } else {
        Role::Operator
    }
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
