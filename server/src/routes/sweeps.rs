//! The tuning lab over REST, under `/api/v1/sweeps` (and `/api/v1/soaks`
//! to start a soak): start a sweep, a capacity search or a soak, list and
//! reopen them, stop and delete them. The runs are in [`crate::lab`];
//! every job a sweep starts is an ordinary job, linked from its points.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::api::ErrorBody;
use shared::lab::{LabDetail, LabSummary, SoakSpec, SweepSpec, Tunable};
use shared::spec::PipelineSpec;

use crate::audit::{Caller, audit};
use crate::browser::typed;
use crate::error::AppError;
use crate::requests::json_body;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sweeps", typed(post(create_sweep).get(list)))
        .route("/api/v1/soaks", typed(post(create_soak)))
        .route("/api/v1/sweeps/{id}", get(detail).delete(delete))
        .route("/api/v1/sweeps/{id}/stop", typed(post(stop)))
        .route("/api/v1/knobs", typed(post(knobs)))
}

fn created(d: &LabDetail) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/sweeps/{}", d.summary.id))],
        Json(d.clone()),
    )
        .into_response()
}

/// Starts a sweep over one knob, or a capacity search (`mode.kind =
/// "capacity"`, with an `slo`). Every run is a job of its own.
#[utoipa::path(post, path = "/api/v1/sweeps", tag = "lab",
    request_body(content = SweepSpec, content_type = "application/json"),
    responses(crate::api::Mutation,
        (status = 201, description = "Measuring; `Location` names the sweep", body = LabDetail,
            headers(("location" = String, description = "`/api/v1/sweeps/{id}`"))),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_spec` or `invalid_field`: the sweep, its pipeline or a knob value is invalid (every problem with its field path)", body = ErrorBody),
        (status = 429, description = "`limit_reached`: two sweeps or soaks are measuring already", body = ErrorBody),
        (status = 503, response = crate::api::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_sweep(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let spec: SweepSpec = json_body(&body)?;
    let d = crate::lab::start_sweep(&state, caller.clone(), spec).await?;
    audit(
        &state,
        &caller,
        "sweep",
        &d.summary.id,
        &serde_json::json!({"pipeline": d.summary.pipeline, "knob": d.summary.knob}),
    )
    .await;
    Ok(created(&d))
}

/// Starts a soak: one pipeline run long, judged for leaks after every
/// interval.
#[utoipa::path(post, path = "/api/v1/soaks", tag = "lab",
    request_body(content = SoakSpec, content_type = "application/json"),
    responses(crate::api::Mutation,
        (status = 201, description = "Running; `Location` names it", body = LabDetail,
            headers(("location" = String, description = "`/api/v1/sweeps/{id}`"))),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_spec` or `invalid_field`: the soak or its pipeline is invalid", body = ErrorBody),
        (status = 429, description = "`limit_reached`: two sweeps or soaks are measuring already", body = ErrorBody),
        (status = 503, response = crate::api::Unavailable)),
    security(("bearer" = [])))]
pub async fn create_soak(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let spec: SoakSpec = json_body(&body)?;
    let d = crate::lab::start_soak(&state, caller.clone(), spec).await?;
    audit(
        &state,
        &caller,
        "soak",
        &d.summary.id,
        &serde_json::json!({"pipeline": d.summary.pipeline}),
    )
    .await;
    Ok(created(&d))
}

/// Every sweep and soak, newest first.
#[utoipa::path(get, path = "/api/v1/sweeps", tag = "lab",
    responses(crate::api::Guarded, (status = 200, body = Vec<LabSummary>)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<LabSummary>> {
    Json(state.lab().list())
}

/// One sweep or soak: what it was asked, its runs (each with its job id)
/// and what it found so far.
#[utoipa::path(get, path = "/api/v1/sweeps/{id}", tag = "lab", params(crate::api::LabId),
    responses(crate::api::Guarded, (status = 200, body = LabDetail),
        (status = 404, response = crate::api::NotFound)),
    security(("bearer" = [])))]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LabDetail>, AppError> {
    state
        .lab()
        .get(&id)
        .map(|d| Json((*d).clone()))
        .ok_or_else(|| AppError::NotFound(format!("no sweep `{id}`")))
}

/// The body of a stop: nothing to say yet (`{}`), room for options later.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopLab {}

/// Stops a sweep or soak: its current run is cut short and aborted; what
/// was measured is kept and read.
#[utoipa::path(post, path = "/api/v1/sweeps/{id}/stop", tag = "lab", params(crate::api::LabId),
    request_body(content = StopLab, content_type = "application/json", description = "`{}`"),
    responses(crate::api::Mutation,
        (status = 202, description = "Stopping; its state says when it has", body = LabDetail),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: it is not running", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the body is not `{}`", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let _: StopLab = json_body(&body)?;
    let d = state.lab().stop(&id)?;
    audit(&state, &caller, "stop", &id, &serde_json::json!({})).await;
    Ok((StatusCode::ACCEPTED, Json((*d).clone())).into_response())
}

/// Forgets a finished sweep or soak (admin); its jobs stay in the job list.
#[utoipa::path(delete, path = "/api/v1/sweeps/{id}", tag = "lab", params(crate::api::LabId),
    responses(crate::api::Guarded, (status = 204, description = "Deleted"),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: it is still running; stop it first", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.lab().remove(&id)?;
    let lab = id.clone();
    state
        .jobs()
        .db()
        .call(move |s| s.delete_lab(&lab))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    audit(&state, &caller, "delete", &id, &serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The knobs a pipeline offers a sweep, with their values in it.
#[utoipa::path(post, path = "/api/v1/knobs", tag = "lab",
    request_body(content = PipelineSpec, content_type = "application/json"),
    responses(crate::api::Mutation, (status = 200, body = Vec<Tunable>),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_field` or `invalid_spec`: the body is not a valid spec", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn knobs(body: Bytes) -> Result<Json<Vec<Tunable>>, AppError> {
    let spec: PipelineSpec = json_body(&body)?;
    spec.validate().map_err(AppError::InvalidSpec)?;
    Ok(Json(shared::lab::tunables(&spec)))
}
