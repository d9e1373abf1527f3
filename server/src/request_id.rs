//! Request ids: every response carries an `x-request-id` header, every log
//! line written while serving a request carries the same id, and every
//! error body quotes it. A user reports the id; an operator greps the log
//! for it and finds the internal details the client was never sent.
//!
//! The id is made here, never taken from the client, so a caller cannot
//! forge log lines that look like someone else's request.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use tracing::Instrument;

/// The header that carries the id.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request whose handler is running on this task, so
    /// [`crate::error::AppError`] can quote it without every handler
    /// passing it along.
    static CURRENT: String;
}

/// A fresh id: 16 hex digits, short enough to read over the phone.
fn fresh() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Middleware: gives the request an id, serves it inside a tracing span
/// that names the id, and sets the response header.
pub async fn assign(req: Request, next: Next) -> Response {
    let id = fresh();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = CURRENT
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, value);
    }
    resp
}

/// Runs `f` as if it served a request with id `id` (for unit tests).
#[cfg(test)]
pub(crate) async fn tests_scope<F: std::future::Future>(id: &str, f: F) -> F::Output {
    CURRENT.scope(id.to_owned(), f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_hex() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn current_is_scoped_to_the_request() {
        assert_eq!(current(), None);
        let seen = CURRENT.scope("abc".into(), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
