//! The real PostgreSQL server of this machine behind the sink (`.ci/run`
//! starts it when it is not running). Each test uses a table of its own.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};
use shared::metrics::JobState;

use crate::helpers::{
    assert_balanced, node, run_keeping_files, spec, start, wait_for, write_input,
};

fn url() -> String {
    std::env::var("QUEUELAB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh table name, dropped beforehand in case a previous run left it.
fn table(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "ql_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    client()
        .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
        .unwrap();
    name
}

fn client() -> Client {
    Client::connect(&url(), NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL must be running at {} (see .ci/run): {e}", url()))
}

fn keys(table: &str) -> BTreeSet<String> {
    client()
        .query(&format!("SELECT key FROM {table}"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn pipeline(input: &Path, table: &str, url: &str, batch: u32) -> String {
    format!(
        r#"
name = "to-postgres"
source = {{ kind = "file", path = "{}" }}
sink = {{ kind = "postgres", url = "{url}", table = "{table}", columns = ["level"], batch = {{ size = {batch}, linger_ms = 20 }} }}
[[stages]]
name = "parse"
workers = 2
op = {{ kind = "parse_json" }}
"#,
        input.display()
    )
}

#[test]
fn every_valid_line_lands_once_in_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let (ids, bad) = write_input(&input, 3000, 30, 7);
    let t = table("once");
    let (report, _files) = run_keeping_files(&pipeline(&input, &t, &url(), 250));
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_balanced(&report);
    assert_eq!(report.accounting.dead_lettered, bad as u64);
    assert_eq!(report.accounting.sunk, 3000 - bad as u64);
    assert_eq!(keys(&t), ids);
    let level: String = client()
        .query_one(&format!("SELECT level FROM {t} WHERE key = 'k-1'"), &[])
        .unwrap()
        .get(0);
    assert_eq!(level, "INFO");
}

#[test]
fn a_trigger_fault_mid_batch_is_narrowed_to_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let (ids, bad) = write_input(&input, 2000, 50, 1_000_000);
    let t = table("fault");
    let mut c = client();
    c.batch_execute(&engine::sink::postgres::create_sql(&t, &["level".into()]))
        .unwrap();
    c.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION {t}_refuse() RETURNS trigger AS $$ BEGIN \
           IF (NEW.record->>'n')::int % 100 = 77 THEN RAISE EXCEPTION 'refused by trigger'; END IF; \
           RETURN NEW; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER {t}_refuse BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_refuse();"
    ))
    .unwrap();
    let (report, _files) = run_keeping_files(&pipeline(&input, &t, &url(), 100));
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_balanced(&report);
    let refused: BTreeSet<String> = ids
        .iter()
        .filter(|id| id[2..].parse::<usize>().unwrap() % 100 == 77)
        .cloned()
        .collect();
    assert_eq!(keys(&t), ids.difference(&refused).cloned().collect());
    assert_eq!(
        node(&report.nodes, "sink").dead_lettered,
        refused.len() as u64
    );
    assert_eq!(
        report.accounting.dead_lettered,
        (bad + refused.len()) as u64
    );
    let letters = std::fs::read_to_string(report.dead_letters_file.as_deref().unwrap()).unwrap();
    assert_eq!(letters.matches("refused by trigger").count(), refused.len());
}

#[test]
fn replays_and_duplicate_keys_in_one_batch_add_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // Every 3rd line reuses an earlier id, often inside the same batch.
    let (ids, _) = write_input(&input, 1200, 1_000_000, 3);
    let t = table("replay");
    for _ in 0..2 {
        let (report, _files) = run_keeping_files(&pipeline(&input, &t, &url(), 500));
        assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
        assert_eq!(report.accounting.sunk, 1200);
    }
    assert_eq!(keys(&t), ids);
}

#[test]
fn killed_connections_mid_run_lose_nothing() {
    let t = table("killed");
    let app = format!("{t}_app");
    let url = format!("{}?application_name={app}", url());
    let (job, _dir) = start(spec(&format!(
        r#"
name = "survivor"
source = {{ kind = "synthetic", count = 4000, rate = 800.0, seed = 8 }}
sink = {{ kind = "postgres", url = "{url}", table = "{t}", batch = {{ size = 50, linger_ms = 10 }}, retry = {{ max_attempts = 20, base_ms = 10.0, cap_ms = 200.0 }} }}
[[stages]]
name = "parse"
op = {{ kind = "parse_json" }}
"#
    )));
    let mut killed = 0;
    for round in 1..=3 {
        wait_for(&job, "rows flowing", |s| s.accounting.sunk >= round * 400);
        killed += client()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get::<_, i64>(0);
    }
    assert!(killed >= 1, "the sink's connections were found and killed");
    let report = job.wait();
    assert_eq!(report.state, JobState::Completed, "{:?}", report.error);
    assert_balanced(&report);
    let distinct = client()
        .query_one(&format!("SELECT count(*) FROM {t}"), &[])
        .unwrap()
        .get::<_, i64>(0) as u64;
    // Duplicate keys (none configured) aside, every sunk record is a row.
    assert_eq!(distinct, report.accounting.sunk);
    assert_eq!(report.accounting.sunk, 4000);
}
