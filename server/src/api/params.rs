//! The path and query parameters the routes share in the document: the
//! ids in their paths, and the schemas of values a plain type would
//! describe too loosely (the built-in templates' names, the job-state
//! filter).

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, ToSchema};

/// The `{id}` of the job routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobId {
    /// The job's id, as `POST /api/v1/jobs` answered it (`Location`).
    pub id: String,
}

/// The `{id}` of the sweep routes.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct LabId {
    /// The sweep's or soak's id, as `POST /api/v1/sweeps` answered it.
    pub id: String,
}

/// The `{name}` of `GET /api/v1/templates/{name}`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    /// A template's name, as `GET /api/v1/templates` lists them.
    #[param(value_type = TemplateName)]
    pub name: String,
}

/// The names of the built-in templates (compiled in, so the document can
/// list them all).
#[derive(Debug)]
pub struct TemplateName;

impl utoipa::PartialSchema for TemplateName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(shared::templates::ALL.iter().map(|t| t.name)))
            .description(Some("A built-in template (`GET /api/v1/templates`)"))
            .into()
    }
}

impl ToSchema for TemplateName {}

/// The schema of `state` in `GET /api/v1/jobs`: a [`JobState`], or empty
/// for no filter (what a form or a query builder sends for an unset one;
/// see [`crate::routes::query::empty_as_none`]).
///
/// [`JobState`]: shared::metrics::JobState
#[derive(Debug)]
pub struct StateFilter;

impl utoipa::PartialSchema for StateFilter {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name("JobState"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([""])),
            )
            .description(Some("A job state, or empty for any"))
            .into()
    }
}

impl ToSchema for StateFilter {}

/// The schema of a yes/no filter such as `finished` in `GET /api/v1/jobs`:
/// `true`, `false`, or empty for no filter (see
/// [`crate::routes::query::flag`]).
#[derive(Debug)]
pub struct FlagFilter;

impl utoipa::PartialSchema for FlagFilter {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([""])),
            )
            .description(Some("`true` or `false`, or empty for both"))
            .into()
    }
}

impl ToSchema for FlagFilter {}
