//! Log lines into databases: the engine's pipeline against a hand-written
//! loop doing the same work, measured in the same run.
//!
//!     cargo bench -p engine --bench sinks
//!
//! Engine: synthetic log lines → `parse_json` (2 threads) → SQLite or
//! PostgreSQL upsert sink (batches of 1000). Baseline: one loop that
//! generates the same lines, parses each with serde_json and upserts it with
//! the same statement, committing every 1000 rows. `QL_BENCH_N` sets the
//! line count (default 1,000,000); `QUEUELAB_TEST_PG_URL` the PostgreSQL
//! server (default `postgres://postgres@127.0.0.1:5432/test`).
#![allow(clippy::print_stdout)]

use std::time::Instant;

use engine::JobOptions;
use rand::SeedableRng;
use shared::metrics::JobState;
use shared::spec::{PipelineSpec, SpecFormat};

const BATCH: usize = 1000;
const COLUMNS: [&str; 3] = ["level", "msg", "ts"];

fn lines(n: u64) -> impl Iterator<Item = String> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    (0..n).map(move |seq| engine::source::log_line(seq, 0.0, 0.0, &mut rng))
}

fn columns() -> Vec<String> {
    COLUMNS.iter().map(|c| (*c).to_owned()).collect()
}

fn engine_rate(n: u64, sink: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "bench-sink"
source = {{ kind = "synthetic", count = {n}, seed = 1 }}
sink = {sink}
[[stages]]
name = "parse"
workers = 2
queue = {{ capacity = 10000 }}
op = {{ kind = "parse_json" }}
"#
    );
    let spec = PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"));
    let job = engine::start(spec, JobOptions::new("bench", dir.path())).unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_eq!(report.accounting.sunk, n);
    n as f64 / report.elapsed_s
}

fn parse(line: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(line).unwrap() {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn sqlite_baseline(n: u64, path: &std::path::Path) -> f64 {
    use rusqlite::types::Value as Sql;
    let start = Instant::now();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.execute(&engine::sink::sqlite::create_sql("logs", &columns()), [])
        .unwrap();
    let sql = engine::sink::sqlite::upsert_sql("logs", &columns());
    let mut all = lines(n).peekable();
    while all.peek().is_some() {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx.prepare_cached(&sql).unwrap();
            for line in all.by_ref().take(BATCH) {
                let r = parse(&line);
                let text = |k: &str| match r.get(k) {
                    Some(serde_json::Value::String(s)) => Sql::Text(s.clone()),
                    Some(v) => Sql::Text(v.to_string()),
                    None => Sql::Null,
                };
                let ts = r
                    .get("ts")
                    .and_then(|v| v.as_f64())
                    .map_or(Sql::Null, Sql::Real);
                stmt.execute(rusqlite::params_from_iter([
                    text("id"),
                    Sql::Text(serde_json::to_string(&r).unwrap()),
                    text("level"),
                    text("msg"),
                    ts,
                    Sql::Real(0.0),
                ]))
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn pg_url() -> String {
    std::env::var("QUEUELAB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn pg_baseline(n: u64, table: &str) -> f64 {
    use postgres::types::ToSql;
    let start = Instant::now();
    let mut client = postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap();
    client
        .batch_execute(&engine::sink::postgres::create_sql(table, &columns()))
        .unwrap();
    let mut all = lines(n).peekable();
    while all.peek().is_some() {
        let rows: Vec<_> = all.by_ref().take(BATCH).map(|l| parse(&l)).collect();
        let cell = |r: &serde_json::Map<String, serde_json::Value>, k: &str| match r.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
            None => None,
        };
        let owned: Vec<(String, serde_json::Value, [Option<String>; 3])> = rows
            .iter()
            .map(|r| {
                (
                    cell(r, "id").unwrap(),
                    serde_json::Value::Object(r.clone()),
                    [cell(r, "level"), cell(r, "msg"), cell(r, "ts")],
                )
            })
            .collect();
        let zero = 0.0f64;
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        for (id, rec, cols) in &owned {
            params.push(id);
            params.push(rec);
            for c in cols {
                params.push(c);
            }
            params.push(&zero);
        }
        let sql = engine::sink::postgres::upsert_sql(table, &columns(), owned.len());
        let mut tx = client.transaction().unwrap();
        tx.execute(sql.as_str(), &params).unwrap();
        tx.commit().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("QL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("QueueLab sinks: {n} synthetic log lines → parse → upsert, lines/s\n");

    let dir = tempfile::tempdir().unwrap();
    let base = sqlite_baseline(n, &dir.path().join("raw.db"));
    let db = dir.path().join("engine.db");
    let engine = engine_rate(
        n,
        &format!(
            r#"{{ kind = "sqlite", path = "{}", table = "logs", columns = ["level", "msg", "ts"], batch = {{ size = {BATCH}, linger_ms = 100 }} }}"#,
            db.display()
        ),
    );
    println!(
        "SQLite      engine {engine:>10.0}   raw rusqlite loop {base:>10.0}   ratio {:.2}",
        engine / base
    );

    let mut client = postgres::Client::connect(&pg_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", pg_url()));
    let (raw_t, eng_t) = ("ql_bench_raw", "ql_bench_engine");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {raw_t}; DROP TABLE IF EXISTS {eng_t};"
        ))
        .unwrap();
    let base = pg_baseline(n, raw_t);
    let engine = engine_rate(
        n,
        &format!(
            r#"{{ kind = "postgres", url = "{}", table = "{eng_t}", columns = ["level", "msg", "ts"], batch = {{ size = {BATCH}, linger_ms = 100 }} }}"#,
            pg_url()
        ),
    );
    println!(
        "PostgreSQL  engine {engine:>10.0}   raw postgres loop {base:>10.0}   ratio {:.2}",
        engine / base
    );
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {raw_t}; DROP TABLE IF EXISTS {eng_t};"
        ))
        .unwrap();
}
