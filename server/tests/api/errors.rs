//! Error answers carry a code, a message fit for a user and the request
//! id — never SQL, OS error text, the server's own paths or panic text —
//! and a dead-letter place is typed, so a `#` in a path is only a
//! character.

use serde_json::{Value, json};

use crate::helpers::{TestApp, create, spawn_app, start, wait_job};

/// Fails if `text` shows anything of the server's insides.
fn assert_no_internals(app: &TestApp, text: &str) {
    let data_dir = app.state.jobs().data_dir().display().to_string();
    for needle in [
        "os error",
        "panicked",
        "SELECT",
        "INSERT",
        "sqlite_version",
        data_dir.as_str(),
    ] {
        assert!(!text.contains(needle), "`{needle}` in {text}");
    }
}

#[tokio::test]
async fn start_failures_name_the_field_and_the_kind_of_failure_only() {
    let app = spawn_app().await;
    // A file that is not there; a port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cases = [
        json!({"name": "f", "source": {"kind": "file", "path": "missing.jsonl"}}),
        json!({"name": "t", "source": {"kind": "tcp", "bind": taken.local_addr().unwrap().to_string()}}),
        json!({"name": "s", "source": {"kind": "synthetic", "count": 1},
               "sink": {"kind": "sqlite", "path": "."}}),
    ];
    for spec in cases {
        let r = create(&app, spec.clone()).await;
        let status = r.status();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 422, "{spec} → {body}");
        assert_eq!(body["request_id"], id.as_str());
        let text = body.to_string();
        assert_no_internals(&app, &text);
        assert!(
            text.contains("not found")
                || text.contains("address in use")
                || text.contains("failed"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_hash_in_a_dead_letter_path_is_not_a_table_name() {
    let app = spawn_app().await;
    let path = r#"dl.jsonl#x" UNION SELECT sqlite_version(),1,1,1,1,1,1 --"#;
    let id = start(
        &app,
        json!({"name": "dl", "dead_letter": {"kind": "file_at", "path": path},
               "source": {"kind": "synthetic", "count": 50, "malformed_share": 1.0},
               "stages": [{"name": "parse", "op": {"kind": "parse_json"}}]}),
    )
    .await;
    wait_job(&app, &id, "finished", |d| d.report.is_some()).await;
    let page: Value = reqwest::get(app.url(&format!("/api/v1/jobs/{id}/dead_letters?limit=5")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 50, "{page}");
    for record in page["records"].as_array().unwrap() {
        assert_eq!(record["stage"], "parse", "the file's own lines: {record}");
    }
    assert_no_internals(&app, &page["records"].to_string());
}
