//! The PostgreSQL sink's writer: a small r2d2 pool of connections, one
//! multi-row `INSERT … ON CONFLICT (key) DO UPDATE` per batch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use postgres::NoTls;
use postgres::types::{Json, ToSql};
use r2d2_postgres::PostgresConnectionManager;

use crate::item::{Field, Item, Record};
use crate::sink::writer::{SinkWriter, WriteError, epoch_secs, keyed};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// PostgreSQL allows at most this many parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// Upserts records into a PostgreSQL table.
pub(crate) struct PgWriter {
    pool: Pool,
    table: String,
    key: String,
    columns: Vec<String>,
}

impl std::fmt::Debug for PgWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWriter")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// The table's schema: the key, the record as JSONB, the chosen columns as
/// text, and when the row was written.
pub fn create_sql(table: &str, columns: &[String]) -> String {
    let extra: String = columns
        .iter()
        .map(|c| format!(", {} TEXT", ident(c)))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, record JSONB NOT NULL{extra}, written_at DOUBLE PRECISION NOT NULL)",
        ident(table)
    )
}

/// A multi-row upsert of `rows` rows.
pub fn upsert_sql(table: &str, columns: &[String], rows: usize) -> String {
    let names: Vec<String> = ["key".to_owned(), "record".to_owned()]
        .into_iter()
        .chain(columns.iter().map(|c| ident(c)))
        .chain(std::iter::once("written_at".to_owned()))
        .collect();
    let width = names.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let updates: Vec<String> = names[1..]
        .iter()
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT (key) DO UPDATE SET {}",
        ident(table),
        names.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

fn classify(e: &postgres::Error) -> WriteError {
    // Classes 22 (data exception), 23 (integrity constraint) and P0 (a
    // trigger's RAISE) are about the rows; everything else is the server
    // or the connection.
    match e.code().map(|c| c.code().to_owned()) {
        Some(code)
            if code.starts_with("22") || code.starts_with("23") || code.starts_with("P0") =>
        {
            WriteError::Data(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
            )
        }
        _ => WriteError::Outage(e.to_string()),
    }
}

/// A column's text: strings as they are, other values as JSON, null and
/// absent as NULL.
fn text(field: Option<Field<'_>>) -> Option<String> {
    match field? {
        f if f.is_null() => None,
        f => Some(f.as_str().map_or_else(|| f.to_json(), Cow::into_owned)),
    }
}

/// Why a PostgreSQL writer could not be opened (logged; the user sees
/// only that it failed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The URL does not parse.
    #[error("bad url: {0}")]
    BadUrl(postgres::Error),
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(r2d2::Error),
    /// The table could not be created.
    #[error("cannot create table {table}: {error}")]
    CreateTable {
        /// The table.
        table: String,
        /// What PostgreSQL said.
        error: postgres::Error,
    },
    /// The upsert does not fit the table's actual schema.
    #[error("table {table} does not fit: {error}")]
    Misfit {
        /// The table.
        table: String,
        /// What PostgreSQL said.
        error: postgres::Error,
    },
}

impl PgWriter {
    /// Connects, creates the table if missing and checks the statement
    /// against the table's actual schema.
    pub(crate) fn open(
        url: &str,
        table: &str,
        key: &str,
        columns: &[String],
        pool_size: u32,
    ) -> Result<Self, OpenError> {
        let config: postgres::Config = url.parse().map_err(OpenError::BadUrl)?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .map_err(OpenError::Connect)?;
        let mut conn = pool.get().map_err(OpenError::Connect)?;
        conn.batch_execute(&create_sql(table, columns))
            .map_err(|error| OpenError::CreateTable {
                table: table.to_owned(),
                error,
            })?;
        conn.prepare(&upsert_sql(table, columns, 1))
            .map_err(|error| OpenError::Misfit {
                table: table.to_owned(),
                error,
            })?;
        drop(conn);
        Ok(Self {
            pool,
            table: table.to_owned(),
            key: key.to_owned(),
            columns: columns.to_vec(),
        })
    }
}

impl SinkWriter for PgWriter {
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError> {
        // One statement cannot touch a row twice: keep the last record of
        // each key, as applying the batch in order would.
        let mut order: Vec<String> = Vec::new();
        let mut latest: HashMap<String, &Record> = HashMap::new();
        for item in items {
            let (record, key) = keyed(item, &self.key)?;
            let key = key.into_owned();
            if latest.insert(key.clone(), record).is_none() {
                order.push(key);
            }
        }
        let now = epoch_secs();
        let width = self.columns.len() + 3;
        let mut conn = self
            .pool
            .get()
            .map_err(|e| WriteError::Outage(format!("no connection: {e}")))?;
        let mut tx = conn.transaction().map_err(|e| classify(&e))?;
        for chunk in order.chunks((MAX_PARAMS / width).max(1)) {
            let mut keys = Vec::with_capacity(chunk.len());
            let mut records = Vec::with_capacity(chunk.len());
            let mut cols: Vec<Vec<Option<String>>> = Vec::with_capacity(chunk.len());
            for key in chunk {
                let record = latest[key];
                keys.push(key.clone());
                // The fields (built here if need be) as serde_json writes them.
                records.push(Json(record.fields()));
                cols.push(self.columns.iter().map(|c| text(record.get(c))).collect());
            }
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * width);
            for i in 0..chunk.len() {
                params.push(&keys[i]);
                params.push(&records[i]);
                for c in &cols[i] {
                    params.push(c);
                }
                params.push(&now);
            }
            let sql = upsert_sql(&self.table, &self.columns, chunk.len());
            tx.execute(sql.as_str(), &params)
                .map_err(|e| classify(&e))?;
        }
        tx.commit().map_err(|e| classify(&e))
    }
}

/// The connection string a Postgres sink uses: the URL itself, or the
/// value of the `env:NAME` variable it names (`None` when unset or empty).
pub(crate) fn resolve_url(url: &str) -> Option<String> {
    match url.strip_prefix("env:") {
        Some(name) => std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
        None => Some(url.to_owned()),
    }
}
