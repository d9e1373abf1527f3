//! Operations: the work a stage does on each item.

use std::collections::BTreeMap;
use std::fmt;

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
        /// The JSON type each listed field must have (`"string"`,
        /// `"integer"`, …); a field whose type ends in `?` may also be
        /// absent or null. A record that does not match is an error naming
        /// the field and what was wrong.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        #[cfg_attr(feature = "openapi", schema(schema_with = schema_map_schema))]
        schema: BTreeMap<String, FieldType>,
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
        /// The URL, `http://…`, or `/target…` for the built-in test target.
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
    /// True for an operation that only computes, briefly, and never waits
    /// (no sleep, spin, blocking call or request): its stage takes items in
    /// chunks, and over a broker they travel in large batches. The others
    /// take one item at a time, so a slow item never holds others back.
    pub fn is_instant(&self) -> bool {
        match self {
            OpSpec::Spin { micros } => *micros == 0,
            OpSpec::ParseJson { .. }
            | OpSpec::Filter { .. }
            | OpSpec::Map { .. }
            | OpSpec::Fail { .. } => true,
            OpSpec::Sleep { .. } | OpSpec::BlockingSleep { .. } | OpSpec::Http { .. } => false,
        }
    }

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

/// A JSON type a `parse_json` schema can ask of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// A JSON string.
    String,
    /// A JSON number without a fraction or exponent that fits an `i64` or a `u64`.
    Integer,
    /// Any JSON number, integers included.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
    /// Any value at all, `null` included.
    Any,
}

impl JsonType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [JsonType; 7] = [
        JsonType::String,
        JsonType::Integer,
        JsonType::Number,
        JsonType::Boolean,
        JsonType::Object,
        JsonType::Array,
        JsonType::Any,
    ];

    /// The type's name, as written in a schema.
    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::Any => "any",
        }
    }

    /// The type named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a `parse_json` schema expects of one field, written as a type name
/// (`"string"`), or with a trailing `?` (`"number?"`) for a field that may
/// be absent or null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FieldType {
    /// The field must be present, with this type.
    Required(JsonType),
    /// The field may be absent or null; otherwise it has this type.
    Optional(JsonType),
    /// A name that is not a type; [validation](super::PipelineSpec::validate)
    /// refuses it, naming the field.
    Unknown(String),
}

impl From<String> for FieldType {
    fn from(text: String) -> Self {
        let (name, optional) = match text.strip_suffix('?') {
            Some(name) => (name, true),
            None => (text.as_str(), false),
        };
        match (JsonType::from_name(name), optional) {
            (Some(t), false) => FieldType::Required(t),
            (Some(t), true) => FieldType::Optional(t),
            (None, _) => FieldType::Unknown(text),
        }
    }
}

impl From<FieldType> for String {
    fn from(t: FieldType) -> Self {
        t.to_string()
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Required(t) => write!(f, "{t}"),
            FieldType::Optional(t) => write!(f, "{t}?"),
            FieldType::Unknown(text) => f.write_str(text),
        }
    }
}

/// The schema of a field type on the wire: one of the seven type names,
/// optionally followed by `?`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FieldType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let names: Vec<String> = JsonType::ALL
            .into_iter()
            .flat_map(|t| [t.name().to_owned(), format!("{t}?")])
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "A JSON type (string, integer, number, boolean, object, array, any); \
                 a trailing `?` lets the field be absent or null",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FieldType {}

/// The schema of a `parse_json` schema: field names to [`FieldType`]s, at
/// most [`limits::MAX_SCHEMA_FIELDS`] of them.
#[cfg(feature = "openapi")]
fn schema_map_schema() -> utoipa::openapi::schema::Object {
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(FieldType::schema()))
        .max_properties(Some(limits::MAX_SCHEMA_FIELDS))
        .description(Some(
            "The JSON type each listed field must have; `?` marks a field that may be absent or null",
        ))
        .build()
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
            OpSpec::ParseJson { require, schema } => {
                for (i, f) in require.iter().enumerate() {
                    if f.is_empty() {
                        v.err(&format!("{at}.require[{i}]"), "must not be empty".into());
                    }
                }
                validate_schema(&format!("{at}.schema"), schema, v);
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
                if !super::urls::is_http_url(url) {
                    v.err(&format!("{at}.url"), super::urls::HTTP_URL_RULE.into());
                }
            }
        }
    }
}

/// Checks a `parse_json` schema: how many fields, their names, and that
/// each type is one QueueLab knows.
fn validate_schema(at: &str, schema: &BTreeMap<String, FieldType>, v: &mut Validator) {
    if schema.len() > limits::MAX_SCHEMA_FIELDS {
        v.err(
            at,
            format!("at most {} fields are allowed", limits::MAX_SCHEMA_FIELDS),
        );
    }
    for (name, ty) in schema {
        if name.is_empty() {
            v.err(at, "field names must not be empty".into());
            continue;
        }
        if name.len() > limits::MAX_FIELD_NAME_LEN {
            let start: String = name.chars().take(24).collect();
            v.err(
                at,
                format!(
                    "field names must be at most {} bytes; `{start}…` is longer",
                    limits::MAX_FIELD_NAME_LEN
                ),
            );
            continue;
        }
        if let FieldType::Unknown(text) = ty {
            let names: Vec<&str> = JsonType::ALL.iter().map(|t| t.name()).collect();
            v.err(
                &format!("{at}.{name}"),
                format!(
                    "`{text}` is not a type: use one of {}, with a trailing `?` if the field may be absent or null",
                    names.join(", ")
                ),
            );
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

#[cfg(test)]
mod tests {
    use crate::spec::{PipelineSpec, SpecFormat, limits};

    use super::*;

    fn with_op(op: &str) -> String {
        format!(
            "name = \"p\"\nsource = {{ kind = \"synthetic\", count = 1 }}\n\
             [[stages]]\nname = \"parse\"\nop = {op}\n"
        )
    }

    #[test]
    fn a_parse_json_schema_reads_types_and_optional_marks() {
        let text = with_op(
            r#"{ kind = "parse_json", schema = { id = "integer", level = "string", msg = "string", ts = "number?" } }"#,
        );
        let spec = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap();
        let OpSpec::ParseJson { require, schema } = &spec.stages[0].op else {
            panic!("{:?}", spec.stages[0].op)
        };
        assert_eq!(
            require,
            &defaults::required_fields(),
            "require keeps its default"
        );
        assert_eq!(schema["id"], FieldType::Required(JsonType::Integer));
        assert_eq!(schema["ts"], FieldType::Optional(JsonType::Number));
        // Written back as it was read, in both formats.
        assert_eq!(
            PipelineSpec::parse(&spec.to_toml(), SpecFormat::Toml).unwrap(),
            spec
        );
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""ts":"number?""#), "{json}");
        assert_eq!(PipelineSpec::parse(&json, SpecFormat::Json).unwrap(), spec);
        // No schema: nothing new in the spec's JSON form.
        let plain =
            PipelineSpec::parse(&with_op(r#"{ kind = "parse_json" }"#), SpecFormat::Toml).unwrap();
        assert!(!serde_json::to_string(&plain).unwrap().contains("schema"));
        for t in JsonType::ALL {
            assert_eq!(FieldType::from(t.to_string()), FieldType::Required(t));
            assert_eq!(FieldType::from(format!("{t}?")), FieldType::Optional(t));
        }
    }

    #[test]
    fn unknown_schema_types_are_refused_naming_the_field() {
        let text = with_op(
            r#"{ kind = "parse_json", schema = { id = "int", level = "string", msg = "String", ts = "number??" } }"#,
        );
        let err = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap_err();
        let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "stages[0].op.schema.id",
                "stages[0].op.schema.msg",
                "stages[0].op.schema.ts"
            ],
            "{err}"
        );
        assert!(
            err.errors[0].message.starts_with("`int` is not a type: use one of string, integer, number, boolean, object, array, any"),
            "{err}"
        );
    }

    #[test]
    fn schema_size_and_field_names_are_limited() {
        let fields: Vec<String> = (0..=limits::MAX_SCHEMA_FIELDS)
            .map(|i| format!("f{i} = \"any\""))
            .collect();
        let text = with_op(&format!(
            "{{ kind = \"parse_json\", schema = {{ {} }} }}",
            fields.join(", ")
        ));
        let err = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap_err();
        assert_eq!(err.errors.len(), 1, "{err}");
        assert_eq!(err.errors[0].path, "stages[0].op.schema");
        assert!(err.errors[0].message.contains("at most 64 fields"), "{err}");
        assert!(
            PipelineSpec::parse(&text.replace(", f64 = \"any\"", ""), SpecFormat::Toml).is_ok()
        );

        let long = "x".repeat(limits::MAX_FIELD_NAME_LEN + 1);
        for (name, message) in [
            (long.as_str(), "at most 128 bytes"),
            ("", "must not be empty"),
        ] {
            let text = with_op(&format!(
                "{{ kind = \"parse_json\", schema = {{ \"{name}\" = \"strng\" }} }}"
            ));
            let err = PipelineSpec::parse(&text, SpecFormat::Toml).unwrap_err();
            assert_eq!(err.errors.len(), 1, "{err}");
            assert_eq!(err.errors[0].path, "stages[0].op.schema");
            assert!(err.errors[0].message.contains(message), "{err}");
        }
        let ok = "x".repeat(limits::MAX_FIELD_NAME_LEN);
        let text = with_op(&format!(
            "{{ kind = \"parse_json\", schema = {{ \"{ok}\" = \"string\" }} }}"
        ));
        assert!(PipelineSpec::parse(&text, SpecFormat::Toml).is_ok());
    }
}
