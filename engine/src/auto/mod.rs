//! Automatic limits: `workers = "auto"` on a thread stage and
//! `concurrency = "auto"` on an async one. The engine finds the knee and
//! follows it while the load changes.
//!
//! * [`controller`] — the algorithm (AIMD on the service time with a slow
//!   start, idle release and a baseline that follows a slower service),
//!   pure arithmetic over windows, with the papers and projects it
//!   follows.
//! * this file — [`AutoSwitch`], the on/off a manual tune flips (shared
//!   with the job's handle, so the API never waits on the controller),
//!   and `AutoStage`, which the supervisor's thread drives on every
//!   sample: it turns the stage's snapshot into a window, asks the
//!   controller, and applies a change with the same calls as a manual
//!   tune (workers, concurrency, or a broker stage's job-wide values,
//!   which the placer spreads over the hosts).

pub mod controller;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use shared::metrics::{AutoSnapshot, EventKind, NodeSnapshot};
use shared::spec::{Runtime, StageSpec};
use shared::workers::HostLimits;

use crate::broker::BrokerStage;
use crate::core::JobCore;
use crate::stage::{ScaleError, StageCtl};
use crate::stats::new_histogram;
use controller::{Controller, Decision, Window};

/// Who else counts workers: a shared server caps the stage workers of
/// all its jobs together (`--max-workers`), and asks before the
/// controller starts more.
pub trait WorkerBudget: Send + Sync + std::fmt::Debug {
    /// Whether `more` workers may start now. Called from the job's
    /// supervisor thread: it must answer at once, never wait.
    fn allows(&self, more: u32) -> bool;
}

/// Whether the engine chooses a stage's limit: on for an `"auto"` stage,
/// off once a manual tune pinned it, on again when asked.
#[derive(Debug)]
pub(crate) struct AutoSwitch {
    /// The stage's name.
    pub(crate) stage: String,
    /// The controller runs.
    on: AtomicBool,
    /// The stage was ever automatic (its card says "pinned" when off).
    ever: AtomicBool,
    /// Bumped by every turn on, so the controller restarts from the live
    /// value.
    generation: AtomicU64,
}

impl AutoSwitch {
    /// A switch for `spec`'s stage: on when the spec says `"auto"`.
    pub(crate) fn new(spec: &StageSpec) -> Arc<Self> {
        let auto = spec.auto_range().is_some();
        Arc::new(Self {
            stage: spec.name.clone(),
            on: AtomicBool::new(auto),
            ever: AtomicBool::new(auto),
            generation: AtomicU64::new(0),
        })
    }

    /// Whether the controller runs.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Pins the limit where it is; `true` when it was automatic.
    pub(crate) fn pin(&self) -> bool {
        self.on.swap(false, Ordering::AcqRel)
    }

    /// Lets the engine choose again.
    pub(crate) fn turn_on(&self) {
        self.ever.store(true, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.on.store(true, Ordering::Release);
    }
}

/// What the stage is: in memory, or on a broker.
#[derive(Debug)]
pub(crate) enum Target {
    /// Threads or tasks in this process.
    Local(Arc<StageCtl>),
    /// A broker stage: job-wide values the placer spreads.
    Broker(Arc<BrokerStage>),
}

/// Counters at the previous sample, for the window's deltas.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    items: u64,
    errors: u64,
}

impl Seen {
    fn of(n: &NodeSnapshot) -> Self {
        Self {
            items: n.items_out + n.filtered + n.dropped + n.errors + n.dead_lettered,
            errors: n.retries + n.timeouts + n.errors + n.dead_lettered,
        }
    }
}

/// One stage's automatic limit, driven by the supervisor's thread.
pub(crate) struct AutoStage {
    /// Its node's position among the job's nodes.
    pub(crate) node: usize,
    spec: StageSpec,
    target: Target,
    switch: Arc<AutoSwitch>,
    controller: Option<Controller>,
    generation: u64,
    seen: Seen,
    /// Service times since the controller's window began.
    service: Histogram<u64>,
    reason: Option<String>,
    /// The limit the last snapshot showed.
    last_limit: u32,
    /// The server's say on more workers.
    budget: Option<Arc<dyn WorkerBudget>>,
}

impl AutoStage {
    /// The stage at node `node`, with its switch.
    pub(crate) fn new(
        node: usize,
        target: Target,
        switch: Arc<AutoSwitch>,
        budget: Option<Arc<dyn WorkerBudget>>,
    ) -> Self {
        let spec = match &target {
            Target::Local(ctl) => ctl.spec.clone(),
            Target::Broker(b) => b.spec.clone(),
        };
        let last_limit = spec_start(&target);
        Self {
            node,
            spec,
            target,
            switch,
            controller: None,
            generation: u64::MAX,
            seen: Seen::default(),
            last_limit,
            budget,
            service: new_histogram(),
            reason: None,
        }
    }

    /// The stage's range: its spec's, or everything the field allows.
    fn range(&self) -> (u32, u32) {
        let bound = self.spec.auto_bound();
        match self.spec.auto_range() {
            Some(r) => (r.lo(), r.hi(bound)),
            None => (1, bound),
        }
    }

    /// The value the stage runs with now.
    fn live(&self) -> u32 {
        match (&self.target, self.spec.runtime) {
            (Target::Local(ctl), Runtime::Thread) => ctl.workers(),
            (Target::Local(ctl), Runtime::Async) => ctl.concurrency().unwrap_or(1),
            (Target::Broker(b), Runtime::Thread) => b.desired_workers(),
            (Target::Broker(b), Runtime::Async) => {
                b.limits().concurrency.unwrap_or(b.desired_workers())
            }
        }
    }

    /// Reads one sample: the node's interval snapshot and its interval's
    /// service times. Changes the limit when the controller says so, and
    /// fills the snapshot's `auto`.
    pub(crate) fn tick(
        &mut self,
        core: &JobCore,
        secs: f64,
        node: &mut NodeSnapshot,
        service: Option<&Histogram<u64>>,
    ) {
        let seen = Seen::of(node);
        let (items, errors) = (
            seen.items.saturating_sub(self.seen.items),
            seen.errors.saturating_sub(self.seen.errors),
        );
        self.seen = seen;
        if !self.switch.ever.load(Ordering::Acquire) {
            return;
        }
        let on = self.switch.is_on();
        let generation = self.switch.generation.load(Ordering::Acquire);
        if on && generation != self.generation {
            // Started, or turned back on: begin from the value it has now.
            self.generation = generation;
            let (min, max) = self.range();
            let live = self.live();
            match &mut self.controller {
                Some(c) => c.reset_to(live),
                None => self.controller = Some(Controller::new(min, max, live)),
            }
            self.service.reset();
            if live < min || live > max {
                let to = live.clamp(min, max);
                self.apply(
                    core,
                    live,
                    to,
                    format!("auto turned on: into its range → {to}"),
                );
            }
        }
        if on && let Some(c) = &mut self.controller {
            let interval = service.map_or(0, |h| h.len());
            if let Some(h) = service {
                let _ = self.service.add(h);
            }
            let window = Window {
                secs,
                items,
                samples: interval,
                rtt_us: (!self.service.is_empty())
                    .then(|| self.service.value_at_quantile(0.5) as f64),
                errors,
                busy: match self.target {
                    Target::Local(_) => node.busy,
                    // Its workers run on other hosts: a backlog on the
                    // edge is what says they are all busy; without one,
                    // neither raise nor release.
                    Target::Broker(_) if node.depth > 0 => 1.0,
                    Target::Broker(_) => (controller::IDLE + controller::BUSY) / 2.0,
                },
                blocked: node.blocked,
                backlog: node.depth,
            };
            let decision = c.observe(window);
            if !c.pending() {
                self.service.reset();
            }
            if let Some(Decision { from, to, reason }) = decision {
                let text = reason.describe(from, to);
                self.apply(core, from, to, text);
            }
        }
        node.auto = self.snapshot(on);
        if let Some(a) = &node.auto
            && a.limit > 0
        {
            self.last_limit = a.limit;
        }
    }

    /// Fills a snapshot's `auto` with the state as it is (the report's).
    pub(crate) fn annotate(&self, node: &mut NodeSnapshot) {
        if self.switch.ever.load(Ordering::Acquire) {
            node.auto = self.snapshot(self.switch.is_on());
        }
    }

    /// What the card shows.
    fn snapshot(&self, on: bool) -> Option<AutoSnapshot> {
        let (min, max) = self.range();
        Some(AutoSnapshot {
            field: self.spec.auto_field().into(),
            limit: match self.controller.as_ref().filter(|_| on) {
                Some(c) => c.limit(),
                // A finished stage has no workers left: show the last
                // value it ran with.
                None => match self.live() {
                    0 => self.last_limit,
                    live => live,
                },
            },
            min,
            max,
            pinned: !on,
            baseline_us: self
                .controller
                .as_ref()
                .and_then(Controller::baseline_us)
                .map(|b| b as u64),
            latency_ratio: self.controller.as_ref().and_then(Controller::last_ratio),
            reason: self.reason.clone(),
        })
    }

    /// Sets the limit to `to` as a manual tune would, and records why.
    fn apply(&mut self, core: &JobCore, from: u32, to: u32, reason: String) {
        let live = match &self.target {
            Target::Local(ctl) => ctl.workers(),
            Target::Broker(b) => b.desired_workers(),
        };
        if let Some(budget) = &self.budget
            && to > live
            && !budget.allows(to - live)
        {
            // The server's limit holds the stage where it is; say so once.
            if let Some(c) = &mut self.controller {
                c.reset_to(from);
            }
            let held = format!("the server's worker limit holds it at {from}");
            if self.reason.as_deref() != Some(held.as_str()) {
                self.record(core, from, from, held);
            }
            return;
        }
        let result = match &self.target {
            Target::Local(ctl) => apply_local(ctl, &self.spec, to),
            Target::Broker(b) => {
                apply_broker(b, &self.spec, to);
                Ok(())
            }
        };
        let (to, reason) = match result {
            Ok(()) => (to, reason),
            Err(ScaleError::Spawn { kept, .. }) => {
                // The system refused threads: stay where the stage is, and
                // treat that as the ceiling for now.
                if let Some(c) = &mut self.controller {
                    c.reset_to(kept);
                }
                (
                    kept,
                    format!("the system refused more threads: stays at {kept}"),
                )
            }
            // Its input has closed: the stage is finishing.
            Err(_) => return,
        };
        self.record(core, from, to, reason);
    }

    /// Puts a change (or a hold) in the job's events and the card.
    fn record(&mut self, core: &JobCore, from: u32, to: u32, reason: String) {
        tracing::info!(job = %core.id, stage = %self.spec.name, from, to, reason = %reason, "auto limit");
        let field = self.spec.auto_field();
        let mut lc = core.lifecycle();
        core.event(
            &mut lc,
            EventKind::Auto {
                stage: self.spec.name.clone(),
                field: field.into(),
                from: f64::from(from),
                to: f64::from(to),
                reason: reason.clone(),
            },
        );
        self.reason = Some(reason);
    }
}

/// The value a stage starts with.
fn spec_start(target: &Target) -> u32 {
    let spec = match target {
        Target::Local(ctl) => &ctl.spec,
        Target::Broker(b) => &b.spec,
    };
    match spec.runtime {
        Runtime::Thread => spec.workers.start(),
        Runtime::Async => spec.effective_concurrency(),
    }
}

/// An in-memory stage: threads, or the operations in flight on tasks
/// (with enough tasks to run them).
fn apply_local(ctl: &Arc<StageCtl>, spec: &StageSpec, to: u32) -> Result<(), ScaleError> {
    match spec.runtime {
        Runtime::Thread => ctl.scale_to(to),
        // One task per operation in flight (see `StageSpec::start_workers`).
        Runtime::Async => {
            if to > ctl.workers() {
                ctl.scale_to(to)?;
                ctl.set_concurrency(to)
            } else {
                ctl.set_concurrency(to)?;
                ctl.scale_to(to)
            }
        }
    }
}

/// A broker stage: the job-wide worker count (threads) or concurrency
/// budget (tasks), which the placer spreads over the hosts.
fn apply_broker(b: &BrokerStage, spec: &StageSpec, to: u32) {
    match spec.runtime {
        Runtime::Thread => b.set_desired(to),
        Runtime::Async => {
            b.set_desired(to);
            let limits = b.limits();
            b.set_limits(HostLimits {
                concurrency: Some(to),
                rate_limit: limits.rate_limit,
            });
        }
    }
}
