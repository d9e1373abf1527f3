//! Pipeline specs: what a job runs, as data.
//!
//! A [`PipelineSpec`] is a source, an ordered list of stages and a sink. It
//! is written in TOML or JSON, parsed with unknown fields rejected, and
//! [validated](PipelineSpec::validate) so that *every* problem is reported
//! with the path of the field at fault (`stages[1].queue.capacity`), not
//! just the first one. Running a spec is the engine's business; this
//! module only describes it.
//!
//! A short tour, in the order data flows:
//!
//! * [`sources`] — [`SourceSpec`]: synthetic log lines, a JSON-lines file,
//!   HTTP ingest or TCP clients.
//! * [`stages`] — [`StageSpec`]: the runtime (threads or tasks), workers,
//!   the input [`QueueSpec`] ([`Capacity`], [`WhenFull`]), timeouts,
//!   [`RetrySpec`], rate limits and [`OnError`]; a broker [`Transport`]
//!   and [`Placement`] for a stage whose workers run in other processes.
//! * [`ops`] — [`OpSpec`]: the work a stage does on each item, and the
//!   typed schema of `parse_json` ([`FieldType`], [`JsonType`]).
//! * [`sinks`] — [`SinkSpec`] with its [`BatchSpec`], and the
//!   [`DeadLetterSpec`] for items that failed for good.
//! * [`limits`] — the bounds validation enforces, and [`defaults`] for
//!   omitted fields.
//! * [`validation`] — [`PipelineSpec::parse`] and
//!   [`PipelineSpec::validate`], which report every problem as a
//!   [`FieldError`] inside one [`SpecError`].
//!
//! Every type is re-exported here, so `shared::spec::StageSpec` and the
//! like are the paths to use.

use serde::{Deserialize, Serialize};

pub mod limits;
pub mod ops;
pub mod sinks;
pub mod sources;
pub mod stages;
pub mod validation;

pub use limits::defaults;
pub use ops::{Distribution, FieldType, FilterMode, HttpMethod, JsonType, OpSpec};
pub use sinks::{BatchSpec, DeadLetterSpec, SinkFault, SinkSpec, WriteMode};
pub use sources::{Payload, SampleSpec, SourceSpec};
pub use stages::{
    Capacity, Jitter, NATS_URL_ENV, OnError, Placement, QueueSpec, RetrySpec, Runtime, StageSpec,
    Transport, WhenFull, check_nats_url, is_label,
};
pub use validation::{FieldError, SpecError, SpecFormat};

/// A whole pipeline: source → stages → sink, plus lifecycle settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Short name shown in lists and thread names (`ql-<name>-<stage>-<n>`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub name: String,
    /// What the pipeline demonstrates or does, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where items come from.
    pub source: SourceSpec,
    /// Processing stages, in order; each has its own input queue.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub stages: Vec<StageSpec>,
    /// Where items end up.
    #[serde(default)]
    pub sink: SinkSpec,
    /// How long a drain may take before it escalates to an abort.
    #[serde(default = "defaults::drain_deadline_ms")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600000))]
    pub drain_deadline_ms: u64,
    /// How many metric snapshots per second the engine publishes.
    #[serde(default = "defaults::sample_hz")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.1, maximum = 50))]
    pub sample_hz: f64,
    /// Where items that failed for good go.
    #[serde(default, skip_serializing_if = "is_default")]
    pub dead_letter: DeadLetterSpec,
    /// The lesson this job was started from (`backpressure`, …), so the
    /// job page can show what to watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{1,64}$"))]
    pub lesson: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// What a URL starts with to mean the built-in test target of whatever
/// runs the job (`/target?fail_share=0.3&status=503`): the server's own
/// `/target`, or one `queuelab run` starts for the run. A template can then
/// call a flaky service without knowing the server's address.
pub const BUILTIN_TARGET: &str = "/target";

/// Whether `url` names the built-in test target (`/target`, `/target/…` or
/// `/target?…`).
pub fn is_builtin_target(url: &str) -> bool {
    url.strip_prefix(BUILTIN_TARGET)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// Whether a URL field holds an absolute HTTP URL or the built-in target.
pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://") || is_builtin_target(url)
}

/// What a URL field must hold, for its error message.
pub(crate) const HTTP_URL_RULE: &str =
    "must start with http:// or https://, or be /target… (the built-in test target)";

impl PipelineSpec {
    /// The URL fields that name the built-in test target, with their
    /// paths, mutably: each stage's `http` op and an `http` sink.
    pub fn builtin_target_urls(&mut self) -> Vec<(String, &mut String)> {
        let mut urls = Vec::new();
        for (i, stage) in self.stages.iter_mut().enumerate() {
            if let ops::OpSpec::Http { url, .. } = &mut stage.op
                && is_builtin_target(url)
            {
                urls.push((format!("stages[{i}].op.url"), url));
            }
        }
        if let sinks::SinkSpec::Http { url, .. } = &mut self.sink
            && is_builtin_target(url)
        {
            urls.push(("sink.url".to_owned(), url));
        }
        urls
    }

    /// The spec as pretty TOML (how templates are shown for editing).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("specs always serialise to TOML")
    }
}

/// The smallest spec the unit tests start from.
#[cfg(test)]
const MINIMAL: &str = r#"
name = "demo"
source = { kind = "synthetic", count = 10 }

[[stages]]
name = "work"
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_round_trip() {
        let spec = PipelineSpec::parse(MINIMAL, SpecFormat::Toml).unwrap();
        let toml = spec.to_toml();
        assert_eq!(PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap(), spec);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(PipelineSpec::parse(&json, SpecFormat::Json).unwrap(), spec);
    }
}
