//! The schema, as numbered migrations in the DDL both databases share.

/// Numbered schema migrations (index + 1 is the version), in the DDL both
/// databases share; `{serial}` stands for an auto-numbered key column.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, template TEXT, spec TEXT NOT NULL,
        state TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
        snapshot TEXT, report TEXT);
     CREATE INDEX jobs_state ON jobs(state);
     CREATE TABLE events (job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        n BIGINT NOT NULL, event TEXT NOT NULL, PRIMARY KEY (job_id, n));
     CREATE TABLE history (job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        elapsed_ms BIGINT NOT NULL, snapshot TEXT NOT NULL, PRIMARY KEY (job_id, elapsed_ms));
     CREATE TABLE audit (id {serial}, at_ms BIGINT NOT NULL, who TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL, remote TEXT NOT NULL);",
    "CREATE TABLE tokens (id {serial}, label TEXT NOT NULL, role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL);",
    "CREATE TABLE lab_runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL, detail TEXT NOT NULL);",
];

/// What `{serial}` means in SQLite.
pub(super) const SQLITE_SERIAL: &str = "INTEGER PRIMARY KEY AUTOINCREMENT";
/// What `{serial}` means in PostgreSQL.
pub(super) const POSTGRES_SERIAL: &str = "BIGSERIAL PRIMARY KEY";
