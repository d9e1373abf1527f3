//! What keeps a browser from being turned against the server: a page on
//! another site must not be able to drive the API through the user's
//! browser (cross-site requests, DNS rebinding), and the dashboard's own
//! pages must not be framed or have foreign script injected.
//!
//! * [`check_host`] — the `Host` header must be an IP literal, `localhost`
//!   or a name the operator configured (`--allowed-host`). A DNS-rebinding
//!   attack needs a host *name* of the attacker's that resolves to us;
//!   IP literals cannot be rebound.
//! * [`check_content_type`] — API mutations must say `application/json`
//!   (or TOML, or JSON lines where documented). The media types an HTML
//!   form or a "simple" cross-site `fetch` may send without a preflight
//!   (`text/plain`, form encodings, none at all) are refused with 415.
//!   Routes with a `POST` or `PATCH` handler wrap it with [`typed`], so the
//!   check runs for the methods a path has, and a method it lacks still
//!   answers 405 (with `Allow`), whatever the media type.
//! * [`origin_allowed`] — a WebSocket upgrade from a browser must come
//!   from the served origin or a `--cors-origin` (WebSockets are not
//!   covered by CORS).
//! * [`headers`] — security headers on every response: a CSP the wasm
//!   dashboard and the API docs work under, no sniffing, no framing, no
//!   referrer, and no caching of API answers.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::error::AppError;
use crate::state::AppState;

/// The dashboard's Content-Security-Policy: its own scripts and wasm, its
/// own API and WebSocket, inline styles (Leptos and Swagger UI set style
/// attributes), `data:` images (the favicon and Swagger's icons).
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The host part of a `Host` header value (`[::1]:8080` → `::1`).
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match value.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    }
}

/// Whether a request for `host` (a `Host` header value) may be served.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host).trim_end_matches('.');
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Middleware: refuses requests whose `Host` is a name the server was not
/// told about (421 Misdirected Request).
pub async fn check_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host
        && !host_allowed(host, state.allowed_hosts())
    {
        tracing::warn!(host, "refused a request for an unknown host name");
        return AppError::MisdirectedHost(format!(
            "this server does not answer for `{}`; its operator can allow the name with --allowed-host",
            host_name(host)
        ))
        .into_response();
    }
    next.run(req).await
}

/// The media types a mutation of `path` may carry.
fn accepted_types(path: &str) -> &'static [&'static str] {
    if path.ends_with("/ingest") {
        &[
            "application/x-ndjson",
            "application/jsonl",
            "application/json",
        ]
    } else if path == "/api/v1/jobs" || path == "/api/v1/validate" {
        &[
            "application/json",
            "application/toml",
            "application/x-toml",
            "text/x-toml",
            "text/toml",
        ]
    } else {
        &["application/json"]
    }
}

/// The media type of a request, lower-cased, without parameters.
pub fn essence(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Middleware: API mutations must carry one of the media types their
/// endpoint reads, so no cross-site form or simple request can send one.
pub async fn check_content_type(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // PUT and DELETE are never sent cross-site without a preflight, and
    // the API has no PUT route.
    let mutation = matches!(*req.method(), Method::POST | Method::PATCH);
    if mutation && path.starts_with("/api/") {
        let accepted = accepted_types(path);
        let ok = essence(req.headers()).is_some_and(|e| accepted.contains(&e.as_str()));
        if !ok {
            return AppError::UnsupportedMediaType(format!(
                "send the body as {} (Content-Type)",
                accepted.join(" or ")
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// Wraps the handlers of a route that has a `POST` or `PATCH` handler in
/// [`check_content_type`]. Only the handlers: the route's answer to a
/// method it does not have stays a 405, never a 415 (a layer around the
/// whole router would run before routing knows the method is wrong).
pub fn typed<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.route_layer(axum::middleware::from_fn(check_content_type))
}

/// Whether a WebSocket upgrade carrying these headers comes from a page
/// the server trusts: no `Origin` (not a browser), the served origin
/// itself, or one of the `--cors-origin`s.
pub fn origin_allowed(headers: &HeaderMap, cors: &[HeaderValue]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if cors.iter().any(|c| c == origin) {
        return true;
    }
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    let served = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    served.is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// Middleware: the security headers every response carries.
pub async fn headers(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/v1") || req.uri().path() == "/metrics";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    // API answers are live data; the dashboard's files are revalidated
    // so a new build is picked up at once.
    set(
        h,
        header::CACHE_CONTROL,
        if is_api { "no-store" } else { "no-cache" },
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_ip_localhost_or_configured_name() {
        let allowed = vec!["queuelab.staging.example".to_owned()];
        for ok in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:3000",
            "LOCALHOST",
            "192.0.2.10",
            "queuelab.staging.example:443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in ["evil.example:8080", "localhost.evil.example", "example"] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }

    #[test]
    fn websocket_origins() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(origin_allowed(&h, &[]), "no Origin: not a browser");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_allowed(&h, &[]), "same origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_allowed(&h, &[]));
        let cors = [HeaderValue::from_static("https://evil.example")];
        assert!(origin_allowed(&h, &cors), "configured origin");
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_allowed(&h, &[]));
    }

    #[test]
    fn mutation_media_types_by_endpoint() {
        assert!(accepted_types("/api/v1/jobs").contains(&"application/toml"));
        assert!(!accepted_types("/api/v1/jobs/j1/stop").contains(&"text/plain"));
        assert!(accepted_types("/api/v1/jobs/j1/ingest").contains(&"application/x-ndjson"));
    }
}
