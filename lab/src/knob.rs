//! Knobs: a path into a pipeline spec (`stages[io].workers`) and the spec
//! with one value set there.
//!
//! A path walks the spec as its JSON form has it: keys joined by `.`, and
//! `[…]` picking an element of a list by index (`stages[0]`) or by its
//! `name` (`stages[io]`). Setting a value rebuilds the spec from that form
//! and validates it, so a value out of the spec's limits (workers 0,
//! capacity 10¹²) is refused with the spec's own message, never run.

use serde_json::Value;
use shared::spec::PipelineSpec;

/// Why a knob could not be set.
///
/// Why: the CLI and the API say which part of the path or value is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    /// The path is not `key[.key|[index|name]]…`.
    #[error("`{0}` is not a knob path: write e.g. `stages[io].workers` or `source.rate`")]
    Syntax(String),
    /// The path names nothing in this spec.
    #[error("`{path}`: this pipeline has no `{missing}`")]
    NotFound {
        /// The path asked for.
        path: String,
        /// The part that does not exist.
        missing: String,
    },
    /// The spec refuses the value.
    #[error("{0}")]
    Invalid(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Named(String),
}

fn parse(path: &str) -> Result<Vec<Step>, KnobError> {
    let bad = || KnobError::Syntax(path.to_string());
    if path.is_empty() || path.len() > 128 {
        return Err(bad());
    }
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        steps.push(Step::Key(key.to_string()));
        let mut rest = rest;
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(bad)?;
            if !rest.starts_with('[') {
                return Err(bad());
            }
            let inner = &rest[1..close];
            if inner.is_empty() {
                return Err(bad());
            }
            steps.push(match inner.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Named(inner.to_string()),
            });
            rest = &rest[close + 1..];
        }
    }
    Ok(steps)
}

/// `spec` with `value` at `path`, validated.
pub fn apply(spec: &PipelineSpec, path: &str, value: f64) -> Result<PipelineSpec, KnobError> {
    let steps = parse(path)?;
    let mut root = serde_json::to_value(spec).map_err(|e| KnobError::Invalid(e.to_string()))?;
    let mut here = &mut root;
    let mut walked = String::new();
    let last = steps.len() - 1;
    for (i, step) in steps.iter().enumerate() {
        let missing = |walked: &str, s: &Step| KnobError::NotFound {
            path: path.to_string(),
            missing: match s {
                Step::Key(k) if walked.is_empty() => k.clone(),
                Step::Key(k) => format!("{walked}.{k}"),
                Step::Index(n) => format!("{walked}[{n}]"),
                Step::Named(n) => format!("{walked}[{n}]"),
            },
        };
        let next = match step {
            Step::Key(k) => {
                let obj = here.as_object_mut().ok_or_else(|| missing(&walked, step))?;
                if i == last {
                    // The last key may be absent (an unset rate limit).
                    obj.entry(k.clone()).or_insert(Value::Null)
                } else {
                    obj.get_mut(k).ok_or_else(|| missing(&walked, step))?
                }
            }
            Step::Index(n) => here
                .as_array_mut()
                .and_then(|a| a.get_mut(*n))
                .ok_or_else(|| missing(&walked, step))?,
            Step::Named(name) => here
                .as_array_mut()
                .and_then(|a| {
                    a.iter_mut()
                        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
                })
                .ok_or_else(|| missing(&walked, step))?,
        };
        walked = match step {
            Step::Key(k) if walked.is_empty() => k.clone(),
            Step::Key(k) => format!("{walked}.{k}"),
            Step::Index(n) => format!("{walked}[{n}]"),
            Step::Named(n) => format!("{walked}[{n}]"),
        };
        here = next;
    }
    if here.is_object() || here.is_array() {
        return Err(KnobError::Invalid(format!(
            "`{path}` is a section, not a number"
        )));
    }
    *here = if value.fract() == 0.0 && value.abs() < 9.0e15 && !is_real(path) {
        Value::from(value as i64)
    } else {
        Value::from(value)
    };
    let out: PipelineSpec = serde_json::from_value(root)
        .map_err(|e| KnobError::Invalid(format!("`{path}` = {value}: {e}")))?;
    out.validate()
        .map_err(|e| KnobError::Invalid(format!("`{path}` = {value}: {e}")))?;
    Ok(out)
}

/// Knobs whose values are real numbers even when whole (rates).
fn is_real(path: &str) -> bool {
    path.ends_with("rate") || path.ends_with("rate_limit")
}

/// The current value at `path`, if it is a number.
pub fn current(spec: &PipelineSpec, path: &str) -> Option<f64> {
    let steps = parse(path).ok()?;
    let mut here = serde_json::to_value(spec).ok()?;
    for step in steps {
        here = match step {
            Step::Key(k) => here.get(&k)?.clone(),
            Step::Index(n) => here.get(n)?.clone(),
            Step::Named(name) => here
                .as_array()?
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(&name))?
                .clone(),
        };
    }
    here.as_f64()
}

pub use shared::lab::{KnobKind, Tunable, knob_kind as kind, tunables};

#[cfg(test)]
mod tests {
    use super::*;
    use shared::spec::{Capacity, SourceSpec, SpecFormat};

    fn spec() -> PipelineSpec {
        PipelineSpec::parse(
            r#"
name = "k"
source = { kind = "synthetic", count = 10, payload = "counter" }
[[stages]]
name = "io"
workers = 2
queue = { capacity = 100 }
op = { kind = "spin", micros = 1 }
[[stages]]
name = "net"
runtime = "async"
op = { kind = "spin", micros = 1 }
[sink]
kind = "file"
path = "out.jsonl"
"#,
            SpecFormat::Toml,
        )
        .unwrap()
    }

    #[test]
    fn a_knob_is_set_by_stage_name_or_index() {
        let s = apply(&spec(), "stages[io].workers", 8.0).unwrap();
        assert_eq!(s.stages[0].workers, 8);
        let s = apply(&spec(), "stages[0].queue.capacity", 50.0).unwrap();
        assert_eq!(s.stages[0].queue.capacity, Capacity::Bounded(50));
        let s = apply(&spec(), "stages[net].concurrency", 64.0).unwrap();
        assert_eq!(s.stages[1].concurrency, Some(64.into()));
        let s = apply(&spec(), "stages[io].rate_limit", 500.0).unwrap();
        assert_eq!(s.stages[0].rate_limit, Some(500.0));
        let s = apply(&spec(), "source.rate", 1000.0).unwrap();
        assert!(matches!(s.source, SourceSpec::Synthetic { rate: Some(r), .. } if r == 1000.0));
        let s = apply(&spec(), "sink.batch.size", 32.0).unwrap();
        assert_eq!(s.sink.batch().unwrap().size, 32);
        assert_eq!(current(&s, "sink.batch.size"), Some(32.0));
    }

    #[test]
    fn bad_paths_and_values_are_refused_with_a_reason() {
        assert!(matches!(
            apply(&spec(), "stages[db].workers", 2.0),
            Err(KnobError::NotFound { missing, .. }) if missing == "stages[db]"
        ));
        assert!(matches!(
            apply(&spec(), "stages[io", 2.0),
            Err(KnobError::Syntax(_))
        ));
        assert!(matches!(
            apply(&spec(), "stages[io]", 2.0),
            Err(KnobError::Invalid(_))
        ));
        // The spec's own limits decide.
        let e = apply(&spec(), "stages[io].workers", 0.0).unwrap_err();
        assert!(e.to_string().contains("workers"), "{e}");
        assert!(apply(&spec(), "stages[io].workers", 1e9).is_err());
        assert!(apply(&spec(), "stages[io].workers", 2.5).is_err());
        assert!(apply(&spec(), "stages[io].nonsense", 2.0).is_err());
    }

    #[test]
    fn tunables_list_what_the_pipeline_has_with_current_values_set_by_path() {
        for t in tunables(&spec()) {
            // Where the spec sets the knob, the list shows that value (an
            // unset concurrency shows the effective one, one per worker).
            if let Some(set) = current(&spec(), &t.path) {
                assert_eq!(t.current, Some(set), "{t:?}");
            }
        }
        let paths: Vec<String> = tunables(&spec()).into_iter().map(|t| t.path).collect();
        assert_eq!(
            paths,
            [
                "source.rate",
                "stages[io].workers",
                "stages[io].queue.capacity",
                "stages[io].rate_limit",
                "stages[net].workers",
                "stages[net].concurrency",
                "stages[net].queue.capacity",
                "stages[net].rate_limit",
                "sink.batch.size",
            ]
        );
        assert_eq!(kind("stages[io].workers"), KnobKind::Concurrency);
        assert_eq!(kind("source.rate"), KnobKind::Rate);
        assert_eq!(kind("sink.batch.size"), KnobKind::Size);
    }
}
