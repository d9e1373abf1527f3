//! The `queuelab` binary as a process: what it prints and how it exits.

use std::process::Command;

use e2e::{ServerProcess, queuelab_bin};

#[test]
fn serve_prints_its_url_and_healthcheck_passes_against_it() {
    let server = ServerProcess::spawn();
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let status = Command::new(queuelab_bin())
        .args(["healthcheck", "--url", &format!("{}healthz", server.url)])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(queuelab_bin())
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("health check"));
}

#[test]
fn serve_rejects_a_bad_port_with_a_clear_error() {
    let out = Command::new(queuelab_bin())
        .args(["serve", "--port", "70000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--port"), "{stderr}");
}

#[test]
fn serve_creates_its_data_directory() {
    let server = ServerProcess::spawn();
    assert!(server.data_dir.path().is_dir());
    let nested = server.data_dir.path().join("a/b");
    let again = ServerProcess::spawn_with(&["--data-dir", nested.to_str().unwrap()]);
    assert!(nested.is_dir(), "{} created", nested.display());
    drop(again);
}
