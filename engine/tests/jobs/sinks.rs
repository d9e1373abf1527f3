//! Real SQLite files behind the sink: upserts, faults in the middle of a
//! batch, replays.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::Connection;
use shared::metrics::{JobState, TuneRequest};

use crate::helpers::{
    assert_balanced, node, run_keeping_files, spec, start, wait_for, write_input,
};

fn rows(db: &Path) -> BTreeSet<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT key FROM logs").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn pipeline(input: &Path, db: &Path, batch: u32) -> String {
    format!(
        r#"
name = "to-sqlite"
source = {{ kind = "file", path = "{}" }}
sink = {{ kind = "sqlite", path = "{}", table = "logs", key = "id", columns = ["level", "n"], batch = {{ size = {batch}, linger_ms = 20 }} }}
[[stages]]
name = "parse"
workers = 3
op = {{ kind = "parse_json" }}
"#,
        input.display(),
        db.display()
    )
}

#[test]
fn every_valid_line_lands_once_and_bad_lines_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let (input, db) = (dir.path().join("in.jsonl"), dir.path().join("out.db"));
    let (ids, bad) = write_input(&input, 3000, 25, 10);
    let (report, _files) = run_keeping_files(&pipeline(&input, &db, 200));
    assert_eq!(report.state, JobState::Completed);
    assert_balanced(&report);
    assert_eq!(report.accounting.produced, 3000);
    assert_eq!(report.accounting.dead_lettered, bad as u64);
    assert_eq!(
        report.accounting.sunk,
        3000 - bad as u64,
        "duplicates are upserts, still sunk"
    );
    assert_eq!(rows(&db), ids, "zero missing rows, zero extra rows");
    let conn = Connection::open(&db).unwrap();
    let (n, level): (i64, String) = conn
        .query_row("SELECT n, level FROM logs WHERE key = 'k-7'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (n, level.as_str()),
        (7, "INFO"),
        "chosen fields are columns"
    );
}

#[test]
fn a_fault_in_the_middle_of_a_batch_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (input, db) = (dir.path().join("in.jsonl"), dir.path().join("out.db"));
    let (ids, bad) = write_input(&input, 2000, 40, 1_000_000);
    // The table exists beforehand with a trigger that rejects some rows, so
    // whole batches fail in their middle and must be narrowed down.
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(&engine::sink::sqlite::create_sql(
        "logs",
        &["level".into(), "n".into()],
    ))
    .unwrap();
    conn.execute_batch(
        "CREATE TRIGGER reject_sevens BEFORE INSERT ON logs WHEN NEW.n % 100 = 77 \
         BEGIN SELECT RAISE(ABORT, 'rows ending in 77 are refused'); END;",
    )
    .unwrap();
    drop(conn);
    let (report, _files) = run_keeping_files(&pipeline(&input, &db, 64));
    assert_eq!(report.state, JobState::Completed);
    assert_balanced(&report);
    let rejected: BTreeSet<String> = ids
        .iter()
        .filter(|id| id[2..].parse::<usize>().unwrap() % 100 == 77)
        .cloned()
        .collect();
    assert_eq!(rejected.len(), 20);
    let expected: BTreeSet<String> = ids.difference(&rejected).cloned().collect();
    assert_eq!(rows(&db), expected);
    assert_eq!(
        report.accounting.dead_lettered,
        (bad + rejected.len()) as u64
    );
    let sink = node(&report.nodes, "sink");
    assert_eq!(sink.dead_lettered, rejected.len() as u64);
    let letters = std::fs::read_to_string(report.dead_letters_file.as_deref().unwrap()).unwrap();
    let refused = letters
        .lines()
        .filter(|l| l.contains("rows ending in 77 are refused"))
        .count();
    assert_eq!(
        refused,
        rejected.len(),
        "each rejected row carries the database's reason"
    );
}

#[test]
fn replaying_the_same_input_adds_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (input, db) = (dir.path().join("in.jsonl"), dir.path().join("out.db"));
    let (ids, _) = write_input(&input, 1000, 1_000_000, 1_000_000);
    for _ in 0..2 {
        let (report, _files) = run_keeping_files(&pipeline(&input, &db, 100));
        assert_balanced(&report);
        assert_eq!(report.accounting.sunk, 1000);
    }
    assert_eq!(rows(&db), ids);
}

#[test]
fn batch_size_and_linger_are_tunable_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("out.db");
    let (job, _dir) = start(spec(&format!(
        r#"
name = "tunable-sink"
source = {{ kind = "synthetic", count = 3000, rate = 1000.0, seed = 4 }}
sink = {{ kind = "sqlite", path = "{}", batch = {{ size = 1000, linger_ms = 60000 }} }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#,
        db.display()
    )));
    // A 60 s linger holds everything until the batch is full...
    wait_for(&job, "parsed items waiting in the sink", |s| {
        node(&s.nodes, "parse").items_out >= 50
    });
    assert_eq!(job.snapshot().accounting.sunk, 0);
    // ...until the batch is made small.
    job.tune(&TuneRequest {
        stage: "sink".into(),
        batch_size: Some(10),
        linger_ms: Some(5),
        ..Default::default()
    })
    .unwrap();
    wait_for(&job, "rows written after the tune", |s| {
        s.accounting.sunk >= 10
    });
    let bad = job.tune(&TuneRequest {
        stage: "sink".into(),
        workers: Some(2),
        ..Default::default()
    });
    assert!(bad.is_err());
    job.drain().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    assert_eq!(
        report.accounting.leftovers, 0,
        "the held batch flushed on drain"
    );
}

#[test]
fn dead_letters_can_be_kept_in_a_sqlite_table() {
    let dir = tempfile::tempdir().unwrap();
    let dlq = dir.path().join("letters.db");
    let (report, _files) = run_keeping_files(&format!(
        r#"
name = "dlq-table"
source = {{ kind = "synthetic", count = 1000, malformed_share = 0.1, seed = 6 }}
dead_letter = {{ kind = "sqlite", path = "{}", table = "bad_lines" }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#,
        dlq.display()
    ));
    assert_balanced(&report);
    let n = report.accounting.dead_lettered;
    assert!(n > 50);
    assert_eq!(
        report.dead_letters_file.as_deref(),
        Some(dlq.display().to_string().as_str())
    );
    assert_eq!(report.dead_letters_table.as_deref(), Some("bad_lines"));
    let conn = Connection::open(&dlq).unwrap();
    let (rows, kinds): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT error_kind) FROM bad_lines WHERE stage = 'parse' AND attempts = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows as u64, kinds), (n, 1));
}
