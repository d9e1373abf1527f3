//! The HTTP side of an `http_ingest` source: `POST` lines, one item per
//! line. The job's first queue decides the answer: `block` makes the
//! request wait for room (backpressure through the response time);
//! `reject` answers 429 with how many lines were taken, so the client can
//! send the rest again.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use engine::source::{IngestError, IngestHandle};
use shared::api::ErrorBody;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 << 20;

/// `POST /` and `POST /ingest` feed the job behind `handle`.
pub fn router(handle: IngestHandle) -> Router {
    Router::new()
        .route("/", post(ingest))
        .route("/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(handle)
}

/// Feeds the lines of `body` to `handle` and shapes the HTTP answer.
pub async fn ingest(State(handle): State<IngestHandle>, body: Bytes) -> Response {
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be UTF-8 text, one item per line",
        );
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Pushing may block on a full queue: keep it off the async workers.
    let pushed = tokio::task::spawn_blocking(move || handle.push(lines)).await;
    match pushed {
        Ok(Ok(done)) if done.refused > 0 || done.not_taken > 0 => {
            (StatusCode::TOO_MANY_REQUESTS, Json(done)).into_response()
        }
        Ok(Ok(done)) => (StatusCode::ACCEPTED, Json(done)).into_response(),
        Ok(Err(IngestError::NotReady)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the job is not ready for input yet; try again",
        ),
        Ok(Err(IngestError::Stopped)) => error(
            StatusCode::CONFLICT,
            "stopped",
            "the job takes no more input",
        ),
        Err(join) => {
            tracing::error!(error = %join, "ingest task failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                crate::error::INTERNAL_MESSAGE,
            )
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        request_id: crate::request_id::current(),
        ..ErrorBody::new(code, message)
    };
    (status, Json(body)).into_response()
}
