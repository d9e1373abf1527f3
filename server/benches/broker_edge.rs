//! A stage over a NATS JetStream edge against the same stage in memory,
//! measured in the same run: a no-op stage (`spin`, 0 µs) and a 2 ms I/O
//! stage (`sleep`) on 1, 2 and 4 local `queuelab worker` processes (2
//! workers each, the in-memory stage with as many threads), then the end
//! to end latency of a 1 ms stage at a low rate (1,000 items/s). Beside
//! each NATS figure: the CPU the broker, the worker processes and the
//! server took during it, in cores.
//!
//!     cargo bench -p server --bench broker_edge
//!
//! Needs the local broker (127.0.0.1:4222 or `QUEUELAB_NATS_URL`). Each
//! figure is the median of `RUNS` jobs. Throughput over NATS is counted
//! from the first item sunk to the last (a job waits for the workers'
//! next heartbeat to be handed its assignment, up to ~0.75 s that is not
//! the edge's); in memory, over the job's own elapsed time.
#![allow(clippy::print_stdout)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use shared::api::JobDetail;
use shared::metrics::JobReport;

/// Items of a no-op run.
const ITEMS: u64 = 2_000_000;
/// Items of a 2 ms run.
const IO_ITEMS: u64 = 12_000;
/// Items of the low-rate run, at `LOW_RATE` per second.
const LOW_ITEMS: u64 = 5_000;
const LOW_RATE: f64 = 1_000.0;
const RUNS: usize = 3;

fn nats_url() -> String {
    std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

#[derive(Clone, Copy, PartialEq)]
enum Load {
    Noop,
    Io,
    LowRate,
}

fn spec(broker: bool, workers: u32, load: Load) -> serde_json::Value {
    let op = match load {
        Load::Noop => json!({"kind": "spin", "micros": 0}),
        Load::Io => json!({"kind": "sleep", "latency": {"dist": "fixed", "ms": 2.0}}),
        Load::LowRate => json!({"kind": "sleep", "latency": {"dist": "fixed", "ms": 1.0}}),
    };
    let mut stage = json!({
        "name": "noop", "workers": workers, "queue": {"capacity": 10000}, "op": op
    });
    if broker {
        stage["transport"] = json!({"kind": "nats"});
    }
    let mut source = json!({"kind": "synthetic", "payload": "counter"});
    source["count"] = json!(match load {
        Load::Noop => ITEMS,
        Load::Io => IO_ITEMS,
        Load::LowRate => LOW_ITEMS,
    });
    if load == Load::LowRate {
        source["rate"] = json!(LOW_RATE);
    }
    json!({"name": "edge-bench", "source": source, "stages": [stage]})
}

/// What one job measured.
#[derive(Clone, Copy, Default)]
struct Run {
    /// Items per second (see the crate's note for which span).
    rate: f64,
    /// End to end P50, in ms.
    p50_ms: f64,
    /// CPU over the run, in cores: the broker, the workers, the server.
    cpu: [f64; 3],
    /// Items per broker message.
    per_msg: f64,
}

/// CPU seconds so far of the broker, of `workers`, of this process.
fn cpu_now(broker: Option<u32>, workers: &[u32]) -> [f64; 3] {
    let secs = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command's closing paren: utime is the 12th,
        // stime the 13th (14 and 15 of the whole line), in clock ticks.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        f.iter().sum::<f64>() / 100.0
    };
    [
        broker.map_or(0.0, |p| secs(&p.to_string())),
        workers.iter().map(|p| secs(&p.to_string())).sum(),
        secs("self"),
    ]
}

/// The local `nats-server`'s pid, if it runs here.
fn broker_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "nats-server").then_some(pid)
    })
}

async fn run_job(
    http: &reqwest::Client,
    base: &str,
    spec: &serde_json::Value,
    workers: &[u32],
) -> Run {
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
    let broker = broker_pid();
    let (mut first, mut cpu_from) = (None, cpu_now(broker, workers));
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
            let cpu_to = cpu_now(broker, workers);
            let (at, sunk, cpu) = first.unwrap_or((
                std::time::Instant::now() - Duration::from_secs_f64(r.elapsed_s),
                0,
                cpu_from,
            ));
            let wall = at.elapsed().as_secs_f64();
            let rate = if workers.is_empty() {
                check(&r)
            } else {
                check(&r);
                (r.accounting.sunk - sunk) as f64 / wall
            };
            let mut used = [0.0; 3];
            for k in 0..3 {
                used[k] = (cpu_to[k] - cpu[k]) / wall;
            }
            let per_msg = r
                .nodes
                .iter()
                .find_map(|n| n.edge.as_ref())
                .map_or(0.0, |e| {
                    e.items_published as f64 / e.messages_published.max(1) as f64
                });
            return Run {
                rate,
                p50_ms: r.end_to_end.p50_us as f64 / 1e3,
                cpu: used,
                per_msg,
            };
        }
        if first.is_none() && d.snapshot.accounting.sunk > 0 {
            first = Some((
                std::time::Instant::now(),
                d.snapshot.accounting.sunk,
                cpu_now(broker, workers),
            ));
        } else if first.is_none() {
            cpu_from = cpu_now(broker, workers);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check(r: &JobReport) -> f64 {
    assert!(r.balanced, "{}", r.accounting);
    assert_eq!(r.accounting.sunk, r.accounting.produced);
    r.accounting.sunk as f64 / r.elapsed_s
}

/// The run with the median rate (or P50, for the low-rate load).
fn median(mut v: Vec<Run>, by_latency: bool) -> Run {
    let key = |r: &Run| if by_latency { r.p50_ms } else { r.rate };
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
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
    println!("(cpu: cores used during the NATS run — broker / worker processes / server)");
    for load in [Load::Noop, Load::Io, Load::LowRate] {
        let (title, procs_list): (String, &[usize]) = match load {
            Load::Noop => (format!("no-op (spin 0), {ITEMS} counters"), &[1, 2, 4]),
            Load::Io => (format!("2 ms I/O (sleep), {IO_ITEMS} counters"), &[1, 2, 4]),
            Load::LowRate => (
                format!(
                    "1 ms (sleep) at {LOW_RATE:.0} items/s, {LOW_ITEMS} counters: end to end P50"
                ),
                &[1],
            ),
        };
        println!("\n{title}, median of {RUNS} runs each\n");
        if load == Load::LowRate {
            println!(
                "{:<22} {:>14} {:>14} {:>30}",
                "workers", "in memory ms", "NATS edge ms", "cpu b/w/s, items/msg"
            );
        } else {
            println!(
                "{:<22} {:>14} {:>14} {:>8} {:>12} {:>30}",
                "workers",
                "in memory /s",
                "NATS edge /s",
                "ratio",
                "edge µs/item",
                "cpu b/w/s, items/msg"
            );
        }
        for &procs in procs_list {
            let total = per * procs as u32;
            // The same stage in memory, with as many workers, in this run.
            let mut baseline = Vec::new();
            for _ in 0..RUNS {
                baseline.push(run_job(&http, &base, &spec(false, total, load), &[]).await);
            }
            let inproc = median(baseline, load == Load::LowRate);
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
            let pids: Vec<u32> = children.iter().map(Child::id).collect();
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
                runs.push(run_job(&http, &base, &spec(true, total, load), &pids).await);
            }
            let nats = median(runs, load == Load::LowRate);
            let cpu = format!(
                "{:.2} / {:.2} / {:.2}, {:.0}",
                nats.cpu[0], nats.cpu[1], nats.cpu[2], nats.per_msg
            );
            if load == Load::LowRate {
                println!(
                    "{:<22} {:>14.2} {:>14.2} {:>30}",
                    format!("{procs} process(es) × {per}"),
                    inproc.p50_ms,
                    nats.p50_ms,
                    cpu
                );
            } else {
                println!(
                    "{:<22} {:>14.0} {:>14.0} {:>8.3} {:>12.2} {:>30}",
                    format!("{procs} process(es) × {per}"),
                    inproc.rate,
                    nats.rate,
                    nats.rate / inproc.rate,
                    (1.0 / nats.rate - 1.0 / inproc.rate) * 1e6,
                    cpu
                );
            }
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
