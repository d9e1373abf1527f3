//! Knobs: the values a sweep gives one ([`KnobValues`]), and the knobs a
//! pipeline has ([`tunables`], [`knob_kind`]).

use serde::{Deserialize, Serialize};

use super::limits::MAX_POINTS;
use crate::spec::PipelineSpec;

/// Which values a knob takes.
///
/// Why: a list says exactly what to run; a range with ×2 steps is how
/// people walk worker counts (1, 2, 4, 8, 16).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KnobValues {
    /// These values, in this order.
    List(Vec<f64>),
    /// From `from` to `to` (inclusive) by `step`.
    Range {
        /// First value.
        from: f64,
        /// Last value (included when a step lands on it).
        to: f64,
        /// How to step.
        #[serde(default)]
        step: RangeStep,
    },
}

/// How a range steps.
///
/// Why: linear steps for capacities and rates, doubling for concurrency.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeStep {
    /// ×2 each step.
    #[default]
    Double,
    /// Plus this much each step.
    Linear(f64),
}

impl KnobValues {
    /// The values to run, in order; errors name the field.
    pub fn expand(&self) -> Result<Vec<f64>, String> {
        let values = match *self {
            KnobValues::List(ref v) => v.clone(),
            KnobValues::Range { from, to, step } => {
                if !(from.is_finite() && to.is_finite() && from <= to) {
                    return Err("a range needs finite `from` ≤ `to`".into());
                }
                let mut v = Vec::new();
                let mut x = from;
                while x <= to * (1.0 + 1e-12) {
                    v.push(x);
                    if v.len() > MAX_POINTS {
                        break;
                    }
                    x = match step {
                        RangeStep::Double if from > 0.0 => x * 2.0,
                        RangeStep::Double => return Err("a doubling range starts above 0".into()),
                        RangeStep::Linear(d) if d > 0.0 && d.is_finite() => x + d,
                        RangeStep::Linear(_) => return Err("a linear step must be above 0".into()),
                    };
                }
                v
            }
        };
        if values.is_empty() {
            return Err("no values to run".into());
        }
        if values.len() > MAX_POINTS {
            return Err(format!("at most {MAX_POINTS} values"));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err("values must be finite numbers".into());
        }
        Ok(values)
    }
}

/// A knob a spec offers, with its value there if set.
///
/// Why: people pick a knob from what the pipeline has, not by typing
/// paths; the dashboard and `queuelab sweep --knobs` list the same ones.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tunable {
    /// Its path.
    pub path: String,
    /// Its value in the spec, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
}

/// Every knob of `spec` a sweep can turn, in pipeline order.
pub fn tunables(spec: &PipelineSpec) -> Vec<Tunable> {
    use crate::spec::{Capacity, Runtime, SinkSpec, SourceSpec};
    let mut out = Vec::new();
    let mut push = |path: String, current: Option<f64>| out.push(Tunable { path, current });
    if let SourceSpec::Synthetic { rate, .. } = spec.source {
        push("source.rate".into(), rate);
    }
    for s in &spec.stages {
        let at = format!("stages[{}]", s.name);
        push(format!("{at}.workers"), s.workers.fixed().map(f64::from));
        if s.runtime == Runtime::Async {
            push(
                format!("{at}.concurrency"),
                Some(s.effective_concurrency() as f64),
            );
        }
        if let Capacity::Bounded(n) = s.queue.capacity {
            push(format!("{at}.queue.capacity"), Some(n as f64));
        }
        push(format!("{at}.rate_limit"), s.rate_limit);
    }
    if !matches!(spec.sink, SinkSpec::Null)
        && let Some(b) = spec.sink.batch()
    {
        push("sink.batch.size".into(), Some(b.size as f64));
    }
    out
}

/// What kind of quantity a knob is.
///
/// Why: a USL fit only makes sense for a concurrency, and a capacity
/// search looks for the highest rate but the fewest workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobKind {
    /// Workers or async concurrency: USL applies; fewer is better.
    Concurrency,
    /// An arrival rate or a rate limit: higher is better.
    Rate,
    /// A size (queue capacity, batch size).
    Size,
}

/// What a knob is, from its path.
pub fn knob_kind(path: &str) -> KnobKind {
    if path.ends_with(".workers") || path.ends_with(".concurrency") {
        KnobKind::Concurrency
    } else if path.ends_with("rate") || path.ends_with("rate_limit") {
        KnobKind::Rate
    } else {
        KnobKind::Size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_by_doubling_or_steps_within_limits() {
        let r = KnobValues::Range {
            from: 1.0,
            to: 16.0,
            step: RangeStep::Double,
        };
        assert_eq!(r.expand().unwrap(), vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        let l = KnobValues::Range {
            from: 100.0,
            to: 400.0,
            step: RangeStep::Linear(100.0),
        };
        assert_eq!(l.expand().unwrap(), vec![100.0, 200.0, 300.0, 400.0]);
        let huge = KnobValues::Range {
            from: 1.0,
            to: 1e9,
            step: RangeStep::Linear(1.0),
        };
        assert!(huge.expand().is_err());
        assert!(KnobValues::List(vec![]).expand().is_err());
        assert!(KnobValues::List(vec![f64::NAN]).expand().is_err());
    }
}
