//! The server's own state: jobs with their spec, state, last snapshot and
//! final report; their events; a downsampled metric history; the tuning
//! lab's sweeps and soaks (`lab`); the audit log; API token hashes. SQLite in the data directory by default
//! (`queuelab.db`), or PostgreSQL for a team server (`--store
//! postgres://…`), with the same behaviour.
//!
//! The queries are written once, in the SQL both databases speak (`$n`
//! parameters, `ON CONFLICT`, `RETURNING`); `backend` runs them on
//! either database. Only the schema's DDL differs: schema changes are
//! numbered `migrations`, applied in order at open and recorded in
//! `schema_version`. Writes are a few rows a second per running job,
//! always from the store's own threads ([`StoreThreads`]) while serving.

mod backend;
mod error;
mod exec;
mod lab;
mod migrations;

pub use error::StoreError;
pub use exec::StoreThreads;

use std::path::Path;
use std::sync::Mutex;

use shared::api::JobSummary;
use shared::metrics::{JobEvent, JobReport, JobSnapshot, JobState};
use shared::spec::PipelineSpec;

use backend::{Backend, Cell, P, Stmt, off_runtime, t};
use migrations::{MIGRATIONS, POSTGRES_SERIAL, SQLITE_SERIAL};

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
    db: Backend,
}

impl Store {
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::migrated(Backend::Sqlite(Mutex::new(conn)), SQLITE_SERIAL)
    }

    /// Opens (creating and migrating) the store in a PostgreSQL database.
    pub fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let client = off_runtime(|| postgres::Client::connect(url, postgres::NoTls))?;
        Self::migrated(Backend::Postgres(Mutex::new(Some(client))), POSTGRES_SERIAL)
    }

    /// Opens the store `place` names: a `postgres://` URL, or a SQLite file.
    pub fn open_at(place: &str) -> Result<Self, StoreError> {
        if place.starts_with("postgres://") || place.starts_with("postgresql://") {
            Self::open_postgres(place)
        } else {
            Self::open(Path::new(place))
        }
    }

    fn migrated(db: Backend, serial: &str) -> Result<Self, StoreError> {
        db.exec(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            vec![],
        )?;
        let rows = db.query("SELECT max(version) FROM schema_version", &[])?;
        let version = rows.first().and_then(|r| r.first()).map_or(0, Cell::int) as usize;
        for (i, ddl) in MIGRATIONS.iter().enumerate().skip(version) {
            let ddl = ddl.replace("{serial}", serial);
            let mut stmts: Vec<Stmt> = ddl
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| (&*Box::leak(s.to_owned().into_boxed_str()), vec![]))
                .collect();
            stmts.push((
                "INSERT INTO schema_version (version) VALUES ($1)",
                vec![P::I(i as i64 + 1)],
            ));
            db.transaction(&stmts)?;
            tracing::info!(version = i + 1, backend = ?db, "store migrated");
        }
        Ok(Self { db })
    }

    /// Records a new job.
    pub fn insert_job(&self, summary: &JobSummary, spec: &PipelineSpec) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO jobs (id, name, template, spec, state, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            vec![
                t(&summary.id),
                t(&summary.name),
                P::T(summary.template.clone()),
                t(serde_json::to_string(spec)?),
                t(summary.state.as_str()),
                P::I(summary.created_at_ms as i64),
            ],
        )
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
        let state = report
            .map(|r| r.state)
            .or(snapshot.state)
            .unwrap_or(JobState::Running);
        let snap = serde_json::to_string(snapshot)?;
        let mut stmts: Vec<Stmt> = vec![(
            "UPDATE jobs SET state = $2, snapshot = $3, report = COALESCE($4, report), updated_at_ms = $5
             WHERE id = $1",
            vec![
                t(id),
                t(state.as_str()),
                t(&snap),
                P::T(report.map(serde_json::to_string).transpose()?),
                P::I(now_ms() as i64),
            ],
        )];
        for (i, e) in events.iter().enumerate() {
            stmts.push((
                "INSERT INTO events (job_id, n, event) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![
                    t(id),
                    P::I((events_from + i) as i64),
                    t(serde_json::to_string(e)?),
                ],
            ));
        }
        stmts.push((
            "INSERT INTO history (job_id, elapsed_ms, snapshot) VALUES ($1, $2, $3)
             ON CONFLICT (job_id, elapsed_ms) DO UPDATE SET snapshot = excluded.snapshot",
            vec![t(id), P::I(snapshot.elapsed_ms as i64), t(snap)],
        ));
        self.db.transaction(&stmts)
    }

    /// Every stored job, newest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = self.db.query(
            "SELECT id, name, template, spec, state, created_at_ms, snapshot, report
             FROM jobs ORDER BY created_at_ms DESC, id DESC",
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let snapshot: Option<JobSnapshot> =
                r[6].text().map(|s| serde_json::from_str(&s)).transpose()?;
            let report: Option<JobReport> =
                r[7].text().map(|s| serde_json::from_str(&s)).transpose()?;
            let state: JobState = serde_json::from_value(serde_json::Value::String(r[4].string()))?;
            let summary = summary_of(
                r[0].string(),
                r[1].string(),
                r[2].text(),
                state,
                r[5].int() as u64,
                snapshot.as_ref(),
                report.as_ref(),
            );
            out.push(JobRecord {
                summary,
                spec: serde_json::from_str(&r[3].string())?,
                snapshot,
                report,
            });
        }
        Ok(out)
    }

    /// Marks jobs left running by a crash as `interrupted`; returns their ids.
    pub fn mark_interrupted(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.db.query(
            "UPDATE jobs SET state = 'interrupted', updated_at_ms = $1
             WHERE state IN ('pending', 'running', 'draining') RETURNING id",
            &[P::I(now_ms() as i64)],
        )?;
        Ok(rows.iter().map(|r| r[0].string()).collect())
    }

    /// A job's stored events.
    pub fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        let rows = self.db.query(
            "SELECT event FROM events WHERE job_id = $1 ORDER BY n",
            &[t(id)],
        )?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r[0].string())?))
            .collect()
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
        let rows = self.db.query(
            "SELECT elapsed_ms, snapshot FROM history
             WHERE job_id = $1 AND elapsed_ms BETWEEN $2 AND $3 ORDER BY elapsed_ms",
            &[
                t(id),
                P::I(from_ms.min(i64::MAX as u64) as i64),
                P::I(to_ms.min(i64::MAX as u64) as i64),
            ],
        )?;
        let mut out = Vec::new();
        let mut next = 0u64;
        for r in rows {
            let at = r[0].int() as u64;
            if at >= next {
                out.push(serde_json::from_str(&r[1].string())?);
                next = at.saturating_add(step_ms.max(1));
            }
        }
        Ok(out)
    }

    /// Forgets a job and everything recorded about it.
    pub fn delete_job(&self, id: &str) -> Result<(), StoreError> {
        self.db.transaction(&[
            ("DELETE FROM events WHERE job_id = $1", vec![t(id)]),
            ("DELETE FROM history WHERE job_id = $1", vec![t(id)]),
            ("DELETE FROM jobs WHERE id = $1", vec![t(id)]),
        ])
    }

    /// Stores a token's hash with its role and label.
    pub fn add_token(&self, label: &str, role: &str, hash: &str) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO tokens (label, role, hash, created_at_ms) VALUES ($1, $2, $3, $4)",
            vec![t(label), t(role), t(hash), P::I(now_ms() as i64)],
        )
    }

    /// The label and role of the token with this hash.
    pub fn find_token(&self, hash: &str) -> Result<Option<(String, String)>, StoreError> {
        let rows = self
            .db
            .query("SELECT label, role FROM tokens WHERE hash = $1", &[t(hash)])?;
        Ok(rows.first().map(|r| (r[0].string(), r[1].string())))
    }

    /// Appends to the audit log.
    pub fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.db.exec(
            "INSERT INTO audit (at_ms, who, action, target, detail, remote) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                P::I(e.at_ms as i64),
                t(&e.who),
                t(&e.action),
                t(&e.target),
                t(&e.detail),
                t(&e.remote),
            ],
        )
    }

    /// The newest audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.db.query(
            "SELECT at_ms, who, action, target, detail, remote FROM audit ORDER BY id DESC LIMIT $1",
            &[P::I(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at_ms: r[0].int() as u64,
                who: r[1].string(),
                action: r[2].string(),
                target: r[3].string(),
                detail: r[4].string(),
                remote: r[5].string(),
            })
            .collect())
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
pub(crate) mod tests {
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

    /// A fresh PostgreSQL database on the local server, dropped on drop.
    pub struct PgDb {
        /// Its URL.
        pub url: String,
        name: String,
    }

    fn admin_url() -> String {
        std::env::var("QUEUELAB_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    impl PgDb {
        /// Creates it.
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!(
                "ql_store_{}_{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let admin = admin_url();
            off_runtime(|| {
                let mut c = postgres::Client::connect(&admin, postgres::NoTls)
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (see .ci/run): {e}"));
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .unwrap();
                c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            });
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            Self {
                url: format!("{base}/{name}"),
                name,
            }
        }
    }

    impl Drop for PgDb {
        fn drop(&mut self) {
            let (admin, name) = (admin_url(), self.name.clone());
            off_runtime(move || {
                if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                    let _ =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            });
        }
    }

    /// Runs `check` against a fresh SQLite store and a fresh PostgreSQL one,
    /// reopening each through `open` so restarts can be tested.
    fn on_both(check: impl Fn(&dyn Fn() -> Store)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        check(&|| Store::open(&path).unwrap());
        let db = PgDb::new();
        check(&|| Store::open_postgres(&db.url).unwrap());
    }

    #[test]
    fn migrations_apply_once_and_jobs_round_trip() {
        on_both(|open| {
            let store = open();
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
            let store = open();
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
            store.add_token("ci", "operator", "abc").unwrap();
            assert_eq!(
                store.find_token("abc").unwrap(),
                Some(("ci".into(), "operator".into()))
            );
            assert_eq!(store.find_token("nope").unwrap(), None);
            let entry = AuditEntry {
                at_ms: 7,
                who: "ci".into(),
                action: "create".into(),
                target: "a".into(),
                detail: "{}".into(),
                remote: "127.0.0.1:1".into(),
            };
            store.audit(&entry).unwrap();
            assert_eq!(store.audit_log(10).unwrap(), vec![entry]);
        });
    }

    #[test]
    fn history_is_downsampled_by_step_and_deleted_with_its_job() {
        on_both(|open| {
            let store = open();
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
            assert!(store.history("h", 0, u64::MAX, 1).unwrap().is_empty());
            assert!(store.jobs().unwrap().is_empty());
        });
    }
}
