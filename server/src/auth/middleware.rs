//! The token check as middleware: reads the request's token, asks the
//! guard and the store who holds it, and refuses what its role may not do.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::tokens::{Identity, Role, hash, needed};
use crate::error::AppError;
use crate::state::AppState;

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
}
