//! What every handler receives: [`AppState`], the server's shared state
//! (the jobs, the lab, the limits, the auth guard, the WebSocket caches,
//! the confinement of jobs), and the fixed numbers the server is built
//! with. Below the routes, the middleware and the WebSocket hub, which all
//! take it; above the registry, the store and the other parts it holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::auth::guard::Guard;
use crate::lab::runs::LabRuns;
use crate::ws::frames::FrameCache;
use crate::{ingest, limits, registry, store, target, workers};

/// Largest request body the API accepts (larger ones get 413).
pub const MAX_BODY: usize = 2 << 20;

/// WebSocket connections allowed at once unless configured.
pub const DEFAULT_MAX_WS_CLIENTS: usize = 1000;

/// Version of this build, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared, cheaply clonable state every handler receives.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The server-wide cap on stage workers (`--max-workers`), as a job's
/// automatic limits ask it before starting more. Weak, so a job does not
/// keep the server's state alive.
#[derive(Debug)]
struct ServerBudget(std::sync::Weak<Inner>);

impl engine::auto::WorkerBudget for ServerBudget {
    fn allows(&self, more: u32) -> bool {
        let Some(inner) = self.0.upgrade() else {
            return false;
        };
        // The workers show in the job's next snapshot, which is what the
        // limit counts: no need to keep the reservation.
        AppState { inner }
            .reserve(limits::Usage {
                workers: u64::from(more),
                ..Default::default()
            })
            .is_ok()
    }
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    heartbeat_every: Duration,
    assets: Option<PathBuf>,
    jobs: registry::SharedRegistry,
    /// The tuning lab's sweeps and soaks.
    lab: Arc<LabRuns>,
    /// One permit per WebSocket connection: the connection cap.
    ws_slots: Arc<tokio::sync::Semaphore>,
    /// The cap `ws_slots` started with.
    ws_max: usize,
    /// Whether the API asks for tokens.
    auth: bool,
    /// Whether `/target` is mounted: `None` follows auth (mounted only
    /// when no tokens are asked for).
    target: Option<bool>,
    /// Failed-token throttling and the short-lived token cache.
    guard: Guard,
    /// One permit per ingest request waiting for room: the cap.
    ingest_waiting: Arc<tokio::sync::Semaphore>,
    /// Serialised snapshot frames shared by WebSocket subscribers.
    frames: FrameCache,
    /// Browser origins allowed by CORS.
    cors: Vec<axum::http::HeaderValue>,
    /// Whether `tcp` sources may listen beyond loopback.
    listen_anywhere: bool,
    /// What all running jobs together may hold.
    limits: limits::Limits,
    /// Shares held by jobs being started.
    reservations: Arc<limits::Reservations>,
    /// Host names the server answers for besides IP literals and
    /// `localhost` (see [`crate::browser::check_host`]).
    allowed_hosts: Vec<String>,
    /// Set once shutdown began: no new jobs, not ready.
    stopping: std::sync::atomic::AtomicBool,
    /// Cancelled when the server begins to shut down, so long-lived
    /// WebSocket tasks can say goodbye with a Close frame instead of being
    /// cut off.
    shutdown: CancellationToken,
    /// Where the paths of specs may lead: inside the files roots, never
    /// onto the store.
    files: Arc<engine::confine::FileRoots>,
    /// Hosts jobs may connect to, besides this server's own `/target`.
    http_allow: Vec<engine::egress::AllowEntry>,
    /// Where [`crate::run`] listens, once it does (for the built-in target).
    local_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// Worker processes and where broker stages run.
    workers: Arc<workers::Workers>,
    /// The broker `env:QUEUELAB_NATS_URL` means in a spec.
    nats_url: Option<String>,
}

impl AppState {
    /// State for a server whose dashboard files are in `assets` (or none),
    /// which sends a heartbeat every `heartbeat_every` and keeps job files
    /// under `data_dir`.
    /// Opens the store in `data_dir` (see [`registry::Registry::open`]).
    pub fn new(
        assets: Option<PathBuf>,
        heartbeat_every: Duration,
        data_dir: PathBuf,
    ) -> Result<Self, store::StoreError> {
        Self::with_store(assets, heartbeat_every, data_dir, None)
    }

    /// Like [`AppState::new`], with the store elsewhere: a `postgres://`
    /// URL or a SQLite file.
    pub fn with_store(
        assets: Option<PathBuf>,
        heartbeat_every: Duration,
        data_dir: PathBuf,
        store: Option<&str>,
    ) -> Result<Self, store::StoreError> {
        let jobs = Arc::new(registry::Registry::open(data_dir.clone(), store)?);
        let lab = Arc::new(LabRuns::load(jobs.store()));
        let files = default_files(&data_dir, store).map_err(|e| {
            store::StoreError::Sql(rusqlite::Error::InvalidPath(
                data_dir.join(format!("files ({e})")),
            ))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                heartbeat_every,
                assets,
                jobs,
                lab,
                ws_slots: Arc::new(tokio::sync::Semaphore::new(DEFAULT_MAX_WS_CLIENTS)),
                ws_max: DEFAULT_MAX_WS_CLIENTS,
                auth: false,
                target: None,
                guard: Guard::default(),
                ingest_waiting: Arc::new(tokio::sync::Semaphore::new(ingest::DEFAULT_MAX_WAITING)),
                frames: FrameCache::default(),
                cors: Vec::new(),
                allowed_hosts: Vec::new(),
                listen_anywhere: false,
                limits: limits::Limits::default(),
                reservations: Arc::default(),
                stopping: std::sync::atomic::AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                files: Arc::new(files),
                http_allow: Vec::new(),
                local_addr: std::sync::OnceLock::new(),
                workers: Arc::default(),
                nats_url: None,
            }),
        })
    }

    /// Confines the paths of specs to `roots` instead of `<data dir>/files`
    /// (no change when empty). Each is created if missing.
    pub fn with_files_roots(self, roots: &[PathBuf]) -> std::io::Result<Self> {
        if roots.is_empty() {
            return Ok(self);
        }
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.files = Arc::new(inner.files.with_roots(roots)?);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Lets jobs connect to these hosts and networks (besides the built-in
    /// target, which is always allowed).
    pub fn with_http_allow(self, entries: Vec<engine::egress::AllowEntry>) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.http_allow = entries;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The folders specs' paths must resolve inside, first the one relative
    /// paths resolve against.
    pub fn files_roots(&self) -> &[PathBuf] {
        self.inner.files.roots()
    }

    /// How a job `id` of this server runs: its files under the data
    /// directory, its paths confined to the files roots, its connections to
    /// the allow-list and this server's own `/target`.
    pub fn job_options(&self, id: &str) -> engine::JobOptions {
        let mut allow = self.inner.http_allow.clone();
        let mut opts = engine::JobOptions::new(id, self.jobs().data_dir());
        if let Some(addr) = self.inner.local_addr.get() {
            allow.extend(target::allow_entries(*addr));
            if self.target_mounted() {
                opts.builtin_target = Some(target::base_url(*addr));
            }
        }
        opts.files = engine::confine::Files::Confined(self.inner.files.clone());
        opts.egress = engine::egress::Egress::Only(Arc::new(engine::egress::AllowList::new(allow)));
        opts.listen_anywhere = self.inner.listen_anywhere;
        opts.nats_url = self.inner.nats_url.clone();
        opts.worker_budget = Some(Arc::new(ServerBudget(Arc::downgrade(&self.inner))));
        opts
    }

    /// The broker a spec's `env:QUEUELAB_NATS_URL` means on this server.
    pub fn with_nats_url(self, url: Option<String>) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.nats_url = url;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Keeps broker stages off the server: only worker processes run them.
    pub fn with_no_local_stage_workers(self, no_local: bool) -> Self {
        self.inner.workers.set_no_local(no_local);
        self
    }

    /// Worker processes and where broker stages run.
    pub fn workers(&self) -> &Arc<workers::Workers> {
        &self.inner.workers
    }

    /// Lets `tcp` sources listen on any address, not only on loopback.
    pub fn with_listen_anywhere(self, anywhere: bool) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.listen_anywhere = anywhere;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Time since the state was created, i.e. since the server started.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Interval between heartbeat frames on each WebSocket.
    pub fn heartbeat_every(&self) -> Duration {
        self.inner.heartbeat_every
    }

    /// Folder of the built dashboard, when one was found.
    pub fn assets(&self) -> Option<&std::path::Path> {
        self.inner.assets.as_deref()
    }

    /// Caps WebSocket connections at `max` (the default is
    /// [`DEFAULT_MAX_WS_CLIENTS`]).
    pub fn with_max_ws_clients(self, max: usize) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.ws_slots = Arc::new(tokio::sync::Semaphore::new(max));
        inner.ws_max = max;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Turns token checks on or off (off by default).
    pub fn with_auth(self, enabled: bool) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.auth = enabled;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Allows `per_minute` unknown tokens per client address before it is
    /// refused with 429 (the default is [`crate::auth::FAILURES_PER_MINUTE`]).
    pub fn with_auth_failures_per_minute(self, per_minute: u32) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.guard = Guard::new(per_minute);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Mounts the built-in test target at `/target` (`Some(true)`), never
    /// (`Some(false)`), or only while the API asks for no tokens (`None`,
    /// the default): it answers without a token, since a job's `http` op
    /// cannot send one, so a shared server offers it only when asked.
    pub fn with_target(self, mounted: Option<bool>) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.target = mounted;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Caps ingest requests waiting for room at once, server-wide (the
    /// default is [`ingest::DEFAULT_MAX_WAITING`]); more get 503.
    pub fn with_max_ingest_waiting(self, max: usize) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.ingest_waiting = Arc::new(tokio::sync::Semaphore::new(max));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Whether `/target` is mounted.
    pub fn target_mounted(&self) -> bool {
        self.inner.target.unwrap_or(!self.inner.auth)
    }

    /// Allows browsers on these origins to call the API.
    pub fn with_cors_origins(
        self,
        origins: &[String],
    ) -> Result<Self, axum::http::header::InvalidHeaderValue> {
        let cors = origins
            .iter()
            .map(|o| axum::http::HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()?;
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.cors = cors;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Also answers for these host names (besides IP literals and
    /// `localhost`), e.g. the name a team reaches a staging server by.
    pub fn with_allowed_hosts(self, hosts: &[String]) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.allowed_hosts = hosts.iter().map(|h| h.trim().to_owned()).collect();
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Caps what all running jobs together may hold (see [`crate::limits`]).
    pub fn with_limits(self, limits: limits::Limits) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).expect("configure the state before sharing it");
        inner.limits = limits;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Reserves `more` against the server-wide limits, on top of what the
    /// running jobs hold; the share is given back when the reservation is
    /// dropped.
    pub fn reserve(&self, more: limits::Usage) -> Result<limits::Reservation, limits::LimitError> {
        self.inner
            .reservations
            .reserve(&self.inner.limits, self.jobs().running_usage(), more)
    }

    /// Host names answered for besides IP literals and `localhost`.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.inner.allowed_hosts
    }

    /// Browser origins allowed to call the API (and open the WebSocket).
    pub fn cors_origins(&self) -> &[axum::http::HeaderValue] {
        &self.inner.cors
    }

    /// Snapshot frames shared by WebSocket subscribers.
    pub fn frames(&self) -> &FrameCache {
        &self.inner.frames
    }

    /// Whether the API asks for tokens.
    pub fn auth_enabled(&self) -> bool {
        self.inner.auth
    }

    /// Failed-token throttling and the token cache.
    pub fn guard(&self) -> &Guard {
        &self.inner.guard
    }

    /// Permits of ingest requests allowed to wait.
    pub fn ingest_waiting(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.ingest_waiting
    }

    /// Open WebSocket connections.
    pub fn ws_clients(&self) -> usize {
        self.inner
            .ws_max
            .saturating_sub(self.inner.ws_slots.available_permits())
    }

    /// True once the server began shutting down.
    pub fn is_stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Free WebSocket connection slots.
    pub fn ws_slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.ws_slots
    }

    /// The jobs of this server.
    pub fn jobs(&self) -> &registry::SharedRegistry {
        &self.inner.jobs
    }

    /// The tuning lab's sweeps and soaks.
    pub fn lab(&self) -> &LabRuns {
        &self.inner.lab
    }

    /// Remembers where the server listens (for the built-in target); the
    /// first address set stays.
    pub(crate) fn set_local_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.inner.local_addr.set(addr);
    }

    /// Marks the server as shutting down: no new jobs, not ready.
    pub(crate) fn begin_stopping(&self) {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Token cancelled at shutdown; long-lived tasks select on it.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// The default confinement of a server keeping its state in `data_dir`:
/// `<data dir>/files` (created), never the store (`queuelab.db`, or the
/// SQLite file `store` names) nor the jobs' folders.
fn default_files(
    data_dir: &std::path::Path,
    store: Option<&str>,
) -> std::io::Result<engine::confine::FileRoots> {
    let mut files = engine::confine::FileRoots::new(&[data_dir.join("files")])?
        .protect_database(&data_dir.join("queuelab.db"))
        .protect_dir(&data_dir.join("jobs"));
    if let Some(place) = store
        && !(place.starts_with("postgres://") || place.starts_with("postgresql://"))
    {
        files = files.protect_database(std::path::Path::new(place));
    }
    Ok(files)
}
