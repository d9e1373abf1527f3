//! The built-in templates (the article's scenarios), the lessons built on
//! them, and spec validation without running anything.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::api::{LessonInfo, TemplateInfo, Validated};
use shared::templates;

use crate::error::AppError;
use crate::requests::requested_spec;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/templates/{name}", get(template))
        .route("/api/v1/lessons", get(list_lessons))
        .route("/api/v1/validate", crate::browser::typed(post(validate)))
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
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates",
    responses(crate::api::Guarded, (status = 200, body = Vec<TemplateInfo>)),
    security(("bearer" = [])))]
pub async fn list_templates() -> Json<Vec<TemplateInfo>> {
    Json(templates::ALL.iter().map(template_info).collect())
}

/// The article's lessons: what each teaches, what to do, the signal to
/// watch, and the specs to start.
#[utoipa::path(get, path = "/api/v1/lessons", tag = "templates",
    responses(crate::api::Guarded, (status = 200, body = Vec<LessonInfo>)),
    security(("bearer" = [])))]
pub async fn list_lessons() -> Result<Json<Vec<LessonInfo>>, AppError> {
    let internal = |e: shared::lessons::LessonError| AppError::Internal(e.to_string());
    let mut out = Vec::new();
    for lesson in shared::lessons::ALL {
        out.push(LessonInfo {
            lesson: *lesson,
            spec: lesson.spec(None).map_err(internal)?,
            variant_specs: lesson
                .variants
                .iter()
                .map(|v| lesson.spec(Some(v.id)))
                .collect::<Result<_, _>>()
                .map_err(internal)?,
        });
    }
    Ok(Json(out))
}

/// One template.
#[utoipa::path(get, path = "/api/v1/templates/{name}", tag = "templates",
    params(crate::api::TemplatePath),
    responses(crate::api::Guarded, (status = 200, body = TemplateInfo),
        (status = 404, response = crate::api::NotFound)),
    security(("bearer" = [])))]
pub async fn template(Path(name): Path<String>) -> Result<Json<TemplateInfo>, AppError> {
    templates::get(&name)
        .map(|t| Json(template_info(t)))
        .ok_or_else(|| AppError::NotFound(format!("no template `{name}`")))
}

/// Validates a spec without running it; every problem with its field path.
#[utoipa::path(post, path = "/api/v1/validate", tag = "jobs",
    request_body(description = "A PipelineSpec (JSON or TOML), or {template, overrides} (JSON)",
        content((crate::api::JobRequest = "application/json"), (String = "application/toml"))),
    responses(crate::api::Mutation, (status = 200, body = Validated),
        (status = 400, response = crate::api::BadRequest),
        (status = 422, description = "`invalid_spec` or `invalid_field`: the spec is invalid (every problem with its field path in `errors`), or names no known template", body = shared::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Validated>, AppError> {
    let (spec, _) = requested_spec(&headers, &body)?;
    // What creating it would refuse: paths outside the files roots, hosts
    // not on the allow-list.
    state
        .job_options("validate")
        .check(&spec)
        .map_err(AppError::InvalidSpec)?;
    let toml = spec.to_toml();
    Ok(Json(Validated {
        valid: true,
        spec,
        toml,
    }))
}
