//! The request and response bodies the document describes that no handler
//! reads or writes as such: the two shapes of a job request, and the
//! counts and refusals of an ingest request.

use serde::Deserialize;
use serde_json::Value;
use shared::api::ErrorBody;
use utoipa::ToSchema;

/// `{"template": NAME, "overrides": {...}}`: a job from a built-in
/// template, with parts of its spec replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromTemplate {
    /// A name from `GET /api/v1/templates`.
    #[schema(value_type = crate::api::params::TemplateName)]
    pub template: String,
    /// Merged into the template's spec: objects key by key, arrays element
    /// by element, anything else replaced; `null` removes a key.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub overrides: Value,
}

/// The body of `POST /api/v1/jobs` and `POST /api/v1/validate` as JSON: a
/// whole spec, or a template with overrides.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum JobRequest {
    /// A whole spec.
    Spec(Box<shared::spec::PipelineSpec>),
    /// A template with overrides.
    Template(FromTemplate),
}

/// How an ingest request went: how many of its lines were queued, refused
/// or not taken (the JSON of `engine::source::Ingested`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IngestCounts {
    /// Lines queued.
    pub accepted: u64,
    /// Lines refused by a full queue's policy (`reject`, `drop_newest`);
    /// the client may send them again.
    pub refused: u64,
    /// Lines not taken because the source stopped; send them elsewhere.
    pub not_taken: u64,
}

/// The body of a 429 from `POST /api/v1/jobs/{id}/ingest`: counts when a
/// full queue refused lines, an [`ErrorBody`] when the client is throttled.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum IngestRefused {
    /// Some lines were not queued.
    Counts(IngestCounts),
    /// Throttled.
    Error(ErrorBody),
}
