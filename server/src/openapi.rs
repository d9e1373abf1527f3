//! The OpenAPI 3.1 document of the REST API, generated from the handlers
//! and the `shared` types (utoipa), at `/api/v1/openapi.json`, and an
//! interactive page at `/api/docs` served from the binary (no CDN).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::{api, jobs};

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
        jobs::create, jobs::list, jobs::detail, jobs::tune, jobs::stop, jobs::ingest,
        jobs::delete, jobs::events, jobs::history, jobs::leftovers, jobs::dead_letters, jobs::audit_log, jobs::list_templates,
        jobs::template, jobs::validate, api::healthz, api::readyz, api::version
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
