//! `queuelab jobs …` against a live server process, as a CI script uses it.

use std::process::{Command, Output};

use e2e::{ServerProcess, queuelab_bin};

fn jobs(server: &ServerProcess, args: &[&str]) -> Output {
    server.jobs(args)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_wait_and_gate_on_conditions() {
    let server = ServerProcess::spawn();
    let start = jobs(
        &server,
        &[
            "start",
            "thread-io-pool",
            "--override",
            r#"{"source":{"count":300}}"#,
        ],
    );
    let (id, err) = text(&start);
    assert!(start.status.success(), "{err}");
    let id = id.trim().to_owned();
    assert!(id.starts_with('j'), "{id}");

    // Passes: nothing dead-lettered, P99 under a minute.
    let ok = jobs(
        &server,
        &[
            "wait",
            &id,
            "--fail-on",
            "dead_lettered>0",
            "--fail-on",
            "p99>60s",
            "--json",
        ],
    );
    let (out, err) = text(&ok);
    assert!(ok.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["produced"], 300);
    assert_eq!(report["state"], "completed");

    // Fails: the same finished job against a threshold it cannot meet.
    let gate = jobs(
        &server,
        &["wait", &id, "--fail-on", "throughput<1000000000"],
    );
    let (_, err) = text(&gate);
    assert_eq!(gate.status.code(), Some(4), "{err}");
    assert!(
        err.contains("fail-on `throughput<1000000000` holds"),
        "{err}"
    );

    let list = jobs(&server, &["list"]);
    let (out, _) = text(&list);
    assert!(out.contains(&id) && out.contains("completed"), "{out}");
}

#[test]
fn tune_and_stop_a_running_job_and_read_api_errors() {
    let server = ServerProcess::spawn();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("endless.toml");
    std::fs::write(
        &spec,
        r#"
name = "endless"
source = { kind = "synthetic", duration_ms = 600000, rate = 200.0 }
[[stages]]
name = "work"
op = { kind = "sleep", latency = { dist = "fixed", ms = 1.0 } }
"#,
    )
    .unwrap();
    let start = jobs(&server, &["start", spec.to_str().unwrap()]);
    let id = text(&start).0.trim().to_owned();
    assert!(start.status.success(), "{}", text(&start).1);
    let tune = jobs(&server, &["tune", &id, "--stage", "work", "--workers", "3"]);
    assert!(tune.status.success(), "{}", text(&tune).1);
    let bad = jobs(&server, &["tune", &id, "--stage", "nope", "--workers", "3"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).1.contains("stage: no stage named `nope`"),
        "{}",
        text(&bad).1
    );
    let stop = jobs(&server, &["stop", &id]);
    assert!(stop.status.success(), "{}", text(&stop).1);
    let wait = jobs(&server, &["wait", &id, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&text(&wait).0).unwrap();
    assert_eq!(report["state"], "stopped");
    assert_eq!(report["leftovers"], 0);
    let bad_spec = dir.path().join("bad.toml");
    std::fs::write(
        &bad_spec,
        "name = \"x\"\nsource = { kind = \"synthetic\" }\n",
    )
    .unwrap();
    let refused = jobs(&server, &["start", bad_spec.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused)
            .1
            .contains("source: a synthetic source needs"),
        "{}",
        text(&refused).1
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(queuelab_bin())
        .args(["jobs", "list", "--url", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_server_killed_mid_run_shows_the_job_as_interrupted_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let server = ServerProcess::spawn_with(&["--data-dir", &data_dir]);
    let done = jobs(
        &server,
        &[
            "start",
            "thread-io-pool",
            "--override",
            r#"{"source":{"count":100}}"#,
        ],
    );
    let done_id = text(&done).0.trim().to_owned();
    assert!(jobs(&server, &["wait", &done_id]).status.success());
    let running = jobs(
        &server,
        &[
            "start",
            "thread-io-pool",
            "--override",
            r#"{"source":{"count":100000000}}"#,
        ],
    );
    let running_id = text(&running).0.trim().to_owned();
    // Let it make progress and get saved (once a second).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    drop(server); // SIGKILL: no goodbye, no drain

    let server = ServerProcess::spawn_with(&["--data-dir", &data_dir]);
    let got = jobs(&server, &["get", &running_id]);
    let detail: serde_json::Value = serde_json::from_str(&text(&got).0).unwrap();
    assert_eq!(detail["state"], "interrupted");
    assert!(
        detail["accounting"]["produced"].as_u64().unwrap() > 0,
        "last counters kept: {detail}"
    );
    let got = jobs(&server, &["get", &done_id]);
    let detail: serde_json::Value = serde_json::from_str(&text(&got).0).unwrap();
    assert_eq!(detail["state"], "completed");
    assert_eq!(
        detail["report"]["produced"], 100,
        "finished runs stay browsable"
    );
}

#[test]
fn tokens_created_on_the_command_line_open_a_guarded_server() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let create = Command::new(queuelab_bin())
        .args([
            "token",
            "create",
            "--role",
            "viewer",
            "--label",
            "ci",
            "--data-dir",
            &data_dir,
        ])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", text(&create).1);
    let token = text(&create).0.trim().to_owned();
    assert!(token.starts_with("ql_"));
    let server = ServerProcess::spawn_with(&["--data-dir", &data_dir, "--auth", "on"]);
    let denied = jobs(&server, &["list"]);
    assert!(!denied.status.success());
    assert!(text(&denied).1.contains("401"), "{}", text(&denied).1);
    let allowed = jobs(&server, &["list", "--token", &token]);
    assert!(allowed.status.success(), "{}", text(&allowed).1);
    let forbidden = jobs(&server, &["start", "thread-io-pool", "--token", &token]);
    assert!(text(&forbidden).1.contains("403"), "{}", text(&forbidden).1);
}
