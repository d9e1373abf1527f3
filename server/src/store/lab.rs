//! The tuning lab's sweeps and soaks, stored whole (spec, runs with their
//! job ids, findings) so a saved one reopens exactly as it was measured.

use shared::lab::{LabDetail, LabState};

use super::backend::{P, t};
use super::{Store, StoreError, now_ms};

fn state_str(s: LabState) -> &'static str {
    match s {
        LabState::Running => "running",
        LabState::Done => "done",
        LabState::Stopped => "stopped",
        LabState::Failed => "failed",
        LabState::Interrupted => "interrupted",
    }
}

impl Store {
    /// Saves a lab run as it is now (inserted the first time).
    pub fn save_lab(&self, d: &LabDetail) -> Result<(), StoreError> {
        let kind = serde_json::to_value(d.summary.kind)?;
        self.db.exec(
            "INSERT INTO lab_runs (id, kind, state, created_at_ms, updated_at_ms, detail)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                updated_at_ms = excluded.updated_at_ms, detail = excluded.detail",
            vec![
                t(&d.summary.id),
                t(kind.as_str().unwrap_or("sweep")),
                t(state_str(d.summary.state)),
                P::I(d.summary.created_at_ms as i64),
                P::I(now_ms() as i64),
                t(serde_json::to_string(d)?),
            ],
        )
    }

    /// Every stored lab run, newest first.
    pub fn lab_runs(&self) -> Result<Vec<LabDetail>, StoreError> {
        let rows = self.db.query(
            "SELECT detail FROM lab_runs ORDER BY created_at_ms DESC, id DESC",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r[0].string())?))
            .collect()
    }

    /// Forgets a lab run (its jobs stay, each in the job list).
    pub fn delete_lab(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .exec("DELETE FROM lab_runs WHERE id = $1", vec![t(id)])
    }
}
