//! The log-cleaning pipeline at the limit: the engine against a
//! hand-written Rust loop doing the same work, measured in the same run.
//!
//!     cargo bench -p engine --bench log_clean
//!
//! Input: one file of clean synthetic JSON log lines (`QL_BENCH_N`, default
//! 1,000,000), written once and read by both sides.
//!
//! Engine: `file` source → `parse_json` (2 threads, the default required
//! fields) → SQLite upsert sink (table `logs`, key `id`, columns `level`,
//! `msg`, `ts`, batches of 500).
//!
//! Baseline: one loop that reads the same file line by line, parses each
//! line with serde_json, checks the same required fields, and upserts the
//! rows with the same statements and the same PRAGMAs as the engine's
//! `SqliteWriter` (32 rows per statement, the rest of a batch row by row;
//! WAL, `synchronous = NORMAL`, `wal_autocheckpoint = 10000`, a busy
//! timeout), binding the line itself as `record`, one transaction per 500
//! rows.
//!
//! Each side runs twice, alternating; the best run of each gives the ratio.
#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use engine::JobOptions;
use rand::SeedableRng;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::{Map, Value};
use shared::metrics::JobState;
use shared::spec::{PipelineSpec, SpecFormat};

const BATCH: usize = 500;
const COLUMNS: [&str; 3] = ["level", "msg", "ts"];
const REQUIRED: [&str; 3] = ["id", "level", "msg"];

fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| (*c).to_owned()).collect()
}

fn write_input(path: &Path, n: u64) {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for seq in 0..n {
        writeln!(out, "{}", engine::source::log_line(seq, 0.0, 0.0, &mut rng)).unwrap();
    }
    out.flush().unwrap();
}

fn rows(db: &Path) -> u64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
        .unwrap()
}

/// Lines per second through the engine.
fn engine_rate(input: &Path, db: &Path, n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "bench-log-clean"
source = {{ kind = "file", path = "{input}" }}
[[stages]]
name = "parse"
workers = 2
queue = {{ capacity = 5000 }}
op = {{ kind = "parse_json" }}
[sink]
kind = "sqlite"
path = "{db}"
table = "logs"
key = "id"
columns = ["level", "msg", "ts"]
batch = {{ size = {BATCH}, linger_ms = 100 }}
"#,
        input = input.display(),
        db = db.display(),
    );
    let spec = PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
    let job = engine::start(spec, JobOptions::new("bench", dir.path())).unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_eq!(report.accounting.sunk, n);
    assert_eq!(rows(db), n);
    n as f64 / report.elapsed_s
}

/// A field as a column value, as the engine's writer binds it.
fn column(v: Option<&Value>) -> ToSqlOutput<'_> {
    match v {
        None | Some(Value::Null) => ToSqlOutput::Borrowed(ValueRef::Null),
        Some(Value::Bool(b)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            None => ToSqlOutput::Borrowed(ValueRef::Real(n.as_f64().unwrap_or(f64::NAN))),
        },
        Some(Value::String(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Some(other) => ToSqlOutput::from(other.to_string()),
    }
}

fn epoch_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Lines per second through the hand-written loop.
fn baseline_rate(input: &Path, db: &Path, n: u64) -> f64 {
    let start = Instant::now();
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(&engine::sink::sqlite::create_sql("logs", &columns()), [])
        .unwrap();
    // The engine's statements: a batch goes 32 rows per statement, the
    // rest row by row (see `engine::sink::sqlite::ROWS`).
    let rows_per = engine::sink::sqlite::ROWS;
    let one = engine::sink::sqlite::upsert_sql("logs", &columns());
    let many = engine::sink::sqlite::upsert_rows_sql("logs", &columns(), rows_per);
    let per_row = COLUMNS.len() + 2;
    let mut reader = BufReader::new(std::fs::File::open(input).unwrap());
    let mut line = String::new();
    let mut done = false;
    let mut written = 0u64;
    let bind = |stmt: &mut rusqlite::CachedStatement<'_>,
                at: usize,
                row: &(String, Map<String, Value>)| {
        let (text, record) = row;
        let Some(Value::String(key)) = record.get("id") else {
            unreachable!("checked when read")
        };
        stmt.raw_bind_parameter(at + 1, key.as_str()).unwrap();
        stmt.raw_bind_parameter(at + 2, text.as_str()).unwrap();
        for (i, c) in COLUMNS.iter().enumerate() {
            stmt.raw_bind_parameter(at + i + 3, column(record.get(*c)))
                .unwrap();
        }
    };
    while !done {
        // One batch: read and check up to BATCH rows.
        let mut batch: Vec<(String, Map<String, Value>)> = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                done = true;
                break;
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let Ok(Value::Object(record)) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if !REQUIRED.iter().all(|f| record.contains_key(*f)) {
                continue;
            }
            if !matches!(record.get("id"), Some(Value::String(_))) {
                continue;
            }
            batch.push((text.to_owned(), record));
        }
        let now = epoch_secs();
        let whole = batch.len() / rows_per * rows_per;
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx.prepare_cached(&many).unwrap();
            stmt.raw_bind_parameter(rows_per * per_row + 1, now)
                .unwrap();
            for rows in batch[..whole].chunks_exact(rows_per) {
                for (r, row) in rows.iter().enumerate() {
                    bind(&mut stmt, r * per_row, row);
                }
                stmt.raw_execute().unwrap();
            }
            let mut stmt = tx.prepare_cached(&one).unwrap();
            stmt.raw_bind_parameter(per_row + 1, now).unwrap();
            for row in &batch[whole..] {
                bind(&mut stmt, 0, row);
                stmt.raw_execute().unwrap();
            }
        }
        tx.commit().unwrap();
        written += batch.len() as u64;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(written, n);
    assert_eq!(rows(db), n);
    rate
}

fn main() {
    let n: u64 = std::env::var("QL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("logs.jsonl");
    write_input(&input, n);
    let size = std::fs::metadata(&input).unwrap().len();
    println!(
        "QueueLab log-clean: {n} clean JSON lines ({:.0} MB) → parse_json (2 threads) → SQLite upsert, batch {BATCH}; lines/s\n",
        size as f64 / 1e6
    );
    let (mut best_engine, mut best_base) = (0.0f64, 0.0f64);
    for round in 1..=2 {
        let base = baseline_rate(&input, &dir.path().join(format!("raw-{round}.db")), n);
        let engine = engine_rate(&input, &dir.path().join(format!("engine-{round}.db")), n);
        println!(
            "round {round}: engine {engine:>10.0}   hand-written loop {base:>10.0}   ratio {:.2}",
            engine / base
        );
        best_engine = best_engine.max(engine);
        best_base = best_base.max(base);
    }
    println!(
        "\nbest: engine {best_engine:.0} lines/s, hand-written loop {best_base:.0} lines/s, ratio {:.2} (goal ≥ 0.70)",
        best_engine / best_base
    );
}
