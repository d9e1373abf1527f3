//! The supervisor thread: samples metrics at the spec's rate, enforces
//! the drain deadline, and when the sink is done joins everything, sweeps
//! what is left in the queues into leftovers and writes the report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shared::metrics::{EventKind, JobEvent, JobReport, JobSnapshot, JobState};
use shared::spec::PipelineSpec;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Node;
use super::handle::ReportSlot;
use super::sampler::Sampler;
use crate::auto::AutoStage;
use crate::core::{JobCore, now_ms};
use crate::runtime::EngineRuntime;

pub(super) struct Supervisor {
    pub(super) core: Arc<JobCore>,
    pub(super) spec: PipelineSpec,
    pub(super) nodes: Vec<Node>,
    pub(super) threads: Vec<JoinHandle<()>>,
    pub(super) runtime: Option<EngineRuntime>,
    pub(super) lag_stop: CancellationToken,
    pub(super) done_rx: crossbeam_channel::Receiver<Result<(), crate::sink::RunError>>,
    pub(super) snapshots: watch::Sender<Arc<JobSnapshot>>,
    pub(super) report: Arc<ReportSlot>,
    pub(super) sampler: Sampler,
    /// The stages whose limit the engine may choose, driven on every
    /// sample from this thread.
    pub(super) autos: Vec<AutoStage>,
}

impl Supervisor {
    fn publish(&mut self) {
        let mut snap = self.sampler.sample(&self.core, &self.nodes, false);
        let secs = self.sampler.interval_secs();
        for auto in &mut self.autos {
            let i = auto.node;
            auto.tick(
                &self.core,
                secs,
                &mut snap.nodes[i],
                self.sampler.service(i),
            );
        }
        self.snapshots.send_replace(Arc::new(snap));
    }

    pub(super) fn run(mut self) {
        let period = Duration::from_secs_f64(1.0 / self.spec.sample_hz);
        let deadline = Duration::from_millis(self.spec.drain_deadline_ms);
        let mut next = Instant::now() + period;
        loop {
            match self
                .done_rx
                .recv_timeout(next.saturating_duration_since(Instant::now()))
            {
                Ok(result) => {
                    if let Err(e) = result {
                        self.core.fail(e.to_string());
                    }
                    // Requests arriving from now on come too late to change
                    // how the run ended.
                    self.core.lifecycle().closed = true;
                    break;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.core.fail("the sink thread died".into());
                    break;
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.publish();
                    next = (next + period).max(Instant::now());
                    let overdue = {
                        let lc = self.core.lifecycle();
                        let limit = lc.drain_deadline.unwrap_or(deadline);
                        lc.drain_started.is_some_and(|t| t.elapsed() > limit)
                    };
                    if overdue {
                        let limit = self.core.lifecycle().drain_deadline.unwrap_or(deadline);
                        self.core.request_abort(format!(
                            "drain deadline of {} ms exceeded",
                            limit.as_millis()
                        ));
                    }
                }
            }
        }
        self.teardown();
    }

    fn teardown(mut self) {
        // Join every thread; they all end once their input closed or the
        // abort flag is up.
        let mut handles = std::mem::take(&mut self.threads);
        for node in &self.nodes {
            if let Some(stage) = &node.stage {
                handles.extend(stage.finish());
            }
        }
        handles.extend(
            self.core
                .retired_threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        for h in handles {
            if h.join().is_err() {
                self.core.fail("an engine thread panicked".into());
            }
        }
        self.core.tracker.close();
        self.lag_stop.cancel();
        if let Some(rt) = &self.runtime {
            rt.handle().block_on(self.core.tracker.wait());
        }
        // What the broker still holds is booked, and its streams go.
        let mut kept_on_broker = std::collections::BTreeMap::new();
        if let Some(rt) = &self.runtime {
            for node in &self.nodes {
                if let Some(broker) = &node.broker
                    && let Some((why, n)) = rt.handle().block_on(broker.sweep())
                {
                    *kept_on_broker.entry(why).or_insert(0) += n;
                }
            }
        }
        // Whatever is still queued was never processed: leftovers.
        for node in &self.nodes {
            for item in node.rx.drain_all() {
                self.core.leftovers.put(&node.stats, item);
            }
        }
        let leftovers_file = match self.core.leftovers.finish() {
            Ok(place) => place.map(|p| p.display().to_string()),
            Err(e) => {
                self.core.fail(e.to_string());
                None
            }
        };
        let dead_letters = match self.core.dead_letters.finish() {
            Ok(kept) => kept,
            Err(e) => {
                self.core.fail(e.to_string());
                None
            }
        };
        // The final state is announced only once the report is in place,
        // so whoever sees a finished job can read its report.
        let (final_state, final_event) = {
            let lc = self.core.lifecycle();
            let (state, reason) = if let Some(f) = &lc.failure {
                (JobState::Failed, Some(f.clone()))
            } else if let Some(r) = &lc.abort_reason {
                (JobState::Aborted, Some(r.clone()))
            } else if lc.drain_started.is_some() {
                (JobState::Stopped, None)
            } else {
                (JobState::Completed, None)
            };
            let event = JobEvent {
                at_ms: now_ms(),
                elapsed_ms: self.core.started.elapsed().as_millis() as u64,
                kind: EventKind::State { state, reason },
            };
            (state, event)
        };
        let mut whole = self.sampler.sample(&self.core, &self.nodes, true);
        whole.state = Some(final_state);
        for auto in &self.autos {
            auto.annotate(&mut whole.nodes[auto.node]);
        }
        let mut drop_reasons = BTreeMap::new();
        for node in &self.nodes {
            for (reason, n) in node
                .stats
                .reasons
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                *drop_reasons.entry(reason.clone()).or_insert(0) += n;
            }
        }
        let (events, error) = {
            let lc = self.core.lifecycle();
            let mut events = lc.events.clone();
            events.push(final_event.clone());
            (events, lc.failure.clone())
        };
        let report = JobReport {
            job: self.core.id.clone(),
            name: self.spec.name.clone(),
            state: final_state,
            error,
            elapsed_s: self.core.started.elapsed().as_secs_f64(),
            accounting: whole.accounting,
            balanced: whole.accounting.balanced(),
            throughput: whole.throughput,
            end_to_end: whole.end_to_end_total,
            source: whole.source.clone(),
            nodes: whole.nodes.clone(),
            skipped_lines: self.core.skipped_lines.load(Ordering::Relaxed),
            drop_reasons,
            redeliveries: self
                .nodes
                .iter()
                .filter_map(|n| n.broker.as_ref()?.redeliveries())
                .collect(),
            kept_on_broker,
            dead_letters_file: dead_letters.as_ref().map(|k| k.path.clone()),
            dead_letters_table: dead_letters.and_then(|k| k.table),
            leftovers_file,
            events,
        };
        if !report.balanced {
            tracing::error!(job = %self.core.id, accounting = %report.accounting, "accounting mismatch");
        }
        // The final snapshot goes out before the report, so whoever sees
        // the report finds the final snapshot too.
        let mut last = whole;
        last.seq = self.sampler.seq;
        self.snapshots.send_replace(Arc::new(last));
        {
            let mut slot = self.report.report.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Arc::new(report));
            // Still under the report's lock, so `wait` returns only once
            // the state is final too.
            let mut lc = self.core.lifecycle();
            tracing::info!(job = %self.core.id, from = %lc.state, to = %final_state, "job state");
            lc.state = final_state;
            lc.events.push(final_event);
            drop(lc);
            self.report.ready.notify_all();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown(Duration::from_secs(1));
        }
    }
}
