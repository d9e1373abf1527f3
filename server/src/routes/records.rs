//! A finished job's records, paged: its leftovers (what was queued or in
//! flight at an abort) and its dead letters (items that failed for good),
//! read from the files or SQLite tables its report names.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs/{id}/leftovers", get(leftovers))
        .route("/api/v1/jobs/{id}/dead_letters", get(dead_letters))
}

/// Paging of leftovers and dead letters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Records to skip; past the end, the page is empty.
    #[serde(default, deserialize_with = "super::query::saturating")]
    offset: usize,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page of a job's leftovers or dead letters.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RecordPage {
    /// Records on this page: leftovers as the original lines (strings),
    /// dead letters as objects with the stage, error and attempts.
    pub records: Vec<Value>,
    /// Records in all.
    pub total: usize,
    /// Where they are kept, relative to the server's data directory or
    /// files root (the server's own absolute paths are not shown).
    pub file: Option<String>,
}

/// Where a page is read from: a JSON-lines file, or a table of a SQLite
/// database (dead letters only). Typed, so no path is ever split.
enum Place {
    Lines(String),
    Table { path: String, table: String },
}

/// Whether `name` may be spliced into SQL as a quoted identifier (the
/// spec's validation allows no other table names; checked again here
/// because the name comes from a stored report).
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads one page of dead letters from a SQLite table.
fn table_page(
    path: &str,
    table: &str,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Value>, usize), AppError> {
    if !plain_identifier(table) {
        return Err(AppError::Internal(format!(
            "refused dead-letter table name {table:?}"
        )));
    }
    let internal = |e: rusqlite::Error| AppError::Internal(format!("dead letters in {path}: {e}"));
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(internal)?;
    let total: i64 = conn
        .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })
        .map_err(internal)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT at_ms, stage, error_kind, error, attempts, seq, item FROM \"{table}\" ORDER BY id LIMIT ?1 OFFSET ?2"
        ))
        .map_err(internal)?;
    let records = stmt
        .query_map(rusqlite::params![limit as i64, offset as i64], |r| {
            Ok(serde_json::json!({
                "at_ms": r.get::<_, i64>(0)?, "stage": r.get::<_, String>(1)?,
                "error_kind": r.get::<_, String>(2)?, "error": r.get::<_, String>(3)?,
                "attempts": r.get::<_, i64>(4)?, "seq": r.get::<_, i64>(5)?,
                "item": r.get::<_, String>(6)?,
            }))
        })
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(internal)?;
    Ok((records, total as usize))
}

/// Reads one page of `place`: JSON-lines files by seeking (see
/// [`crate::lines`]), never whole.
fn read_page(
    place: &Place,
    json_lines: bool,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Value>, usize), AppError> {
    match place {
        Place::Table { path, table } => table_page(path, table, offset, limit),
        Place::Lines(path) => {
            let (lines, total) = crate::lines::page(std::path::Path::new(path), offset, limit)
                .map_err(|e| AppError::Internal(format!("{path}: {e}")))?;
            let records = lines
                .into_iter()
                .map(|l| {
                    if json_lines {
                        serde_json::from_str(&l).unwrap_or(Value::String(l))
                    } else {
                        Value::String(l)
                    }
                })
                .collect();
            Ok((records, total))
        }
    }
}

async fn record_page(
    state: AppState,
    id: String,
    q: PageQuery,
    dead: bool,
) -> Result<Json<RecordPage>, AppError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::InvalidField {
            field: "limit".into(),
            message: "must be between 1 and 1000".into(),
        });
    }
    let registry = state.jobs().clone();
    let entry = registry.get(&id)?;
    let report = crate::registry::detail_of(&entry).report;
    let place = report.and_then(|r| {
        if dead {
            let path = r.dead_letters_file?;
            Some(match r.dead_letters_table {
                Some(table) => Place::Table { path, table },
                None => Place::Lines(path),
            })
        } else {
            r.leftovers_file.map(Place::Lines)
        }
    });
    let Some(place) = place else {
        return Ok(Json(RecordPage {
            records: vec![],
            total: 0,
            file: None,
        }));
    };
    let shown = match &place {
        Place::Lines(path) | Place::Table { path, .. } => registry.public_path(path),
    };
    let (records, total) =
        tokio::task::spawn_blocking(move || read_page(&place, dead, q.offset, limit))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok(Json(RecordPage {
        records,
        total,
        file: Some(shown),
    }))
}

/// A finished job's leftovers (what was queued or in flight at an abort),
/// as the original lines, paged.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/leftovers", tag = "jobs",
    params(crate::api::JobId, PageQuery),
    responses(crate::api::Guarded, (status = 200, body = RecordPage),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 422, description = "`invalid_field`: `limit` is out of range", body = shared::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn leftovers(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    record_page(state, id, q, false).await
}

/// A finished job's dead letters (items that failed for good, with the
/// stage, the error and the attempts), paged.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/dead_letters", tag = "jobs",
    params(crate::api::JobId, PageQuery),
    responses(crate::api::Guarded, (status = 200, body = RecordPage),
        (status = 400, response = crate::api::BadRequest),
        (status = 404, response = crate::api::NotFound),
        (status = 422, description = "`invalid_field`: `limit` is out of range", body = shared::api::ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    record_page(state, id, q, true).await
}
