//! The SLO a lab run checks: [`Slo`] and its terms, parsed from
//! `p99<50ms,errors<0.1%` and checked against a point's figures.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::figures::PointFigures;

/// One figure an SLO bounds.
///
/// Why: the SLO is data the CLI parses from `p99<50ms,errors<0.1%` and the
/// dashboard edits, checked the same way at every point.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Median end-to-end latency.
    P50,
    /// 95th percentile end-to-end latency.
    P95,
    /// 99th percentile end-to-end latency.
    P99,
    /// Items that failed for good, as a share of items settled.
    Errors,
    /// Attempts that timed out, as a share of items settled.
    Timeouts,
    /// Items a full queue dropped, as a share of items produced.
    Drops,
}

impl SloMetric {
    /// Name as written in an SLO.
    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::P50 => "p50",
            SloMetric::P95 => "p95",
            SloMetric::P99 => "p99",
            SloMetric::Errors => "errors",
            SloMetric::Timeouts => "timeouts",
            SloMetric::Drops => "drops",
        }
    }

    /// Whether the bound is a latency in milliseconds (else a share).
    pub fn is_latency(self) -> bool {
        matches!(self, SloMetric::P50 | SloMetric::P95 | SloMetric::P99)
    }
}

/// One bound: the figure must stay below `max` (ms, or a share 0..1).
///
/// Why: an SLO is a conjunction of these.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloTerm {
    /// The figure.
    pub metric: SloMetric,
    /// Its upper bound, exclusive: milliseconds for latencies, a share
    /// (0.001 = 0.1%) for rates.
    pub max: f64,
}

/// A service-level objective: every term must hold.
///
/// Why: the capacity search and `--fail-on` ask one question of a point —
/// does it keep the SLO — and must ask it the same way.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slo(pub Vec<SloTerm>);

impl Slo {
    /// Parses `p99<50ms,errors<0.1%` (terms joined by `,` or `and`;
    /// latencies in `us`, `ms` or `s`; rates as `%` or a share).
    pub fn parse(text: &str) -> Result<Slo, String> {
        let mut terms = Vec::new();
        let normalised = text.replace(" and ", ",");
        for raw in normalised.split(',') {
            let t = raw.trim();
            if t.is_empty() {
                continue;
            }
            let (name, bound) = t
                .split_once('<')
                .ok_or_else(|| format!("`{t}`: write a bound as `p99<50ms` or `errors<0.1%`"))?;
            let metric = match name.trim().to_ascii_lowercase().as_str() {
                "p50" => SloMetric::P50,
                "p95" => SloMetric::P95,
                "p99" => SloMetric::P99,
                "errors" | "error" => SloMetric::Errors,
                "timeouts" | "timeout" => SloMetric::Timeouts,
                "drops" | "dropped" => SloMetric::Drops,
                other => {
                    return Err(format!(
                        "`{other}`: an SLO bounds p50, p95, p99, errors, timeouts or drops"
                    ));
                }
            };
            let bound = bound.trim().trim_start_matches('=').trim();
            let max = if metric.is_latency() {
                let (num, scale) = if let Some(n) = bound.strip_suffix("us") {
                    (n, 0.001)
                } else if let Some(n) = bound.strip_suffix("ms") {
                    (n, 1.0)
                } else if let Some(n) = bound.strip_suffix('s') {
                    (n, 1000.0)
                } else {
                    return Err(format!("`{t}`: give the latency a unit (us, ms or s)"));
                };
                number(num, t)? * scale
            } else if let Some(n) = bound.strip_suffix('%') {
                number(n, t)? / 100.0
            } else {
                number(bound, t)?
            };
            if !(max.is_finite() && max > 0.0) || (!metric.is_latency() && max > 1.0) {
                return Err(format!(
                    "`{t}`: the bound must be above 0 (and at most 100%)"
                ));
            }
            terms.push(SloTerm { metric, max });
        }
        if terms.is_empty() {
            return Err("the SLO is empty: write e.g. `p99<50ms,errors<0.1%`".into());
        }
        if terms.len() > 8 {
            return Err("at most 8 terms in an SLO".into());
        }
        Ok(Slo(terms))
    }

    /// The terms a point's figures break (empty when the SLO holds).
    pub fn broken(&self, p: &PointFigures) -> Vec<SloTerm> {
        self.0
            .iter()
            .copied()
            .filter(|t| {
                let v = match t.metric {
                    SloMetric::P50 => p.latency.p50_us as f64 / 1000.0,
                    SloMetric::P95 => p.latency.p95_us as f64 / 1000.0,
                    SloMetric::P99 => p.latency.p99_us as f64 / 1000.0,
                    SloMetric::Errors => p.error_rate,
                    SloMetric::Timeouts => p.timeout_rate,
                    SloMetric::Drops => p.drop_rate,
                };
                // A point that moved nothing has no latency to judge by.
                let no_data = t.metric.is_latency() && p.latency.count == 0;
                no_data || v.is_nan() || v >= t.max
            })
            .collect()
    }
}

fn number(s: &str, term: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("`{term}`: `{}` is not a number", s.trim()))
}

impl fmt::Display for SloTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.metric.is_latency() {
            write!(f, "{}<{}ms", self.metric.as_str(), self.max)
        } else {
            write!(f, "{}<{}%", self.metric.as_str(), self.max * 100.0)
        }
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Latency;

    #[test]
    fn slos_parse_with_units_and_shares() {
        let slo = Slo::parse("p99<50ms, errors<0.1% and p50 < 2s").unwrap();
        assert_eq!(
            slo.0,
            vec![
                SloTerm {
                    metric: SloMetric::P99,
                    max: 50.0
                },
                SloTerm {
                    metric: SloMetric::Errors,
                    max: 0.001
                },
                SloTerm {
                    metric: SloMetric::P50,
                    max: 2000.0
                },
            ]
        );
        assert_eq!(slo.to_string(), "p99<50ms,errors<0.1%,p50<2000ms");
        assert!(Slo::parse("p99<50").unwrap_err().contains("unit"));
        assert!(Slo::parse("p42<5ms").is_err());
        assert!(Slo::parse("errors<200%").is_err());
        assert!(Slo::parse("").is_err());
    }

    #[test]
    fn an_slo_names_the_terms_a_point_breaks() {
        let slo = Slo::parse("p99<50ms,errors<1%").unwrap();
        let mut p = PointFigures {
            latency: Latency {
                count: 10,
                p99_us: 20_000,
                ..Default::default()
            },
            error_rate: 0.0,
            ..Default::default()
        };
        assert!(slo.broken(&p).is_empty());
        p.latency.p99_us = 80_000;
        p.error_rate = 0.05;
        assert_eq!(slo.broken(&p).len(), 2);
        p.latency.count = 0;
        p.latency.p99_us = 0;
        p.error_rate = 0.0;
        assert_eq!(
            slo.broken(&p).len(),
            1,
            "no latency measured breaks a latency bound"
        );
    }
}
