//! The OpenAPI 3.1 document of the REST API, generated from the handlers
//! and the `shared` types (utoipa), at `/api/v1/openapi.json`, and an
//! interactive page at `/api/docs` served from the binary (no CDN).
//!
//! The document is a contract (`tests/contract/run` holds the server to it
//! with schemathesis): every path and query parameter, status code and
//! error body an operation can answer is in it. Each handler's
//! `#[utoipa::path]` lists its own answers; what the middleware answers
//! for every request of a kind comes from the groups in
//! [`crate::api::responses`], which the handlers name in their
//! `responses(...)`:
//!
//! * [`Always`](crate::api::Always) — any request: 421 (a `Host` the server does not answer
//!   for, [`crate::browser::check_host`]) and 500.
//! * [`Guarded`](crate::api::Guarded) — behind the token check ([`crate::auth::require`]): 401,
//!   403, 429.
//! * [`Mutation`](crate::api::Mutation) — `POST`/`PATCH` with a body: 413 (over
//!   [`crate::state::MAX_BODY`]) and 415 ([`crate::browser::check_content_type`]).
//!
//! This module is the top of the API's layers: it only gathers the
//! [`crate::routes`] (and [`crate::metrics`]) into one document, and
//! names the shared types of [`crate::api`]; nothing below imports it.
//!
//! Every error is an [`ErrorBody`] in JSON, and every response carries
//! `x-request-id` ([`crate::request_id`]), which [`RequestIdHeader`] adds
//! to each response of the document.

use shared::api::ErrorBody;
use utoipa::openapi::RefOr;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{
    BadRequest, FlagFilter, Forbidden, IngestCounts, Internal, MisdirectedRequest, NotFound,
    PayloadTooLarge, StateFilter, TemplateName, TooManyRequests, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
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
        schemas(shared::spec::PipelineSpec, ErrorBody, shared::metrics::JobState, StateFilter, FlagFilter,
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
