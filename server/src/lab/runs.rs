//! The lab runs a server knows, those it measures and those in the store,
//! each with its latest state and its stop flag. [`crate::state::AppState`]
//! keeps them; the routes, the WebSocket and the lab threads share them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use shared::lab::{LabDetail, LabState, LabSummary};
use tokio::sync::watch;

use crate::error::AppError;

/// One lab run: its latest state and its stop flag.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) detail: watch::Sender<Arc<LabDetail>>,
    pub(super) stop: AtomicBool,
}

/// Every lab run the server knows: those it runs and those in the store.
///
/// Why: one place the routes, the WebSocket and the lab threads share.
#[derive(Debug, Default)]
pub struct LabRuns {
    pub(super) slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    next: AtomicU64,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl LabRuns {
    /// The lab runs of a store: those left running by a stopped server
    /// are marked interrupted (and saved so).
    pub fn load(store: &crate::store::Store) -> Self {
        let runs = Self::default();
        match store.lab_runs() {
            Ok(list) => {
                let mut slots = runs.slots.lock().unwrap_or_else(|e| e.into_inner());
                for mut d in list {
                    if d.summary.state.is_running() {
                        d.summary.state = LabState::Interrupted;
                        d.current_job = None;
                        if let Err(e) = store.save_lab(&d) {
                            tracing::error!(lab = %d.summary.id, error = %e, "cannot mark a lab run interrupted");
                        }
                    }
                    let (tx, _) = watch::channel(Arc::new(d.clone()));
                    slots.insert(
                        d.summary.id.clone(),
                        Arc::new(Slot {
                            detail: tx,
                            stop: AtomicBool::new(false),
                        }),
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the lab runs from the store"),
        }
        runs
    }

    /// Every lab run, newest first.
    pub fn list(&self) -> Vec<LabSummary> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LabSummary> = slots
            .values()
            .map(|s| s.detail.borrow().summary.clone())
            .collect();
        out.sort_by(|a, b| {
            b.created_at_ms
                .cmp(&a.created_at_ms)
                .then_with(|| b.id.cmp(&a.id))
        });
        out
    }

    fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// One lab run as it is now.
    pub fn get(&self, id: &str) -> Option<Arc<LabDetail>> {
        self.slot(id).map(|s| s.detail.borrow().clone())
    }

    /// Its changes, for the WebSocket.
    pub fn subscribe(&self, id: &str) -> Option<watch::Receiver<Arc<LabDetail>>> {
        self.slot(id).map(|s| s.detail.subscribe())
    }

    pub(super) fn running(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.detail.borrow().summary.state.is_running())
            .count()
    }

    /// Asks a running lab run to stop (its current run is cut short; what
    /// was measured is kept).
    pub fn stop(&self, id: &str) -> Result<Arc<LabDetail>, AppError> {
        let slot = self
            .slot(id)
            .ok_or_else(|| AppError::NotFound(format!("no sweep `{id}`")))?;
        let d = slot.detail.borrow().clone();
        if !d.summary.state.is_running() {
            return Err(AppError::Conflict(format!("sweep `{id}` is not running")));
        }
        slot.stop.store(true, Ordering::Relaxed);
        Ok(d)
    }

    /// Asks every running lab run to stop (server shutdown).
    pub fn stop_all(&self) {
        for s in self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            s.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Forgets a finished lab run.
    pub fn remove(&self, id: &str) -> Result<(), AppError> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slots.get(id) else {
            return Err(AppError::NotFound(format!("no sweep `{id}`")));
        };
        if slot.detail.borrow().summary.state.is_running() {
            return Err(AppError::Conflict(format!(
                "sweep `{id}` is running: stop it first"
            )));
        }
        slots.remove(id);
        Ok(())
    }

    pub(super) fn new_id(&self) -> String {
        format!(
            "sw{}-{}",
            now_ms(),
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}
