//! Worker processes and where broker stages run.
//!
//! * [`Workers`] — the `queuelab worker` processes registered with this
//!   server: their leases, their labels, what they report running.
//! * [`Placer`] — a thread of its own (it never runs on the API's
//!   runtime, and a slow broker cannot hold a request up) that, a few
//!   times a second, marks workers whose lease ran out as lost and
//!   spreads each broker stage's `workers` over the live workers whose
//!   labels match — and the server itself, unless it was told not to run
//!   stages. A worker learns its share from its next heartbeat's reply; a
//!   tune of `workers` or a worker joining or leaving spreads again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::workers::{
    Assignment, EdgeNames, Heartbeat, HeartbeatReply, HostLimits, Placed, RegisterRequest,
    Registered, Running, StageCounts, WorkerInfo, WorkerState,
};

use crate::registry::SharedRegistry;

/// A worker not heard from for this long is lost.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a worker beats.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// How often the placer looks.
pub const PLACE_EVERY: Duration = Duration::from_millis(250);
/// The name the server's own share goes by in a placement.
pub const SERVER: &str = "server";
/// Most workers registered at once (lost ones included until they are
/// forgotten).
pub const MAX_WORKERS: usize = 256;
/// A lost worker is forgotten after this long.
pub const FORGET_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Worker {
    name: String,
    host: String,
    version: String,
    labels: Vec<String>,
    capacity_hint: Option<u32>,
    last_beat: Instant,
    state: WorkerState,
    running: Vec<Running>,
}

/// One host's part of a broker stage: worker id (or [`SERVER`]), its
/// worker count, its share of the stage's limits.
type Share = (String, u32, HostLimits);

#[derive(Debug, Default)]
struct Inner {
    /// Bumped whenever a worker joins, leaves or is lost.
    version: u64,
    workers: BTreeMap<String, Worker>,
    /// Where each broker stage runs: its assignment and, per worker id,
    /// its count and its share of the stage's limits.
    placements: BTreeMap<EdgeNames, (Assignment, Vec<Share>)>,
    next: u64,
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Too many workers are registered.
    #[error("this server takes at most {MAX_WORKERS} workers")]
    Full,
}

/// The worker processes of this server.
#[derive(Debug, Default)]
pub struct Workers {
    inner: Mutex<Inner>,
    /// Whether the server runs a share of broker stages itself.
    no_local: AtomicBool,
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps broker stages off the server itself (they wait for workers).
    pub fn set_no_local(&self, no_local: bool) {
        self.no_local.store(no_local, Ordering::Relaxed);
    }

    /// Registers a worker. One registering again under the name of a
    /// worker it replaces (a restart) takes its place.
    pub fn register(&self, req: RegisterRequest) -> Result<Registered, RegisterError> {
        let mut inner = self.lock();
        inner.workers.retain(|_, w| w.name != req.name);
        if inner.workers.len() >= MAX_WORKERS {
            return Err(RegisterError::Full);
        }
        inner.next += 1;
        inner.version += 1;
        // Not guessable: the id is what a heartbeat (and its assignments)
        // is asked with.
        let id = format!("w{}-{:016x}", inner.next, rand::random::<u64>());
        tracing::info!(worker = %id, name = %req.name, host = %req.host, labels = ?req.labels, "worker registered");
        inner.workers.insert(
            id.clone(),
            Worker {
                name: req.name,
                host: req.host,
                version: req.version,
                labels: req.labels,
                capacity_hint: req.capacity_hint,
                last_beat: Instant::now(),
                state: WorkerState::Active,
                running: Vec::new(),
            },
        );
        Ok(Registered {
            id,
            lease_ms: LEASE.as_millis() as u64,
            heartbeat_ms: HEARTBEAT.as_millis() as u64,
        })
    }

    /// A heartbeat: renews the lease and answers with everything the
    /// worker should run. `None` for a worker this server does not know
    /// (lost, or registered before a restart): it registers again.
    pub fn heartbeat(&self, id: &str, beat: Heartbeat) -> Option<HeartbeatReply> {
        let mut inner = self.lock();
        let worker = inner.workers.get_mut(id)?;
        if worker.state == WorkerState::Lost {
            return None;
        }
        worker.last_beat = Instant::now();
        worker.running = beat.running;
        let assignments = inner
            .placements
            .values()
            .filter_map(|(assignment, placed)| {
                let &(_, n, limits) = placed.iter().find(|(w, _, _)| w == id)?;
                (n > 0).then(|| Placed {
                    assignment: assignment.clone(),
                    workers: n,
                    limits,
                })
            })
            .collect();
        Some(HeartbeatReply { assignments })
    }

    /// A worker leaving on its own (`queuelab worker` stopping).
    pub fn leave(&self, id: &str) -> bool {
        let mut inner = self.lock();
        let left = inner.workers.remove(id);
        if left.is_some() {
            inner.version += 1;
        }
        drop(inner);
        if let Some(w) = &left {
            tracing::info!(worker = %id, name = %w.name, "worker left");
        }
        left.is_some()
    }

    /// `(version, active, lost)`: what the WebSocket's `workers` frame says.
    pub fn census(&self) -> (u64, u32, u32) {
        let inner = self.lock();
        let active = inner
            .workers
            .values()
            .filter(|w| w.state == WorkerState::Active)
            .count() as u32;
        (inner.version, active, inner.workers.len() as u32 - active)
    }

    /// Every worker, for `GET /api/v1/workers`.
    pub fn list(&self) -> Vec<WorkerInfo> {
        let inner = self.lock();
        inner
            .workers
            .iter()
            .map(|(id, w)| {
                let mut counts = StageCounts::default();
                for r in &w.running {
                    counts.add(&r.counts);
                }
                WorkerInfo {
                    id: id.clone(),
                    name: w.name.clone(),
                    host: w.host.clone(),
                    version: w.version.clone(),
                    labels: w.labels.clone(),
                    state: w.state,
                    last_heartbeat_ms_ago: w.last_beat.elapsed().as_millis() as u64,
                    assignments: w.running.clone(),
                    counts,
                }
            })
            .collect()
    }

    /// Marks workers past their lease lost (their share is placed again
    /// on the next pass) and forgets long-lost ones.
    fn expire(&self) {
        let mut inner = self.lock();
        let mut changed = false;
        for (id, w) in inner.workers.iter_mut() {
            if w.state == WorkerState::Active && w.last_beat.elapsed() > LEASE {
                tracing::warn!(worker = %id, name = %w.name, "worker lost: its lease ran out");
                w.state = WorkerState::Lost;
                changed = true;
            }
        }
        if changed {
            inner.version += 1;
        }
        inner
            .workers
            .retain(|_, w| w.state == WorkerState::Active || w.last_beat.elapsed() < FORGET_AFTER);
    }

    /// Spreads `total` over the live workers carrying every label in
    /// `labels` (and the server, if it runs stages and no label is asked
    /// for): as evenly as their capacity hints allow, in name order.
    fn spread(&self, total: u32, labels: &[String]) -> Vec<(String, u32)> {
        let inner = self.lock();
        let mut slots: Vec<(String, String, Option<u32>)> = inner
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Active && labels.iter().all(|l| w.labels.contains(l))
            })
            .map(|(id, w)| (w.name.clone(), id.clone(), w.capacity_hint))
            .collect();
        if labels.is_empty() && !self.no_local.load(Ordering::Relaxed) {
            slots.push((SERVER.into(), SERVER.into(), None));
        }
        slots.sort();
        let mut placed: Vec<(String, u32)> =
            slots.iter().map(|(_, id, _)| (id.clone(), 0)).collect();
        let mut left = total;
        // Round-robin, one at a time, skipping hosts at their hint.
        while left > 0 {
            let mut gave = false;
            for (i, (_, _, hint)) in slots.iter().enumerate() {
                if left == 0 {
                    break;
                }
                if hint.is_some_and(|h| placed[i].1 >= h) {
                    continue;
                }
                placed[i].1 += 1;
                left -= 1;
                gave = true;
            }
            if !gave {
                break;
            }
        }
        placed
    }

    /// The name of worker `id` (or the server's).
    fn name_of(&self, id: &str) -> String {
        if id == SERVER {
            return SERVER.into();
        }
        self.lock()
            .workers
            .get(id)
            .map_or_else(|| id.to_owned(), |w| w.name.clone())
    }

    /// One pass of the placer over the live jobs.
    pub fn place(&self, jobs: &SharedRegistry) {
        self.expire();
        let mut seen = Vec::new();
        for handle in jobs.live_handles() {
            for stage in handle.broker_stages() {
                if stage.is_finished() {
                    stage.set_placement(Vec::new());
                    continue;
                }
                let labels = stage
                    .spec
                    .placement
                    .as_ref()
                    .map(|p| p.labels.clone())
                    .unwrap_or_default();
                let placed = self.spread(stage.desired_workers(), &labels);
                let counts: Vec<u32> = placed.iter().map(|(_, n)| *n).collect();
                let placed: Vec<Share> = placed
                    .into_iter()
                    .zip(HostLimits::split(stage.limits(), &counts))
                    .map(|((id, n), limits)| (id, n, limits))
                    .collect();
                let (local, local_limits) = placed
                    .iter()
                    .find(|(w, _, _)| w == SERVER)
                    .map_or((0, HostLimits::default()), |(_, n, l)| (*n, *l));
                if let Err(e) = stage.set_local_workers(local, local_limits) {
                    tracing::warn!(job = %handle.id(), stage = %stage.spec.name, error = ?e, "cannot run the server's share of a broker stage");
                }
                stage.set_placement(
                    placed
                        .iter()
                        .map(|(id, n, _)| (self.name_of(id), *n))
                        .collect(),
                );
                seen.push(stage.names().clone());
                self.lock()
                    .placements
                    .insert(stage.names().clone(), (stage.assignment(), placed));
            }
        }
        self.lock().placements.retain(|k, _| seen.contains(k));
    }
}

/// The placer's thread: it runs [`Workers::place`] until the server stops.
#[derive(Debug)]
pub struct Placer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Placer {
    /// Starts placing the broker stages of `jobs` on `workers`.
    pub fn start(workers: Arc<Workers>, jobs: SharedRegistry) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ql-placer".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    workers.place(&jobs);
                    std::thread::sleep(PLACE_EVERY);
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Placer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
