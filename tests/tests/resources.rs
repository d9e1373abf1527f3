//! A finished job gives back what it held: after 100 jobs the server's
//! open files and threads return to where they were, read from the real
//! server process's `/proc` entries.

use std::process::Command;
use std::time::Duration;

use e2e::{ServerProcess, queuelab_bin};

fn jobs(server: &ServerProcess, args: &[&str]) -> String {
    let out = Command::new(queuelab_bin())
        .arg("jobs")
        .args(args)
        .env("QUEUELAB_URL", server.url.trim_end_matches('/'))
        .env("QUEUELAB_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "queuelab jobs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Open file descriptors of process `pid`, and its threads that belong
/// to jobs (the engine names them `ql-<job>-…`). The server's own pools
/// (tokio's blocking threads) grow and shrink with the request load, so
/// they are not what a finished job must give back.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|name| name.starts_with("ql-"))
        })
        .count();
    (fds, threads)
}

/// Runs one small job to its end: alternately a thread stage and an
/// async stage (which has a runtime of its own).
fn run_one(server: &ServerProcess, dir: &std::path::Path, n: usize) {
    let spec = if n.is_multiple_of(2) {
        r#"{"name":"t","source":{"kind":"synthetic","count":50,"payload":"counter"},
            "stages":[{"name":"s","runtime":"thread","workers":4,"op":{"kind":"sleep","latency":{"dist":"uniform","min_ms":0.0,"max_ms":1.0}}}]}"#
    } else {
        r#"{"name":"a","source":{"kind":"synthetic","count":50,"payload":"counter"},
            "stages":[{"name":"s","runtime":"async","workers":8,"concurrency":8,"op":{"kind":"sleep","latency":{"dist":"uniform","min_ms":0.0,"max_ms":1.0}}}]}"#
    };
    let file = dir.join(format!("job{}.json", n % 2));
    std::fs::write(&file, spec).unwrap();
    let id = jobs(server, &["start", file.to_str().unwrap()]);
    jobs(server, &["wait", &id]);
}

#[test]
fn a_hundred_finished_jobs_leave_no_files_or_threads_behind() {
    let server = ServerProcess::spawn();
    let dir = tempfile::tempdir().unwrap();
    // Warm up: the first jobs open the store's files and start the
    // server's own pools.
    for n in 0..4 {
        run_one(&server, dir.path(), n);
    }
    // Settled: finished jobs are archived within a second, and idle
    // blocking threads of the server's runtime leave after 10 s.
    let settle = |limit: (usize, usize)| {
        let mut now = fds_and_threads(server.pid());
        for _ in 0..60 {
            if now.0 <= limit.0 && now.1 <= limit.1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            now = fds_and_threads(server.pid());
        }
        now
    };
    std::thread::sleep(Duration::from_millis(1500));
    let base = fds_and_threads(server.pid());
    for n in 0..100 {
        run_one(&server, dir.path(), n);
    }
    let after = settle(base);
    assert!(
        after.0 <= base.0,
        "open files went from {} to {} over 100 jobs",
        base.0,
        after.0
    );
    assert!(
        after.1 <= base.1,
        "job threads went from {} to {} over 100 jobs",
        base.1,
        after.1
    );
}

#[test]
fn a_scale_up_the_system_refuses_is_a_clean_error_and_leaves_the_stage_as_it_was() {
    // 3 GB of address space: the server, its allocator's arenas and a
    // few hundred thread stacks (2 MiB each) fit with room to spare; 4096
    // stacks (8 GiB) do not.
    let server = ServerProcess::spawn_under(&["prlimit", "--as=3000000000", "--"], &[]);
    let id = jobs(
        &server,
        &[
            "start",
            "thread-io-pool",
            "--override",
            r#"{"source":{"count":100000000}}"#,
        ],
    );
    let out = Command::new(queuelab_bin())
        .args(["jobs", "tune", &id, "--stage", "io", "--workers", "4096"])
        .env("QUEUELAB_URL", server.url.trim_end_matches('/'))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the tune was refused");
    assert!(
        err.contains("503") && err.contains("keeps its 8 workers"),
        "{err}"
    );
    assert!(
        !err.contains("os error") && !err.contains("panicked"),
        "no internals: {err}"
    );
    // The threads this tune did start are retired: each leaves after the
    // item it holds (bounded wait, not a timing assertion).
    let mut detail = serde_json::Value::Null;
    let mut io = serde_json::Value::Null;
    for _ in 0..300 {
        detail = serde_json::from_str(&jobs(&server, &["get", &id])).unwrap();
        io = detail["snapshot"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "io")
            .unwrap()
            .clone();
        if io["workers"] == 8 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(io["workers"], 8, "{io}");
    assert_eq!(detail["state"], "running", "the job carries on");
    jobs(&server, &["stop", &id, "--abort"]);
}
