//! The jobs of this server process, in memory: live ones (running in the
//! engine, or finished in this process) and archived ones (loaded from the
//! [`Store`] after a restart).
//!
//! The engine runs each job on its own threads and runtime; the registry
//! only holds their handles, mirrors their progress into the store, and
//! answers the listing and detail views the routes and the WebSocket
//! need.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use engine::JobHandle;
use shared::api::{JobDetail, JobSummary};
use shared::metrics::{JobReport, JobSnapshot};

use crate::error::AppError;
use crate::store::{JobRecord, Store, StoreError, StoreThreads};

/// Threads serving the store's calls (see [`StoreThreads`]): one for the
/// persist loop and one for requests, so neither waits behind the other
/// for a thread (they still take turns on the one connection).
const STORE_THREADS: usize = 2;

/// The jobs of this server: live ones (running in the engine, or finished
/// in this process) and archived ones (loaded from the store after a
/// restart). Everything is mirrored into the [`Store`].
#[derive(Debug)]
pub struct Registry {
    data_dir: PathBuf,
    next: AtomicU64,
    jobs: RwLock<BTreeMap<String, Entry>>,
    store: Arc<Store>,
    /// Where store calls run while serving.
    db: StoreThreads,
    /// Per live job: events already saved, and whether its report is.
    saved: Mutex<HashMap<String, (usize, bool)>>,
}

/// One job of the registry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The template it was made from, if any.
    pub(crate) template: Option<String>,
    /// When it was created, milliseconds since the Unix epoch.
    pub(crate) created_at_ms: u64,
    /// Where it lives: in the engine, or only in the store.
    pub(crate) kind: Kind,
}

/// Where a job of the registry lives.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// In the engine.
    Live(JobHandle),
    /// From the store: finished (or interrupted) before this process.
    Archived(Arc<JobRecord>),
}

impl Entry {
    /// The engine's handle, or a conflict if the job is archived.
    pub(crate) fn live(&self) -> Result<&JobHandle, AppError> {
        match &self.kind {
            Kind::Live(h) => Ok(h),
            Kind::Archived(r) => Err(AppError::Conflict(format!(
                "the job is {}, not running",
                r.summary.state
            ))),
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registry {
    /// Opens the store under `data_dir` (`queuelab.db`), marks jobs a crash
    /// left running as `interrupted`, and loads every stored job.
    /// `store` names a PostgreSQL URL or a SQLite file; by default the
    /// store is `queuelab.db` in `data_dir`.
    pub fn open(data_dir: PathBuf, store: Option<&str>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            StoreError::Sql(rusqlite::Error::InvalidPath(
                data_dir.join(format!("({e})")),
            ))
        })?;
        let store = match store {
            Some(place) => Store::open_at(place)?,
            None => Store::open(&data_dir.join("queuelab.db"))?,
        };
        let interrupted = store.mark_interrupted()?;
        if !interrupted.is_empty() {
            tracing::warn!(jobs = ?interrupted, "jobs left running by the last process are marked interrupted");
        }
        let jobs = store
            .jobs()?
            .into_iter()
            .map(|r| {
                (
                    r.summary.id.clone(),
                    Entry {
                        template: r.summary.template.clone(),
                        created_at_ms: r.summary.created_at_ms,
                        kind: Kind::Archived(Arc::new(r)),
                    },
                )
            })
            .collect();
        let store = Arc::new(store);
        Ok(Self {
            data_dir,
            next: AtomicU64::new(1),
            jobs: RwLock::new(jobs),
            db: StoreThreads::start(store.clone(), STORE_THREADS),
            store,
            saved: Mutex::new(HashMap::new()),
        })
    }

    /// The store behind the registry, for blocking callers (the CLI,
    /// tests). While serving, go through [`Registry::db`].
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store's own threads: how handlers, auth and the persist loop
    /// reach the store without blocking the runtime.
    pub fn db(&self) -> &StoreThreads {
        &self.db
    }

    /// [`Registry::persist`] on the store's threads.
    pub async fn persist_async(self: &Arc<Self>) {
        let me = self.clone();
        if let Err(e) = self.db.run(move |_| me.persist()).await {
            tracing::error!(error = %e, "cannot save job progress");
        }
    }

    /// The folder job files go under (each job in a folder named by its id).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How a file of the server's is named to clients: relative to the
    /// data directory, never as the server's absolute path (which tells
    /// an outsider how the host is laid out).
    pub fn public_path(&self, path: &str) -> String {
        let p = Path::new(path);
        if let Ok(rel) = p.strip_prefix(&self.data_dir) {
            return rel.display().to_string();
        }
        if p.is_relative() {
            return path.to_owned();
        }
        p.file_name()
            .map_or_else(String::new, |n| format!(".../{}", n.to_string_lossy()))
    }

    /// Everything about a job as clients see it: [`detail_of`] with the
    /// report's file names made public (see [`Registry::public_path`]).
    pub(crate) fn detail(&self, entry: &Entry) -> JobDetail {
        let mut d = detail_of(entry);
        if let Some(r) = &mut d.report {
            for f in [&mut r.dead_letters_file, &mut r.leftovers_file]
                .into_iter()
                .flatten()
            {
                *f = self.public_path(f);
            }
        }
        d
    }

    /// Saves the progress of every live job not yet saved in full: its
    /// snapshot, new events, a history point, its report once finished.
    /// Blocking: run it on the store's threads ([`Registry::persist_async`]).
    pub fn persist(&self) {
        let live: Vec<JobHandle> = self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Live(h) => Some(h.clone()),
                Kind::Archived(_) => None,
            })
            .collect();
        for h in live {
            let (from, done) = self
                .saved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(h.id())
                .copied()
                .unwrap_or((0, false));
            if done {
                continue;
            }
            // The report first: once it is there, the snapshot is final.
            let report = h.report();
            let snapshot = h.snapshot();
            let events = h.events_since(from);
            match self
                .store
                .save_progress(h.id(), &snapshot, from, &events, report.as_deref())
            {
                Ok(()) => match report {
                    Some(report) => self.archive(&h, snapshot, report),
                    None => {
                        self.saved
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(h.id().to_owned(), (from + events.len(), false));
                    }
                },
                Err(e) => tracing::error!(job = %h.id(), error = %e, "cannot save job progress"),
            }
        }
    }

    /// Swaps a finished job's engine handle for its stored record, once
    /// the record is complete in the store. Dropping the handle releases
    /// what the job still held (its runtime's epoll and eventfd, HTTP
    /// pools, database connections, histograms); the history, the report
    /// and the final snapshot are all a finished job needs.
    fn archive(&self, h: &JobHandle, snapshot: Arc<JobSnapshot>, report: Arc<JobReport>) {
        let mut jobs = self.jobs.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = jobs.get_mut(h.id())
            && matches!(entry.kind, Kind::Live(_))
        {
            let record = JobRecord {
                summary: summary(entry),
                spec: h.spec().clone(),
                snapshot: Some((*snapshot).clone()),
                report: Some((*report).clone()),
            };
            entry.kind = Kind::Archived(Arc::new(record));
        }
        drop(jobs);
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(h.id());
    }

    /// A fresh id: creation time and a counter, so ids sort by age and
    /// never repeat across restarts (job folders are named after them).
    pub(crate) fn new_id(&self) -> String {
        format!(
            "j{}-{}",
            now_ms(),
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Drains every running job, waits up to `deadline` for them to
    /// finish, then aborts what is still running (into leftovers).
    pub fn drain_all(&self, deadline: std::time::Duration) {
        let handles = self.live_handles();
        for h in &handles {
            let _ = h.drain_within(Some(deadline));
        }
        // The drain deadline escalates each job to an abort by itself.
        for h in &handles {
            h.wait();
        }
        self.persist();
    }

    /// Looks at where job `id` lives, under the read lock.
    fn kind_of<R>(&self, id: &str, f: impl FnOnce(&Kind) -> Option<R>) -> Option<R> {
        f(&self
            .jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)?
            .kind)
    }

    /// The handles of every job still running.
    pub fn live_handles(&self) -> Vec<JobHandle> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|e| match &e.kind {
                Kind::Live(h) if !h.state().is_finished() => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    /// The handle of job `id`, if there is one.
    pub fn handle(&self, id: &str) -> Option<JobHandle> {
        self.kind_of(id, |k| match k {
            Kind::Live(h) => Some(h.clone()),
            Kind::Archived(_) => None,
        })
    }

    /// What the running jobs hold against the server-wide limits.
    pub fn running_usage(&self) -> crate::limits::Usage {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner());
        let mut used = crate::limits::Usage::default();
        for entry in jobs.values() {
            if let Kind::Live(h) = &entry.kind
                && !h.state().is_finished()
            {
                let u = crate::limits::Usage::of_running(h.spec(), &h.snapshot());
                used.jobs += u.jobs;
                used.workers += u.workers;
                used.queued += u.queued;
            }
        }
        used
    }

    /// The final report of job `id`, once it has finished.
    pub fn report(&self, id: &str) -> Option<JobReport> {
        self.kind_of(id, |k| match k {
            Kind::Live(h) => h.report().map(|r| (*r).clone()),
            Kind::Archived(r) => r.report.clone(),
        })
    }

    /// The newest snapshot of job `id`: live, or the last one stored.
    pub fn latest_snapshot(&self, id: &str) -> Option<Arc<JobSnapshot>> {
        self.kind_of(id, |k| match k {
            Kind::Live(h) => Some(h.snapshot()),
            Kind::Archived(r) => r.snapshot.clone().map(Arc::new),
        })
    }

    /// Every job, newest first.
    pub fn summaries(&self) -> Vec<JobSummary> {
        let jobs = self.jobs.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut all: Vec<JobSummary> = jobs.values().map(summary).collect();
        all.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
        all
    }

    /// Job `id`, or a 404.
    pub(crate) fn get(&self, id: &str) -> Result<Entry, AppError> {
        self.jobs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::NotFound(format!("no job `{id}`")))
    }

    /// Adds (or replaces) job `id` in memory; the store is the caller's.
    pub(crate) fn insert(&self, id: String, entry: Entry) {
        self.jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, entry);
    }

    /// Forgets job `id` in memory, and what of it was saved; the store is
    /// the caller's.
    pub(crate) fn remove(&self, id: &str) {
        self.jobs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The registry as the app state holds it.
pub type SharedRegistry = Arc<Registry>;

/// The listing fields of a job, live or archived.
pub(crate) fn summary(entry: &Entry) -> JobSummary {
    let h = match &entry.kind {
        Kind::Live(h) => h,
        Kind::Archived(r) => return r.summary.clone(),
    };
    let snap = h.snapshot();
    let report = h.report();
    JobSummary {
        id: h.id().to_owned(),
        name: h.spec().name.clone(),
        template: entry.template.clone(),
        state: h.state(),
        created_at_ms: entry.created_at_ms,
        elapsed_ms: report
            .as_ref()
            .map_or(snap.elapsed_ms, |r| (r.elapsed_s * 1000.0) as u64),
        accounting: report.as_ref().map_or(snap.accounting, |r| r.accounting),
        throughput: report.as_ref().map_or(snap.throughput, |r| r.throughput),
        p99_us: report
            .as_ref()
            .map_or(snap.end_to_end_total.p99_us, |r| r.end_to_end.p99_us),
    }
}

/// Everything about a job, live or archived: spec, snapshot, report,
/// with the server's own file paths (for the server's use; clients get
/// [`Registry::detail`]).
pub(crate) fn detail_of(entry: &Entry) -> JobDetail {
    match &entry.kind {
        Kind::Live(h) => JobDetail {
            summary: summary(entry),
            spec: h.spec().clone(),
            snapshot: (*h.snapshot()).clone(),
            report: h.report().map(|r| (*r).clone()),
        },
        Kind::Archived(r) => JobDetail {
            summary: r.summary.clone(),
            spec: r.spec.clone(),
            snapshot: r.snapshot.clone().unwrap_or_default(),
            report: r.report.clone(),
        },
    }
}
