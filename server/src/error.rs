//! The error type every handler returns, rendered as a JSON [`ErrorBody`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::api::ErrorBody;

/// A failed API request: each variant knows its HTTP status and its stable
/// `code`, so handlers never build error bodies by hand.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The path names no endpoint or no such resource.
    #[error("{0}")]
    NotFound(String),
    /// The input is well-formed but a field's value is unacceptable.
    #[error("{field}: {message}")]
    InvalidField {
        /// Path of the offending field (`stages[1].workers`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A spec with problems: all of them are listed in the body.
    #[error("{0}")]
    InvalidSpec(shared::spec::SpecError),
    /// The request makes no sense in the resource's current state
    /// (tuning a finished job, deleting a running one).
    #[error("{0}")]
    Conflict(String),
    /// The body is not JSON (or TOML where a spec is expected) of the
    /// right shape.
    #[error("{0}")]
    BadRequest(String),
    /// No valid API token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The server cannot take this request now (a cap is reached).
    #[error("{0}")]
    Unavailable(String),
    /// This client made too many failed attempts; it may retry later.
    #[error("{0}")]
    TooManyRequests(String),
    /// The body's media type is not one this endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A server-wide limit (jobs, workers, queued items) would be passed.
    #[error("{0}")]
    LimitReached(String),
    /// The request names a host this server does not answer for (a DNS
    /// rebinding attempt, or a name the operator has not configured).
    #[error("{0}")]
    MisdirectedHost(String),
    /// A bug or an I/O failure on the server's side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// What a client may be told: the field's message for a bad input,
    /// never the internal text of a server-side failure.
    pub fn public_message(&self) -> String {
        match self {
            AppError::InvalidField { message, .. } => message.clone(),
            AppError::InvalidSpec(e) => e
                .errors
                .first()
                .map_or_else(|| "invalid spec".to_owned(), |f| f.message.clone()),
            AppError::Internal(_) => INTERNAL_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// The status code and machine-readable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            AppError::InvalidSpec(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::LimitReached(_) => (StatusCode::TOO_MANY_REQUESTS, "limit_reached"),
            AppError::MisdirectedHost(_) => (StatusCode::MISDIRECTED_REQUEST, "misdirected_host"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// What a client is told of a server-side failure: never the internal
/// text (SQL, OS errors, paths, panics), which goes to the log instead.
pub const INTERNAL_MESSAGE: &str =
    "something went wrong on the server; the request id identifies it in the server's log";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let field = match &self {
            AppError::InvalidField { field, .. } => Some(field.clone()),
            AppError::InvalidSpec(e) => e.errors.first().map(|f| f.path.clone()),
            _ => None,
        };
        let message = self.public_message();
        let errors = match self {
            AppError::InvalidSpec(e) => e.errors,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            field,
            errors,
            request_id: crate::request_id::current(),
            ..ErrorBody::new(code, message)
        };
        (status, Json(body)).into_response()
    }
}

/// Whether errors at `path` are JSON: the API's, and those of the
/// operational endpoints it documents (`/healthz`, `/readyz`, `/metrics`);
/// the dashboard's pages are not.
fn speaks_json(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: gives the framework's own error answers (unknown method,
/// body too large, unreadable path parameter…) the same JSON shape as
/// ours, so API clients always get `{code, message, request_id}`; a
/// server error's text is logged, never sent.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_api = speaks_json(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if status.is_server_error() {
        tracing::error!(%status, error = %text, "request failed");
        INTERNAL_MESSAGE.to_owned()
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = ErrorBody {
        request_id: crate::request_id::current(),
        ..ErrorBody::new(code, message)
    };
    (status, Json(body)).into_response()
}

/// The answer to a handler that panicked: a plain 500 with the request
/// id; the panic's text goes to the log only.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %text, "a handler panicked");
    AppError::Internal(format!("panic: {text}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalid_field_names_the_field() {
        let resp = AppError::InvalidField {
            field: "stages[0].workers".into(),
            message: "must be 1..=4096".into(),
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.code, "invalid_field");
        assert_eq!(body.field.as_deref(), Some("stages[0].workers"));
        assert_eq!(body.message, "must be 1..=4096");
    }

    #[tokio::test]
    async fn internal_errors_keep_their_text_out_of_the_body() {
        let resp = crate::request_id::tests_scope("r1", async {
            AppError::Internal("SELECT secret FROM x: /var/lib/db (os error 13)".into())
                .into_response()
        })
        .await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.code, "internal");
        assert_eq!(body.message, INTERNAL_MESSAGE);
        assert_eq!(body.request_id.as_deref(), Some("r1"));
    }
}
