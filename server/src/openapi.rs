//! The OpenAPI 3.1 document of the REST API, generated from the handlers
//! and the `shared` types (utoipa), at `/api/v1/openapi.json`, and an
//! interactive page at `/api/docs` served from the binary (no CDN).
//!
//! The document is a contract (`tests/contract/run` holds the server to it
//! with schemathesis): every path and query parameter, status code and
//! error body an operation can answer is in it. Each handler's
//! `#[utoipa::path]` lists its own answers; what the middleware answers
//! for every request of a kind comes from the groups below, which the
//! handlers name in their `responses(...)`:
//!
//! * [`Always`] — any request: 421 (a `Host` the server does not answer
//!   for, [`crate::browser::check_host`]) and 500.
//! * [`Guarded`] — behind the token check ([`crate::auth::require`]): 401,
//!   403, 429.
//! * [`Mutation`] — `POST`/`PATCH` with a body: 413 (over
//!   [`crate::MAX_BODY`]) and 415 ([`crate::browser::check_content_type`]).
//!
//! Every error is an [`ErrorBody`] in JSON, and every response carries
//! `x-request-id` ([`crate::request_id`]), which [`RequestIdHeader`] adds
//! to each response of the document.

use std::collections::BTreeMap;

use shared::api::ErrorBody;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;

/// Adds the bearer-token scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>` (tokens come from `queuelab token \
                         create`). Roles: viewer reads and validates; operator also creates, \
                         tunes, stops and feeds jobs; admin also deletes jobs and reads the \
                         audit log.",
                    ))
                    .build(),
            ),
        );
    }
}

fn request_id_header() -> Header {
    HeaderBuilder::new()
        .schema(Some(Object::with_type(Type::String)))
        .description(Some(
            "The id of this request, also in the server's log and in every error body",
        ))
        .build()
}

/// Adds `x-request-id` to every response, since [`crate::request_id::assign`]
/// sets it on every response the server sends.
struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let add = |response: &mut RefOr<Response>| {
            if let RefOr::T(response) = response {
                response
                    .headers
                    .entry(crate::request_id::HEADER.to_owned())
                    .or_insert_with(|| RefOr::T(request_id_header()));
            }
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                op.responses.responses.values_mut().for_each(add);
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            components.responses.values_mut().for_each(add);
        }
    }
}

/// A JSON [`ErrorBody`] answer; 429s also say when to try again.
fn error_response(name: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if name == "TooManyRequests" {
        response = response.header(
            "retry-after",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::Integer)))
                .description(Some(
                    "Seconds to wait before trying again (when the client is throttled)",
                ))
                .build(),
        );
    }
    response.build()
}

/// Reusable error answers, in `#/components/responses`: each a JSON
/// [`ErrorBody`] whose stable `code` its description names.
macro_rules! error_responses {
    ($($(#[$meta:meta])* $name:ident => $description:expr;)*) => {$(
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;

        impl $name {
            /// What the answer means, as documented.
            pub const DESCRIPTION: &'static str = $description;
        }

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let name = stringify!($name);
                (name, error_response(name, Self::DESCRIPTION).into())
            }
        }
    )*};
}

error_responses! {
    /// 400.
    BadRequest => "`bad_request`: the query string or the body cannot be read (an unknown \
        query parameter, a value of the wrong type, a body that is not UTF-8)";
    /// 401.
    Unauthorized => "`unauthorized`: no API token, or an unknown one \
        (`Authorization: Bearer <token>`)";
    /// 403.
    Forbidden => "`forbidden`: the token's role does not allow this (viewer < operator < admin)";
    /// 404.
    NotFound => "`not_found`: no such job, template or endpoint";
    /// 413.
    PayloadTooLarge => "`payload_too_large`: the body is larger than 2 MiB";
    /// 415.
    UnsupportedMediaType => "`unsupported_media_type`: the body's `Content-Type` is not one \
        this operation reads (see its request body); a mutation without one is refused";
    /// 421.
    MisdirectedRequest => "`misdirected_host`: the `Host` header names a host this server \
        does not answer for (only IP literals, `localhost` and `--allowed-host` names)";
    /// 429.
    TooManyRequests => "`limit_reached`: a server-wide limit on running jobs, workers or \
        queued items would be passed; or too many requests with bad tokens from this client \
        (`Retry-After` says when to try again)";
    /// 500.
    Internal => "`internal`: a failure on the server's side; the message says nothing \
        more, the request id finds it in the server's log";
    /// 503.
    Unavailable => "`unavailable`: the server is shutting down, or the system refused the \
        threads the request needs; try again later";
}

/// A group of reusable answers, by status code.
fn refs(answers: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|(status, name)| {
            (
                (*status).to_owned(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// What any request may be answered, whatever the operation: 421 (the
/// `Host` check runs first) and 500.
#[derive(Debug)]
pub struct Always;

impl utoipa::IntoResponses for Always {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[("421", "MisdirectedRequest"), ("500", "Internal")])
    }
}

/// What an operation behind the token check may be answered: 401, 403,
/// 429 (see [`Always`] too).
#[derive(Debug)]
pub struct Guarded;

impl utoipa::IntoResponses for Guarded {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = Always::responses();
        all.extend(refs(&[
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("429", "TooManyRequests"),
        ]));
        all
    }
}

/// What a guarded `POST`/`PATCH` with a body may be answered: 413, 415
/// (and what [`Guarded`] lists).
#[derive(Debug)]
pub struct Mutation;

impl utoipa::IntoResponses for Mutation {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = Guarded::responses();
        all.extend(refs(&[
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
        ]));
        all
    }
}

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

/// The body of `POST /api/v1/jobs` and `POST /api/v1/validate` as JSON: a
/// whole spec, or a template with overrides.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum JobRequest {
    /// A whole spec.
    Spec(Box<shared::spec::PipelineSpec>),
    /// A template with overrides.
    Template(routes::jobs::FromTemplate),
}

/// How an ingest request went: how many of its lines were queued, refused
/// or not taken (the JSON of `engine::source::Ingested`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct IngestCounts {
    /// Lines queued.
    pub accepted: u64,
    /// Lines refused by a full queue's policy (`reject`, `drop_newest`);
    /// the client may send them again.
    pub refused: u64,
    /// Lines not taken because the source stopped; send them elsewhere.
    pub not_taken: u64,
}

/// The body of a 429 from `POST /api/v1/jobs/{id}/ingest`: counts when a
/// full queue refused lines, an [`ErrorBody`] when the client is throttled.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum IngestRefused {
    /// Some lines were not queued.
    Counts(IngestCounts),
    /// Throttled.
    Error(ErrorBody),
}

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

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "QueueLab",
        description = "Run, watch, tune and gracefully stop producer/consumer queue pipelines. \
            The WebSocket at /api/v1/ws streams the frames of `shared::ws`. \
            Every error is a JSON `ErrorBody` with a stable `code`; every response carries \
            `x-request-id`. `POST` and `PATCH` need the media type their request body names \
            (415 otherwise); an undocumented method answers 405 with `Allow`, an unknown \
            `/api` path a JSON 404."
    ),
    paths(
        routes::jobs::create, routes::jobs::list, routes::jobs::detail, routes::jobs::tune,
        routes::jobs::stop, routes::jobs::replay, routes::jobs::ingest, routes::jobs::delete, routes::jobs::events,
        routes::jobs::history, routes::records::leftovers, routes::records::dead_letters,
        routes::audit::audit_log, routes::templates::list_templates, routes::templates::template, routes::templates::list_lessons,
        routes::templates::validate, routes::sweeps::create_sweep, routes::sweeps::create_soak,
        routes::sweeps::list, routes::sweeps::detail, routes::sweeps::stop, routes::sweeps::delete,
        routes::sweeps::knobs, routes::workers::register, routes::workers::heartbeat,
        routes::workers::leave, routes::workers::list, routes::ops::healthz, routes::ops::readyz, routes::ops::version,
        crate::metrics::metrics
    ),
    components(
        schemas(shared::spec::PipelineSpec, ErrorBody, shared::metrics::JobState, StateFilter,
            TemplateName, IngestCounts),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge,
            UnsupportedMediaType, MisdirectedRequest, TooManyRequests, Internal, Unavailable)
    ),
    modifiers(&BearerAuth, &RequestIdHeader),
    tags(
        (name = "jobs", description = "Pipelines: start, watch, tune, stop"),
        (name = "templates", description = "The article's scenarios"),
        (name = "lab", description = "The tuning lab: sweeps, capacity searches, soaks"),
        (name = "workers", description = "Worker processes that run broker stages"),
        (name = "admin", description = "Audit log"),
        (name = "operations", description = "Health and version")
    )
)]
pub struct ApiDoc;

/// `/api/v1/openapi.json` and the docs page at `/api/docs`.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    SwaggerUi::new("/api/docs")
        .url("/api/v1/openapi.json", ApiDoc::openapi())
        .into()
}
