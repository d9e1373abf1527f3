//! Bodies of the REST API under `/api/v1`.

use serde::{Deserialize, Serialize};

use crate::metrics::{Accounting, JobReport, JobSnapshot, JobState};
use crate::spec::{FieldError, PipelineSpec};

/// Answer of `GET /api/v1/version`: lets scripts and the dashboard check
/// which server they talk to before relying on newer endpoints.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    /// Always `"queuelab"`, so a client can tell it reached the right service.
    pub name: String,
    /// Version of the `queuelab` binary.
    pub version: String,
    /// Protocol revision of the REST and WebSocket API.
    pub protocol: u32,
}

/// The JSON body of every API error: a stable machine-readable `code`, a
/// human `message`, and the offending `field` path when one input is to blame.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable identifier such as `not_found` or `invalid_field`.
    pub code: String,
    /// One sentence a person can act on.
    pub message: String,
    /// Path of the input field at fault (`stages[1].queue.capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem, when a spec has several (the first is also in
    /// `field` and `message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The id of the request, also in the `x-request-id` header and in the
    /// server's log: quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    /// An error with a code and a message, naming no field.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            field: None,
            errors: Vec::new(),
            request_id: None,
        }
    }
}

/// A job as listed: identity, state and headline figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// Pipeline name.
    pub name: String,
    /// The template it was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Lifecycle state.
    pub state: JobState,
    /// When it was created, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Time since start (or its whole run, once finished).
    pub elapsed_ms: u64,
    /// Where every item went so far.
    pub accounting: Accounting,
    /// Items reaching the sink per second (last interval, or whole run).
    pub throughput: f64,
    /// End-to-end P99 latency, microseconds.
    pub p99_us: u64,
}

/// One job in full.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The spec it runs.
    pub spec: PipelineSpec,
    /// The newest live snapshot.
    pub snapshot: JobSnapshot,
    /// The final report, once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<JobReport>,
}

/// A page of jobs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// Jobs on this page, newest first.
    pub jobs: Vec<JobSummary>,
    /// Jobs matching the filters, on all pages.
    pub total: usize,
}

/// How to stop a job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Graceful: finish what is queued (escalates to abort at the deadline).
    #[default]
    Drain,
    /// Now: what is queued or in flight goes to leftovers.
    Abort,
}

/// Body of `POST /api/v1/jobs/{id}/stop`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// Drain or abort.
    #[serde(default)]
    pub mode: StopMode,
    /// Overrides the spec's drain deadline: 1 to 3600000 (an hour,
    /// `spec::limits::MAX_DRAIN_DEADLINE_MS`). For a job already draining
    /// it can only bring the abort closer (within this much from now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600000))]
    pub deadline_ms: Option<u64>,
}

/// A built-in template as listed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    /// Name to start it by.
    pub name: String,
    /// First sentence of its description.
    pub summary: String,
    /// What it shows, in full.
    pub description: String,
    /// The spec as TOML, for the editor.
    pub toml: String,
}

/// Body of `POST /api/v1/jobs/{id}/replay`: a new job runs the finished
/// job's pipeline over its leftovers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Name of the new job; `<name>-replay` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub name: Option<String>,
}

/// A lesson as `GET /api/v1/lessons` lists it: the lesson, and the spec to
/// start (`POST /api/v1/jobs`) for it and for each of its variants.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct LessonInfo {
    /// The lesson: texts, focus, variants.
    #[serde(flatten)]
    pub lesson: crate::lessons::Lesson,
    /// The spec it runs.
    pub spec: crate::spec::PipelineSpec,
    /// The spec of each variant, in the order of `variants`.
    pub variant_specs: Vec<crate::spec::PipelineSpec>,
}

/// Answer of `POST /api/v1/validate`: the spec is valid (problems are 422).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validated {
    /// Always true (an invalid spec is an error response).
    pub valid: bool,
    /// The spec with every default filled in.
    pub spec: PipelineSpec,
    /// The same spec as TOML, ready to save as a file.
    #[serde(default)]
    pub toml: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_omits_absent_field() {
        let body = ErrorBody::new("not_found", "no route");
        let json = serde_json::to_value(&body).unwrap();
        assert!(json.get("field").is_none());
        let back: ErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn version_info_rejects_unknown_fields() {
        let err = serde_json::from_str::<VersionInfo>(
            r#"{"name":"queuelab","version":"1","protocol":1,"extra":true}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"));
    }
}
