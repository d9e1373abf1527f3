//! Validation: parsing a spec's text and checking every field, so that all
//! problems come back together, each with the path of its field.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::PipelineSpec;
use super::limits;

/// One problem with one field of a spec.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field, such as `stages[1].queue.capacity`; empty for the
    /// document as a whole.
    pub path: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a spec was refused: it did not parse, or it parsed with problems.
/// Either way every problem found carries its field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The problems, in document order.
    pub errors: Vec<FieldError>,
}

impl SpecError {
    /// The same problems, as fields of the part found at `at` (the
    /// document's own problems become `at`'s).
    pub fn nested(self, at: &str) -> SpecError {
        SpecError {
            errors: self
                .errors
                .into_iter()
                .map(|f| FieldError {
                    path: if f.path.is_empty() {
                        at.to_owned()
                    } else {
                        format!("{at}.{}", f.path)
                    },
                    message: f.message,
                })
                .collect(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecError {}

/// The text format of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    /// `.toml`
    Toml,
    /// `.json`
    Json,
}

impl SpecFormat {
    /// Guesses the format from a file name, defaulting to TOML.
    pub fn from_path(path: &str) -> Self {
        if path.to_ascii_lowercase().ends_with(".json") {
            SpecFormat::Json
        } else {
            SpecFormat::Toml
        }
    }

    /// Guesses the format from the text itself: JSON starts with `{`.
    pub fn sniff(text: &str) -> Self {
        if text.trim_start().starts_with('{') {
            SpecFormat::Json
        } else {
            SpecFormat::Toml
        }
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

/// Collects problems instead of stopping at the first.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// Records one problem with the field at `path`.
    pub(crate) fn err(&mut self, path: &str, message: String) {
        self.errors.push(FieldError {
            path: path.to_owned(),
            message,
        });
    }

    /// A pipeline or stage name: 1 to 64 letters, digits, `-` or `_`.
    pub(super) fn check_name(&mut self, path: &str, name: &str) {
        if name.is_empty() || name.len() > 64 {
            self.err(path, "must be 1 to 64 characters".into());
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.err(path, "may contain only letters, digits, `-` and `_`".into());
        }
    }

    /// A table, its key field and its extra columns.
    pub(super) fn check_table(&mut self, at: &str, table: &str, key: &str, columns: &[String]) {
        self.check_identifier(&format!("{at}.table"), table);
        if key.is_empty() {
            self.err(&format!("{at}.key"), "must not be empty".into());
        }
        for (i, c) in columns.iter().enumerate() {
            let path = format!("{at}.columns[{i}]");
            self.check_identifier(&path, c);
            if ["key", "record", "written_at"].contains(&c.as_str()) {
                self.err(&path, format!("`{c}` is a column QueueLab keeps itself"));
            }
        }
    }

    /// A SQL identifier: letters, digits and `_`, not starting with a digit.
    pub(super) fn check_identifier(&mut self, path: &str, name: &str) {
        let ok = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            self.err(
                path,
                "must be 1 to 63 letters, digits or `_`, not starting with a digit".into(),
            );
        }
    }

    /// A share, between 0 and 1.
    pub(super) fn check_share(&mut self, path: &str, share: f64) {
        if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
            self.err(path, "must be between 0 and 1".into());
        }
    }

    /// A free-form value nested at most [`limits::MAX_VALUE_DEPTH`] deep
    /// (walked without recursion, whatever its depth).
    pub(super) fn check_depth(&mut self, path: &str, value: &serde_json::Value) {
        use serde_json::Value;
        let mut stack = vec![(value, 0)];
        while let Some((value, depth)) = stack.pop() {
            let children: Vec<&Value> = match value {
                Value::Array(a) => a.iter().collect(),
                Value::Object(o) => o.values().collect(),
                _ => continue,
            };
            if depth == limits::MAX_VALUE_DEPTH {
                self.err(
                    path,
                    format!(
                        "must not nest arrays and tables more than {} levels deep",
                        limits::MAX_VALUE_DEPTH
                    ),
                );
                return;
            }
            stack.extend(children.into_iter().map(|c| (c, depth + 1)));
        }
    }

    /// A file path: not blank.
    pub(super) fn check_path(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.err(path, "must not be empty".into());
        }
    }

    /// Records the problems of a part of the document found at `at`
    /// (a sweep's `pipeline`), each under that path.
    pub(crate) fn nested(&mut self, at: &str, result: Result<(), SpecError>) {
        if let Err(e) = result {
            self.errors.extend(e.nested(at).errors);
        }
    }

    /// Every problem recorded, or `Ok` when there were none.
    pub(crate) fn finish(self) -> Result<(), SpecError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(SpecError {
                errors: self.errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecFormat;

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

    #[test]
    fn format_is_guessed_from_name_or_text() {
        assert_eq!(SpecFormat::from_path("a/b.JSON"), SpecFormat::Json);
        assert_eq!(SpecFormat::from_path("a/b.toml"), SpecFormat::Toml);
        assert_eq!(SpecFormat::sniff("  {\"a\":1}"), SpecFormat::Json);
        assert_eq!(SpecFormat::sniff("name = 1"), SpecFormat::Toml);
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
