//! Starting a job the way the server does: the server-wide limits, the
//! confinement check, the engine's start, the store and the audit log.
//! The job routes and the tuning lab's runs both start jobs here, so a
//! lab run is limited, confined, stored and audited as any job is.

use engine::StartError;
use shared::api::JobDetail;
use shared::spec::{FieldError, PipelineSpec, SpecError};

use crate::audit::{Caller, audit};
use crate::error::AppError;
use crate::registry::{Entry, Kind, now_ms};
use crate::state::AppState;

/// Starts `spec` as a new job: how `POST /api/v1/jobs` and replays start
/// theirs, and how the tuning lab starts each of its runs, so they are
/// limited, confined, stored and audited as any job is.
pub async fn start_job(
    state: &AppState,
    remote: &Caller,
    spec: PipelineSpec,
    template: Option<String>,
) -> Result<JobDetail, AppError> {
    // Held until the job is in the registry, where it counts as running.
    let _share = state
        .reserve(crate::limits::Usage::of_spec(&spec))
        .map_err(|e| AppError::LimitReached(e.to_string()))?;
    let registry = state.jobs().clone();
    let id = registry.new_id();
    // Paths inside the files roots, hosts on the allow-list: refused here
    // with the field at fault, before anything is opened. (The engine
    // checks again, and opens exactly what it resolved.)
    let opts = state.job_options(&id);
    opts.check(&spec).map_err(AppError::InvalidSpec)?;
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
            StartError::Spawn | StartError::Scale(engine::stage::ScaleError::Spawn { .. }) => {
                AppError::Unavailable(e.to_string())
            }
            other => AppError::Internal(other.to_string()),
        })?;
    let entry = Entry {
        template,
        created_at_ms: now_ms(),
        kind: Kind::Live(handle),
    };
    let body = registry.detail(&entry);
    {
        let (summary, spec) = (body.summary.clone(), body.spec.clone());
        registry
            .db()
            .call(move |s| s.insert_job(&summary, &spec))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    audit(
        state,
        remote,
        "create",
        &id,
        &serde_json::json!({"name": body.summary.name, "template": body.summary.template}),
    )
    .await;
    registry.insert(id.clone(), entry);
    tracing::info!(job = %id, name = %body.summary.name, "job created");
    Ok(body)
}
