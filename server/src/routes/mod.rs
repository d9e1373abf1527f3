//! The HTTP handlers, one module per resource. Each module has its own
//! `router()`; [`router`] merges the ones that sit behind the token check
//! (jobs, records, sweeps, templates, audit, workers), while [`ops`] is merged on its own
//! by [`crate::app`] so health, readiness and metrics need no token.
//!
//! Handlers call the [`crate::registry`] and the [`crate::store`]; neither
//! of those knows about HTTP routes.

pub mod audit;
pub mod jobs;
pub mod ops;
pub mod query;
pub mod records;
pub mod sweeps;
pub mod templates;
pub mod workers;

use axum::Router;

use crate::state::AppState;

/// The API under `/api/v1` that asks for a token when auth is on: jobs,
/// their records, templates and validation, the audit log.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(jobs::router())
        .merge(records::router())
        .merge(sweeps::router())
        .merge(templates::router())
        .merge(audit::router())
        .merge(workers::router())
}
