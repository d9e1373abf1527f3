//! Server-wide limits: what all running jobs together may hold. A spec is
//! checked on its own by `shared::spec` (at most 32 stages, 4 096 workers
//! a stage, …); these caps bound the sum, so one team member cannot take
//! the whole host with a few valid specs.
//!
//! Admission is by reservation: a job being started holds its share while
//! `engine::start` runs, so two requests at once cannot both squeeze
//! under a cap, and nobody waits on a lock while another job starts.

use std::sync::{Arc, Mutex};

use shared::metrics::NodeKind;
use shared::spec::{Capacity, PipelineSpec};

/// The caps, from `queuelab serve`'s flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Jobs running at once.
    pub max_jobs: usize,
    /// Stage workers (threads and tasks) over all running jobs.
    pub max_workers: u64,
    /// Items the bounded queues of all running jobs may hold.
    pub max_queued: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_jobs: 64,
            max_workers: 8192,
            max_queued: 50_000_000,
        }
    }
}

/// What a job holds (or would hold) against the caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Jobs (0 or 1 for one job).
    pub jobs: usize,
    /// Stage workers.
    pub workers: u64,
    /// Bounded queue capacity, in items.
    pub queued: u64,
}

impl Usage {
    /// What a job started from `spec` holds at first.
    pub fn of_spec(spec: &PipelineSpec) -> Self {
        Self {
            jobs: 1,
            workers: spec
                .stages
                .iter()
                .map(|s| u64::from(s.start_workers()))
                .sum(),
            queued: spec
                .stages
                .iter()
                .map(|s| match s.queue.capacity {
                    Capacity::Bounded(n) => n,
                    Capacity::Unbounded => 0,
                })
                .sum(),
        }
    }

    /// What a running job holds now: its spec's queues and the workers
    /// its stages have at the moment (tunes included).
    pub fn of_running(spec: &PipelineSpec, snapshot: &shared::metrics::JobSnapshot) -> Self {
        let workers = snapshot
            .nodes
            .iter()
            .filter(|n| n.kind == Some(NodeKind::Stage))
            .map(|n| u64::from(n.workers))
            .sum();
        Self {
            workers,
            ..Self::of_spec(spec)
        }
    }

    fn plus(self, other: Usage) -> Usage {
        Usage {
            jobs: self.jobs + other.jobs,
            workers: self.workers + other.workers,
            queued: self.queued + other.queued,
        }
    }
}

/// Why a job or a tune was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Too many jobs run already.
    #[error("the server runs {running} jobs, its limit (--max-jobs {max}); stop one first")]
    Jobs {
        /// Jobs running.
        running: usize,
        /// The cap.
        max: usize,
    },
    /// Too many workers in all.
    #[error(
        "this would bring the server's stage workers to {would}, over its limit of {max} (--max-workers)"
    )]
    Workers {
        /// Workers there would be.
        would: u64,
        /// The cap.
        max: u64,
    },
    /// Too much queue capacity in all.
    #[error(
        "this would bring the queue capacity of running jobs to {would} items, over the server's limit of {max} (--max-queued)"
    )]
    Queued {
        /// Capacity there would be.
        would: u64,
        /// The cap.
        max: u64,
    },
}

impl Limits {
    /// Whether `used` (everything running and reserved) plus `more` fits.
    pub fn check(&self, used: Usage, more: Usage) -> Result<(), LimitError> {
        let would = used.plus(more);
        if more.jobs > 0 && would.jobs > self.max_jobs {
            return Err(LimitError::Jobs {
                running: used.jobs,
                max: self.max_jobs,
            });
        }
        if more.workers > 0 && would.workers > self.max_workers {
            return Err(LimitError::Workers {
                would: would.workers,
                max: self.max_workers,
            });
        }
        if more.queued > 0 && would.queued > self.max_queued {
            return Err(LimitError::Queued {
                would: would.queued,
                max: self.max_queued,
            });
        }
        Ok(())
    }
}

/// Shares reserved by jobs that are being started.
#[derive(Debug, Default)]
pub struct Reservations {
    held: Mutex<Usage>,
}

/// A reserved share; given back when dropped (the job then counts as
/// running, or failed to start).
#[derive(Debug)]
pub struct Reservation {
    owner: Arc<Reservations>,
    usage: Usage,
}

impl Reservations {
    /// Reserves `more` if `limits` allow it on top of `running` and what
    /// is reserved already.
    pub fn reserve(
        self: &Arc<Self>,
        limits: &Limits,
        running: Usage,
        more: Usage,
    ) -> Result<Reservation, LimitError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        limits.check(running.plus(*held), more)?;
        *held = held.plus(more);
        Ok(Reservation {
            owner: self.clone(),
            usage: more,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        held.jobs -= self.usage.jobs;
        held.workers -= self.usage.workers;
        held.queued -= self.usage.queued;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(jobs: usize, workers: u64, queued: u64) -> Usage {
        Usage {
            jobs,
            workers,
            queued,
        }
    }

    #[test]
    fn caps_apply_to_the_sum() {
        let limits = Limits {
            max_jobs: 2,
            max_workers: 10,
            max_queued: 100,
        };
        assert!(limits.check(usage(1, 5, 50), usage(1, 5, 50)).is_ok());
        assert!(matches!(
            limits.check(usage(2, 0, 0), usage(1, 1, 1)),
            Err(LimitError::Jobs { .. })
        ));
        assert!(matches!(
            limits.check(usage(1, 8, 0), usage(0, 3, 0)),
            Err(LimitError::Workers { would: 11, .. })
        ));
        assert!(matches!(
            limits.check(usage(0, 0, 90), usage(1, 1, 20)),
            Err(LimitError::Queued { would: 110, .. })
        ));
        // Scaling down is always allowed, even over a cap lowered since.
        assert!(limits.check(usage(5, 50, 500), usage(0, 0, 0)).is_ok());
    }

    #[test]
    fn reservations_count_until_dropped() {
        let limits = Limits {
            max_jobs: 1,
            ..Limits::default()
        };
        let r = Arc::new(Reservations::default());
        let first = r
            .reserve(&limits, Usage::default(), usage(1, 1, 1))
            .unwrap();
        assert!(
            r.reserve(&limits, Usage::default(), usage(1, 1, 1))
                .is_err()
        );
        drop(first);
        assert!(r.reserve(&limits, Usage::default(), usage(1, 1, 1)).is_ok());
    }
}
