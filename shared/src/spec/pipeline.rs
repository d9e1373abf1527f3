//! The whole pipeline: [`PipelineSpec`] (source → stages → sink, plus
//! lifecycle settings), how one is parsed from TOML or JSON and validated
//! field by field. The top of `spec`: it uses every part, none uses it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::limits::{self, defaults};
use super::ops::OpSpec;
use super::sinks::{DeadLetterSpec, SinkSpec};
use super::sources::SourceSpec;
use super::stages::StageSpec;
use super::urls::is_builtin_target;
use super::validation::{FieldError, SpecError, SpecFormat, Validator};

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

impl PipelineSpec {
    /// The URL fields that name the built-in test target, with their
    /// paths, mutably: each stage's `http` op and an `http` sink.
    pub fn builtin_target_urls(&mut self) -> Vec<(String, &mut String)> {
        let mut urls = Vec::new();
        for (i, stage) in self.stages.iter_mut().enumerate() {
            if let OpSpec::Http { url, .. } = &mut stage.op
                && is_builtin_target(url)
            {
                urls.push((format!("stages[{i}].op.url"), url));
            }
        }
        if let SinkSpec::Http { url, .. } = &mut self.sink
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

impl PipelineSpec {
    /// Parses and validates a spec; all problems are returned together.
    pub fn parse(text: &str, format: SpecFormat) -> Result<Self, SpecError> {
        let spec: PipelineSpec = match format {
            SpecFormat::Json => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de).map_err(|e| parse_error(&e))?
            }
            SpecFormat::Toml => {
                // The error's text keeps the line, the column and a caret
                // under the offending characters.
                let de = toml::Deserializer::parse(text).map_err(|e| SpecError {
                    errors: vec![FieldError {
                        path: String::new(),
                        message: e.to_string(),
                    }],
                })?;
                serde_path_to_error::deserialize(de).map_err(|e| parse_error(&e))?
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field against its limits and the cross-field rules;
    /// returns all problems found, each with its path.
    pub fn validate(&self) -> Result<(), SpecError> {
        let mut v = Validator::default();
        v.check_name("name", &self.name);
        if let Some(lesson) = &self.lesson {
            v.check_name("lesson", lesson);
        }
        self.source.validate(&mut v);
        if self.stages.len() > limits::MAX_STAGES {
            v.err(
                "stages",
                format!("at most {} stages are allowed", limits::MAX_STAGES),
            );
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let at = format!("stages[{i}]");
            v.check_name(&format!("{at}.name"), &stage.name);
            if ["source", "sink"].contains(&stage.name.as_str()) {
                v.err(
                    &format!("{at}.name"),
                    format!("`{}` is reserved", stage.name),
                );
            }
            if let Some(j) = self.stages[..i].iter().position(|s| s.name == stage.name) {
                v.err(
                    &format!("{at}.name"),
                    format!("duplicates the name of stages[{j}]"),
                );
            }
            stage.validate(&at, &mut v);
        }
        self.sink.validate(&mut v);
        self.dead_letter.validate(&mut v);
        if !(1..=limits::MAX_DRAIN_DEADLINE_MS).contains(&self.drain_deadline_ms) {
            v.err(
                "drain_deadline_ms",
                format!("must be between 1 and {}", limits::MAX_DRAIN_DEADLINE_MS),
            );
        }
        if !(self.sample_hz.is_finite() && (0.1..=50.0).contains(&self.sample_hz)) {
            v.err("sample_hz", "must be between 0.1 and 50".to_owned());
        }
        v.finish()
    }
}

/// A deserialisation error as a [`SpecError`] naming the field at fault.
fn parse_error<E: fmt::Display>(e: &serde_path_to_error::Error<E>) -> SpecError {
    let path = e.path().to_string();
    SpecError {
        errors: vec![FieldError {
            path: if path == "." { String::new() } else { path },
            message: e.inner().to_string(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MINIMAL;

    #[test]
    fn toml_and_json_round_trip() {
        let spec = PipelineSpec::parse(MINIMAL, SpecFormat::Toml).unwrap();
        let toml = spec.to_toml();
        assert_eq!(PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap(), spec);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(PipelineSpec::parse(&json, SpecFormat::Json).unwrap(), spec);
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let json = r#"{"name":"x","source":{"kind":"synthetic","count":1},
            "stages":[{"name":"a","op":{"kind":"spin","micros":1},"wokers":3}]}"#;
        let err = PipelineSpec::parse(json, SpecFormat::Json).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].path, "stages[0].wokers");
        assert!(err.errors[0].message.contains("wokers"), "{err}");

        let json = r#"{"name":"x","source":{"kind":"synthetic","count":1,"colour":1}}"#;
        let err = PipelineSpec::parse(json, SpecFormat::Json).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn validation_reports_every_problem_with_paths() {
        let json = r#"{
          "name": "bad name!",
          "source": {"kind": "synthetic", "malformed_share": 1.5},
          "stages": [
            {"name": "a", "workers": 0, "op": {"kind": "spin", "micros": 1}},
            {"name": "a", "queue": {"capacity": 0}, "concurrency": 4,
             "op": {"kind": "sleep", "latency": {"dist": "uniform", "min_ms": 5, "max_ms": 1}}}
          ],
          "drain_deadline_ms": 0
        }"#;
        let err = PipelineSpec::parse(json, SpecFormat::Json).unwrap_err();
        let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "name",
                "source",
                "source.malformed_share",
                "source.duplicate_share",
                "stages[0].workers",
                "stages[1].name",
                "stages[1].queue.capacity",
                "stages[1].concurrency",
                "stages[1].op.latency.max_ms",
                "drain_deadline_ms",
            ],
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("stages[1].queue.capacity: must be between 1 and 10000000")
        );
    }

    /// A stage whose `map` sets `k0.k1.….k{tables-1}.x` (through a table
    /// header) to a value in `arrays` nested arrays.
    fn deep_map(tables: usize, arrays: usize) -> String {
        let keys: Vec<String> = (0..tables).map(|i| format!("k{i}")).collect();
        format!(
            "name = \"deep\"\nsource = {{ kind = \"synthetic\", count = 1 }}\n\
             [[stages]]\nname = \"m\"\n[stages.op]\nkind = \"map\"\n\
             [stages.op.set.{}]\nx = {}1{}\n",
            keys.join("."),
            "[".repeat(arrays),
            "]".repeat(arrays)
        )
    }

    #[test]
    fn every_accepted_spec_reads_back_from_json() {
        // TOML limits each construct's depth on its own; a table header and
        // an array together went past the 128 levels serde_json reads, so
        // the store kept a spec it could not load again (found by fuzzing
        // the round trip).
        for depth in [1, 10, 40, 62, 77, 200] {
            let text = deep_map(depth, depth);
            if let Ok(spec) = PipelineSpec::parse(&text, SpecFormat::Toml) {
                let json = serde_json::to_string(&spec).unwrap();
                let again: PipelineSpec =
                    serde_json::from_str(&json).unwrap_or_else(|e| panic!("depth {depth}: {e}"));
                assert_eq!(again, spec);
            }
        }
        let err = PipelineSpec::parse(&deep_map(62, 62), SpecFormat::Toml).unwrap_err();
        assert_eq!(err.errors.len(), 1, "{err}");
        assert_eq!(err.errors[0].path, "stages[0].op.set.k0");
        assert!(err.errors[0].message.contains("64 levels"), "{err}");
        // 64 levels in all is fine, 65 is not.
        assert!(PipelineSpec::parse(&deep_map(32, 32), SpecFormat::Toml).is_ok());
        assert!(PipelineSpec::parse(&deep_map(32, 33), SpecFormat::Toml).is_err());
        let json = format!(
            r#"{{"name":"d","source":{{"kind":"synthetic","count":1}},
               "stages":[{{"name":"f","op":{{"kind":"filter","field":"x","values":[1,{}0{}]}}}}]}}"#,
            "[".repeat(65),
            "]".repeat(65)
        );
        let err = PipelineSpec::parse(&json, SpecFormat::Json).unwrap_err();
        assert_eq!(err.errors[0].path, "stages[0].op.values[1]", "{err}");
    }
}

#[cfg(test)]
mod toml_errors {
    use super::*;

    /// A TOML error names its line and column and puts a caret under what
    /// is wrong, whether the text does not parse or a value has the wrong
    /// type.
    #[test]
    fn keep_their_line_and_caret() {
        for (text, line) in [
            (
                "name = \"a\"\nsource = { kind = \"synthetic\", count = 10 }\n[[stages]\nname = \"x\"\n",
                "line 3",
            ),
            (
                "name = \"a\"\nsource = { kind = \"synthetic\", count = 10 }\n[[stages]]\nname = \"x\"\nworkers = \"many\"\nop = { kind = \"sleep\", latency = { dist = \"fixed\", ms = 1.0 } }\n",
                "line 5",
            ),
        ] {
            let e = PipelineSpec::parse(text, SpecFormat::Toml).unwrap_err();
            let message = &e.errors[0].message;
            assert!(message.contains(line), "{message}");
            assert!(message.contains('^'), "{message}");
        }
    }
}
