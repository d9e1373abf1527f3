//! What a spec may touch on a shared server: paths inside the files roots
//! and never the store; outbound connections only to the allow-list (and
//! the server's own `/target`). All traffic stays on 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use shared::api::{ErrorBody, JobDetail, JobPage};

use crate::helpers::{TestApp, create, get_json, spawn_app, spawn_configured, start, wait_job};

/// A server on a fresh data directory, configured by `configure`.
async fn spawn_in(
    data_dir: &Path,
    configure: impl FnOnce(server::AppState) -> server::AppState,
) -> TestApp {
    spawn_configured(None, data_dir.to_owned(), configure).await
}

/// A server allowing connections to `entries`.
async fn spawn_allowing(entries: &[&str]) -> TestApp {
    let entries = entries.iter().map(|e| e.parse().unwrap()).collect();
    spawn_in(&tempfile::tempdir().unwrap().keep(), |s| {
        s.with_http_allow(entries)
    })
    .await
}

/// Creates a job that must be refused; returns the error body.
async fn refused(app: &TestApp, spec: Value) -> ErrorBody {
    let r = create(app, spec.clone()).await;
    assert_eq!(r.status(), 422, "{spec}");
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, "invalid_spec");
    body
}

/// `POST /api/v1/validate`: the status and the body.
async fn validate(app: &TestApp, spec: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/api/v1/validate"))
        .json(&spec)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn file_source(path: &str) -> Value {
    json!({"name": "f", "source": {"kind": "file", "path": path}})
}

/// The server's files root (the default one: `<data dir>/files`).
fn root_of(app: &TestApp) -> PathBuf {
    app.state.files_roots()[0].clone()
}

#[tokio::test]
async fn paths_outside_the_files_root_are_refused_with_their_field() {
    let app = spawn_app().await;
    let root = root_of(&app);
    assert!(root.ends_with("files") && root.is_dir(), "created at start");
    std::fs::write(root.join("in.jsonl"), "{}\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.jsonl"), "{\"k\":1}\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();

    let data_dir = app.state.jobs().data_dir().canonicalize().unwrap();
    let check = |body: &ErrorBody, field: &str, written: &str| {
        assert_eq!(body.field.as_deref(), Some(field), "{body:?}");
        assert!(
            body.message
                .contains("must be inside the server's files root"),
            "{body:?}"
        );
        assert!(body.message.contains(written), "shown as written: {body:?}");
        assert!(
            !body.message.contains(data_dir.to_str().unwrap()),
            "no server paths: {body:?}"
        );
    };

    let body = refused(&app, file_source("/etc/passwd")).await;
    check(&body, "source.path", "/etc/passwd");
    let body = refused(&app, file_source("../../etc/passwd")).await;
    check(&body, "source.path", "../../etc/passwd");
    #[cfg(unix)]
    {
        let body = refused(&app, file_source("link/secret.jsonl")).await;
        check(&body, "source.path", "link/secret.jsonl");
    }
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "file", "path": "in.jsonl", "offset_file": "../in.offset"}}),
    )
    .await;
    check(&body, "source.offset_file", "../in.offset");

    // A sample would be created wherever the path says.
    let sample_at = outside.path().join("sample.jsonl");
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "file", "path": sample_at, "sample": {"count": 10}}}),
    )
    .await;
    check(&body, "source.path", sample_at.to_str().unwrap());
    assert!(!sample_at.exists(), "nothing was written");

    let keys = outside.path().join("authorized_keys");
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "http_ingest"}, "sink": {"kind": "file", "path": keys}}),
    )
    .await;
    check(&body, "sink.path", keys.to_str().unwrap());
    assert!(!keys.exists());
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "synthetic", "count": 1},
               "sink": {"kind": "sqlite", "path": "../../x.db"}}),
    )
    .await;
    check(&body, "sink.path", "../../x.db");
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "synthetic", "count": 1},
               "sink": {"kind": "postgres", "url": "env:QUEUELAB_CONFINEMENT_TEST_UNSET", "fallback_sqlite": "/tmp/x.db"}}),
    )
    .await;
    check(&body, "sink.fallback_sqlite", "/tmp/x.db");
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "synthetic", "count": 1},
               "dead_letter": {"kind": "file_at", "path": "../dl.jsonl"}}),
    )
    .await;
    check(&body, "dead_letter.path", "../dl.jsonl");

    // Every refusal is listed, not only the first.
    let body = refused(
        &app,
        json!({"name": "f", "source": {"kind": "file", "path": "/etc/passwd", "offset_file": "/etc/o"},
               "sink": {"kind": "file", "path": "/etc/out"}}),
    )
    .await;
    let fields: Vec<&str> = body.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(fields, ["source.path", "source.offset_file", "sink.path"]);

    // Validation says the same without starting anything.
    let (status, body) = validate(&app, file_source("/etc/passwd")).await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "source.path");
    let (status, _) = validate(&app, file_source("in.jsonl")).await;
    assert_eq!(status, 200);

    let page: JobPage = get_json(&app, "/api/v1/jobs").await;
    assert_eq!(page.total, 0, "nothing was started");
}

#[tokio::test]
async fn the_store_is_never_a_target_even_inside_a_root() {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let app = spawn_in(&data_dir, |s| {
        s.with_files_roots(std::slice::from_ref(&data_dir)).unwrap()
    })
    .await;
    let store = data_dir.join("queuelab.db");
    assert!(store.is_file());
    let synthetic = json!({"kind": "synthetic", "count": 5});
    for sink in [
        json!({"kind": "sqlite", "path": store}),
        json!({"kind": "sqlite", "path": "queuelab.db"}),
        json!({"kind": "file", "path": "queuelab.db-wal"}),
        json!({"kind": "file", "path": "./jobs/j1/leftovers.jsonl"}),
        json!({"kind": "postgres", "url": "env:QUEUELAB_CONFINEMENT_TEST_UNSET", "fallback_sqlite": "queuelab.db"}),
    ] {
        let field = if sink["kind"] == "postgres" {
            "sink.fallback_sqlite"
        } else {
            "sink.path"
        };
        let body = refused(
            &app,
            json!({"name": "s", "source": synthetic, "sink": sink}),
        )
        .await;
        assert_eq!(body.field.as_deref(), Some(field), "{body:?}");
        assert!(body.message.contains("server's own files"), "{body:?}");
    }
    let body = refused(
        &app,
        json!({"name": "s", "source": synthetic,
               "dead_letter": {"kind": "sqlite", "path": "queuelab.db", "table": "jobs"}}),
    )
    .await;
    assert_eq!(body.field.as_deref(), Some("dead_letter.path"));
    // Elsewhere in the same root is fine.
    let id = start(
        &app,
        json!({"name": "s", "source": synthetic, "sink": {"kind": "sqlite", "path": "mine.db"}}),
    )
    .await;
    wait_job(&app, &id, "completion", |d| d.report.is_some()).await;
    assert!(data_dir.join("mine.db").is_file());
}

#[tokio::test]
async fn a_path_inside_the_root_works_end_to_end() {
    let app = spawn_app().await;
    let root = root_of(&app);
    std::fs::create_dir_all(root.join("in")).unwrap();
    std::fs::write(
        root.join("in/app.jsonl"),
        "{\"id\":\"a\",\"level\":\"INFO\",\"msg\":\"m\"}\n{\"id\":\"b\",\"level\":\"INFO\",\"msg\":\"m\"}\n{torn\n",
    )
    .unwrap();
    let id = start(
        &app,
        json!({
            "name": "inside",
            "source": {"kind": "file", "path": "in/app.jsonl", "offset_file": "in/app.offset"},
            "stages": [{"name": "parse", "op": {"kind": "parse_json"}}],
            "sink": {"kind": "file", "path": "out/clean.jsonl", "batch": {"size": 10, "linger_ms": 5}},
            "dead_letter": {"kind": "file_at", "path": "out/dead.jsonl"}
        }),
    )
    .await;
    let done = wait_job(&app, &id, "completion", |d| d.report.is_some()).await;
    let report = done.report.unwrap();
    assert_eq!(
        (report.accounting.sunk, report.accounting.dead_lettered),
        (2, 1)
    );
    let out = std::fs::read_to_string(root.join("out/clean.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(root.join("out/dead.jsonl").is_file());
    assert!(root.join("in/app.offset").is_file());
    let shown = serde_json::to_value(&done.spec).unwrap();
    assert_eq!(
        shown["source"]["path"], "in/app.jsonl",
        "the spec is shown as written"
    );
}

/// A loopback HTTP server for these tests. `/redirect?to=URL` answers 302
/// to `to`; `/loop` redirects to itself; anything else is 200. It counts
/// the requests it sees.
async fn spawn_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    use axum::extract::{Query, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let seen = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/redirect",
            axum::routing::get(
                |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    (StatusCode::FOUND, [(header::LOCATION, q["to"].clone())]).into_response()
                },
            ),
        )
        .route(
            "/loop",
            axum::routing::get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .fallback(|| async { "ok" })
        .layer(axum::middleware::from_fn_with_state(
            seen.clone(),
            |State(seen): State<Arc<AtomicU64>>,
             req: axum::extract::Request,
             next: axum::middleware::Next| async move {
                seen.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

/// A loopback port with nothing listening on it (it was free a moment ago).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A job of `count` counters through one `http` operation at `url`.
fn http_op(url: &str, count: u64) -> Value {
    json!({
        "name": "call",
        "source": {"kind": "synthetic", "count": count, "payload": "counter"},
        "stages": [
            {"name": "first", "op": {"kind": "spin", "micros": 0}},
            {"name": "call", "op": {"kind": "http", "url": url}}
        ]
    })
}

/// Runs `spec` to its end; returns the report and the dead letters.
async fn run_to_end(app: &TestApp, spec: Value) -> (shared::metrics::JobReport, Vec<Value>) {
    let id = start(app, spec).await;
    let report = wait_job(app, &id, "completion", |d| d.report.is_some())
        .await
        .report
        .unwrap();
    let page: Value = get_json(app, &format!("/api/v1/jobs/{id}/dead_letters?limit=100")).await;
    (
        report,
        page["records"].as_array().cloned().unwrap_or_default(),
    )
}

#[tokio::test]
async fn hosts_off_the_allow_list_are_refused_at_creation() {
    let app = spawn_app().await;
    let bystander = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    bystander.set_nonblocking(true).unwrap();
    let port = bystander.local_addr().unwrap().port();

    let body = refused(&app, http_op(&format!("http://127.0.0.1:{port}/"), 1)).await;
    assert_eq!(body.field.as_deref(), Some("stages[1].op.url"));
    assert!(body.message.contains("allow-list"), "{body:?}");
    let body = refused(&app, http_op(&format!("http://localhost:{port}/"), 1)).await;
    assert_eq!(
        body.field.as_deref(),
        Some("stages[1].op.url"),
        "a name not on the list"
    );
    let body = refused(&app, http_op("http://metadata.internal.invalid/", 1)).await;
    assert_eq!(body.field.as_deref(), Some("stages[1].op.url"));
    let body = refused(
        &app,
        json!({"name": "s", "source": {"kind": "synthetic", "count": 1},
               "sink": {"kind": "http", "url": format!("http://127.0.0.1:{port}/bulk")}}),
    )
    .await;
    assert_eq!(body.field.as_deref(), Some("sink.url"));
    let body = refused(
        &app,
        json!({"name": "s", "source": {"kind": "synthetic", "count": 1},
               "sink": {"kind": "postgres", "url": format!("postgres://postgres@127.0.0.1:{port}/test")}}),
    )
    .await;
    assert_eq!(body.field.as_deref(), Some("sink.url"));
    let (status, body) = validate(&app, http_op(&format!("http://127.0.0.1:{port}/"), 1)).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("stages[1].op.url"))
    );
    assert_eq!(
        bystander.accept().map_err(|e| e.kind()).unwrap_err(),
        std::io::ErrorKind::WouldBlock,
        "nobody connected"
    );
}

#[tokio::test]
async fn allowed_hosts_are_reached_by_address_name_and_network() {
    let (upstream, seen) = spawn_upstream().await;
    let port = upstream.port();
    for (entry, url) in [
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}/a"),
        ),
        (
            format!("localhost:{port}"),
            format!("http://localhost:{port}/b"),
        ),
        (
            "127.0.0.0/8".to_owned(),
            format!("http://127.0.0.1:{port}/c"),
        ),
    ] {
        let app = spawn_allowing(&[&entry]).await;
        let before = seen.load(Ordering::SeqCst);
        let (report, dead) = run_to_end(&app, http_op(&url, 5)).await;
        assert_eq!(report.accounting.sunk, 5, "{entry}: {dead:?}");
        assert_eq!(seen.load(Ordering::SeqCst) - before, 5, "{entry}");
    }
}

#[tokio::test]
async fn redirects_are_followed_only_to_allowed_targets() {
    let (allowed, allowed_seen) = spawn_upstream().await;
    let (forbidden, forbidden_seen) = spawn_upstream().await;
    let app = spawn_allowing(&[&allowed.to_string()]).await;

    let away = format!("http://{allowed}/redirect?to=http://{forbidden}/admin");
    let (report, dead) = run_to_end(&app, http_op(&away, 3)).await;
    assert_eq!(report.accounting.dead_lettered, 3, "{dead:?}");
    for letter in &dead {
        assert_eq!(letter["error"], "refused by policy", "{letter}");
        assert_eq!(letter["error_kind"], "refused by policy", "{letter}");
    }
    assert_eq!(forbidden_seen.load(Ordering::SeqCst), 0, "never reached");
    assert_eq!(allowed_seen.load(Ordering::SeqCst), 3, "not retried");

    // Staying on allowed ground is fine; going round in circles is not.
    let home = format!("http://{allowed}/redirect?to=/landing");
    let (report, _) = run_to_end(&app, http_op(&home, 2)).await;
    assert_eq!(report.accounting.sunk, 2);
    let (report, dead) = run_to_end(&app, http_op(&format!("http://{allowed}/loop"), 1)).await;
    assert_eq!(report.accounting.dead_lettered, 1);
    assert_eq!(dead[0]["error"], "refused by policy");
}

#[tokio::test]
async fn connection_errors_tell_nothing_about_the_network() {
    let port = closed_port();
    let app = spawn_allowing(&[&format!("127.0.0.1:{port}")]).await;
    let (report, dead) = run_to_end(&app, http_op(&format!("http://127.0.0.1:{port}/"), 2)).await;
    assert_eq!(report.accounting.dead_lettered, 2);
    for letter in &dead {
        assert_eq!(letter["error"], "unreachable", "{letter}");
    }
    assert_eq!(
        report.drop_reasons.keys().collect::<Vec<_>>(),
        ["dead-lettered at `call`: unreachable"]
    );

    // A sink to a closed port fails the job; its reason is as terse.
    let (report, _) = run_to_end(
        &app,
        json!({"name": "s", "source": {"kind": "synthetic", "count": 3, "payload": "counter"},
               "sink": {"kind": "http", "url": format!("http://127.0.0.1:{port}/bulk"),
                        "batch": {"size": 10, "linger_ms": 5},
                        "retry": {"max_attempts": 2, "base_ms": 1.0, "cap_ms": 1.0}}}),
    )
    .await;
    let error = report.error.unwrap_or_default();
    assert!(error.contains("unreachable"), "{error}");
    for leak in ["os error", "refused", "Connection", "tcp connect"] {
        assert!(!error.contains(leak), "{error}");
    }
}

#[tokio::test]
async fn the_servers_own_target_is_reachable_with_the_default_list() {
    let app = spawn_app().await;
    let (report, dead) = run_to_end(
        &app,
        http_op(
            &format!("http://{}/target/anything?delay_ms=1", app.addr),
            4,
        ),
    )
    .await;
    assert_eq!(report.accounting.sunk, 4, "{dead:?}");
    let stats: Value = get_json(&app, "/target/_stats").await;
    assert_eq!(stats["requests"], 4);
    // Its API is not the target.
    for path in ["/api/v1/jobs", "/target/../api/v1/jobs", "/healthz"] {
        let body = refused(&app, http_op(&format!("http://{}{path}", app.addr), 1)).await;
        assert_eq!(body.field.as_deref(), Some("stages[1].op.url"), "{path}");
    }
}

#[tokio::test]
async fn every_template_starts_under_the_serve_defaults() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    for t in shared::templates::ALL {
        // A listening template gets a free port: the port is not the point.
        let overrides = match t.spec().unwrap().source {
            shared::spec::SourceSpec::Tcp { .. } => json!({"source": {"bind": "127.0.0.1:0"}}),
            _ => json!({}),
        };
        let r = create(&app, json!({"template": t.name, "overrides": overrides})).await;
        assert_eq!(r.status(), 201, "{}: {}", t.name, r.text().await.unwrap());
        let id = r.json::<JobDetail>().await.unwrap().summary.id;
        let stop = c
            .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
            .json(&json!({"mode": "abort"}))
            .send()
            .await
            .unwrap();
        assert!(
            stop.status().is_success() || stop.status() == 409,
            "{}",
            t.name
        );
        wait_job(&app, &id, "the end", |d| d.report.is_some()).await;
    }
    let root = root_of(&app);
    assert!(
        root.join("samples/app-logs.jsonl").is_file(),
        "the sample is in the files root"
    );
    assert!(root.join("log-clean.db").is_file());
}

#[tokio::test]
async fn a_tcp_source_listens_on_loopback_only_unless_the_operator_allows_more() {
    let app = spawn_app().await;
    let tcp = |bind: &str| json!({"name": "t", "source": {"kind": "tcp", "bind": bind}});
    for bind in ["0.0.0.0:0", "[::]:0", "localhost:0"] {
        let body = refused(&app, tcp(bind)).await;
        assert_eq!(body.field.as_deref(), Some("source.bind"), "{bind}");
        let (status, _) = validate(&app, tcp(bind)).await;
        assert_eq!(status, 422, "validate agrees for {bind}");
    }
    let id = start(&app, tcp("127.0.0.1:0")).await;
    reqwest::Client::new()
        .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .json(&json!({"mode": "abort"}))
        .send()
        .await
        .unwrap();
    // An operator who allows it: checked without binding anything.
    let open = spawn_in(&tempfile::tempdir().unwrap().keep(), |s| {
        s.with_listen_anywhere(true)
    })
    .await;
    let (status, body) = validate(&open, tcp("0.0.0.0:0")).await;
    assert_eq!(status, 200, "{body}");
}
