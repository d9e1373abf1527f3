//! The server's own state in SQLite (`<data dir>/queuelab.db`): jobs with
//! their spec, state, last snapshot and final report; their events; a
//! downsampled metric history; the audit log.
//!
//! Schema changes are numbered migrations, applied in order at open and
//! recorded in `PRAGMA user_version`. One connection behind a mutex is
//! enough: writes are a few rows a second per running job, done from
//! blocking threads, never on the async workers.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use shared::api::JobSummary;
use shared::metrics::{JobEvent, JobReport, JobSnapshot, JobState};
use shared::spec::PipelineSpec;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored document no longer reads.
    #[error("store: corrupt record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Numbered schema migrations; index + 1 is the version it brings.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, events, metric history, audit log.
    "CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        template TEXT,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        snapshot TEXT,
        report TEXT
     );
     CREATE INDEX jobs_state ON jobs(state);
     CREATE TABLE events (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (job_id, n)
     );
     CREATE TABLE history (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        elapsed_ms INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (job_id, elapsed_ms)
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        remote TEXT NOT NULL
     );",
    // 2: API tokens, stored as SHA-256 hashes.
    "CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL
     );",
];

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Listing fields.
    pub summary: JobSummary,
    /// The spec it ran.
    pub spec: PipelineSpec,
    /// The last snapshot saved.
    pub snapshot: Option<JobSnapshot>,
    /// The final report, if it finished.
    pub report: Option<JobReport>,
}

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Who (a token's label, or `anonymous`).
    pub who: String,
    /// What: `create`, `tune`, `stop`, `delete`.
    pub action: String,
    /// Which job.
    pub target: String,
    /// The request, as JSON.
    pub detail: String,
    /// From where (the client's address).
    pub remote: String,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            conn.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
            tracing::info!(version = i + 1, "store migrated");
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new job.
    pub fn insert_job(&self, summary: &JobSummary, spec: &PipelineSpec) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO jobs (id, name, template, spec, state, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                summary.id,
                summary.name,
                summary.template,
                serde_json::to_string(spec)?,
                summary.state.as_str(),
                summary.created_at_ms as i64,
            ],
        )?;
        Ok(())
    }

    /// Saves a job's progress: state, snapshot, new events, a history
    /// point, and the report once it has one. One transaction.
    pub fn save_progress(
        &self,
        id: &str,
        snapshot: &JobSnapshot,
        events_from: usize,
        events: &[JobEvent],
        report: Option<&JobReport>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let state = report
            .map(|r| r.state)
            .or(snapshot.state)
            .unwrap_or(JobState::Running);
        tx.execute(
            "UPDATE jobs SET state = ?2, snapshot = ?3, report = COALESCE(?4, report), updated_at_ms = ?5
             WHERE id = ?1",
            params![
                id,
                state.as_str(),
                serde_json::to_string(snapshot)?,
                report.map(serde_json::to_string).transpose()?,
                now_ms() as i64,
            ],
        )?;
        for (i, e) in events.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO events (job_id, n, event) VALUES (?1, ?2, ?3)",
                params![id, (events_from + i) as i64, serde_json::to_string(e)?],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO history (job_id, elapsed_ms, snapshot) VALUES (?1, ?2, ?3)",
            params![
                id,
                snapshot.elapsed_ms as i64,
                serde_json::to_string(snapshot)?
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, template, spec, state, created_at_ms, snapshot, report
             FROM jobs ORDER BY created_at_ms DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, template, spec, state, created, snapshot, report) = row?;
            let snapshot: Option<JobSnapshot> =
                snapshot.map(|s| serde_json::from_str(&s)).transpose()?;
            let report: Option<JobReport> = report.map(|s| serde_json::from_str(&s)).transpose()?;
            let state: JobState = serde_json::from_value(serde_json::Value::String(state))?;
            let summary = summary_of(
                id,
                name,
                template,
                state,
                created as u64,
                snapshot.as_ref(),
                report.as_ref(),
            );
            out.push(JobRecord {
                summary,
                spec: serde_json::from_str(&spec)?,
                snapshot,
                report,
            });
        }
        Ok(out)
    }

    /// Marks jobs left running by a crash as `interrupted`; returns their ids.
    pub fn mark_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "UPDATE jobs SET state = 'interrupted', updated_at_ms = ?1
             WHERE state IN ('pending', 'running', 'draining') RETURNING id",
        )?;
        let ids = stmt
            .query_map(params![now_ms() as i64], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// A job's stored events.
    pub fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT event FROM events WHERE job_id = ?1 ORDER BY n")?;
        let rows = stmt.query_map(params![id], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// A job's metric history between two elapsed times, at most one
    /// point per `step_ms`.
    pub fn history(
        &self,
        id: &str,
        from_ms: u64,
        to_ms: u64,
        step_ms: u64,
    ) -> Result<Vec<JobSnapshot>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT elapsed_ms, snapshot FROM history
             WHERE job_id = ?1 AND elapsed_ms BETWEEN ?2 AND ?3 ORDER BY elapsed_ms",
        )?;
        let rows = stmt.query_map(
            params![id, from_ms as i64, to_ms.min(i64::MAX as u64) as i64],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        let mut out = Vec::new();
        let mut next = 0u64;
        for row in rows {
            let (at, json) = row?;
            let at = at as u64;
            if at >= next {
                out.push(serde_json::from_str(&json)?);
                next = at + step_ms.max(1);
            }
        }
        Ok(out)
    }

    /// Forgets a job and everything recorded about it.
    pub fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM jobs WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Stores a token's hash with its role and label.
    pub fn add_token(&self, label: &str, role: &str, hash: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO tokens (label, role, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![label, role, hash, now_ms() as i64],
        )?;
        Ok(())
    }

    /// The label and role of the token with this hash.
    pub fn find_token(&self, hash: &str) -> Result<Option<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT label, role FROM tokens WHERE hash = ?1")?;
        let mut rows = stmt.query(params![hash])?;
        Ok(match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        })
    }

    /// Appends to the audit log.
    pub fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO audit (at_ms, who, action, target, detail, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![e.at_ms as i64, e.who, e.action, e.target, e.detail, e.remote],
        )?;
        Ok(())
    }

    /// The newest audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at_ms, who, action, target, detail, remote FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok(AuditEntry {
                at_ms: r.get::<_, i64>(0)? as u64,
                who: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                detail: r.get(4)?,
                remote: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// A listing built from stored documents.
pub fn summary_of(
    id: String,
    name: String,
    template: Option<String>,
    state: JobState,
    created_at_ms: u64,
    snapshot: Option<&JobSnapshot>,
    report: Option<&JobReport>,
) -> JobSummary {
    JobSummary {
        id,
        name,
        template,
        state,
        created_at_ms,
        elapsed_ms: report.map_or_else(
            || snapshot.map_or(0, |s| s.elapsed_ms),
            |r| (r.elapsed_s * 1000.0) as u64,
        ),
        accounting: report.map_or_else(
            || snapshot.map(|s| s.accounting).unwrap_or_default(),
            |r| r.accounting,
        ),
        throughput: report.map_or_else(|| snapshot.map_or(0.0, |s| s.throughput), |r| r.throughput),
        p99_us: report.map_or_else(
            || snapshot.map_or(0, |s| s.end_to_end_total.p99_us),
            |r| r.end_to_end.p99_us,
        ),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::spec::SpecFormat;

    fn spec() -> PipelineSpec {
        PipelineSpec::parse(
            "name = \"s\"\nsource = { kind = \"synthetic\", count = 1 }\n",
            SpecFormat::Toml,
        )
        .unwrap()
    }

    fn summary(id: &str, state: JobState) -> JobSummary {
        summary_of(id.into(), "s".into(), None, state, 1, None, None)
    }

    #[test]
    fn migrations_apply_once_and_jobs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let store = Store::open(&path).unwrap();
        store
            .insert_job(&summary("a", JobState::Running), &spec())
            .unwrap();
        let snap = JobSnapshot {
            job: "a".into(),
            state: Some(JobState::Running),
            elapsed_ms: 500,
            ..Default::default()
        };
        store.save_progress("a", &snap, 0, &[], None).unwrap();
        drop(store);
        // Reopening runs no migration twice and finds the job.
        let store = Store::open(&path).unwrap();
        let jobs = store.jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].summary.state, JobState::Running);
        assert_eq!(jobs[0].snapshot.as_ref().unwrap().elapsed_ms, 500);
        assert_eq!(store.mark_interrupted().unwrap(), vec!["a".to_owned()]);
        assert_eq!(
            store.jobs().unwrap()[0].summary.state,
            JobState::Interrupted
        );
        assert!(store.mark_interrupted().unwrap().is_empty());
    }

    #[test]
    fn history_is_downsampled_by_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db")).unwrap();
        store
            .insert_job(&summary("h", JobState::Running), &spec())
            .unwrap();
        for ms in (0..5000).step_by(250) {
            let snap = JobSnapshot {
                elapsed_ms: ms,
                ..Default::default()
            };
            store.save_progress("h", &snap, 0, &[], None).unwrap();
        }
        assert_eq!(store.history("h", 0, u64::MAX, 1).unwrap().len(), 20);
        let per_second = store.history("h", 0, u64::MAX, 1000).unwrap();
        assert_eq!(
            per_second.iter().map(|s| s.elapsed_ms).collect::<Vec<_>>(),
            vec![0, 1000, 2000, 3000, 4000]
        );
        assert_eq!(store.history("h", 1000, 1999, 1).unwrap().len(), 4);
        store.delete_job("h").unwrap();
        assert!(
            store.history("h", 0, u64::MAX, 1).unwrap().is_empty(),
            "cascade"
        );
    }
}
