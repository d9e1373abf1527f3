//! Files the engine writes beside a job: the **leftovers** (items queued
//! or in flight when the job was aborted, as JSON lines a `file` source can
//! replay) and the **dead letters** (items whose operation failed for
//! good, with the stage, the error and the attempts).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fail::Failure;
use crate::item::Item;
use crate::ops::OpError;
use crate::stats::NodeStats;

/// A JSON-lines file opened on first use and shared by every worker.
#[derive(Debug)]
pub struct LazyLines {
    path: PathBuf,
    /// The writer once opened, or the first error met opening/writing it.
    writer: Mutex<Result<Option<BufWriter<File>>, Failure>>,
}

impl LazyLines {
    /// A file that will be created at `path` (and its folders) on first use.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            writer: Mutex::new(Ok(None)),
        }
    }

    /// The file as failures name it: its name only, not the server's path.
    fn shown(&self) -> String {
        format!(
            "`{}`",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        )
    }

    /// Appends one line. A failure is kept and reported by [`LazyLines::finish`].
    pub fn append(&self, line: &str) {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(slot) = &mut *guard else { return };
        if slot.is_none() {
            let opened = self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(file) => *slot = Some(BufWriter::new(file)),
                Err(e) => {
                    *guard = Err(crate::fail::io(
                        format_args!("opening {}", self.shown()),
                        &e,
                    ));
                    return;
                }
            }
        }
        let writer = slot.as_mut().expect("opened above");
        if let Err(e) = writeln!(writer, "{line}") {
            *guard = Err(crate::fail::io(
                format_args!("writing {}", self.shown()),
                &e,
            ));
        }
    }

    /// Flushes. `Ok(Some(path))` if anything was written, `Ok(None)` if
    /// nothing was, `Err` if some line could not be saved.
    pub fn finish(&self) -> Result<Option<PathBuf>, Failure> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *guard {
            Ok(None) => Ok(None),
            Ok(Some(writer)) => match writer.flush() {
                Ok(()) => Ok(Some(self.path.clone())),
                Err(e) => Err(crate::fail::io(
                    format_args!("writing {}", self.shown()),
                    &e,
                )),
            },
            Err(e) => Err(e.clone()),
        }
    }
}

/// Why some leftovers could not be saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct LeftoversError(#[from] Failure);

/// The job's leftovers file.
#[derive(Debug)]
pub struct Leftovers(LazyLines);

impl Leftovers {
    /// Leftovers that will go to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self(LazyLines::new(path))
    }

    /// Saves `item`, counted against `node`. The count always moves, so
    /// the accounting holds even if the disk fails; the failure is kept and
    /// reported by [`Leftovers::finish`].
    pub fn put(&self, node: &NodeStats, item: Item) {
        node.leftovers.fetch_add(1, Ordering::Relaxed);
        self.0.append(&item.payload.to_line());
    }

    /// See [`LazyLines::finish`].
    pub fn finish(&self) -> Result<Option<PathBuf>, LeftoversError> {
        Ok(self.0.finish()?)
    }
}

/// Where dead letters were kept: a file, or a table of a SQLite file.
/// Kept apart rather than joined into one string, so nothing ever has to
/// split a path to find a table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAt {
    /// The JSON-lines file, or the SQLite database file.
    pub path: String,
    /// The table, when the letters are rows of a SQLite database.
    pub table: Option<String>,
}

/// Why some dead letters could not be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    /// The JSON-lines file could not be opened or written.
    #[error(transparent)]
    File(#[from] Failure),
    /// A row could not be inserted.
    #[error("cannot keep a dead letter in {path} (table {table}): {error}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The table.
        table: String,
        /// What SQLite said.
        error: String,
    },
}

/// The job's dead-letter sink: a JSON-lines file or a SQLite table.
#[derive(Debug)]
pub enum DeadLetters {
    /// One JSON object per line.
    File(LazyLines),
    /// One row per letter.
    Sqlite(Mutex<SqliteLetters>),
}

/// Dead letters kept in SQLite.
#[derive(Debug)]
pub struct SqliteLetters {
    conn: rusqlite::Connection,
    insert: String,
    /// The database file, for the report.
    path: String,
    /// The table, for the report.
    table: String,
    written: bool,
    error: Option<DeadLetterError>,
}

impl DeadLetters {
    /// Dead letters that will go to a JSON-lines file at `path`.
    pub fn new(path: PathBuf) -> Self {
        DeadLetters::File(LazyLines::new(path))
    }

    /// Dead letters kept in `table` of the SQLite database at `path`,
    /// created if missing.
    pub fn sqlite(path: &Path, table: &str) -> Result<Self, Failure> {
        let open = || -> Result<rusqlite::Connection, rusqlite::Error> {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                let _ = std::fs::create_dir_all(dir);
            }
            let conn = rusqlite::Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS \"{table}\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     at_ms INTEGER NOT NULL, stage TEXT NOT NULL, error_kind TEXT NOT NULL, \
                     error TEXT NOT NULL, attempts INTEGER NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL)"
                ),
                [],
            )?;
            Ok(conn)
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let conn =
            open().map_err(|e| crate::fail::other(format_args!("dead letters in `{name}`"), &e))?;
        Ok(DeadLetters::Sqlite(Mutex::new(SqliteLetters {
            conn,
            insert: format!(
                "INSERT INTO \"{table}\" (at_ms, stage, error_kind, error, attempts, seq, item) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            path: path.display().to_string(),
            table: table.to_owned(),
            written: false,
            error: None,
        })))
    }

    /// Keeps `item`, which failed for good at `node` after `attempts`.
    pub fn put(&self, node: &NodeStats, item: &Item, error: &OpError, attempts: u32) {
        node.note_reason(format!(
            "dead-lettered at `{}`: {}",
            node.info.name, error.kind
        ));
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        match self {
            DeadLetters::File(lines) => {
                let record = serde_json::json!({
                    "at_ms": at_ms,
                    "stage": node.info.name,
                    "error_kind": error.kind,
                    "error": error.detail,
                    "attempts": attempts,
                    "seq": item.seq,
                    "item": item.payload.to_line(),
                });
                lines.append(&record.to_string());
            }
            DeadLetters::Sqlite(db) => {
                let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
                let db = &mut *db;
                let inserted = db.conn.prepare_cached(&db.insert).and_then(|mut stmt| {
                    stmt.execute(rusqlite::params![
                        at_ms as i64,
                        node.info.name,
                        error.kind,
                        error.detail,
                        attempts,
                        item.seq as i64,
                        item.payload.to_line(),
                    ])
                });
                match inserted {
                    Ok(_) => db.written = true,
                    Err(e) => {
                        db.error.get_or_insert(DeadLetterError::Sqlite {
                            path: db.path.clone(),
                            table: db.table.clone(),
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
    }

    /// Where the letters are (`Ok(None)` if there were none), or the first
    /// failure to keep one.
    pub fn finish(&self) -> Result<Option<KeptAt>, DeadLetterError> {
        match self {
            DeadLetters::File(lines) => Ok(lines.finish().map(|p| {
                p.map(|p| KeptAt {
                    path: p.display().to_string(),
                    table: None,
                })
            })?),
            DeadLetters::Sqlite(db) => {
                let db = db.lock().unwrap_or_else(|e| e.into_inner());
                match &db.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(db.written.then(|| KeptAt {
                        path: db.path.clone(),
                        table: Some(db.table.clone()),
                    })),
                }
            }
        }
    }
}
