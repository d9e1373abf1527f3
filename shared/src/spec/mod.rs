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
//! * [`pipeline`] — [`PipelineSpec`] itself, with
//!   [`PipelineSpec::parse`] and [`PipelineSpec::validate`], which report
//!   every problem as a [`FieldError`] inside one [`SpecError`].
//! * [`sources`] — [`SourceSpec`]: synthetic log lines, a JSON-lines file,
//!   HTTP ingest or TCP clients.
//! * [`stages`] — [`StageSpec`]: the runtime (threads or tasks), workers
//!   and concurrency (each a [`Limit`]: fixed, or `"auto"` in an
//!   [`AutoRange`], from [`limit`]),
//!   the input [`QueueSpec`] ([`Capacity`], [`WhenFull`]), timeouts,
//!   rate limits and [`OnError`]; a broker [`Transport`]
//!   and [`Placement`] for a stage whose workers run in other processes.
//! * [`ops`] — [`OpSpec`]: the work a stage does on each item, and the
//!   typed schema of `parse_json` ([`FieldType`], [`JsonType`]).
//! * [`sinks`] — [`SinkSpec`] with its [`BatchSpec`], and the
//!   [`DeadLetterSpec`] for items that failed for good.
//! * [`retry`] — [`RetrySpec`] and [`Jitter`], which stages and sinks share.
//! * [`urls`] — the URLs ops and sinks may hold ([`BUILTIN_TARGET`]).
//! * [`validation`] — the [`Validator`](validation) the parts report
//!   problems to, and [`FieldError`], [`SpecError`], [`SpecFormat`].
//! * [`limits`] — the bounds validation enforces ([`NATS_URL_ENV`] among
//!   them), and [`defaults`] for omitted fields.
//!
//! The layers only look down: [`pipeline`] uses the parts; [`stages`] uses
//! [`ops`] and [`limit`]; [`sinks`] and [`stages`] use [`retry`]; all of them use
//! [`urls`], [`validation`] and [`limits`], which use nothing above.
//!
//! Every type is re-exported here, so `shared::spec::StageSpec` and the
//! like are the paths to use.

pub mod limit;
pub mod limits;
pub mod ops;
pub mod pipeline;
pub mod retry;
pub mod sinks;
pub mod sources;
pub mod stages;
pub mod urls;
pub mod validation;

pub use limit::{AutoRange, Limit};
pub use limits::NATS_URL_ENV;
pub use limits::defaults;
pub use ops::{Distribution, FieldType, FilterMode, HttpMethod, JsonType, OpSpec};
pub use pipeline::PipelineSpec;
pub use retry::{Jitter, RetrySpec};
pub use sinks::{BatchSpec, DeadLetterSpec, SinkFault, SinkSpec, WriteMode};
pub use sources::{Payload, SampleSpec, SourceSpec};
pub use stages::{
    Capacity, OnError, Placement, QueueSpec, Runtime, StageSpec, Transport, WhenFull,
    check_nats_url, is_label,
};
pub use urls::{BUILTIN_TARGET, is_builtin_target};
pub use validation::{FieldError, SpecError, SpecFormat};

/// The smallest spec the unit tests start from.
#[cfg(test)]
const MINIMAL: &str = r#"
name = "demo"
source = { kind = "synthetic", count = 10 }

[[stages]]
name = "work"
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#;
