//! Jobs over REST, under `/api/v1/jobs`: create one from a spec (JSON or
//! TOML) or from a template with overrides, list and filter them, inspect,
//! tune, stop (drain or abort) and delete them, feed `http_ingest` sources,
//! read their events and metric history.
//!
//! The jobs themselves are in the [`Registry`](crate::registry::Registry);
//! handlers only call into it and the engine, from `spawn_blocking` where
//! the engine blocks (starting a job opens files and connects to
//! databases), and reach the store through its own threads
//! ([`crate::store::StoreThreads`]).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::ControlError;
use serde::Deserialize;
use shared::api::{ErrorBody, JobDetail, JobPage, JobSummary, StopMode, StopRequest};
use shared::metrics::{JobEvent, JobSnapshot, JobState, TuneRequest};
use shared::spec::PipelineSpec;

use crate::audit::{Caller, audit};
use crate::browser::typed;
use crate::error::AppError;
use crate::launch::start_job;
use crate::registry::{Kind, summary};
use crate::requests::{json_body, requested_spec};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", typed(post(create).get(list)))
        .route(
            "/api/v1/jobs/{id}",
            typed(get(detail).patch(tune).delete(delete)),
        )
        .route("/api/v1/jobs/{id}/stop", typed(post(stop)))
        .route("/api/v1/jobs/{id}/replay", typed(post(replay)))
        .route("/api/v1/jobs/{id}/ingest", typed(post(ingest)))
        .route("/api/v1/jobs/{id}/events", get(events))
        .route("/api/v1/jobs/{id}/metrics", get(history))
}

/// Creates and starts a job from a spec (JSON, or TOML with
/// `Content-Type: application/toml`) or from `{"template": NAME, "overrides": {...}}`.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body(description = "A PipelineSpec (JSON or TOML), or {template, overrides} (JSON)",
        content((crate::api::JobRequest = "application/json"), (String = "application/toml"))),
    responses(crate::api::Mutation,
        (status = 201, description = "Started; `Location` names the job", body = JobDetail,
            headers(("location" = String, description = "`/api/v1/jobs/{id}` of the new job")),
            links(
                ("detail" = (operation_id = "detail", parameters(("id" = "$response.body#/id")))),
                ("tune" = (operation_id = "tune", parameters(("id" = "$response.body#/id")))),
                ("stop" = (operation_id = "stop", parameters(("id" = "$response.body#/id")))),
                ("ingest" = (operation_id = "ingest", parameters(("id" = "$response.body#/id")))),
                ("events" = (operation_id = "events", parameters(("id" = "$response.body#/id")))),
                ("history" = (operation_id = "history", parameters(("id" = "$response.body#/id")))),
                ("leftovers" = (operation_id = "leftovers", parameters(("id" = "$response.body#/id")))),
                ("dead_letters" = (operation_id = "dead_letters", parameters(("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_spec` or `invalid_field`: the spec is invalid (every problem with its field path in `errors`), names no known template, or cannot start (a file it reads is missing)", body = ErrorBody),
        (status = 429, description = "`limit_reached`: the job would pass a server-wide limit on running jobs, workers or queued items; or the client is throttled for bad tokens (`Retry-After`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait (when throttled)"))),
        (status = 503, response = crate::api::Unavailable)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    remote: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    if state.is_stopping() {
        return Err(AppError::Unavailable(
            "the server is shutting down and takes no new jobs".into(),
        ));
    }
    let (spec, template) = requested_spec(&headers, &body)?;
    start_spec(&state, &remote, spec, template).await
}

/// Starts `spec` as a new job: the limits, the confinement check, the
/// engine's start, the store and the audit log. `create` and `replay` end
/// here, through [`start_job`].
async fn start_spec(
    state: &AppState,
    remote: &Caller,
    spec: PipelineSpec,
    template: Option<String>,
) -> Result<Response, AppError> {
    let body = start_job(state, remote, spec, template).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/jobs/{}", body.summary.id),
        )],
        Json(body),
    )
        .into_response())
}

/// Replays a finished job's leftovers: its pipeline runs again as a new
/// job whose source is a copy of the leftovers file, so what an abort left
/// behind is processed after all. The copy goes under the files root
/// (`replays/<id>-leftovers.jsonl`), where a confined server lets a job
/// read.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/replay", tag = "jobs",
    params(crate::api::JobId),
    request_body(content = shared::api::ReplayRequest, content_type = "application/json"),
    responses(crate::api::Mutation,
        (status = 201, description = "Started; `Location` names the new job", body = JobDetail,
            headers(("location" = String, description = "`/api/v1/jobs/{id}` of the new job"))),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: the job is still running, or it left no leftovers", body = ErrorBody),
        (status = 422, description = "`invalid_spec` or `invalid_field`: the new name is invalid, or the replay cannot start", body = ErrorBody),
        (status = 429, description = "`limit_reached`: the job would pass a server-wide limit", body = ErrorBody),
        (status = 503, response = crate::api::Unavailable)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    remote: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    if state.is_stopping() {
        return Err(AppError::Unavailable(
            "the server is shutting down and takes no new jobs".into(),
        ));
    }
    let req: shared::api::ReplayRequest = json_body(&body)?;
    let entry = state.jobs().get(&id)?;
    let detail = crate::registry::detail_of(&entry);
    let Some(report) = detail.report else {
        return Err(AppError::Conflict(format!(
            "job `{id}` is still running: replay its leftovers once it has finished"
        )));
    };
    let (Some(file), true) = (report.leftovers_file, report.accounting.leftovers > 0) else {
        return Err(AppError::Conflict(format!("job `{id}` left no leftovers")));
    };
    let mut spec = detail.spec;
    let name = req.name.unwrap_or_else(|| {
        let base: String = spec.name.chars().take(64 - "-replay".len()).collect();
        format!("{base}-replay")
    });
    let written = format!("replays/{id}-leftovers.jsonl");
    // Relative paths resolve against the first files root.
    let Some(root) = state.files_roots().first() else {
        return Err(AppError::Conflict(
            "this server has no files root to replay from".into(),
        ));
    };
    let copy_to = root.join(&written);
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = copy_to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&file, &copy_to).map(|_| ())
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(format!("copying the leftovers of {id}: {e}")))?;
    spec.name = name;
    spec.source = shared::spec::SourceSpec::File {
        path: written,
        follow: false,
        offset_file: None,
        sample: None,
    };
    spec.validate().map_err(AppError::InvalidSpec)?;
    start_spec(&state, &remote, spec, detail.summary.template).await
}

/// Filters and paging of `GET /api/v1/jobs`. An empty filter (`state=`,
/// `template=`, `q=`, as a form or a query builder sends one that is not
/// set) filters nothing, like leaving it out.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state; empty: any state.
    #[serde(default, deserialize_with = "super::query::empty_as_none")]
    #[param(value_type = Option<crate::api::StateFilter>)]
    state: Option<JobState>,
    /// `true`: only finished runs (the History view); `false`: only jobs
    /// still running or draining; empty: both.
    #[serde(default, deserialize_with = "super::query::flag")]
    #[param(value_type = Option<crate::api::FlagFilter>)]
    finished: Option<bool>,
    /// Only jobs made from this template; empty: any.
    template: Option<String>,
    /// Text that the id or the name contains; empty: any.
    q: Option<String>,
    /// Jobs to skip (newest first); past the end, the page is empty.
    #[serde(default, deserialize_with = "super::query::saturating")]
    offset: usize,
    /// Jobs per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Lists jobs, newest first, with filters and paging.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListQuery),
    responses(crate::api::Guarded, (status = 200, body = JobPage),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_field`: `limit` is out of range", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::InvalidField {
            field: "limit".into(),
            message: "must be between 1 and 500".into(),
        });
    }
    let matching: Vec<JobSummary> = state
        .jobs()
        .summaries()
        .into_iter()
        .filter(|s| q.state.is_none_or(|st| s.state == st))
        .filter(|s| q.finished.is_none_or(|f| s.state.is_finished() == f))
        .filter(|s| {
            q.template
                .as_deref()
                .filter(|t| !t.is_empty())
                .is_none_or(|t| s.template.as_deref() == Some(t))
        })
        .filter(|s| {
            q.q.as_deref()
                .is_none_or(|text| s.id.contains(text) || s.name.contains(text))
        })
        .collect();
    let total = matching.len();
    let jobs = matching.into_iter().skip(q.offset).take(limit).collect();
    Ok(Json(JobPage { jobs, total }))
}

/// One job: spec, state, newest snapshot, final report.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(crate::api::JobId),
    responses(crate::api::Guarded, (status = 200, body = JobDetail),
        (status = 404, response = crate::api::NotFound)),
    security(("bearer" = [])))]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, AppError> {
    Ok(Json(state.jobs().detail(&state.jobs().get(&id)?)))
}

fn control_error(e: ControlError) -> AppError {
    match e {
        ControlError::NotRunning(state) => {
            AppError::Conflict(format!("the job is {state}, not running"))
        }
        ControlError::UnknownStage(name) => AppError::InvalidField {
            field: "stage".into(),
            message: format!("no stage named `{name}`"),
        },
        ControlError::Invalid { field, message } => AppError::InvalidField { field, message },
        ControlError::Scale(e @ engine::stage::ScaleError::Spawn { .. }) => {
            AppError::Unavailable(e.to_string())
        }
        ControlError::Scale(e) => AppError::Conflict(e.to_string()),
        ControlError::Aborting => {
            AppError::Conflict("the job is being aborted; a drain no longer applies".into())
        }
    }
}

/// Changes a running stage's workers, concurrency or rate limit, or the sink's batching.
#[utoipa::path(patch, path = "/api/v1/jobs/{id}", tag = "jobs", params(crate::api::JobId),
    request_body = TuneRequest,
    responses(crate::api::Mutation, (status = 200, body = JobDetail),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: the job is not running, or the stage cannot be scaled that way", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the body is not a TuneRequest, names no stage of the job, or a value is out of range (the field names it)", body = ErrorBody),
        (status = 429, description = "`limit_reached`: the extra workers would pass the server-wide limit; or the client is throttled for bad tokens (`Retry-After`)", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait (when throttled)"))),
        (status = 503, response = crate::api::Unavailable)),
    security(("bearer" = [])))]
pub async fn tune(
    State(state): State<AppState>,
    remote: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<JobDetail>, AppError> {
    let entry = state.jobs().get(&id)?;
    let req: TuneRequest = json_body(&body)?;
    let handle = entry.live()?.clone();
    // A scale-up holds its extra workers against the server-wide limit
    // until the stage has them.
    let current = handle
        .snapshot()
        .nodes
        .iter()
        .find(|n| n.name == req.stage)
        .map_or(0, |n| u64::from(n.workers));
    let more = req
        .workers
        .map_or(0, |w| u64::from(w).saturating_sub(current));
    let _share = state
        .reserve(crate::limits::Usage {
            workers: more,
            ..Default::default()
        })
        .map_err(|e| AppError::LimitReached(e.to_string()))?;
    audit(&state, &remote, "tune", &id, &req).await;
    tokio::task::spawn_blocking(move || handle.tune(&req))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(control_error)?;
    Ok(Json(state.jobs().detail(&entry)))
}

/// Stops a job: drain (graceful, with an optional deadline) or abort.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/stop", tag = "jobs", params(crate::api::JobId),
    request_body(content = StopRequest, description = "How to stop; an empty body (with the media type) drains with the spec's deadline"),
    responses(crate::api::Mutation,
        (status = 202, description = "Stopping; the job's state says when it is done", body = JobDetail),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: the job is finished, or a drain was asked after an abort", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the body is not a StopRequest, or `deadline_ms` is out of range", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    remote: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let entry = state.jobs().get(&id)?;
    let req: StopRequest = if body.is_empty() {
        StopRequest::default()
    } else {
        json_body(&body)?
    };
    if let Some(ms) = req.deadline_ms
        && !(1..=shared::spec::limits::MAX_DRAIN_DEADLINE_MS).contains(&ms)
    {
        return Err(AppError::InvalidField {
            field: "deadline_ms".into(),
            message: format!(
                "must be between 1 and {}",
                shared::spec::limits::MAX_DRAIN_DEADLINE_MS
            ),
        });
    }
    let handle = entry.live()?;
    audit(&state, &remote, "stop", &id, &req).await;
    let result = match req.mode {
        StopMode::Drain => {
            handle.drain_within(req.deadline_ms.map(std::time::Duration::from_millis))
        }
        StopMode::Abort => handle.abort(),
    };
    result.map_err(control_error)?;
    Ok((StatusCode::ACCEPTED, Json(state.jobs().detail(&entry))).into_response())
}

/// Lines for a job whose source is `http_ingest`, one item per line.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/ingest", tag = "jobs", params(crate::api::JobId),
    request_body(description = "Items, one per line (UTF-8 text; each line is an item, JSON or not, as the job's first stage reads it)",
        content((String = "application/x-ndjson"), (String = "application/jsonl"),
            (serde_json::Value = "application/json"))),
    responses(crate::api::Mutation,
        (status = 202, description = "Every line was queued", body = crate::api::IngestCounts),
        (status = 400, description = "`invalid_body`: the body is not UTF-8 text", body = ErrorBody),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict` or `stopped`: the job's source is not http_ingest, or the job takes no more input (an ErrorBody); or it stopped during the request, which took some lines (counts in the body: send the `not_taken` ones elsewhere)",
            content((crate::api::IngestRefused = "application/json"))),
        // Replaces the 429 of `Mutation`: refused lines answer with counts.
        (status = 429, description = "A full queue refused some lines (`refused`): counts in the body, send those again; or the client is throttled for bad tokens (an ErrorBody, `Retry-After`)",
            content((crate::api::IngestRefused = "application/json")),
            headers(("retry-after" = u64, description = "Seconds to wait (when throttled)"))),
        (status = 503, description = "`not_ready`: the job is not ready for input yet; try again", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn ingest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let entry = state.jobs().get(&id)?;
    let handle = entry.live()?.ingest().ok_or_else(|| {
        AppError::Conflict(format!(
            "job `{id}` does not read HTTP input (its source is not http_ingest)"
        ))
    })?;
    Ok(crate::ingest::feed(&handle, state.ingest_waiting(), body).await)
}

/// Deletes a finished job and its records (admin).
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs", params(crate::api::JobId),
    responses(crate::api::Guarded, (status = 204, description = "Deleted, with its records"),
        (status = 404, response = crate::api::NotFound),
        (status = 409, description = "`conflict`: the job is still running; stop it first", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    remote: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let entry = state.jobs().get(&id)?;
    let st = summary(&entry).state;
    if !st.is_finished() {
        return Err(AppError::Conflict(format!(
            "the job is {st}: stop it before deleting it"
        )));
    }
    state.jobs().remove(&id);
    let job = id.clone();
    state
        .jobs()
        .db()
        .call(move |s| s.delete_job(&job))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    audit(&state, &remote, "delete", &id, &serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Time range and resolution of `GET /api/v1/jobs/{id}/metrics`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// From this time on, milliseconds since the Unix epoch (default 0).
    // Documented as a `usize` is (integer, minimum 0, no `format`): `u64`
    // would say `int64`, a bound that `saturating` does not have.
    #[serde(default, deserialize_with = "super::query::saturating")]
    #[param(value_type = usize)]
    from_ms: u64,
    /// Up to this time, milliseconds since the Unix epoch (default: now).
    #[serde(default, deserialize_with = "super::query::saturating_opt")]
    #[param(value_type = Option<usize>)]
    to_ms: Option<u64>,
    /// At most one point per this many milliseconds, 1 to 86400000
    /// (a day; default 1000).
    #[param(minimum = 1, maximum = 86400000)]
    step_ms: Option<u64>,
}

/// Longest step between two points of a metric history: a day.
pub const MAX_STEP_MS: u64 = 86_400_000;

/// A job's metric history, at most one snapshot per `step_ms`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/metrics", tag = "jobs",
    params(crate::api::JobId, HistoryQuery),
    responses(crate::api::Guarded, (status = 200, body = Vec<JobSnapshot>),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 422, description = "`invalid_field`: `step_ms` is out of range", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<JobSnapshot>>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if let Some(step) = q.step_ms
        && !(1..=MAX_STEP_MS).contains(&step)
    {
        return Err(AppError::InvalidField {
            field: "step_ms".into(),
            message: format!("must be between 1 and {MAX_STEP_MS}"),
        });
    }
    state.jobs().get(&id)?;
    let registry = state.jobs().clone();
    // Save the newest progress first, so the history reaches "now".
    let points = state
        .jobs()
        .db()
        .call(move |s| {
            registry.persist();
            s.history(
                &id,
                q.from_ms,
                q.to_ms.unwrap_or(u64::MAX),
                q.step_ms.unwrap_or(1000),
            )
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(points))
}

/// A job's events: state changes and tunes, with times.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", params(crate::api::JobId),
    responses(crate::api::Guarded, (status = 200, body = Vec<JobEvent>),
        (status = 404, response = crate::api::NotFound)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<JobEvent>>, AppError> {
    match state.jobs().get(&id)?.kind {
        Kind::Live(h) => Ok(Json(h.events())),
        Kind::Archived(_) => state
            .jobs()
            .db()
            .call(move |s| s.events(&id))
            .await
            .map(Json)
            .map_err(|e| AppError::Internal(e.to_string())),
    }
}
