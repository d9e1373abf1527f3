//! Turning the nodes' counters and histograms into snapshots (rates and
//! time shares per interval, or over the whole run for the report), with
//! the event loop's health read off the lag probe.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hdrhistogram::Histogram;
use shared::metrics::{
    Accounting, EventLoopSnapshot, JobSnapshot, NodeKind, NodeSnapshot, ProcessSnapshot,
    SourceSnapshot,
};
use shared::spec::Runtime;

use super::Node;
use super::probe::{LoopProbe, ProbeCursor};
use crate::core::JobCore;
use crate::process::ProcessSampler;
use crate::stats::{new_histogram, summarize};

/// Totals of one node at the previous sample, to turn counters into rates.
#[derive(Default, Clone, Copy)]
struct Prev {
    accepted: u64,
    out: u64,
    busy: u64,
    idle: u64,
    blocked: u64,
    poll: u64,
}

struct Cumulative {
    queue_wait: Histogram<u64>,
    service: Histogram<u64>,
    /// CPU seconds the node's threads used over the run so far.
    cpu_secs: f64,
}

/// CPU time of each node's OS threads, read from `/proc` per interval.
#[derive(Default)]
struct ThreadCpu {
    /// CPU seconds each thread had used at the previous sample.
    seen: std::collections::HashMap<u32, f64>,
    /// Threads listed during this sample, so exited ones are forgotten.
    live: std::collections::HashSet<u32>,
}

impl ThreadCpu {
    /// CPU seconds the node's threads used since the previous sample (a
    /// thread first seen counts from its start), or `None` when the node
    /// runs on no thread of its own. A thread that exited in between
    /// loses its last partial interval.
    fn interval(&mut self, stats: &crate::stats::NodeStats) -> Option<f64> {
        let tids = stats
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if tids.is_empty() {
            return None;
        }
        let mut used = 0.0;
        for tid in tids {
            self.live.insert(tid);
            if let Some(now) = crate::process::thread_cpu_secs(tid) {
                let before = self.seen.insert(tid, now).unwrap_or(0.0);
                used += (now - before).max(0.0);
            }
        }
        Some(used)
    }

    /// Forgets the threads no node listed in this sample.
    fn prune(&mut self) {
        let live = std::mem::take(&mut self.live);
        self.seen.retain(|tid, _| live.contains(tid));
    }
}

#[derive(Default)]
pub(super) struct Sampler {
    pub(super) seq: u64,
    last: Option<Instant>,
    prev: Vec<Prev>,
    totals: Vec<Cumulative>,
    end_to_end: Option<Histogram<u64>>,
    prev_sunk: u64,
    prev_produced: u64,
    /// The source's busy, idle and blocked time at the last sample.
    prev_source: [u64; 3],
    process: ProcessSampler,
    /// The job's lag probe (absent in unit tests of the sampler alone).
    probe: Option<Arc<LoopProbe>>,
    probe_cursor: ProbeCursor,
    cpu: ThreadCpu,
    /// The last interval's service times of the nodes whose automatic
    /// limit reads them (`None`: not kept).
    service: Vec<Option<Histogram<u64>>>,
    /// Seconds the last interval covered.
    secs: f64,
}

impl Sampler {
    /// A sampler that reads the event loop's health off `probe`.
    pub(super) fn new(probe: Arc<LoopProbe>) -> Self {
        Self {
            probe: Some(probe),
            ..Self::default()
        }
    }

    /// Keeps node `i`'s interval service times for [`Sampler::service`].
    pub(super) fn keep_service(&mut self, i: usize) {
        if self.service.len() <= i {
            self.service.resize_with(i + 1, || None);
        }
        self.service[i] = Some(new_histogram());
    }

    /// Node `i`'s service times over the last interval, if kept.
    pub(super) fn service(&self, i: usize) -> Option<&Histogram<u64>> {
        self.service.get(i).and_then(Option::as_ref)
    }

    /// Seconds the last interval covered.
    pub(super) fn interval_secs(&self) -> f64 {
        self.secs
    }

    /// Takes a snapshot; `whole_run` reports rates and shares over the
    /// whole run instead of the last interval (for the final report).
    pub(super) fn sample(
        &mut self,
        core: &JobCore,
        nodes: &[Node],
        whole_run: bool,
    ) -> JobSnapshot {
        let now = Instant::now();
        let dt = if whole_run {
            core.started.elapsed()
        } else {
            now - self.last.unwrap_or(core.started)
        }
        .as_secs_f64()
        .max(1e-9);
        if !whole_run {
            self.secs = dt;
        }
        self.last = Some(now);
        if self.prev.len() != nodes.len() {
            self.prev = vec![Prev::default(); nodes.len()];
            self.totals = nodes
                .iter()
                .map(|_| Cumulative {
                    queue_wait: new_histogram(),
                    service: new_histogram(),
                    cpu_secs: 0.0,
                })
                .collect();
        }
        let e2e_total = self.end_to_end.get_or_insert_with(new_histogram);
        let mut accounting = Accounting::default();
        let mut e2e = new_histogram();
        let mut snapshots = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let s = &node.stats;
            let interval = s.take_interval();
            let totals = &mut self.totals[i];
            let _ = totals.queue_wait.add(&interval.queue_wait);
            let _ = totals.service.add(&interval.service);
            if let Some(Some(kept)) = self.service.get_mut(i) {
                kept.reset();
                let _ = kept.add(&interval.service);
            }
            let cpu_used = self.cpu.interval(s);
            totals.cpu_secs += cpu_used.unwrap_or(0.0);
            // Only nodes on threads of their own list any (async stages
            // share the job's event loop: see `loop_share`).
            let cpu = if whole_run {
                (totals.cpu_secs > 0.0).then(|| totals.cpu_secs / dt)
            } else {
                cpu_used.map(|c| c / dt)
            };
            let _ = e2e.add(&interval.end_to_end);
            let cur = Prev {
                accepted: s.accepted.load(Ordering::Relaxed),
                out: s.sum(|x| &x.out),
                busy: s.sum(|x| &x.busy_ns),
                idle: s.sum(|x| &x.idle_ns),
                blocked: s.sum(|x| &x.blocked_ns),
                poll: s.poll_ns.load(Ordering::Relaxed),
            };
            let base = if whole_run {
                Prev::default()
            } else {
                self.prev[i]
            };
            self.prev[i] = cur;
            let (busy, idle, blocked) = (
                cur.busy - base.busy,
                cur.idle - base.idle,
                cur.blocked - base.blocked,
            );
            let time = (busy + idle + blocked).max(1) as f64;
            let filtered = s.sum(|x| &x.filtered);
            let errors = s.sum(|x| &x.errors);
            let dead_lettered = s.sum(|x| &x.dead_lettered);
            let dropped = s.dropped.load(Ordering::Relaxed);
            let leftovers = s.leftovers.load(Ordering::Relaxed);
            accounting.filtered += filtered;
            accounting.dead_lettered += dead_lettered;
            accounting.dropped_by_policy += dropped + errors;
            accounting.leftovers += leftovers;
            if s.info.kind == NodeKind::Sink {
                accounting.sunk = cur.out;
            }
            let concurrency = s.concurrency.load(Ordering::Relaxed);
            snapshots.push(NodeSnapshot {
                name: s.info.name.clone(),
                kind: Some(s.info.kind),
                runtime: Some(s.info.runtime),
                workers: s.workers.load(Ordering::Relaxed),
                configured_workers: Some(s.configured.load(Ordering::Relaxed)).filter(|&n| n > 0),
                concurrency: (concurrency > 0).then_some(concurrency),
                rate_limit: node
                    .stage
                    .as_ref()
                    .and_then(|st| st.policy.gate.rate())
                    .or_else(|| node.broker.as_ref().and_then(|b| b.limits().rate_limit)),
                capacity: Some(s.info.capacity),
                when_full: Some(s.info.when_full),
                depth: node.rx.len() as u64
                    + node
                        .broker
                        .as_ref()
                        .map_or(0, |b| b.edge().open.load(Ordering::Relaxed)),
                items_in: cur.accepted,
                items_out: cur.out,
                filtered,
                dropped,
                errors,
                dead_lettered,
                retries: s.sum(|x| &x.retries),
                timeouts: s.sum(|x| &x.timeouts),
                leftovers,
                duplicates: s.duplicates.load(Ordering::Relaxed),
                in_rate: (cur.accepted - base.accepted) as f64 / dt,
                out_rate: (cur.out - base.out) as f64 / dt,
                busy: busy as f64 / time,
                idle: idle as f64 / time,
                blocked: blocked as f64 / time,
                loop_share: ((s.info.kind == NodeKind::Stage && s.info.runtime == Runtime::Async)
                    || s.info.kind == NodeKind::Bridge)
                    .then(|| {
                        let threads = core.handle.metrics().num_workers().max(1) as f64;
                        ((cur.poll - base.poll) as f64 / 1e9 / (dt * threads)).min(1.0)
                    }),
                cpu,
                queue_wait: if whole_run {
                    summarize(&totals.queue_wait)
                } else {
                    summarize(&interval.queue_wait)
                },
                service: if whole_run {
                    summarize(&totals.service)
                } else {
                    summarize(&interval.service)
                },
                queue_wait_total: summarize(&totals.queue_wait),
                service_total: summarize(&totals.service),
                redelivered: node.broker.as_ref().map_or(0, |b| b.redelivered()),
                edge: node.broker.as_ref().map(|b| b.edge().snapshot()),
                auto: None,
            });
        }
        self.cpu.prune();
        // Read last: everything settled above was produced before, so a
        // live snapshot never shows more settled than produced.
        accounting.produced = core.produced.load(Ordering::Relaxed);
        let _ = e2e_total.add(&e2e);
        let _ = core
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&e2e);
        let throughput = if whole_run {
            accounting.sunk as f64 / dt
        } else {
            (accounting.sunk - self.prev_sunk) as f64 / dt
        };
        self.prev_sunk = accounting.sunk;
        let proc = self.process.sample();
        let mut snapshot = JobSnapshot {
            job: core.id.clone(),
            state: Some(core.state()),
            seq: self.seq,
            elapsed_ms: core.started.elapsed().as_millis() as u64,
            accounting,
            throughput,
            end_to_end: if whole_run {
                summarize(e2e_total)
            } else {
                summarize(&e2e)
            },
            end_to_end_total: summarize(e2e_total),
            source: SourceSnapshot::default(),
            nodes: snapshots,
            process: ProcessSnapshot {
                rss_bytes: proc.rss_bytes,
                threads: proc.threads,
                open_fds: proc.open_fds,
                cpu_percent: proc.cpu_percent,
            },
            event_loop: self.event_loop(core, nodes, now, whole_run),
        };
        snapshot.source = self.source(core, snapshot.accounting.produced, dt, whole_run);
        self.seq += 1;
        snapshot
    }

    /// The event loop's health since the last sample, for a job with
    /// async nodes. The whole-run figure (the report) is left out: lag is
    /// a live signal, and the stored snapshots keep its history.
    fn event_loop(
        &mut self,
        core: &JobCore,
        nodes: &[Node],
        now: Instant,
        whole_run: bool,
    ) -> Option<EventLoopSnapshot> {
        let probe = self.probe.as_ref()?;
        if whole_run || !nodes.iter().any(|n| n.stats.info.runtime == Runtime::Async) {
            return None;
        }
        let reading = probe.read(now, &mut self.probe_cursor);
        let blocking_stages = if reading.stalled {
            nodes
                .iter()
                // A bridge never blocks: only stages run ops that can.
                .filter(|n| {
                    n.stats.info.kind == NodeKind::Stage
                        && n.stats.in_poll.load(Ordering::Relaxed) > 0
                })
                .map(|n| n.stats.info.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        Some(EventLoopSnapshot {
            lag_ms: reading.lag.as_secs_f64() * 1000.0,
            missed_ticks: reading.missed_ticks,
            blocking_stages,
            async_tasks: core.handle.metrics().num_alive_tasks() as u64,
        })
    }

    /// The source's rate and time shares since the last sample (or over
    /// the whole run).
    fn source(
        &mut self,
        core: &JobCore,
        produced: u64,
        dt: f64,
        whole_run: bool,
    ) -> SourceSnapshot {
        let t = &core.source_time;
        let cur = [&t.busy_ns, &t.idle_ns, &t.blocked_ns].map(|c| c.load(Ordering::Relaxed));
        let (base, base_produced) = if whole_run {
            ([0; 3], 0)
        } else {
            (self.prev_source, self.prev_produced)
        };
        self.prev_source = cur;
        self.prev_produced = produced;
        let [busy, idle, blocked] = [0, 1, 2].map(|i| cur[i].saturating_sub(base[i]) as f64);
        let time = busy + idle + blocked;
        let share = |x: f64| if time > 0.0 { x / time } else { 0.0 };
        SourceSnapshot {
            rate: produced.saturating_sub(base_produced) as f64 / dt,
            busy: share(busy),
            idle: share(idle),
            blocked: share(blocked),
        }
    }
}
