//! The SQLite sink's writer: one connection (SQLite has one writer), WAL
//! journal, a cached prepared upsert, one transaction per batch.

use rusqlite::{Connection, ErrorCode, params_from_iter, types::Value as SqlValue};
use serde_json::Value;

use crate::item::Item;
use crate::sink::{SinkWriter, WriteError, epoch_secs, keyed};

/// Upserts records into `table`, keyed on a record field.
#[derive(Debug)]
pub struct SqliteWriter {
    conn: Connection,
    upsert: String,
    key: String,
    columns: Vec<String>,
}

/// Quotes an identifier (already validated to `[A-Za-z0-9_]`).
fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// The upsert statement for `table` with extra `columns`.
pub fn upsert_sql(table: &str, columns: &[String]) -> String {
    let names: Vec<String> = std::iter::once("key".to_owned())
        .chain(std::iter::once("record".to_owned()))
        .chain(columns.iter().map(|c| ident(c)))
        .chain(std::iter::once("written_at".to_owned()))
        .collect();
    let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names[1..]
        .iter()
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT(key) DO UPDATE SET {}",
        ident(table),
        names.join(", "),
        params.join(", "),
        updates.join(", ")
    )
}

/// The table's schema: the key, the whole record as JSON, the chosen
/// columns (typeless, as SQLite allows) and when the row was written.
pub fn create_sql(table: &str, columns: &[String]) -> String {
    let extra: String = columns.iter().map(|c| format!(", {}", ident(c))).collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, record TEXT NOT NULL{extra}, written_at REAL NOT NULL)",
        ident(table)
    )
}

fn classify(e: rusqlite::Error) -> WriteError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig
            ) =>
        {
            WriteError::Data(e.to_string())
        }
        _ => WriteError::Outage(e.to_string()),
    }
}

fn to_sql(v: Option<&Value>) -> SqlValue {
    match v {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(other) => SqlValue::Text(other.to_string()),
    }
}

impl SqliteWriter {
    /// Opens (or creates) the database and table, and checks the upsert
    /// against the table's actual schema.
    pub fn open(
        path: &std::path::Path,
        table: &str,
        key: &str,
        columns: &[String],
    ) -> Result<Self, rusqlite::Error> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            // The folder is part of the configuration; create it like the file.
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute(&create_sql(table, columns), [])?;
        let upsert = upsert_sql(table, columns);
        conn.prepare_cached(&upsert)?;
        Ok(Self {
            conn,
            upsert,
            key: key.to_owned(),
            columns: columns.to_vec(),
        })
    }
}

impl SinkWriter for SqliteWriter {
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError> {
        let now = epoch_secs();
        let tx = self.conn.transaction().map_err(classify)?;
        {
            let mut stmt = tx.prepare_cached(&self.upsert).map_err(classify)?;
            for item in items {
                let (record, key) = keyed(item, &self.key)?;
                let mut values = Vec::with_capacity(self.columns.len() + 3);
                values.push(SqlValue::Text(key));
                values.push(SqlValue::Text(
                    serde_json::to_string(record).expect("a JSON map serialises"),
                ));
                values.extend(self.columns.iter().map(|c| to_sql(record.get(c))));
                values.push(SqlValue::Real(now));
                stmt.execute(params_from_iter(values)).map_err(classify)?;
            }
        }
        tx.commit().map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Payload;

    fn record(json: &str) -> Item {
        let Value::Object(map) = serde_json::from_str(json).unwrap() else {
            panic!()
        };
        Item::new(0, Payload::Record(map), None)
    }

    fn count(path: &std::path::Path, sql: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn upserts_never_duplicate_and_keep_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let cols = vec!["level".to_owned()];
        let mut w = SqliteWriter::open(&db, "logs", "id", &cols).unwrap();
        w.write(&[
            record(r#"{"id":"a","level":"INFO"}"#),
            record(r#"{"id":"b","level":"WARN"}"#),
        ])
        .unwrap();
        w.write(&[record(r#"{"id":"a","level":"ERROR"}"#)]).unwrap();
        assert_eq!(count(&db, "SELECT count(*) FROM logs"), 2);
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM logs WHERE key = 'a' AND level = 'ERROR'"
            ),
            1
        );
        let mode: String = Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_bad_record_fails_the_whole_batch_as_a_data_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut w = SqliteWriter::open(&db, "logs", "id", &[]).unwrap();
        let err = w
            .write(&[record(r#"{"id":"a"}"#), record(r#"{"no_id":1}"#)])
            .unwrap_err();
        assert!(
            matches!(err, WriteError::Data(ref m) if m.contains("`id`")),
            "{err:?}"
        );
        assert_eq!(count(&db, "SELECT count(*) FROM logs"), 0, "rolled back");
    }

    #[test]
    fn a_trigger_rejection_is_a_data_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut w = SqliteWriter::open(&db, "logs", "id", &[]).unwrap();
        Connection::open(&db)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER no_b BEFORE INSERT ON logs WHEN NEW.key = 'b' \
                 BEGIN SELECT RAISE(ABORT, 'b is not welcome'); END;",
            )
            .unwrap();
        let err = w.write(&[record(r#"{"id":"b"}"#)]).unwrap_err();
        assert!(
            matches!(err, WriteError::Data(ref m) if m.contains("not welcome")),
            "{err:?}"
        );
    }

    #[test]
    fn a_table_with_another_schema_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE logs (id INTEGER)")
            .unwrap();
        assert!(SqliteWriter::open(&db, "logs", "id", &[]).is_err());
    }
}
