//! The two-database layer under the [`Store`](super::Store): one
//! [`Backend`] that runs the same `$n`-parameter SQL on SQLite or on
//! PostgreSQL, with the values bound ([`P`]) and read ([`Cell`]) in a form
//! both understand.

use std::sync::Mutex;

use super::error::StoreError;

/// A value bound to a `$n` parameter.
#[derive(Debug, Clone)]
pub(super) enum P {
    I(i64),
    T(Option<String>),
}

/// A text parameter.
pub(super) fn t(s: impl Into<String>) -> P {
    P::T(Some(s.into()))
}

/// A value read from a column.
#[derive(Debug, Clone)]
pub(super) enum Cell {
    I(i64),
    T(Option<String>),
}

impl Cell {
    /// The value as an integer (0 when it is not one).
    pub(super) fn int(&self) -> i64 {
        match self {
            Cell::I(i) => *i,
            Cell::T(s) => s.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0),
        }
    }

    /// The value as text, `None` for NULL.
    pub(super) fn text(&self) -> Option<String> {
        match self {
            Cell::T(s) => s.clone(),
            Cell::I(i) => Some(i.to_string()),
        }
    }

    /// The value as text, empty for NULL.
    pub(super) fn string(&self) -> String {
        self.text().unwrap_or_default()
    }
}

/// Runs `f` where a blocking database client may block: off any tokio
/// runtime (the PostgreSQL client drives its own), on the caller otherwise.
pub(super) fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().expect("store thread panicked"))
    } else {
        f()
    }
}

/// A connection to one of the two databases.
pub(super) enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    /// In an `Option` so it can be dropped off the runtime (see `Drop`).
    Postgres(Mutex<Option<postgres::Client>>),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite(_) => "Sqlite",
            Backend::Postgres(_) => "Postgres",
        })
    }
}

/// A statement and its parameters, for one transaction.
pub(super) type Stmt = (&'static str, Vec<P>);

impl Backend {
    /// Runs a query and returns its rows.
    pub(super) fn query(&self, sql: &str, params: &[P]) -> Result<Vec<Vec<Cell>>, StoreError> {
        match self {
            Backend::Sqlite(conn) => {
                let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let mut stmt = conn.prepare_cached(&sqlite_sql(sql))?;
                let n = stmt.column_count();
                let values: Vec<rusqlite::types::Value> = params.iter().map(to_sqlite).collect();
                let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Integer(i) => Cell::I(i),
                                rusqlite::types::ValueRef::Null => Cell::T(None),
                                other => Cell::T(Some(
                                    String::from_utf8_lossy(other.as_bytes().unwrap_or_default())
                                        .into_owned(),
                                )),
                            })
                        })
                        .collect::<Result<Vec<_>, rusqlite::Error>>()
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            }
            Backend::Postgres(client) => off_runtime(|| {
                let mut guard = client.lock().unwrap_or_else(|e| e.into_inner());
                let client = guard.as_mut().expect("open client");
                let owned: Vec<Box<dyn postgres::types::ToSql + Sync>> =
                    params.iter().map(to_pg).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                let rows = client.query(sql, &refs)?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match *r.columns()[i].type_() {
                                postgres::types::Type::INT8 => {
                                    r.get::<_, Option<i64>>(i).map_or(Cell::T(None), Cell::I)
                                }
                                postgres::types::Type::INT4 => r
                                    .get::<_, Option<i32>>(i)
                                    .map_or(Cell::T(None), |v| Cell::I(i64::from(v))),
                                _ => Cell::T(r.get::<_, Option<String>>(i)),
                            })
                            .collect()
                    })
                    .collect())
            }),
        }
    }

    /// Runs statements in one transaction.
    pub(super) fn transaction(&self, stmts: &[Stmt]) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let tx = conn.transaction()?;
                for (sql, params) in stmts {
                    let values: Vec<rusqlite::types::Value> =
                        params.iter().map(to_sqlite).collect();
                    tx.prepare_cached(&sqlite_sql(sql))?
                        .execute(rusqlite::params_from_iter(values))?;
                }
                tx.commit()?;
                Ok(())
            }
            Backend::Postgres(client) => off_runtime(|| {
                let mut guard = client.lock().unwrap_or_else(|e| e.into_inner());
                let client = guard.as_mut().expect("open client");
                let mut tx = client.transaction()?;
                for (sql, params) in stmts {
                    let owned: Vec<Box<dyn postgres::types::ToSql + Sync>> =
                        params.iter().map(to_pg).collect();
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        owned.iter().map(|b| b.as_ref()).collect();
                    tx.execute(*sql, &refs)?;
                }
                tx.commit()?;
                Ok(())
            }),
        }
    }

    /// Runs one statement in its own transaction.
    pub(super) fn exec(&self, sql: &'static str, params: Vec<P>) -> Result<(), StoreError> {
        self.transaction(&[(sql, params)])
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // The PostgreSQL client owns a runtime, which must not be dropped
        // inside another one.
        if let Backend::Postgres(client) = self
            && let Some(client) = client.get_mut().unwrap_or_else(|e| e.into_inner()).take()
        {
            off_runtime(move || drop(client));
        }
    }
}

/// SQLite numbers `$n` parameters by first appearance, not by `n`; its
/// `?n` means what PostgreSQL's `$n` does.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn to_sqlite(p: &P) -> rusqlite::types::Value {
    match p {
        P::I(i) => rusqlite::types::Value::Integer(*i),
        P::T(Some(s)) => rusqlite::types::Value::Text(s.clone()),
        P::T(None) => rusqlite::types::Value::Null,
    }
}

fn to_pg(p: &P) -> Box<dyn postgres::types::ToSql + Sync> {
    match p {
        P::I(i) => Box::new(*i),
        P::T(s) => Box::new(s.clone()),
    }
}
