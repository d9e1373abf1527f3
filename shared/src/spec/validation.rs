//! Validation: parsing a spec's text and checking every field, so that all
//! problems come back together, each with the path of its field.

use std::fmt;

use serde::{Deserialize, Serialize};

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

    #[test]
    fn format_is_guessed_from_name_or_text() {
        assert_eq!(SpecFormat::from_path("a/b.JSON"), SpecFormat::Json);
        assert_eq!(SpecFormat::from_path("a/b.toml"), SpecFormat::Toml);
        assert_eq!(SpecFormat::sniff("  {\"a\":1}"), SpecFormat::Json);
        assert_eq!(SpecFormat::sniff("name = 1"), SpecFormat::Toml);
    }
}
