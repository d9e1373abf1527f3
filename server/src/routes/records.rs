//! A finished job's records, paged: its leftovers (what was queued or in
//! flight at an abort) and its dead letters (items that failed for good),
//! read from the files or SQLite tables its report names.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::error::AppError;
use crate::registry::detail_of;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs/{id}/leftovers", get(leftovers))
        .route("/api/v1/jobs/{id}/dead_letters", get(dead_letters))
}

/// Paging of leftovers and dead letters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    offset: usize,
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
    /// Where they are kept.
    pub file: Option<String>,
}

/// Reads one page of a JSON-lines file (or of a SQLite dead-letter table,
/// named `path#table`).
fn read_page(
    place: Option<&str>,
    json_lines: bool,
    offset: usize,
    limit: usize,
) -> Result<RecordPage, AppError> {
    let Some(place) = place else {
        return Ok(RecordPage {
            records: vec![],
            total: 0,
            file: None,
        });
    };
    if let Some((path, table)) = place.rsplit_once('#') {
        let conn =
            rusqlite::Connection::open(path).map_err(|e| AppError::Internal(e.to_string()))?;
        let total: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT at_ms, stage, error_kind, error, attempts, seq, item FROM \"{table}\" ORDER BY id LIMIT ?1 OFFSET ?2"
            ))
            .map_err(|e| AppError::Internal(e.to_string()))?;
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
            .map_err(|e| AppError::Internal(e.to_string()))?;
        return Ok(RecordPage {
            records,
            total: total as usize,
            file: Some(place.to_owned()),
        });
    }
    let text =
        std::fs::read_to_string(place).map_err(|e| AppError::Internal(format!("{place}: {e}")))?;
    let lines: Vec<&str> = text.lines().collect();
    let records = lines
        .iter()
        .skip(offset)
        .take(limit)
        .map(|l| {
            if json_lines {
                serde_json::from_str(l).unwrap_or_else(|_| Value::String((*l).to_owned()))
            } else {
                Value::String((*l).to_owned())
            }
        })
        .collect();
    Ok(RecordPage {
        records,
        total: lines.len(),
        file: Some(place.to_owned()),
    })
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
    let report = detail_of(&state.jobs().get(&id)?).report;
    let place = report.and_then(|r| {
        if dead {
            r.dead_letters_file
        } else {
            r.leftovers_file
        }
    });
    tokio::task::spawn_blocking(move || read_page(place.as_deref(), dead, q.offset, limit))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map(Json)
}

/// A finished job's leftovers (what was queued or in flight at an abort),
/// as the original lines, paged.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/leftovers", tag = "jobs",
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = RecordPage)), security(("bearer" = [])))]
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
    params(("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100")),
    responses((status = 200, body = RecordPage)), security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    record_page(state, id, q, true).await
}
