//! Control of one stage while it runs: starting and retiring its workers
//! (threads or tasks), its concurrency limit, and why a tune may be
//! refused ([`ScaleError`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use shared::spec::{Runtime, StageSpec};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::in_poll::InPoll;
use super::policy::Policy;
use super::workers::{TaskWorker, ThreadWorker};
use crate::core::JobCore;
use crate::ops::Op;
use crate::queue::{Rx, Tx};
use crate::stats::NodeStats;

/// Control of one stage: spawning and retiring workers while it runs.
#[derive(Debug)]
pub(crate) struct StageCtl {
    /// Position in the spec's `stages`.
    pub(crate) index: usize,
    /// The stage's spec (its `workers` is the starting value).
    pub(crate) spec: StageSpec,
    /// The stage's measurements.
    pub(crate) stats: Arc<NodeStats>,
    /// Timeout, retry, rate limit and error policy.
    pub(crate) policy: Policy,
    pub(crate) op: Arc<Op>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// What a new worker needs. Dropped as soon as the input closes, so
    /// its clone of the downstream sender cannot hold the drain cascade up.
    spawner: Option<Spawner>,
    threads: Vec<(Arc<AtomicBool>, JoinHandle<()>)>,
    tasks: Vec<CancellationToken>,
    next_worker: usize,
    /// Async stages: the permits bounding operations in flight.
    semaphore: Option<Arc<Semaphore>>,
    concurrency: u32,
}

#[derive(Debug)]
struct Spawner {
    rx: Rx,
    tx: Tx,
    core: Arc<JobCore>,
}

/// Why a tune could not be applied to a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// The stage's input has closed; it is finishing and takes no new workers.
    #[error("stage `{0}` has finished its input")]
    Finished(String),
    /// `concurrency` was asked of a thread stage.
    #[error("stage `{0}` runs on threads; only async stages have a concurrency limit")]
    NotAsync(String),
    /// The operating system refused another thread (a process or memory
    /// limit); the stage was put back to the workers it had.
    #[error(
        "the server could not start {wanted} threads for stage `{stage}` (a system limit); it keeps its {kept} workers"
    )]
    Spawn {
        /// The stage.
        stage: String,
        /// Workers asked for.
        wanted: u32,
        /// Workers it still has.
        kept: u32,
    },
}

impl StageCtl {
    /// A stage that reads `rx` and writes `tx`; call [`StageCtl::scale_to`]
    /// to start its workers.
    pub(crate) fn new(
        index: usize,
        spec: StageSpec,
        stats: Arc<NodeStats>,
        rx: Rx,
        tx: Tx,
        core: Arc<JobCore>,
    ) -> Arc<Self> {
        let concurrency = spec.effective_concurrency();
        let semaphore = (spec.runtime == Runtime::Async)
            .then(|| Arc::new(Semaphore::new(concurrency as usize)));
        if semaphore.is_some() {
            stats.concurrency.store(concurrency, Ordering::Relaxed);
        }
        Arc::new(Self {
            index,
            policy: Policy::new(&spec),
            op: Arc::new(Op::for_job(&spec.op, &core.handle, &core.egress)),
            spec,
            stats,
            inner: Mutex::new(Inner {
                spawner: Some(Spawner { rx, tx, core }),
                threads: Vec::new(),
                tasks: Vec::new(),
                next_worker: 0,
                semaphore,
                concurrency,
            }),
        })
    }

    /// A stage with no queues of its own: a broker stage's workers on a
    /// worker host, which use only its operation and policy (the
    /// attempts), never its spawner.
    pub(crate) fn detached(
        index: usize,
        spec: StageSpec,
        stats: Arc<NodeStats>,
        handle: &tokio::runtime::Handle,
        egress: &crate::egress::Egress,
    ) -> Arc<Self> {
        let concurrency = spec.effective_concurrency();
        Arc::new(Self {
            index,
            policy: Policy::new(&spec),
            op: Arc::new(Op::for_job(&spec.op, handle, egress)),
            spec,
            stats,
            inner: Mutex::new(Inner {
                spawner: None,
                threads: Vec::new(),
                tasks: Vec::new(),
                next_worker: 0,
                semaphore: None,
                concurrency,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live workers.
    pub(crate) fn workers(&self) -> u32 {
        let inner = self.lock();
        (inner.threads.len() + inner.tasks.len()) as u32
    }

    /// Current concurrency limit (async stages).
    pub(crate) fn concurrency(&self) -> Option<u32> {
        let inner = self.lock();
        inner.semaphore.as_ref().map(|_| inner.concurrency)
    }

    /// Starts or retires workers until `target` are live. Retired workers
    /// finish the item they hold, then exit.
    pub(crate) fn scale_to(self: &Arc<Self>, target: u32) -> Result<(), ScaleError> {
        let mut inner = self.lock();
        let Some(spawner) = &inner.spawner else {
            return Err(ScaleError::Finished(self.spec.name.clone()));
        };
        let (rx, tx, core) = (spawner.rx.clone(), spawner.tx.clone(), spawner.core.clone());
        let target = target as usize;
        match self.spec.runtime {
            Runtime::Thread => {
                while inner.threads.len() > target {
                    let (retire, handle) = inner.threads.pop().expect("len > target");
                    retire.store(true, Ordering::Relaxed);
                    core.retired_threads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle);
                }
                let before = inner.threads.len();
                while inner.threads.len() < target {
                    let n = inner.next_worker;
                    inner.next_worker += 1;
                    let retire = Arc::new(AtomicBool::new(false));
                    let worker = ThreadWorker {
                        n,
                        ctl: self.clone(),
                        rx: rx.clone(),
                        tx: tx.clone(),
                        core: core.clone(),
                        retire: retire.clone(),
                    };
                    let name = format!("ql-{}-{}-{n}", core.name, self.spec.name);
                    self.worker_started();
                    match super::spawn::spawn_running(name, move || worker.run()) {
                        Ok(handle) => inner.threads.push((retire, handle)),
                        Err(e) => {
                            self.worker_exited();
                            tracing::warn!(job = %core.id, stage = %self.spec.name, error = %e, wanted = target, "cannot start a stage thread; scaling back");
                            // Leave the stage as it was: retire what this
                            // call started.
                            while inner.threads.len() > before {
                                let (retire, handle) = inner.threads.pop().expect("len > before");
                                retire.store(true, Ordering::Relaxed);
                                core.retired_threads
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(handle);
                            }
                            self.stats
                                .configured
                                .store(before as u32, Ordering::Relaxed);
                            return Err(ScaleError::Spawn {
                                stage: self.spec.name.clone(),
                                wanted: target as u32,
                                kept: before as u32,
                            });
                        }
                    }
                }
            }
            Runtime::Async => {
                while inner.tasks.len() > target {
                    inner.tasks.pop().expect("len > target").cancel();
                }
                let semaphore = inner.semaphore.clone().expect("async stage semaphore");
                while inner.tasks.len() < target {
                    let n = inner.next_worker;
                    inner.next_worker += 1;
                    let retire = CancellationToken::new();
                    let worker = TaskWorker {
                        n,
                        ctl: self.clone(),
                        rx: rx.clone(),
                        tx: tx.clone(),
                        core: core.clone(),
                        retire: retire.clone(),
                        semaphore: semaphore.clone(),
                    };
                    self.worker_started();
                    core.tracker
                        .spawn_on(InPoll::new(worker.run(), self.stats.clone()), &core.handle);
                    inner.tasks.push(retire);
                }
            }
        }
        self.stats
            .configured
            .store(target as u32, Ordering::Relaxed);
        Ok(())
    }

    /// Changes an async stage's concurrency limit. Raising adds permits at
    /// once; lowering takes permits back as operations finish.
    pub(crate) fn set_concurrency(&self, target: u32) -> Result<(), ScaleError> {
        let mut inner = self.lock();
        let Some(semaphore) = inner.semaphore.clone() else {
            return Err(ScaleError::NotAsync(self.spec.name.clone()));
        };
        let Some(spawner) = &inner.spawner else {
            return Err(ScaleError::Finished(self.spec.name.clone()));
        };
        let core = spawner.core.clone();
        let current = inner.concurrency;
        if target > current {
            semaphore.add_permits((target - current) as usize);
        } else if target < current {
            let take = current - target;
            core.tracker.spawn_on(
                async move {
                    if let Ok(permits) = semaphore.acquire_many(take).await {
                        permits.forget();
                    }
                },
                &core.handle,
            );
        }
        inner.concurrency = target;
        self.stats.concurrency.store(target, Ordering::Relaxed);
        Ok(())
    }

    /// Called by a worker that found the input closed: no new workers from
    /// now on, and the spawner's downstream sender is released.
    pub(super) fn input_closed(&self) {
        let spawner = self.lock().spawner.take();
        drop(spawner);
    }

    /// Releases the spawner and hands back the stage's threads to join.
    pub(crate) fn finish(&self) -> Vec<JoinHandle<()>> {
        let mut inner = self.lock();
        inner.spawner = None;
        inner.tasks.clear();
        inner.threads.drain(..).map(|(_, h)| h).collect()
    }

    /// Counts a worker in; paired with [`StageCtl::worker_exited`], so the
    /// gauge shows workers actually running (a retired one counts until it
    /// has finished its item).
    fn worker_started(&self) {
        self.stats.workers.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn worker_exited(&self) {
        self.stats.workers.fetch_sub(1, Ordering::Relaxed);
    }
}
