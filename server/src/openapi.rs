//! The OpenAPI 3.1 document of the REST API, generated from the handlers
//! and the `shared` types (utoipa), at `/api/v1/openapi.json`, and an
//! interactive page at `/api/docs` served from the binary (no CDN).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;

/// Adds the bearer-token scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "QueueLab",
        description = "Run, watch, tune and gracefully stop producer/consumer queue pipelines. \
            The WebSocket at /api/v1/ws streams the frames of `shared::ws`."
    ),
    paths(
        routes::jobs::create, routes::jobs::list, routes::jobs::detail, routes::jobs::tune,
        routes::jobs::stop, routes::jobs::ingest, routes::jobs::delete, routes::jobs::events,
        routes::jobs::history, routes::records::leftovers, routes::records::dead_letters,
        routes::audit::audit_log, routes::templates::list_templates, routes::templates::template,
        routes::templates::validate, routes::ops::healthz, routes::ops::readyz, routes::ops::version
    ),
    components(schemas(shared::spec::PipelineSpec, shared::api::ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "Pipelines: start, watch, tune, stop"),
        (name = "templates", description = "The article's scenarios"),
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
