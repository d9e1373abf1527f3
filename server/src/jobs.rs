//! Jobs over REST, under `/api/v1`: create one from a spec (JSON or TOML)
//! or from a template with overrides, list and filter them, inspect, tune,
//! stop (drain or abort) and delete them; list templates; validate a spec
//! without running it.
//!
//! The [`Registry`] keeps the jobs of this server process in memory. The
//! engine runs each job on its own threads and runtime; handlers only call
//! into it, from `spawn_blocking` where the engine blocks (starting a job
//! opens files and connects to databases).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{ControlError, JobHandle, JobOptions, StartError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::api::{JobDetail, JobPage, JobSummary, StopMode, StopRequest, TemplateInfo, Validated};
use shared::metrics::{JobEvent, JobSnapshot, JobState, TuneRequest};
use shared::spec::{FieldError, PipelineSpec, SpecError, SpecFormat};
use shared::templates;

use crate::AppState;
use crate::auth::Identity;
use crate::error::AppError;
use crate::store::{AuditEntry, JobRecord, Store, StoreError};

/// The jobs of this server: live ones (running in the engine, or finished
/// in this process) and archived ones (loaded from the store after a
/// restart). Everything is mirrored into the [`Store`].
#[derive(Debug)]
pub struct Registry {
    data_dir: PathBuf,
    next: AtomicU64,
    jobs: RwLock<BTreeMap<String, Entry>>,
    store: Store,
    /// Per live job: events already saved, and whether its report is.
    saved: Mutex<HashMap<String, (usize, bool)>>,
}

#[derive(Debug, Clone)]
struct Entry {
    template: Option<String>,
    created_at_ms: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// In the engine.
    Live(JobHandle),
    /// From the store: finished (or interrupted) before this process.
    Archived(Arc<JobRecord>),
}

impl Entry {
    fn live(&self) -> Result<&JobHandle, AppError> {
        match &self.kind {
            Kind::Live(h) => Ok(h),
            Kind::Archived(r) => Err(AppError::Conflict(format!(
                "the job is {}, not running",
                r.summary.state
            ))),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registry {
    /// Opens the store under `data_dir` (`queuelab.db`), marks jobs a crash
    /// left running as `interrupted`, and loads every stored job.
    /// `store` names a PostgreSQL URL or a SQLite file; by default the
    /// store is `queuelab.db` in `data_dir`.
    pub fn open(data_dir: PathBuf, store: Option<&str>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            StoreError::Sql(rusqlite::Error::InvalidPath(
                data_dir.join(format!("({e})")),
            ))
        })?;
        let store = match store {
            Some(place) => Store::open_at(place)?,
            None => Store::open(&data_dir.join("queuelab.db"))?,
        };
        let interrupted = store.mark_interrupted()?;
        if !interrupted.is_empty() {
            tracing::warn!(jobs = ?interrupted, "jobs left running by the last process are marked interrupted");
        }
        let jobs = store
            .jobs()?
            .into_iter()
            .map(|r| {
                (
                    r.summary.id.clone(),
                    Entry {
                        template: r.summary.template.clone(),
                        created_at_ms: r.summary.created_at_ms,
                        kind: Kind::Archived(Arc::new(r)),
                    },
                )
            })
            .collect();
        Ok(Self {
            data_dir,
            next: AtomicU64::new(1),
            jobs: RwLock::new(jobs),
            store,
            saved: Mutex::new(HashMap::new()),
        })
    }

    /// The store behind the registry.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Saves the progress of every live job not yet saved in full: its
    /// snapshot, new events, a history point, its report once finished.
    /// Blocking: run it on a blocking thread.
    pub fn persist(&self) {
        let live: Vec<JobHandle> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Live(h) => Some(h.clone()),
                Kind::Archived(_) => None,
            })
            .collect();
        for h in live {
            let (from, done) = self
                .saved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(h.id())
                .copied()
                .unwrap_or((0, false));
            if done {
                continue;
            }
            // The report first: once it is there, the snapshot is final.
            let report = h.report();
            let snapshot = h.snapshot();
            let events = h.events_since(from);
            match self
                .store
                .save_progress(h.id(), &snapshot, from, &events, report.as_deref())
            {
                Ok(()) => {
                    self.saved
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(h.id().to_owned(), (from + events.len(), report.is_some()));
                }
                Err(e) => tracing::error!(job = %h.id(), error = %e, "cannot save job progress"),
            }
        }
    }

    /// A fresh id: creation time and a counter, so ids sort by age and
    /// never repeat across restarts (job folders are named after them).
    fn new_id(&self) -> String {
        format!(
            "j{}-{}",
            now_ms(),
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Drains every running job, waits up to `deadline` for them to
    /// finish, then aborts what is still running (into leftovers).
    pub fn drain_all(&self, deadline: std::time::Duration) {
        let handles: Vec<JobHandle> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Live(h) if !h.state().is_finished() => Some(h.clone()),
                _ => None,
            })
            .collect();
        for h in &handles {
            let _ = h.drain_within(Some(deadline));
        }
        // The drain deadline escalates each job to an abort by itself.
        for h in &handles {
            h.wait();
        }
        self.persist();
    }

    /// The handle of job `id`, if there is one.
    pub fn handle(&self, id: &str) -> Option<JobHandle> {
        match &self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)?
            .kind
        {
            Kind::Live(h) => Some(h.clone()),
            Kind::Archived(_) => None,
        }
    }

    /// Every job, newest first.
    pub fn summaries(&self) -> Vec<JobSummary> {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut all: Vec<JobSummary> = jobs.values().map(summary).collect();
        all.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
        all
    }

    fn get(&self, id: &str) -> Result<Entry, AppError> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no job `{id}`")))
    }
}

/// The registry as the app state holds it.
pub type SharedRegistry = Arc<Registry>;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", post(create).get(list))
        .route("/api/v1/jobs/{id}", get(detail).patch(tune).delete(delete))
        .route("/api/v1/jobs/{id}/stop", post(stop))
        .route("/api/v1/jobs/{id}/ingest", post(ingest))
        .route("/api/v1/jobs/{id}/events", get(events))
        .route("/api/v1/jobs/{id}/metrics", get(history))
        .route("/api/v1/jobs/{id}/leftovers", get(leftovers))
        .route("/api/v1/jobs/{id}/dead_letters", get(dead_letters))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/templates/{name}", get(template))
        .route("/api/v1/validate", post(validate))
}

fn summary(entry: &Entry) -> JobSummary {
    let h = match &entry.kind {
        Kind::Live(h) => h,
        Kind::Archived(r) => return r.summary.clone(),
    };
    let snap = h.snapshot();
    let report = h.report();
    JobSummary {
        id: h.id().to_owned(),
        name: h.spec().name.clone(),
        template: entry.template.clone(),
        state: h.state(),
        created_at_ms: entry.created_at_ms,
        elapsed_ms: report
            .as_ref()
            .map_or(snap.elapsed_ms, |r| (r.elapsed_s * 1000.0) as u64),
        accounting: report.as_ref().map_or(snap.accounting, |r| r.accounting),
        throughput: report.as_ref().map_or(snap.throughput, |r| r.throughput),
        p99_us: report
            .as_ref()
            .map_or(snap.end_to_end_total.p99_us, |r| r.end_to_end.p99_us),
    }
}

fn detail_of(entry: &Entry) -> JobDetail {
    match &entry.kind {
        Kind::Live(h) => JobDetail {
            summary: summary(entry),
            spec: h.spec().clone(),
            snapshot: (*h.snapshot()).clone(),
            report: h.report().map(|r| (*r).clone()),
        },
        Kind::Archived(r) => JobDetail {
            summary: r.summary.clone(),
            spec: r.spec.clone(),
            snapshot: r.snapshot.clone().unwrap_or_default(),
            report: r.report.clone(),
        },
    }
}

/// Parses a JSON body into `T`, naming the field at fault.
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        AppError::InvalidField {
            field: if path == "." { String::new() } else { path },
            message: e.inner().to_string(),
        }
    })
}

/// The format of a spec body, from its `Content-Type` (JSON by default).
fn spec_format(headers: &HeaderMap) -> Result<SpecFormat, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "" => Ok(SpecFormat::Json),
        "application/toml" | "application/x-toml" | "text/x-toml" | "text/toml" => {
            Ok(SpecFormat::Toml)
        }
        other => Err(AppError::UnsupportedMediaType(format!(
            "`{other}` is not a spec format: send application/json or application/toml"
        ))),
    }
}

/// Merges `patch` into `target`: objects key by key, arrays element by
/// element (so `{"stages": [{"workers": 16}]}` changes only the first
/// stage's workers), anything else replaced; `null` removes a key.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            for (i, v) in p.iter().enumerate() {
                match t.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => t.push(v.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// `{"template": NAME, "overrides": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FromTemplate {
    template: String,
    #[serde(default)]
    overrides: Value,
}

/// The spec a create or validate request describes, and its template.
fn requested_spec(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(PipelineSpec, Option<String>), AppError> {
    let format = spec_format(headers)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| AppError::BadRequest("the body must be UTF-8 text".into()))?;
    if format == SpecFormat::Json
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
        && map.contains_key("template")
    {
        let req: FromTemplate = json_body(body)?;
        let t = templates::get(&req.template).ok_or_else(|| AppError::InvalidField {
            field: "template".into(),
            message: format!("no template `{}`; see GET /api/v1/templates", req.template),
        })?;
        let base = t.spec().map_err(|e| AppError::Internal(e.to_string()))?;
        let mut value =
            serde_json::to_value(&base).map_err(|e| AppError::Internal(e.to_string()))?;
        if !req.overrides.is_null() {
            merge(&mut value, &req.overrides);
        }
        let spec = PipelineSpec::parse(&value.to_string(), SpecFormat::Json)
            .map_err(AppError::InvalidSpec)?;
        return Ok((spec, Some(req.template)));
    }
    let spec = PipelineSpec::parse(text, format).map_err(AppError::InvalidSpec)?;
    Ok((spec, None))
}

/// Creates and starts a job from a spec (JSON, or TOML with
/// `Content-Type: application/toml`) or from `{"template": NAME, "overrides": {...}}`.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body(content = serde_json::Value, description = "A PipelineSpec, or {template, overrides}", content_type = "application/json"),
    responses((status = 201, description = "Started; Location names the job", body = JobDetail),
        (status = 401, body = shared::api::ErrorBody), (status = 403, body = shared::api::ErrorBody),
        (status = 415, body = shared::api::ErrorBody), (status = 422, description = "Invalid input; every problem with its field path", body = shared::api::ErrorBody)),
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
    let registry = state.jobs().clone();
    let id = registry.new_id();
    let opts = JobOptions::new(id.clone(), registry.data_dir.clone());
    let handle = tokio::task::spawn_blocking(move || engine::start(spec, opts))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| match e {
            StartError::Invalid(e) => AppError::InvalidSpec(e),
            StartError::Io(message) => AppError::InvalidSpec(SpecError {
                errors: vec![FieldError {
                    path: String::new(),
                    message: format!("cannot start: {message}"),
                }],
            }),
            other => AppError::Internal(other.to_string()),
        })?;
    let entry = Entry {
        template,
        created_at_ms: now_ms(),
        kind: Kind::Live(handle),
    };
    let body = detail_of(&entry);
    {
        let (registry, summary, spec) = (registry.clone(), body.summary.clone(), body.spec.clone());
        tokio::task::spawn_blocking(move || registry.store.insert_job(&summary, &spec))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    audit(
        &state,
        &remote,
        "create",
        &id,
        &serde_json::json!({"name": body.summary.name, "template": body.summary.template}),
    );
    registry
        .jobs
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), entry);
    tracing::info!(job = %id, name = %body.summary.name, "job created");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/jobs/{id}"))],
        Json(body),
    )
        .into_response())
}

/// Filters and paging of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<JobState>,
    template: Option<String>,
    /// Text that the id or the name contains.
    q: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Lists jobs, newest first, with filters and paging.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(("state" = Option<String>, Query, description = "Only jobs in this state"),
        ("template" = Option<String>, Query, description = "Only jobs made from this template"),
        ("q" = Option<String>, Query, description = "Text the id or name contains"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 500, default 50")),
    responses((status = 200, body = JobPage), (status = 422, description = "Invalid input; every problem with its field path", body = shared::api::ErrorBody)), security(("bearer" = [])))]
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
        .filter(|s| {
            q.template
                .as_deref()
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
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    responses((status = 200, body = JobDetail), (status = 404, body = shared::api::ErrorBody)), security(("bearer" = [])))]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>, AppError> {
    Ok(Json(detail_of(&state.jobs().get(&id)?)))
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
        ControlError::Scale(e) => AppError::Conflict(e.to_string()),
    }
}

/// Changes a running stage's workers, concurrency or rate limit, or the sink's batching.
#[utoipa::path(patch, path = "/api/v1/jobs/{id}", tag = "jobs", request_body = TuneRequest,
    responses((status = 200, body = JobDetail), (status = 409, description = "Not running", body = shared::api::ErrorBody), (status = 422, description = "Invalid input; every problem with its field path", body = shared::api::ErrorBody)),
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
    audit(&state, &remote, "tune", &id, &req);
    tokio::task::spawn_blocking(move || handle.tune(&req))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(control_error)?;
    Ok(Json(detail_of(&entry)))
}

/// Stops a job: drain (graceful, with an optional deadline) or abort.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/stop", tag = "jobs", request_body = StopRequest,
    responses((status = 202, body = JobDetail), (status = 409, body = shared::api::ErrorBody)), security(("bearer" = [])))]
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
    audit(&state, &remote, "stop", &id, &req);
    let result = match req.mode {
        StopMode::Drain => {
            handle.drain_within(req.deadline_ms.map(std::time::Duration::from_millis))
        }
        StopMode::Abort => handle.abort(),
    };
    result.map_err(control_error)?;
    Ok((StatusCode::ACCEPTED, Json(detail_of(&entry))).into_response())
}

/// Lines for a job whose source is `http_ingest`, one item per line.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/ingest", tag = "jobs",
    request_body(content = String, content_type = "text/plain"),
    responses((status = 202, description = "All lines taken"), (status = 429, description = "A full `reject` queue refused some; counts in the body"),
        (status = 409, body = shared::api::ErrorBody)), security(("bearer" = [])))]
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
    Ok(crate::ingest::ingest(State(handle), body).await)
}

/// Deletes a finished job and its records (admin).
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", tag = "jobs",
    responses((status = 204), (status = 409, description = "Still running", body = shared::api::ErrorBody)), security(("bearer" = [])))]
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
    let registry = state.jobs().clone();
    let job = id.clone();
    tokio::task::spawn_blocking(move || {
        registry
            .jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job);
        registry
            .saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job);
        registry.store.delete_job(&job)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))?;
    audit(&state, &remote, "delete", &id, &serde_json::json!({}));
    Ok(StatusCode::NO_CONTENT)
}

/// Time range and resolution of `GET /api/v1/jobs/{id}/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    #[serde(default)]
    from_ms: u64,
    to_ms: Option<u64>,
    /// At most one point per this many milliseconds (default 1000).
    step_ms: Option<u64>,
}

/// A job's metric history, at most one snapshot per `step_ms`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/metrics", tag = "jobs",
    params(("from_ms" = Option<u64>, Query), ("to_ms" = Option<u64>, Query), ("step_ms" = Option<u64>, Query, description = "Default 1000")),
    responses((status = 200, body = Vec<JobSnapshot>)), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<JobSnapshot>>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    state.jobs().get(&id)?;
    let registry = state.jobs().clone();
    // Save the newest progress first, so the history reaches "now".
    let points = tokio::task::spawn_blocking(move || {
        registry.persist();
        registry.store.history(
            &id,
            q.from_ms,
            q.to_ms.unwrap_or(u64::MAX),
            q.step_ms.unwrap_or(1000),
        )
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(points))
}

/// Paging of leftovers and dead letters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// A page of a job's leftovers or dead letters.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    /// Records on this page: leftovers as the original lines (strings),
    /// dead letters as objects with the stage, error and attempts.
    pub records: Vec<Value>,
    /// Records in all.
    pub total: usize,
    /// Where they are kept.
    pub file: Option<String>,
}

/// Reads one page of a JSON-lines file (or of a SQLite dead-letter table,
/// named `path#table`).
fn read_page(
    place: Option<&str>,
    json_lines: bool,
    offset: usize,
    limit: usize,
) -> Result<RecordPage, AppError> {
    let Some(place) = place else {
        return Ok(RecordPage {
            records: vec![],
            total: 0,
            file: None,
        });
    };
    if let Some((path, table)) = place.rsplit_once('#') {
        let conn =
            rusqlite::Connection::open(path).map_err(|e| AppError::Internal(e.to_string()))?;
        let total: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT at_ms, stage, error_kind, error, attempts, seq, item FROM \"{table}\" ORDER BY id LIMIT ?1 OFFSET ?2"
            ))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let records = stmt
            .query_map(rusqlite::params![limit as i64, offset as i64], |r| {
                Ok(serde_json::json!({
                    "at_ms": r.get::<_, i64>(0)?, "stage": r.get::<_, String>(1)?,
                    "error_kind": r.get::<_, String>(2)?, "error": r.get::<_, String>(3)?,
                    "attempts": r.get::<_, i64>(4)?, "seq": r.get::<_, i64>(5)?,
                    "item": r.get::<_, String>(6)?,
                }))
            })
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        return Ok(RecordPage {
            records,
            total: total as usize,
            file: Some(place.to_owned()),
        });
    }
    let text =
        std::fs::read_to_string(place).map_err(|e| AppError::Internal(format!("{place}: {e}")))?;
    let lines: Vec<&str> = text.lines().collect();
    let records = lines
        .iter()
        .skip(offset)
        .take(limit)
        .map(|l| {
            if json_lines {
                serde_json::from_str(l).unwrap_or_else(|_| Value::String((*l).to_owned()))
            } else {
                Value::String((*l).to_owned())
            }
        })
        .collect();
    Ok(RecordPage {
        records,
        total: lines.len(),
        file: Some(place.to_owned()),
    })
}

async fn record_page(
    state: AppState,
    id: String,
    q: PageQuery,
    dead: bool,
) -> Result<Json<RecordPage>, AppError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::InvalidField {
            field: "limit".into(),
            message: "must be between 1 and 1000".into(),
        });
    }
    let report = detail_of(&state.jobs().get(&id)?).report;
    let place = report.and_then(|r| {
        if dead {
            r.dead_letters_file
        } else {
            r.leftovers_file
        }
    });
    tokio::task::spawn_blocking(move || read_page(place.as_deref(), dead, q.offset, limit))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map(Json)
}

/// A finished job's leftovers (what was queued or in flight at an abort),
/// as the original lines, paged.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/leftovers", tag = "jobs",
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = RecordPage)), security(("bearer" = [])))]
pub async fn leftovers(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    record_page(state, id, q, false).await
}

/// A finished job's dead letters (items that failed for good, with the
/// stage, the error and the attempts), paged.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/dead_letters", tag = "jobs",
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = RecordPage)), security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    record_page(state, id, q, true).await
}

/// The newest 500 audit entries (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin",
    responses((status = 200, body = Vec<AuditEntry>)), security(("bearer" = [])))]
pub async fn audit_log(State(state): State<AppState>) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let registry = state.jobs().clone();
    tokio::task::spawn_blocking(move || registry.store.audit_log(500))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map(Json)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Who and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    who: Identity,
    remote: String,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let who = Identity::from_request_parts(parts, state).await?;
        let remote = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
        Ok(Caller { who, remote })
    }
}

/// Writes an audit entry for a mutation.
fn audit(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &impl serde::Serialize,
) {
    let entry = AuditEntry {
        at_ms: now_ms(),
        who: caller.who.label.clone(),
        action: action.into(),
        target: target.into(),
        detail: serde_json::to_string(detail).unwrap_or_default(),
        remote: caller.remote.clone(),
    };
    if let Err(e) = state.jobs().store.audit(&entry) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// A job's events: state changes and tunes, with times.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs",
    responses((status = 200, body = Vec<JobEvent>)), security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<JobEvent>>, AppError> {
    match state.jobs().get(&id)?.kind {
        Kind::Live(h) => Ok(Json(h.events())),
        Kind::Archived(_) => {
            let registry = state.jobs().clone();
            tokio::task::spawn_blocking(move || registry.store.events(&id))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .map(Json)
                .map_err(|e| AppError::Internal(e.to_string()))
        }
    }
}

fn template_info(t: &templates::Template) -> TemplateInfo {
    TemplateInfo {
        name: t.name.to_owned(),
        summary: t.summary(),
        description: t
            .spec()
            .ok()
            .and_then(|s| s.description)
            .unwrap_or_default(),
        toml: t.toml.to_owned(),
    }
}

/// The built-in templates: the article's scenarios.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates", responses((status = 200, body = Vec<TemplateInfo>)))]
pub async fn list_templates() -> Json<Vec<TemplateInfo>> {
    Json(templates::ALL.iter().map(template_info).collect())
}

/// One template.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "templates",
    responses((status = 200, body = TemplateInfo), (status = 404, body = shared::api::ErrorBody)))]
pub async fn template(Path(name): Path<String>) -> Result<Json<TemplateInfo>, AppError> {
    templates::get(&name)
        .map(|t| Json(template_info(t)))
        .ok_or_else(|| AppError::NotFound(format!("no template `{name}`")))
}

/// Validates a spec without running it; every problem with its field path.
#[utoipa::path(post, path = "/api/v1/validate", tag = "jobs",
    request_body(content = serde_json::Value, description = "A PipelineSpec (JSON or TOML) or {template, overrides}"),
    responses((status = 200, body = Validated), (status = 422, description = "Invalid input; every problem with its field path", body = shared::api::ErrorBody)))]
pub async fn validate(headers: HeaderMap, body: Bytes) -> Result<Json<Validated>, AppError> {
    let (spec, _) = requested_spec(&headers, &body)?;
    Ok(Json(Validated { valid: true, spec }))
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_patches_objects_and_arrays_by_index() {
        let mut v = json!({"a": 1, "stages": [{"w": 1, "n": "x"}, {"w": 2}], "drop": true});
        merge(
            &mut v,
            &json!({"stages": [{"w": 16}], "drop": null, "b": {"c": 3}}),
        );
        assert_eq!(
            v,
            json!({"a": 1, "stages": [{"w": 16, "n": "x"}, {"w": 2}], "b": {"c": 3}})
        );
    }
}
