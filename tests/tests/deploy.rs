//! The staging compose file, checked by Debian's `docker-compose` (which
//! validates a file without a Docker daemon; these machines have none, so
//! the images themselves are not built here).

use std::process::Command;

use e2e::repo_root;

fn compose(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f")
        .arg(repo_root().join("deploy/compose.yaml"))
        .args(args)
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("QUEUELAB_WORKER_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .expect("docker-compose (installed by ./dev setup --browser)")
}

const SECRETS: &[(&str, &str)] = &[
    ("POSTGRES_PASSWORD", "pw"),
    ("QUEUELAB_WORKER_TOKEN", "tok"),
];

#[test]
fn the_compose_file_is_valid_and_every_service_is_health_checked() {
    let out = compose(SECRETS, &["config", "-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = compose(SECRETS, &["config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let services = ["postgres", "nats", "queuelab", "worker"];
    // Each service's block, in the rendered file: its line and the lines
    // indented below it.
    let block = |name: &str| {
        let head = format!("  {name}:");
        let mut lines = text.lines().skip_while(|l| *l != head);
        assert!(lines.next().is_some(), "no service {name}:\n{text}");
        lines
            .take_while(|l| l.starts_with("    "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for s in services {
        assert!(block(s).contains("healthcheck:"), "{s} has no healthcheck");
    }
    assert!(block("nats").contains("js-enabled-only=true"));
    assert!(block("postgres").contains("pg_isready"));
    for s in ["queuelab", "worker"] {
        let b = block(s);
        assert!(b.contains("queuelab") && b.contains("healthcheck"), "{b}");
        assert!(
            b.contains("condition: service_healthy"),
            "{s} waits on health: {b}"
        );
        assert!(
            b.contains("stop_grace_period"),
            "{s} has time to drain: {b}"
        );
    }
    assert!(block("worker").contains("replicas: 3"));
    assert!(block("queuelab").contains("QUEUELAB_NATS_URL: nats://nats:4222"));
}

#[test]
fn the_compose_file_refuses_to_start_without_its_secrets() {
    let out = compose(&[], &["config", "-q"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("POSTGRES_PASSWORD"), "{err}");
}
