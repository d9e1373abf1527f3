//! The server's view of one broker stage of a running job: its edge and
//! figures, how many workers it wants, the server's own share of them,
//! and what is swept out of its streams when the job ends.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_nats::jetstream;
use shared::spec::StageSpec;
use shared::workers::{Assignment, EdgeNames, StageCounts};

use super::collect::{REDELIVERED, book};
use super::edge::{self, EdgeStats};
use super::wire::{Outcome, decode_item, decode_settled};
use super::{BrokerError, RemoteStage};
use crate::core::JobCore;
use crate::item::Item;
use crate::stats::NodeStats;

/// What the publisher and the collector of one edge share: how many
/// items went in and came back, so the collector knows when the drain
/// has crossed the broker.
#[derive(Debug)]
pub(crate) struct Flow {
    pub(crate) names: EdgeNames,
    pub(crate) edge: Arc<EdgeStats>,
    /// Items the stream stored.
    pub(crate) published: AtomicU64,
    /// Results booked.
    pub(crate) collected: AtomicU64,
    /// Items whose result said they were delivered more than once.
    pub(crate) redelivered: AtomicU64,
    done: AtomicBool,
    /// Wakes the collector when the publisher finishes.
    pub(crate) changed: tokio::sync::Notify,
    /// When each timed item was born (clocks do not cross processes, so
    /// the item's latency is restored from here when it comes back).
    born: Mutex<HashMap<u64, Instant>>,
    /// Items the publisher put in leftovers after trying to publish them,
    /// which a sweep of the stream must not count again.
    left: Mutex<HashSet<u64>>,
}

impl Flow {
    pub(crate) fn new(names: EdgeNames, edge: Arc<EdgeStats>) -> Self {
        Self {
            names,
            edge,
            published: AtomicU64::new(0),
            collected: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            done: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            born: Mutex::new(HashMap::new()),
            left: Mutex::new(HashSet::new()),
        }
    }
    pub(crate) fn note_born(&self, seq: u64, born: Instant) {
        self.born
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, born);
    }
    pub(crate) fn take_born(&self, seq: u64) -> Option<Instant> {
        self.born
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq)
    }
    pub(crate) fn forget_born(&self, seq: u64) {
        self.take_born(seq);
    }
    /// An item the publisher gives up on (an abort): to leftovers, once.
    pub(crate) fn leave(&self, core: &JobCore, node: &NodeStats, item: Item) {
        self.forget_born(item.seq);
        self.left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item.seq);
        core.leftovers.put(node, item);
    }
    /// True for an item the publisher already put in leftovers: a result
    /// of it (a publish that was stored after all) must not count again.
    pub(crate) fn was_left(&self, seq: u64) -> bool {
        let left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        !left.is_empty() && left.contains(&seq)
    }

    pub(crate) fn publishing_done(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
    /// The publisher has finished and every item it stored came back.
    pub(crate) fn all_back(&self) -> bool {
        self.done.load(Ordering::SeqCst)
            && self.collected.load(Ordering::SeqCst) >= self.published.load(Ordering::SeqCst)
    }
}

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
    local: Mutex<Option<Arc<RemoteStage>>>,
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
        Self {
            index,
            desired: AtomicU32::new(spec.workers),
            spec,
            flow,
            node,
            js,
            core,
            local: Mutex::new(None),
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
        *self
            .flow
            .edge
            .placement
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = placement;
    }

    /// Runs `n` of the stage's workers inside the server (on the job's
    /// runtime), starting them the first time.
    pub fn set_local_workers(&self, n: u32) -> Result<(), BrokerError> {
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Items whose result said they had been delivered more than once.
    pub fn redelivered(&self) -> u64 {
        self.flow.redelivered.load(Ordering::Relaxed)
    }

    pub(crate) fn stop_local(&self) {
        if let Some(stage) = self.local.lock().unwrap_or_else(|e| e.into_inner()).take() {
            stage.stop();
        }
    }

    /// At teardown: books what the streams still hold (results first,
    /// then items never settled, to leftovers), reads the edge's figures a
    /// last time, and deletes the streams. The shared consumer goes first,
    /// so no worker can ack an input once the sweep has begun.
    pub(crate) async fn sweep(&self) {
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
        let mut settled = self
            .flow
            .left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let on_error = self.spec.on_error;
        match edge::stored(&self.js, &names.output_stream()).await {
            Ok(results) => {
                for bytes in results {
                    let Ok(result) = decode_settled(&bytes) else {
                        continue;
                    };
                    if !settled.insert(result.outcome.seq()) {
                        continue;
                    }
                    let passed = matches!(result.outcome, Outcome::Passed(_));
                    if let Some(item) = book(result, &self.flow, &self.node, &self.core, on_error) {
                        // Processed, but it never reached downstream.
                        self.core.leftovers.put(&self.node, item);
                    }
                    if !passed {
                        self.flow.collected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(job = %self.core.id, error = %e, "cannot read the results left on the broker")
            }
        }
        match edge::stored(&self.js, &names.input_stream()).await {
            Ok(items) => {
                for bytes in items {
                    let Ok(item) = decode_item(&bytes) else {
                        continue;
                    };
                    if settled.insert(item.seq) {
                        self.flow.forget_born(item.seq);
                        self.core.leftovers.put(&self.node, item);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(job = %self.core.id, error = %e, "cannot read the items left on the broker")
            }
        }
        edge::delete(&self.js, names).await;
    }

    /// Why and how often items were redelivered, for the job's report.
    pub(crate) fn redeliveries(&self) -> Option<(String, u64)> {
        let n = self.redelivered();
        (n > 0).then(|| (format!("{REDELIVERED} (at `{}`)", self.spec.name), n))
    }
}
