//! Throughput of a no-op stage (`spin`, 0 µs) over a NATS JetStream edge
//! with 1, 2 and 4 local `queuelab worker` processes (2 workers each),
//! against the same stage in memory with as many threads, measured in the
//! same run; and what the edge costs per item. Then the same with a 2 ms
//! I/O stage (`sleep`), where the work, not the edge, is the cost.
//!
//!     cargo bench -p server --bench broker_edge
//!
//! Needs the local broker (127.0.0.1:4222 or `QUEUELAB_NATS_URL`). Each
//! figure is the median of `RUNS` jobs of `ITEMS` counters; throughput is
//! items sunk over the job's own elapsed time (from its report).
#![allow(clippy::print_stdout)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use shared::api::JobDetail;
use shared::metrics::JobReport;

/// Items of a no-op run.
const ITEMS: u64 = 200_000;
/// Items of a 2 ms run.
const IO_ITEMS: u64 = 8_000;
const RUNS: usize = 3;

fn nats_url() -> String {
    std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn spec(broker: bool, workers: u32, io: bool) -> serde_json::Value {
    let op = if io {
        json!({"kind": "sleep", "latency": {"dist": "fixed", "ms": 2.0}})
    } else {
        json!({"kind": "spin", "micros": 0})
    };
    let mut stage = json!({
        "name": "noop", "workers": workers, "queue": {"capacity": 10000}, "op": op
    });
    if broker {
        stage["transport"] = json!({"kind": "nats"});
    }
    json!({
        "name": "edge-bench",
        "source": {"kind": "synthetic", "count": if io { IO_ITEMS } else { ITEMS }, "payload": "counter"},
        "stages": [stage]
    })
}

async fn run_job(http: &reqwest::Client, base: &str, spec: &serde_json::Value) -> f64 {
    let d: JobDetail = http
        .post(format!("{base}/api/v1/jobs"))
        .json(spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = d.summary.id;
    loop {
        let d: JobDetail = http
            .get(format!("{base}/api/v1/jobs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(r) = d.report {
            return check(&r);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check(r: &JobReport) -> f64 {
    assert!(r.balanced, "{}", r.accounting);
    assert_eq!(r.accounting.sunk, r.accounting.produced);
    r.accounting.sunk as f64 / r.elapsed_s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = server::AppState::new(None, Duration::from_secs(1), dir.path().to_owned())
        .unwrap()
        .with_nats_url(Some(nats_url()))
        .with_no_local_stage_workers(true);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(server::run(
        listener,
        state.clone(),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let http = reqwest::Client::new();
    println!(
        "(cores: {})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Each worker process runs 2 of the stage's workers; the in-memory
    // stage it is held against has as many threads in all.
    let per = 2;
    for io in [false, true] {
        println!(
            "\n{} stage, {} counters, median of {RUNS} runs each\n",
            if io {
                "2 ms I/O (sleep)"
            } else {
                "no-op (spin 0)"
            },
            if io { IO_ITEMS } else { ITEMS }
        );
        println!(
            "{:<22} {:>16} {:>16} {:>8} {:>14}",
            "workers", "in memory /s", "NATS edge /s", "ratio", "edge µs/item"
        );
        for procs in [1usize, 2, 4] {
            let total = per * procs as u32;
            // The same stage in memory, with as many workers, in this run.
            let mut baseline = Vec::new();
            for _ in 0..RUNS {
                baseline.push(run_job(&http, &base, &spec(false, total, io)).await);
            }
            let inproc = median(baseline);
            let children: Vec<Child> = (0..procs)
                .map(|i| {
                    Command::new(env!("CARGO_BIN_EXE_queuelab"))
                        .args(["worker", "--server", &base, "--name", &format!("bench-{i}")])
                        .env("QUEUELAB_LOG", "warn")
                        .stdout(Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let workers = Workers(children);
            while state
                .workers()
                .list()
                .iter()
                .filter(|w| w.state == shared::workers::WorkerState::Active)
                .count()
                < procs
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                runs.push(run_job(&http, &base, &spec(true, total, io)).await);
            }
            let tp = median(runs);
            println!(
                "{:<22} {:>16.0} {:>16.0} {:>8.3} {:>14.1}",
                format!("{procs} process(es) × {per}"),
                inproc,
                tp,
                tp / inproc,
                (1.0 / tp - 1.0 / inproc) * 1e6
            );
            drop(workers);
            // Gone: the next count starts from none.
            for w in state.workers().list() {
                state.workers().leave(&w.id);
            }
        }
    }
    let _ = stop.send(());
    let _ = served.await;
}
