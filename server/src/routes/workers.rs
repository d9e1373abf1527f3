//! Worker processes over REST, under `/api/v1/workers`: `queuelab worker`
//! registers, heartbeats (each reply is everything it should run) and
//! leaves; anyone with a token lists them. The bookkeeping and the
//! placement are in [`crate::workers`].

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use shared::api::ErrorBody;
use shared::workers::{Heartbeat, HeartbeatReply, RegisterRequest, Registered, WorkerInfo};

use crate::audit::{Caller, audit};
use crate::browser::typed;
use crate::error::AppError;
use crate::requests::json_body;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workers", typed(post(register).get(list)))
        .route("/api/v1/workers/{id}/heartbeat", typed(post(heartbeat)))
        .route("/api/v1/workers/{id}/leave", typed(post(leave)))
}

/// Registers a worker process; it then heartbeats with the id it gets.
#[utoipa::path(post, path = "/api/v1/workers", tag = "workers",
    request_body(content = RegisterRequest, content_type = "application/json"),
    responses(crate::api::Mutation,
        (status = 201, description = "Registered", body = Registered),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_field`: a field is out of bounds", body = ErrorBody),
        (status = 429, description = "`limit_reached`: the server has all the workers it takes", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: RegisterRequest = json_body(&body)?;
    if let Some((field, message)) = req.problems().into_iter().next() {
        return Err(AppError::InvalidField { field, message });
    }
    let name = req.name.clone();
    let registered = state
        .workers()
        .register(req)
        .map_err(|e| AppError::LimitReached(e.to_string()))?;
    audit(
        &state,
        &caller,
        "register_worker",
        &registered.id,
        &serde_json::json!({ "name": name }),
    )
    .await;
    Ok((StatusCode::CREATED, Json(registered)).into_response())
}

/// A worker's heartbeat: it renews the lease, reports what runs there and
/// gets back everything it should run (what is not listed, it stops).
#[utoipa::path(post, path = "/api/v1/workers/{id}/heartbeat", tag = "workers",
    params(("id" = String, Path, description = "Worker id")),
    request_body(content = Heartbeat, content_type = "application/json"),
    responses(crate::api::Mutation,
        (status = 200, body = HeartbeatReply),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, description = "`not_found`: unknown or lost worker; register again", body = ErrorBody),
        (status = 422, description = "`invalid_field`: too many assignments, or a name or count out of bounds (the field is named)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<HeartbeatReply>, AppError> {
    let beat: Heartbeat = json_body(&body)?;
    if let Some((field, message)) = beat.problems().into_iter().next() {
        return Err(AppError::InvalidField { field, message });
    }
    state
        .workers()
        .heartbeat(&id, beat)
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no worker `{id}`: register again")))
}

/// The body of a leave: `{}`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Leave {}

/// A worker leaving on its own: its share is placed elsewhere at once.
#[utoipa::path(post, path = "/api/v1/workers/{id}/leave", tag = "workers",
    params(("id" = String, Path, description = "Worker id")),
    request_body(content = Leave, content_type = "application/json", description = "`{}`"),
    responses(crate::api::Mutation,
        (status = 204, description = "Gone"),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 422, description = "`invalid_field`: the body is not `{}`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn leave(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let _: Leave = json_body(&body)?;
    if state.workers().leave(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!("no worker `{id}`")))
    }
}

/// Every worker process: its host, version, state, last heartbeat, what
/// it runs and its counts.
#[utoipa::path(get, path = "/api/v1/workers", tag = "workers",
    responses(crate::api::Guarded, (status = 200, body = Vec<WorkerInfo>)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<WorkerInfo>> {
    Json(state.workers().list())
}
