//! The server's view of one broker stage of a running job: its edge and
//! figures, how many workers it wants, the server's own share of them,
//! and what is swept out of its streams when the job ends.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream;
use shared::spec::{Runtime, StageSpec};
use shared::workers::{Assignment, EdgeNames, HostLimits, StageCounts};

use super::edge::{self, EdgeStats};
use super::ledger::{Flow, REDELIVERED, dead_letter};
use super::wire::{decode_items, decode_results};
use super::{BrokerError, RemoteStage};
use crate::core::JobCore;
use crate::item::{Item, Payload};
use crate::ops::OpError;
use crate::stats::NodeStats;

/// How often the broker's figures of an edge are read.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads the edge's figures from the broker until every item is back or
/// the job aborts (the sampler reads them from [`EdgeStats`]).
pub(crate) async fn watch(js: jetstream::Context, flow: Arc<Flow>, core: Arc<JobCore>) {
    loop {
        flow.edge.poll(&js, &flow.names).await;
        if flow.all_back() {
            break;
        }
        tokio::select! {
            _ = core.abort.cancelled() => break,
            _ = flow.changed.notified() => {}
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}

/// One broker stage of a running job, as the server places and watches
/// it.
pub struct BrokerStage {
    /// Position in the spec's stages.
    pub index: usize,
    /// The stage, with its broker URL resolved.
    pub spec: StageSpec,
    pub(crate) flow: Arc<Flow>,
    pub(crate) node: Arc<NodeStats>,
    pub(crate) js: jetstream::Context,
    pub(crate) core: Arc<JobCore>,
    desired: AtomicU32,
    /// The job-wide concurrency and rate limit, as last tuned; each host
    /// runs with its share (a lock: the two change together).
    limits: Mutex<HostLimits>,
    local: Mutex<Option<Arc<RemoteStage>>>,
    /// Set by the sweep: the server's share never starts again.
    swept: AtomicBool,
}

impl std::fmt::Debug for BrokerStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerStage")
            .field("names", &self.flow.names)
            .field("desired", &self.desired_workers())
            .finish_non_exhaustive()
    }
}

impl BrokerStage {
    pub(crate) fn new(
        index: usize,
        spec: StageSpec,
        flow: Arc<Flow>,
        node: Arc<NodeStats>,
        js: jetstream::Context,
        core: Arc<JobCore>,
    ) -> Self {
        let limits = HostLimits {
            concurrency: (spec.runtime == Runtime::Async).then(|| spec.effective_concurrency()),
            rate_limit: spec.rate_limit,
        };
        if let Some(c) = limits.concurrency {
            node.concurrency.store(c, Ordering::Relaxed);
        }
        Self {
            index,
            desired: AtomicU32::new(spec.start_workers()),
            limits: Mutex::new(limits),
            spec,
            flow,
            node,
            js,
            core,
            local: Mutex::new(None),
            swept: AtomicBool::new(false),
        }
    }

    /// The edge's streams.
    pub fn names(&self) -> &EdgeNames {
        &self.flow.names
    }

    /// The broker's figures for the edge.
    pub fn edge(&self) -> &Arc<EdgeStats> {
        &self.flow.edge
    }

    /// Workers the stage should have in all (its spec's, or the last tune).
    pub fn desired_workers(&self) -> u32 {
        self.desired.load(Ordering::Relaxed)
    }

    pub(crate) fn set_desired(&self, n: u32) {
        self.desired.store(n, Ordering::Relaxed);
    }

    /// The job-wide concurrency and rate limit (each host runs a share).
    pub fn limits(&self) -> HostLimits {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tunes the job-wide limits; hosts take their new shares at the
    /// placer's next pass (the server's at once, the others with their
    /// next heartbeat).
    pub(crate) fn set_limits(&self, limits: HostLimits) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
        if let Some(c) = limits.concurrency {
            self.node.concurrency.store(c, Ordering::Relaxed);
        }
    }

    /// What a worker is told to run this stage.
    pub fn assignment(&self) -> Assignment {
        Assignment {
            names: self.flow.names.clone(),
            index: self.index,
            stage: self.spec.clone(),
            url: self
                .spec
                .transport
                .as_ref()
                .map_or_else(String::new, |t| t.url().to_owned()),
            seed: self.core.seed,
        }
    }

    /// True once the job has finished: its workers can stop.
    pub fn is_finished(&self) -> bool {
        self.core.state().is_finished()
    }

    /// Where the stage's workers run now (name, count), as placed.
    pub fn set_placement(&self, placement: Vec<(String, u32)>) {
        let total: u32 = placement.iter().map(|(_, n)| n).sum();
        self.flow.edge.workers.store(
            placement.iter().filter(|(_, n)| *n > 0).count() as u32,
            Ordering::Relaxed,
        );
        self.node.workers.store(total, Ordering::Relaxed);
        if total > 0 {
            // Kept when the assignment is withdrawn at the end.
            self.node.configured.store(total, Ordering::Relaxed);
        }
        *self
            .flow
            .edge
            .placement
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = placement;
    }

    /// Runs `n` of the stage's workers inside the server (on the job's
    /// runtime) with the server's share of the limits, starting them the
    /// first time.
    pub fn set_local_workers(&self, n: u32, limits: HostLimits) -> Result<(), BrokerError> {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        // After the sweep began, the placer may still ask: never again.
        if self.swept.load(Ordering::SeqCst) {
            return Ok(());
        }
        if local.is_none() {
            if n == 0 || self.is_finished() {
                return Ok(());
            }
            let client = self.js.client();
            let handle = self.core.handle.clone();
            let started = handle.block_on(RemoteStage::start(
                self.assignment(),
                Some(client),
                handle.clone(),
                &self.core.egress,
            ));
            *local = Some(started?);
        }
        if let Some(stage) = local.as_ref() {
            stage.set_limits(limits);
            stage.scale_to(n);
        }
        Ok(())
    }

    /// What the server's own workers did.
    pub fn local_counts(&self) -> Option<StageCounts> {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.counts())
    }

    /// The concurrency and rate limit the server's own share runs with
    /// (`None` before it first ran).
    pub fn local_limits(&self) -> Option<(u32, Option<f64>)> {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.limits())
    }

    /// Items whose result said they had been delivered more than once.
    pub fn redelivered(&self) -> u64 {
        self.flow.redelivered.load(Ordering::Relaxed)
    }

    /// Stops the server's share for good (kept, so its counts stay
    /// readable).
    pub(crate) fn stop_local(&self) {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        self.swept.store(true, Ordering::SeqCst);
        if let Some(stage) = local.as_ref() {
            stage.stop();
        }
    }

    /// At teardown: books what the streams still hold (results first,
    /// then items never settled, to leftovers), reads the edge's figures a
    /// last time, and deletes the streams. The consumers go first, so no
    /// worker can ack an input once the sweep has begun. The ledger skips
    /// every item settled already (booked by the collector, left by the
    /// publisher). A stream that could not be read is kept, its items
    /// counted as leftovers still on the broker, and the report says so:
    /// `Some((why, items))`.
    pub(crate) async fn sweep(&self) -> Option<(String, u64)> {
        self.stop_local();
        let names = &self.flow.names;
        // The figures as the job leaves them (a drained edge reads empty).
        self.flow.edge.poll(&self.js, names).await;
        if let Ok(s) = self.js.get_stream(names.input_stream()).await {
            let _ = s.delete_consumer(edge::WORK_CONSUMER).await;
        }
        if let Ok(s) = self.js.get_stream(names.output_stream()).await {
            let _ = s.delete_consumer(edge::COLLECT_CONSUMER).await;
        }
        if self.flow.open_items() == 0 {
            edge::delete(&self.js, names).await;
            return None;
        }
        let on_error = self.spec.on_error;
        let results = edge::stored(&self.js, &names.output_stream()).await;
        if let Ok(results) = &results {
            for bytes in results {
                let Ok(results) = decode_results(bytes) else {
                    continue;
                };
                for item in self.flow.book(results, &self.node, &self.core, on_error) {
                    // Processed, but it never reached downstream.
                    self.core.leftovers.put(&self.node, item);
                }
            }
        }
        let items = edge::stored(&self.js, &names.input_stream()).await;
        if let Ok(items) = &items {
            for bytes in items {
                let Ok(decoded) = decode_items(bytes) else {
                    continue;
                };
                for (k, item) in decoded.items.into_iter().enumerate() {
                    if !self.flow.settle(decoded.first + k as u64) {
                        continue;
                    }
                    match item {
                        Ok(item) => self.core.leftovers.put(&self.node, item),
                        Err(bad) => {
                            let err = OpError {
                                kind: "undecodable",
                                detail: bad.error.to_string(),
                                retryable: false,
                            };
                            let item = Item::new(bad.seq, Payload::Line(bad.text), None);
                            dead_letter(&self.core, &self.node, &item, &err, 0);
                        }
                    }
                }
            }
        }
        match (results, items) {
            (Ok(_), Ok(_)) => {
                // Anything still open was stored and is in neither stream:
                // the broker lost it. Counted where it was last seen.
                let lost = self.flow.settle_rest();
                edge::delete(&self.js, names).await;
                (lost > 0).then(|| {
                    self.node.leftovers.fetch_add(lost, Ordering::Relaxed);
                    (
                        format!(
                            "published to {} but in neither stream at the end: the broker lost them",
                            names.input_stream()
                        ),
                        lost,
                    )
                })
            }
            (r, i) => {
                for e in [r.err(), i.err()].into_iter().flatten() {
                    tracing::warn!(job = %self.core.id, stage = %self.spec.name, error = %e, "cannot read what the broker holds; its streams are kept");
                }
                let kept = self.flow.settle_rest();
                self.node.leftovers.fetch_add(kept, Ordering::Relaxed);
                Some((
                    format!(
                        "could not be read back from the broker: streams {} and {} are kept",
                        names.input_stream(),
                        names.output_stream()
                    ),
                    kept,
                ))
            }
        }
    }

    /// Why and how often items were redelivered, for the job's report.
    pub(crate) fn redeliveries(&self) -> Option<(String, u64)> {
        let n = self.redelivered();
        (n > 0).then(|| (format!("{REDELIVERED} (at `{}`)", self.spec.name), n))
    }
}
