//! A stage's worker count or concurrency: a fixed number, or `"auto"`
//! (the engine finds the knee and follows it while the load changes).
//!
//! On the wire a [`Limit`] is a number (`workers = 8`), the word `"auto"`
//! (anywhere from 1 to the spec's limit), or a range that the engine keeps
//! to (`workers = { min = 2, max = 32 }`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many workers (or operations in flight) a stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LimitRepr", into = "LimitRepr")]
pub enum Limit {
    /// Exactly this many, until a tune changes it.
    Fixed(u32),
    /// The engine's controller chooses, within this range.
    Auto(AutoRange),
}

/// The range an automatic limit stays in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRange {
    /// Lowest value (default 1); also where the controller starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub min: Option<u32>,
    /// Highest value (default: the spec's limit for the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max: Option<u32>,
}

impl AutoRange {
    /// The lowest value.
    pub fn lo(&self) -> u32 {
        self.min.unwrap_or(1)
    }

    /// The highest value, where `limit` is the spec's bound of the field.
    pub fn hi(&self, limit: u32) -> u32 {
        self.max.unwrap_or(limit)
    }
}

impl Limit {
    /// The automatic range over the whole span (what `"auto"` means).
    pub const AUTO: Limit = Limit::Auto(AutoRange {
        min: None,
        max: None,
    });

    /// The value the stage starts with: the fixed number, or the range's
    /// low end (the controller climbs from there).
    pub fn start(&self) -> u32 {
        match self {
            Limit::Fixed(n) => *n,
            Limit::Auto(r) => r.lo(),
        }
    }

    /// The fixed number, if it is one.
    pub fn fixed(&self) -> Option<u32> {
        match self {
            Limit::Fixed(n) => Some(*n),
            Limit::Auto(_) => None,
        }
    }

    /// The automatic range, if the engine chooses.
    pub fn auto(&self) -> Option<AutoRange> {
        match self {
            Limit::Fixed(_) => None,
            Limit::Auto(r) => Some(*r),
        }
    }

    /// Whether the engine chooses.
    pub fn is_auto(&self) -> bool {
        matches!(self, Limit::Auto(_))
    }

    /// Checks the value against `1..=limit`: `Err` says what is wrong.
    pub fn check(&self, limit: u32) -> Result<(), String> {
        let within = |n: u32| (1..=limit).contains(&n);
        match self {
            Limit::Fixed(n) if !within(*n) => Err(format!("must be between 1 and {limit}")),
            Limit::Auto(r) => {
                if !within(r.lo()) || !within(r.hi(limit)) {
                    Err(format!("an auto range must lie within 1 and {limit}"))
                } else if r.lo() > r.hi(limit) {
                    Err("an auto range's min must not exceed its max".into())
                } else {
                    Ok(())
                }
            }
            Limit::Fixed(_) => Ok(()),
        }
    }
}

impl From<u32> for Limit {
    fn from(n: u32) -> Self {
        Limit::Fixed(n)
    }
}

impl PartialEq<u32> for Limit {
    fn eq(&self, other: &u32) -> bool {
        *self == Limit::Fixed(*other)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Fixed(n) => write!(f, "{n}"),
            Limit::Auto(AutoRange {
                min: None,
                max: None,
            }) => f.write_str("auto"),
            Limit::Auto(r) => {
                let max = r.max.map_or_else(|| "…".to_owned(), |m| m.to_string());
                write!(f, "auto {}–{max}", r.lo())
            }
        }
    }
}

/// What a limit looks like on the wire.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum LimitRepr {
    Number(u32),
    Word(String),
    Range(AutoRange),
}

impl TryFrom<LimitRepr> for Limit {
    type Error = String;
    fn try_from(repr: LimitRepr) -> Result<Self, Self::Error> {
        match repr {
            LimitRepr::Number(n) => Ok(Limit::Fixed(n)),
            LimitRepr::Word(w) if w == "auto" => Ok(Limit::AUTO),
            LimitRepr::Word(w) => Err(format!(
                "expected a number, \"auto\" or {{ min, max }}, not {w:?}"
            )),
            LimitRepr::Range(r) => Ok(Limit::Auto(r)),
        }
    }
}

impl From<Limit> for LimitRepr {
    fn from(l: Limit) -> Self {
        match l {
            Limit::Fixed(n) => LimitRepr::Number(n),
            Limit::Auto(AutoRange {
                min: None,
                max: None,
            }) => LimitRepr::Word("auto".into()),
            Limit::Auto(r) => LimitRepr::Range(r),
        }
    }
}

/// The schema of a limit whose fixed number is at most `max`: a number,
/// `"auto"`, or an auto range.
#[cfg(feature = "openapi")]
fn limit_schema(max: u32) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Ref, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(max)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["auto"])),
        )
        .item(Ref::from_schema_name("AutoRange"))
        .description(Some(
            "A fixed number, \"auto\" (the engine finds the knee), or { min, max } (auto within that range)",
        ))
        .into()
}

/// The schema of a stage's `workers`: a [`Limit`] of at most
/// [`MAX_WORKERS`](super::limits::MAX_WORKERS).
#[cfg(feature = "openapi")]
#[derive(Debug)]
pub struct WorkersLimit;

/// The schema of an async stage's `concurrency`: a [`Limit`] of at most
/// [`MAX_CONCURRENCY`](super::limits::MAX_CONCURRENCY).
#[cfg(feature = "openapi")]
#[derive(Debug)]
pub struct ConcurrencyLimit;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for WorkersLimit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        limit_schema(super::limits::MAX_WORKERS)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ConcurrencyLimit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        limit_schema(super::limits::MAX_CONCURRENCY)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for WorkersLimit {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("AutoRange".into(), AutoRange::schema()));
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ConcurrencyLimit {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("AutoRange".into(), AutoRange::schema()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Holder {
        workers: Limit,
    }

    fn read(json: &str) -> Result<Limit, String> {
        serde_json::from_str::<Holder>(json)
            .map(|h| h.workers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_limit_is_a_number_auto_or_a_range_and_round_trips() {
        assert_eq!(read(r#"{"workers": 8}"#).unwrap(), Limit::Fixed(8));
        assert_eq!(read(r#"{"workers": "auto"}"#).unwrap(), Limit::AUTO);
        let range = read(r#"{"workers": {"min": 2, "max": 32}}"#).unwrap();
        assert_eq!(
            range,
            Limit::Auto(AutoRange {
                min: Some(2),
                max: Some(32)
            })
        );
        for l in [Limit::Fixed(8), Limit::AUTO, range] {
            let json = serde_json::to_string(&Holder { workers: l }).unwrap();
            assert_eq!(read(&json).unwrap(), l, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Holder {
                workers: Limit::AUTO
            })
            .unwrap(),
            r#"{"workers":"auto"}"#
        );
        assert!(read(r#"{"workers": "many"}"#).is_err());
        assert!(read(r#"{"workers": {"min": 2, "most": 3}}"#).is_err());
        assert!(read(r#"{"workers": -1}"#).is_err());
    }

    #[test]
    fn a_range_is_checked_against_the_fields_limit() {
        assert!(Limit::AUTO.check(4096).is_ok());
        assert_eq!(Limit::AUTO.auto().unwrap().hi(4096), 4096);
        assert_eq!(Limit::AUTO.start(), 1);
        let r = |min, max| {
            Limit::Auto(AutoRange {
                min: Some(min),
                max: Some(max),
            })
        };
        assert_eq!(r(4, 8).start(), 4);
        assert!(r(4, 8).check(4096).is_ok());
        assert!(r(8, 4).check(4096).is_err());
        assert!(r(0, 4).check(4096).is_err());
        assert!(r(1, 5000).check(4096).is_err());
        assert!(Limit::Fixed(0).check(4096).is_err());
        assert_eq!(Limit::Fixed(3), 3);
    }
}
