//! Operations: the work a stage does on each item.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::defaults;
use super::limits;
use super::validation::Validator;

/// A latency distribution for simulated work, in milliseconds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Always `ms`.
    Fixed {
        /// The latency.
        ms: f64,
    },
    /// Evenly between `min_ms` and `max_ms`.
    Uniform {
        /// Lower bound.
        min_ms: f64,
        /// Upper bound.
        max_ms: f64,
    },
    /// Memoryless waits with the given mean (many short, a few long).
    Exponential {
        /// Mean latency.
        mean_ms: f64,
    },
    /// A long right tail, typical of real services' latencies.
    LogNormal {
        /// Median latency.
        median_ms: f64,
        /// Spread of the underlying normal; 0.5 is moderate, 1.5 heavy.
        sigma: f64,
    },
}

/// Keep or drop the items a filter matches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    /// Keep matching items, filter out the rest.
    #[default]
    Keep,
    /// Filter out matching items, keep the rest.
    Drop,
}

/// The work a stage does on each item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpSpec {
    /// Simulated I/O that waits without blocking its world: a parked
    /// thread, or an awaited timer on an async stage.
    Sleep {
        /// How long each item takes.
        latency: Distribution,
    },
    /// CPU work for `micros` microseconds per item (0: no work at all).
    Spin {
        /// Busy time per item.
        micros: u64,
    },
    /// A blocking call. On an async stage it blocks the event loop: the
    /// article's pitfall, reproduced on purpose.
    BlockingSleep {
        /// How long each call blocks.
        latency: Distribution,
    },
    /// A JSON log line becomes a record; a bad line is an error with a reason.
    ParseJson {
        /// Fields a record must have.
        #[serde(default = "defaults::required_fields")]
        require: Vec<String>,
    },
    /// Keep or drop records by a field's value.
    Filter {
        /// The field to look at.
        field: String,
        /// Values that match.
        values: Vec<serde_json::Value>,
        /// What to do with matching records.
        #[serde(default)]
        mode: FilterMode,
    },
    /// Set or rename fields of records.
    Map {
        /// Fields to set to fixed values.
        #[serde(default)]
        set: BTreeMap<String, serde_json::Value>,
        /// Fields to rename, old name → new name.
        #[serde(default)]
        rename: BTreeMap<String, String>,
    },
    /// An HTTP request per item through a connection pool shared by the
    /// stage's workers. 2xx passes; 429, 5xx, timeouts and connection
    /// errors are retryable; other statuses are not.
    Http {
        /// `GET` or `POST` (the item's line as the body).
        #[serde(default)]
        method: HttpMethod,
        /// The URL, `http://…`.
        url: String,
    },
    /// Fails a share of attempts (fault injection).
    Fail {
        /// Share of attempts that fail, 0..=1.
        share: f64,
        /// Whether the failure is transient (retried under a retry policy).
        #[serde(default = "defaults::yes")]
        retryable: bool,
    },
}

impl OpSpec {
    /// The `kind` tag, for labels and thread names.
    pub fn kind(&self) -> &'static str {
        match self {
            OpSpec::Sleep { .. } => "sleep",
            OpSpec::Spin { .. } => "spin",
            OpSpec::BlockingSleep { .. } => "blocking_sleep",
            OpSpec::ParseJson { .. } => "parse_json",
            OpSpec::Filter { .. } => "filter",
            OpSpec::Map { .. } => "map",
            OpSpec::Fail { .. } => "fail",
            OpSpec::Http { .. } => "http",
        }
    }
}

/// The method of an `http` operation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// Fetch; the item is not sent.
    #[default]
    Get,
    /// Send the item as the request body.
    Post,
}

impl OpSpec {
    /// Checks the operation's parameters; `at` is its path (`stages[i].op`).
    pub(super) fn validate(&self, at: &str, v: &mut Validator) {
        match self {
            OpSpec::Sleep { latency } | OpSpec::BlockingSleep { latency } => {
                validate_distribution(&format!("{at}.latency"), latency, v)
            }
            OpSpec::Spin { micros } => {
                if *micros > limits::MAX_SPIN_US {
                    v.err(
                        &format!("{at}.micros"),
                        format!("must be at most {}", limits::MAX_SPIN_US),
                    );
                }
            }
            OpSpec::ParseJson { require } => {
                for (i, f) in require.iter().enumerate() {
                    if f.is_empty() {
                        v.err(&format!("{at}.require[{i}]"), "must not be empty".into());
                    }
                }
            }
            OpSpec::Filter { field, values, .. } => {
                if field.is_empty() {
                    v.err(&format!("{at}.field"), "must not be empty".into());
                }
                if values.is_empty() {
                    v.err(&format!("{at}.values"), "needs at least one value".into());
                }
                for (i, x) in values.iter().enumerate() {
                    v.check_depth(&format!("{at}.values[{i}]"), x);
                }
            }
            OpSpec::Map { set, rename } => {
                if set.is_empty() && rename.is_empty() {
                    v.err(at, "a map needs `set` or `rename`".into());
                }
                for (k, x) in set {
                    v.check_depth(&format!("{at}.set.{k}"), x);
                }
                for (from, to) in rename {
                    if from.is_empty() || to.is_empty() {
                        v.err(
                            &format!("{at}.rename"),
                            "field names must not be empty".into(),
                        );
                    }
                }
            }
            OpSpec::Fail { share, .. } => v.check_share(&format!("{at}.share"), *share),
            OpSpec::Http { url, .. } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    v.err(
                        &format!("{at}.url"),
                        "must start with http:// or https://".into(),
                    );
                }
            }
        }
    }
}

fn validate_distribution(at: &str, d: &Distribution, v: &mut Validator) {
    let mut check = |field: &str, x: f64| {
        if !(x.is_finite() && (0.0..=limits::MAX_LATENCY_MS).contains(&x)) {
            v.err(
                &format!("{at}.{field}"),
                format!("must be between 0 and {}", limits::MAX_LATENCY_MS),
            );
        }
    };
    match *d {
        Distribution::Fixed { ms } => check("ms", ms),
        Distribution::Uniform { min_ms, max_ms } => {
            check("min_ms", min_ms);
            check("max_ms", max_ms);
            if min_ms > max_ms {
                v.err(&format!("{at}.max_ms"), "must not be below min_ms".into());
            }
        }
        Distribution::Exponential { mean_ms } => check("mean_ms", mean_ms),
        Distribution::LogNormal { median_ms, sigma } => {
            check("median_ms", median_ms);
            if !(sigma.is_finite() && (0.0..=5.0).contains(&sigma)) {
                v.err(&format!("{at}.sigma"), "must be between 0 and 5".into());
            }
        }
    }
}
