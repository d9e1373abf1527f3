//! Bearer tokens with roles, for a team sharing one server.
//!
//! * **viewer** reads (every `GET`, and spec validation);
//! * **operator** also starts, tunes and stops jobs;
//! * **admin** also deletes jobs and reads the audit log.
//!
//! Tokens are random, shown once by `queuelab token create`, and stored
//! only as SHA-256 hashes. Auth is off by default when the server binds a
//! loopback address and on otherwise (`--auth on|off|auto`). Browsers pass
//! the token of a WebSocket as `?token=`, since they cannot set headers;
//! everywhere else `?token=` is ignored (a URL ends up in logs and
//! histories), so a REST call needs `Authorization: Bearer`.
//!
//! Unknown tokens are logged (the client's address and the first hex
//! digits of the token's hash, never the token) and throttled per client
//! address: [`FAILURES_PER_MINUTE`] failures in a burst, then that many a
//! minute; beyond that the address gets 429 with `Retry-After`, **good
//! tokens included**, until the limiter lets it try again. Refusing good
//! tokens too is the safer choice: a guesser who hits a valid token while
//! throttled learns nothing from the answer. (Behind a reverse proxy every
//! client has the proxy's address and shares its allowance.)
//!
//! Token checks go to the store on its own threads
//! ([`crate::store::StoreThreads`]); a token found there is remembered for
//! [`TOKEN_TTL`].

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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

/// Failed token checks a client address may make in a burst, and then
/// per minute.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// How long a token found in the store is trusted without asking again.
/// Why cache: each authenticated request would otherwise queue a query on
/// the store's few threads, so a burst of requests (a thousand ingest
/// clients) would make an unrelated `POST /jobs` wait behind their
/// lookups. Why so short: a token deleted from the store stops working
/// within this time. Only tokens the store knows are cached, so the cache
/// stays as small as the token table.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// Failed-token throttling per client address, and the token cache.
pub struct Guard {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses the limiter refused, and until when.
    throttled: Mutex<HashMap<IpAddr, Instant>>,
    /// Token hash → who, and when the store said so.
    known: Mutex<HashMap<String, (Identity, Instant)>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("addresses", &self.failures.len())
            .finish_non_exhaustive()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(FAILURES_PER_MINUTE)
    }
}

impl Guard {
    /// A guard allowing `per_minute` failures per address (also the burst).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            failures: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)),
            throttled: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// How long `peer` must still wait, if it is throttled.
    fn throttled(&self, peer: IpAddr) -> Option<Duration> {
        let mut map = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        let until = *map.get(&peer)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            map.remove(&peer);
            None
        }
    }

    /// Counts a failed check from `peer`; returns how long it is throttled
    /// from now on, if this failure was one too many.
    fn failed(&self, peer: IpAddr) -> Option<Duration> {
        let not_until = self.failures.check_key(&peer).err()?;
        let wait = not_until.wait_time_from(self.failures.clock().now());
        let now = Instant::now();
        let mut map = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.insert(peer, now + wait);
        // Forget addresses whose allowance is whole again.
        if self.failures.len() > 4096 {
            self.failures.retain_recent();
        }
        Some(wait)
    }

    fn cached(&self, hash: &str) -> Option<Identity> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_TTL)
            .map(|(who, _)| who.clone())
    }

    fn remember(&self, hash: String, who: Identity) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
        known.insert(hash, (who, Instant::now()));
    }
}

/// The token a request carries: the `Authorization` header, or on the
/// WebSocket upgrade only, `?token=`.
fn token_of(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
        && let Some(token) = text.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    if req.uri().path() != shared::WS_PATH {
        return None;
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token=").map(str::to_owned))
    })
}

/// The client's address (unspecified when the server was not started
/// with connection info, as in unit tests).
fn peer_of(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

fn throttled(wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = AppError::TooManyRequests(format!(
        "too many unknown API tokens from this address; try again in {secs} s"
    ))
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// Middleware: checks the token and the role, and tells the handlers who
/// is calling.
pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !state.auth_enabled() {
        return next.run(req).await;
    }
    let peer = peer_of(&req);
    let guard = state.guard();
    // No token guesses nothing: it is always a plain 401.
    let Some(token) = token_of(&req) else {
        return AppError::Unauthorized(
            "an API token is required: Authorization: Bearer <token> \
             (`?token=` is accepted only on the WebSocket)"
                .into(),
        )
        .into_response();
    };
    if let Some(wait) = guard.throttled(peer) {
        return throttled(wait);
    }
    let hash = hash(&token);
    let who = match guard.cached(&hash) {
        Some(who) => who,
        None => {
            let h = hash.clone();
            match state.jobs().db().call(move |s| s.find_token(&h)).await {
                Ok(Some((label, role))) => {
                    let who = Identity {
                        label,
                        role: Role::parse(&role).unwrap_or(Role::Viewer),
                    };
                    guard.remember(hash, who.clone());
                    who
                }
                Ok(None) => {
                    let wait = guard.failed(peer);
                    tracing::warn!(client = %peer, token_hash = &hash[..8], throttled = wait.is_some(), "unknown API token");
                    return match wait {
                        Some(wait) => throttled(wait),
                        None => AppError::Unauthorized("unknown API token".into()).into_response(),
                    };
                }
                Err(e) => return AppError::Internal(e.to_string()).into_response(),
            }
        }
    };
    let need = needed(req.method(), req.uri().path());
    if who.role < need {
        return AppError::Forbidden(format!(
            "this needs the {need} role; the token `{}` is {}",
            who.label, who.role
        ))
        .into_response();
    }
    req.extensions_mut().insert(who);
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
    fn failures_are_throttled_per_address() {
        let guard = Guard::new(3);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert_eq!(guard.failed(a), None, "within the burst");
        }
        assert_eq!(guard.throttled(a), None);
        let wait = guard.failed(a).expect("one too many");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(guard.throttled(a).is_some());
        assert_eq!(guard.throttled(b), None, "per address");
        assert_eq!(guard.failed(b), None);
    }

    #[test]
    fn known_tokens_are_cached_briefly() {
        let guard = Guard::default();
        assert_eq!(guard.cached("h"), None);
        let who = Identity {
            label: "ci".into(),
            role: Role::Operator,
        };
        guard.remember("h".into(), who.clone());
        assert_eq!(guard.cached("h"), Some(who));
        assert_eq!(guard.cached("other"), None);
    }

    #[test]
    fn query_tokens_count_only_on_the_websocket() {
        let req = |uri: &str| {
            Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        assert_eq!(
            token_of(&req(&format!("{}?token=abc", shared::WS_PATH))).as_deref(),
            Some("abc")
        );
        assert_eq!(token_of(&req("/api/v1/jobs?token=abc")), None);
        let mut with_header = req("/api/v1/jobs");
        with_header.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(token_of(&with_header).as_deref(), Some("xyz"));
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
