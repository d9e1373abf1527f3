//! # `server` — QueueLab's control plane
//!
//! An axum application that serves the dashboard, the REST API under
//! `/api/v1` and the live WebSocket at `/api/v1/ws`; the `queuelab`
//! binary (`src/main.rs`) is a thin command line around it.
//!
//! A short tour:
//!
//! * [`config`] — what `queuelab serve` is told: bind address, port, data
//!   directory, where the dashboard's files are, the files roots specs'
//!   paths must stay in and the hosts jobs may connect to.
//! * [`app`] builds the [`axum::Router`] from an [`AppState`]; [`run`]
//!   serves it on a listener until a shutdown future resolves. Tests call
//!   both on `127.0.0.1:0` to get a real server on a free port. This file
//!   holds only those two, the module list and re-exports.
//! * [`state`] — [`AppState`], what every handler receives, and the
//!   numbers the server is built with ([`MAX_BODY`], [`VERSION`], …).
//! * [`routes`] — the HTTP handlers, one module per resource, each with
//!   its `#[utoipa::path]`: [`routes::jobs`] (create, list, inspect, tune,
//!   stop, delete, ingest, events, metric history), [`routes::records`]
//!   (leftovers and dead letters, paged), [`routes::templates`] (templates
//!   and spec validation), [`routes::audit`] (reading the audit log),
//!   [`routes::sweeps`] (the tuning lab), [`routes::workers`] and
//!   [`routes::ops`] (`/healthz`, `/readyz`, `/metrics`,
//!   `/api/v1/version`, JSON 404s). They return [`error::AppError`], and
//!   never import one another: what several share lives below them.
//! * [`api`] — the types the document names besides `shared`'s: the
//!   reusable answers (`api::responses`), path and query parameters
//!   (`api::params`) and bodies (`api::bodies`).
//! * [`requests`] — reading bodies: JSON with the field at fault, the spec
//!   a create or validate request describes.
//! * [`launch`] — starting a job as the server does (limits, confinement,
//!   engine, store, audit), for the job routes and the lab alike.
//! * [`audit`] — the [`audit::Caller`] extractor and writing the audit log.
//! * [`lab`] — the tuning lab's sweeps and soaks: `lab::runs` (what the
//!   server knows of them) and `lab::runner` (starting and measuring).
//! * [`registry`] — the jobs of this process in memory: live engine
//!   handles and archived records, mirrored into the store.
//! * Trust: [`AppState::job_options`] is how every job of the server
//!   runs — paths confined to the files roots (`engine::confine`),
//!   connections to the allow-list plus this server's `/target`
//!   (`engine::egress`). Creation and `/api/v1/validate` check a spec
//!   against them first, so a refusal is a 422 naming the field.
//! * [`metrics`] — Prometheus text at `/metrics`.
//! * [`openapi`] — the OpenAPI document and the interactive docs page; it
//!   only gathers the routes.
//! * [`store`] — jobs, events, metric history and the audit log in SQLite
//!   or PostgreSQL, so finished runs survive restarts and crashes are
//!   noticed; `store::backend` runs the same SQL on either database,
//!   `store::migrations` holds the schema and `store::error` what a call
//!   fails with. While serving, every store call
//!   runs on the store's own threads ([`store::StoreThreads`]), never on
//!   the runtime or a pool a pipeline can fill.
//! * [`ws`] — the WebSocket hub: heartbeats, job snapshots, events and the
//!   job list, to subscribers (`ws::hub`), and the shared snapshot frames
//!   (`ws::frames`).
//! * [`auth`] — bearer tokens with roles (viewer, operator, admin):
//!   `auth::tokens`, the throttling `auth::guard` and the check as
//!   `auth::middleware`.
//! * [`browser`] — what keeps a browser from being turned against the
//!   server: `Host` and `Origin` checks, JSON-only mutations, security
//!   headers.
//! * [`request_id`] — an id per request, in the response header, the log
//!   and every error body; internals go to the log only.
//! * [`assets`] — finds the built dashboard and serves it, falling back to
//!   `index.html` so client-side routes survive a reload.
//! * [`healthcheck`] — a dependency-free HTTP probe for container
//!   `HEALTHCHECK`s (`queuelab healthcheck`).
//! * [`ingest`] — the HTTP endpoint of `http_ingest` sources.
//! * [`limits`] — server-wide caps on running jobs, workers and queued
//!   items, checked by reservation when a job starts or scales up.
//! * [`lines`] — pages of a JSON-lines file by seeking, for leftovers and
//!   dead letters of any size.
//! * [`workers`] — `queuelab worker` processes (leases, labels, what they
//!   run) and the placer thread that spreads each broker stage's workers
//!   over them and the server; [`routes::workers`] is their REST side.
//! * [`target`] — the built-in HTTP test target (`queuelab target`): slow
//!   and flaky on demand, for experiments with the `http` operation.
//!
//! The layers only look down, and no two modules import each other in a
//! circle (`tests/tests/layers.rs` checks it):
//!
//! ```text
//! lib (app, run)
//!   → openapi            gathers the routes into the document
//!   → routes::*          handlers, one module per resource
//!   → lab::runner, launch, requests, audit, auth::middleware, ws::hub, browser, metrics
//!   → state              AppState
//!   → lab::runs, auth::guard, ws::frames, workers, registry, limits, ingest, target
//!   → store              which uses none of the above
//! ```
//!
//! [`api`] (the document's types) sits below the routes and [`openapi`]
//! and uses none of them; [`error`] and [`request_id`] are below all.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod browser;
pub mod config;
pub mod error;
pub mod healthcheck;
pub mod ingest;
pub mod lab;
pub mod launch;
pub mod limits;
pub mod lines;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod request_id;
pub mod requests;
pub mod routes;
pub mod state;
pub mod store;
pub mod target;
pub mod workers;
pub mod ws;

pub use state::{AppState, DEFAULT_MAX_WS_CLIENTS, MAX_BODY, VERSION};

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// Builds the whole HTTP application: API, WebSocket and dashboard.
pub fn app(state: AppState) -> Router {
    // Jobs, templates, the audit log and the WebSocket need a token when
    // auth is on; health, readiness, metrics and the dashboard do not. The
    // test target is open when mounted (see `AppState::with_target`).
    // Bodies of the API and the dashboard's files are compressed when the
    // client accepts it (the wasm bundle shrinks to about 40%); the
    // WebSocket upgrade is left alone.
    let guarded = routes::router()
        .layer(tower_http::compression::CompressionLayer::new())
        .merge(ws::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    let guarded = if state.target_mounted() {
        guarded.nest_service("/target", target::router(target::TargetConfig::default()))
    } else {
        guarded
    };
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(state.cors_origins().to_vec())
        .allow_methods(tower_http::cors::Any)
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ]);
    Router::new()
        .merge(guarded)
        .merge(routes::ops::router())
        .merge(openapi::router())
        .fallback_service(
            tower::ServiceBuilder::new()
                .layer(tower_http::compression::CompressionLayer::new())
                .service(assets::service(state.assets())),
        )
        .layer(cors)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            browser::check_host,
        ))
        .layer(axum::middleware::from_fn(browser::headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(request_id::assign))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` resolves. Then it takes
/// no new jobs (and `/readyz` says so), drains the running jobs for up to
/// `drain_deadline` (aborting what is left, into leftovers), closes the
/// WebSockets with a Close frame and waits for in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_deadline: Duration,
) -> std::io::Result<()> {
    state.set_local_addr(listener.local_addr()?);
    let router = app(state.clone());
    // Job progress goes to the store once a second.
    let persister = {
        let jobs = state.jobs().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                jobs.persist_async().await;
            }
        })
    };
    // Broker stages are placed on their own thread: it may wait on the
    // broker, which nothing serving a request should.
    let placer = workers::Placer::start(state.workers().clone(), state.jobs().clone())?;
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        state.begin_stopping();
        // Sweeps stop first, so they start no new run while jobs drain.
        state.lab().stop_all();
        let jobs = state.jobs().clone();
        tracing::info!(
            deadline_ms = drain_deadline.as_millis() as u64,
            "shutting down: draining jobs"
        );
        let _ = tokio::task::spawn_blocking(move || jobs.drain_all(drain_deadline)).await;
        tracing::info!("closing WebSockets, finishing requests");
        state.shutdown_token().cancel();
    })
    .await;
    persister.abort();
    let _ = tokio::task::spawn_blocking(move || drop(placer)).await;
    served
}
