//! Sinks: where items end up, how they are batched, and where items that
//! failed for good are kept.

use serde::{Deserialize, Serialize};

use super::defaults;
use super::retry::{RetrySpec, validate_retry};
use super::validation::Validator;

/// Where items end up.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// Counts items and discards them.
    #[default]
    Null,
    /// Appends items as JSON lines.
    File {
        /// Path of the file.
        path: String,
        /// How items are grouped into writes.
        #[serde(default)]
        batch: BatchSpec,
    },
    /// Upserts records into a SQLite table (the embedded default): WAL,
    /// one writer, one transaction per batch, keyed so that retries and
    /// replays never duplicate a row.
    Sqlite {
        /// Database file; created if missing.
        path: String,
        /// Table; created if missing.
        #[serde(default = "defaults::table")]
        table: String,
        /// Record field holding the unique key.
        #[serde(default = "defaults::key")]
        key: String,
        /// Record fields also stored as columns of their own (the whole
        /// record is always kept as JSON in `record`).
        #[serde(default)]
        columns: Vec<String>,
        /// How records are grouped into transactions.
        #[serde(default)]
        batch: BatchSpec,
        /// Retries of a failed batch (busy database, full disk, lost connection).
        #[serde(default = "defaults::sink_retry")]
        retry: RetrySpec,
        /// `upsert` on the key (the default: a batch written twice leaves
        /// one row per key) or plain `insert` (written twice, it is there
        /// twice): the article's non-idempotent writes, on purpose.
        #[serde(default, skip_serializing_if = "WriteMode::is_upsert")]
        write: WriteMode,
        /// Fault injection: batches whose commit succeeds but whose
        /// acknowledgement is lost, so the sink writes them again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<SinkFault>,
    },
    /// Upserts records into a PostgreSQL table through a connection pool,
    /// one multi-row `INSERT … ON CONFLICT` per batch.
    Postgres {
        /// Connection string, e.g. `postgres://postgres@127.0.0.1:5432/test`,
        /// or `env:NAME` to read it from an environment variable.
        url: String,
        /// A SQLite file to write to instead when `url` names an
        /// environment variable that is not set (no PostgreSQL configured).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_sqlite: Option<String>,
        /// Table; created if missing.
        #[serde(default = "defaults::table")]
        table: String,
        /// Record field holding the unique key.
        #[serde(default = "defaults::key")]
        key: String,
        /// Record fields also stored as `TEXT` columns (the whole record is
        /// always kept as `JSONB` in `record`).
        #[serde(default)]
        columns: Vec<String>,
        /// How records are grouped into statements.
        #[serde(default)]
        batch: BatchSpec,
        /// Retries of a failed batch (lost connection, server restart).
        #[serde(default = "defaults::sink_retry")]
        retry: RetrySpec,
        /// Connections kept in the pool.
        #[serde(default = "defaults::pool_size")]
        pool_size: u32,
    },
    /// POSTs batches as JSON lines (`application/x-ndjson`). 2xx is
    /// success; 429, 5xx and connection errors are retried, then fail the
    /// job; other statuses reject the batch, narrowed item by item to dead
    /// letters.
    Http {
        /// The URL, `http://…`, or `/target…` for the built-in test target.
        url: String,
        /// How items are grouped into requests.
        #[serde(default)]
        batch: BatchSpec,
        /// Retries of a failed request.
        #[serde(default = "defaults::sink_retry")]
        retry: RetrySpec,
    },
}

/// How a row reaches a table.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Insert, or replace the row with the same key: idempotent.
    #[default]
    Upsert,
    /// Always insert a new row: a batch written again duplicates its rows.
    Insert,
}

impl WriteMode {
    fn is_upsert(&self) -> bool {
        *self == WriteMode::Upsert
    }
}

/// A sink's injected faults.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkFault {
    /// Share of committed batches whose acknowledgement is lost (the
    /// writer reports a failure after the commit, as a dropped connection
    /// would), 0..=1: the batch is retried and written a second time.
    pub lost_ack_share: f64,
}

/// How a sink groups items into writes: a batch is written when it holds
/// `size` items or its first item has waited `linger_ms`, and on drain.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Items per write.
    #[serde(default = "defaults::batch_size")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub size: u32,
    /// Longest an item waits for its batch to fill.
    #[serde(default = "defaults::linger_ms")]
    #[cfg_attr(feature = "openapi", schema(maximum = 60000))]
    pub linger_ms: u64,
}

impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            size: defaults::batch_size(),
            linger_ms: defaults::linger_ms(),
        }
    }
}

/// Where items that failed for good are kept.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeadLetterSpec {
    /// JSON lines; by default `dead_letters.jsonl` in the job's folder.
    #[default]
    File,
    /// JSON lines in the given file.
    FileAt {
        /// Path of the file.
        path: String,
    },
    /// Rows of a SQLite table (created if missing).
    Sqlite {
        /// Database file.
        path: String,
        /// Table.
        #[serde(default = "defaults::dead_letter_table")]
        table: String,
    },
}

impl SinkSpec {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSpec::Null => "null",
            SinkSpec::File { .. } => "file",
            SinkSpec::Sqlite { .. } => "sqlite",
            SinkSpec::Postgres { .. } => "postgres",
            SinkSpec::Http { .. } => "http",
        }
    }

    /// The sink's batching, if it batches.
    pub fn batch(&self) -> Option<BatchSpec> {
        match self {
            SinkSpec::Null => None,
            SinkSpec::File { batch, .. }
            | SinkSpec::Sqlite { batch, .. }
            | SinkSpec::Postgres { batch, .. }
            | SinkSpec::Http { batch, .. } => Some(*batch),
        }
    }

    /// Checks the sink's fields (paths `sink.…`).
    pub(super) fn validate(&self, v: &mut Validator) {
        match self {
            SinkSpec::Null => {}
            SinkSpec::File { path, .. } => v.check_path("sink.path", path),
            SinkSpec::Postgres {
                url,
                table,
                key,
                columns,
                retry,
                pool_size,
                ..
            } => {
                if !(url.starts_with("postgres://")
                    || url.starts_with("postgresql://")
                    || url.strip_prefix("env:").is_some_and(|n| !n.is_empty()))
                {
                    v.err(
                        "sink.url",
                        "must be a postgres:// connection string or env:VARIABLE".into(),
                    );
                }
                if !(1..=64).contains(pool_size) {
                    v.err("sink.pool_size", "must be between 1 and 64".into());
                }
                v.check_table("sink", table, key, columns);
                validate_retry("sink.retry", retry, v);
            }
            SinkSpec::Http { url, retry, .. } => {
                if !super::urls::is_http_url(url) {
                    v.err("sink.url", super::urls::HTTP_URL_RULE.into());
                }
                validate_retry("sink.retry", retry, v);
            }
            SinkSpec::Sqlite {
                path,
                table,
                key,
                columns,
                retry,
                fault,
                ..
            } => {
                v.check_path("sink.path", path);
                v.check_table("sink", table, key, columns);
                validate_retry("sink.retry", retry, v);
                if let Some(f) = fault {
                    v.check_share("sink.fault.lost_ack_share", f.lost_ack_share);
                }
            }
        }
        if let Some(batch) = self.batch() {
            if !(1..=100_000).contains(&batch.size) {
                v.err("sink.batch.size", "must be between 1 and 100000".into());
            }
            if batch.linger_ms > 60_000 {
                v.err("sink.batch.linger_ms", "must be at most 60000".into());
            }
        }
    }
}

impl DeadLetterSpec {
    /// Checks where dead letters go (paths `dead_letter.…`).
    pub(super) fn validate(&self, v: &mut Validator) {
        match self {
            DeadLetterSpec::File => {}
            DeadLetterSpec::FileAt { path } => v.check_path("dead_letter.path", path),
            DeadLetterSpec::Sqlite { path, table } => {
                v.check_path("dead_letter.path", path);
                v.check_identifier("dead_letter.table", table);
            }
        }
    }
}
