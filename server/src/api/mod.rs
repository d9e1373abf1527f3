//! The types the OpenAPI document names besides `shared`'s: reusable
//! answers ([`responses`]), path and query parameters ([`params`]) and
//! bodies ([`bodies`]). They sit below the routes, which name them in
//! their `#[utoipa::path]`s, and below [`crate::openapi`], which gathers
//! the routes into the document.

pub mod bodies;
pub mod params;
pub mod responses;

pub use bodies::{FromTemplate, IngestCounts, IngestRefused, JobRequest};
pub use params::{FlagFilter, JobId, LabId, StateFilter, TemplateName, TemplatePath};
pub use responses::{
    Always, BadRequest, Forbidden, Guarded, Internal, MisdirectedRequest, Mutation, NotFound,
    PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable, UnsupportedMediaType,
};
