//! Retry policies, which stages and sinks share: [`RetrySpec`] with its
//! [`Jitter`], how one is checked, and the sink's default. Below both.

use serde::{Deserialize, Serialize};

use super::limits::{self, defaults};
use super::validation::Validator;

/// How to retry a failed operation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles for each next one.
    #[serde(default = "defaults::retry_base_ms")]
    pub base_ms: f64,
    /// Longest backoff.
    #[serde(default = "defaults::retry_cap_ms")]
    pub cap_ms: f64,
    /// How the backoff is randomised, so retries of many items spread out.
    #[serde(default)]
    pub jitter: Jitter,
}

/// Randomisation of a backoff `d = min(cap, base * 2^n)`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Uniform in `[0, d]`: spreads retries most.
    #[default]
    Full,
    /// Uniform in `[d/2, d]`: spread, with a floor.
    Equal,
    /// Exactly `d`.
    None,
}

/// Checks a retry policy (a stage's or a sink's).
pub(super) fn validate_retry(at: &str, r: &RetrySpec, v: &mut Validator) {
    if !(1..=limits::MAX_ATTEMPTS).contains(&r.max_attempts) {
        v.err(
            &format!("{at}.max_attempts"),
            format!("must be between 1 and {}", limits::MAX_ATTEMPTS),
        );
    }
    for (field, x) in [("base_ms", r.base_ms), ("cap_ms", r.cap_ms)] {
        if !(x.is_finite() && (0.0..=limits::MAX_WAIT_MS).contains(&x)) {
            v.err(
                &format!("{at}.{field}"),
                format!("must be between 0 and {}", limits::MAX_WAIT_MS),
            );
        }
    }
    if r.cap_ms < r.base_ms {
        v.err(&format!("{at}.cap_ms"), "must not be below base_ms".into());
    }
}

/// Default retry of a failed sink write.
pub fn sink_retry() -> RetrySpec {
    RetrySpec {
        max_attempts: 5,
        base_ms: 50.0,
        cap_ms: 2000.0,
        jitter: Jitter::Full,
    }
}
