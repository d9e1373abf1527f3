//! The HTTP side of an `http_ingest` source: `POST` lines, one item per
//! line. The job's first queue decides the answer: `block` makes the
//! request wait for room (backpressure through the response time);
//! `reject` answers 429 with how many lines were taken, so the client can
//! send the rest again.
//!
//! A waiting request awaits on the server's runtime and holds no thread
//! ([`IngestHandle::push_async`]), so blocked clients never starve the
//! control plane; how many may wait at once is capped server-wide
//! (`--max-ingest-waiting`), and beyond the cap a request gets 503 with
//! `Retry-After`.
//!
//! | answer | when | body |
//! |---|---|---|
//! | 202 | every line taken | counts |
//! | 429 | a full `reject`/`drop_newest` queue refused some | counts |
//! | 409 | the job stopped (drain, abort, finished) before taking them all | counts, `code: "stopped"` |
//! | 503 | the source has not started yet, or too many requests wait | error |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use engine::source::{IngestError, IngestHandle, Ingested};
use shared::api::ErrorBody;
use tokio::sync::Semaphore;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 << 20;

/// Ingest requests allowed to wait at once unless configured.
pub const DEFAULT_MAX_WAITING: usize = 4096;

/// Seconds a client refused for want of room is told to wait.
const RETRY_AFTER_S: &str = "1";

/// `POST /` and `POST /ingest` feed the job behind `handle` (headless
/// `queuelab run`), with at most [`DEFAULT_MAX_WAITING`] requests waiting.
pub fn router(handle: IngestHandle) -> Router {
    let waiting = Arc::new(Semaphore::new(DEFAULT_MAX_WAITING));
    Router::new()
        .route("/", post(ingest))
        .route("/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state((handle, waiting))
}

async fn ingest(
    State((handle, waiting)): State<(IngestHandle, Arc<Semaphore>)>,
    body: Bytes,
) -> Response {
    feed(&handle, &waiting, body).await
}

/// The 409 body when the job stopped before taking every line: the error
/// and the counts, so the client knows what to send elsewhere.
#[derive(Debug, serde::Serialize)]
struct Stopped {
    code: &'static str,
    message: &'static str,
    #[serde(flatten)]
    counts: Ingested,
}

/// Feeds the lines of `body` to `handle`, holding one of the `waiting`
/// permits meanwhile, and shapes the HTTP answer.
pub async fn feed(handle: &IngestHandle, waiting: &Arc<Semaphore>, body: Bytes) -> Response {
    let Ok(_permit) = waiting.clone().try_acquire_owned() else {
        let mut resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many ingest requests are waiting for room; try again",
        );
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from_static(RETRY_AFTER_S),
        );
        return resp;
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body must be UTF-8 text, one item per line",
        );
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match handle.push_async(lines).await {
        Ok(done) if done.not_taken > 0 => (
            StatusCode::CONFLICT,
            Json(Stopped {
                code: "stopped",
                message: "the job stopped before taking every line; `not_taken` were not",
                counts: done,
            }),
        )
            .into_response(),
        Ok(done) if done.refused > 0 => (StatusCode::TOO_MANY_REQUESTS, Json(done)).into_response(),
        Ok(done) => (StatusCode::ACCEPTED, Json(done)).into_response(),
        Err(IngestError::NotReady) => {
            let mut resp = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the job is not ready for input yet; try again",
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_S),
            );
            resp
        }
        Err(IngestError::Stopped) => error(
            StatusCode::CONFLICT,
            "stopped",
            "the job takes no more input",
        ),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        request_id: crate::request_id::current(),
        ..ErrorBody::new(code, message)
    };
    (status, Json(body)).into_response()
}
