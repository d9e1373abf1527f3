//! Engine throughput against hand-written baselines, measured in the same
//! run (machines are noisy; only ratios within one run mean anything).
//!
//!     cargo bench -p engine --bench throughput
//!
//! Every engine pipeline here is `synthetic source → stage(s) → null sink`
//! with no work in the stages, so what is measured is the engine's own
//! per-item cost: queues, policies, bookkeeping and metrics. Each baseline
//! moves plain `u64`s through the same topology of hand-written queues.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use engine::JobOptions;
use shared::metrics::JobState;
use shared::spec::{PipelineSpec, SpecFormat};

const N: u64 = 1_000_000;
const RUNS: usize = 3;
const CAP: usize = 1000;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Items per second of `f`, which moves `N` items; median of `RUNS`.
fn rate(mut f: impl FnMut() -> Duration) -> f64 {
    median((0..RUNS).map(|_| N as f64 / f().as_secs_f64()).collect())
}

fn engine_rate(stages: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"bench\"\nsample_hz = 4.0\nsource = {{ kind = \"synthetic\", count = {N}, payload = \"counter\" }}\n{stages}"
    );
    let spec = PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap();
    rate(|| {
        let job = engine::start(spec.clone(), JobOptions::new("bench", dir.path())).unwrap();
        let report = job.wait();
        assert_eq!(report.state, JobState::Completed);
        assert_eq!(report.accounting.sunk, N);
        Duration::from_secs_f64(report.elapsed_s)
    })
}

fn stage(name: &str, runtime: &str, workers: u32) -> String {
    format!(
        "[[stages]]\nname = \"{name}\"\nruntime = \"{runtime}\"\nworkers = {workers}\nqueue = {{ capacity = {CAP} }}\nop = {{ kind = \"spin\", micros = 0 }}\n"
    )
}

/// producer → queue → `workers` consumers → queue → sink, on threads.
fn crossbeam_baseline(workers: usize) -> f64 {
    rate(|| {
        let start = Instant::now();
        let (tx, rx) = crossbeam_channel::bounded::<u64>(CAP);
        let (tx2, rx2) = crossbeam_channel::bounded::<u64>(CAP);
        let sink = std::thread::spawn(move || rx2.iter().count() as u64);
        let pool: Vec<_> = (0..workers)
            .map(|_| {
                let (rx, tx2) = (rx.clone(), tx2.clone());
                std::thread::spawn(move || {
                    for x in rx.iter() {
                        tx2.send(std::hint::black_box(x)).unwrap();
                    }
                })
            })
            .collect();
        drop((rx, tx2));
        for i in 0..N {
            tx.send(i).unwrap();
        }
        drop(tx);
        for w in pool {
            w.join().unwrap();
        }
        assert_eq!(sink.join().unwrap(), N);
        start.elapsed()
    })
}

/// producer task → mpsc → worker task → mpsc → sink task, on tokio.
fn tokio_baseline() -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rate(|| {
        rt.block_on(async {
            let start = Instant::now();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAP);
            let (tx2, mut rx2) = tokio::sync::mpsc::channel::<u64>(CAP);
            let sink = tokio::spawn(async move {
                let mut n = 0u64;
                while rx2.recv().await.is_some() {
                    n += 1;
                }
                n
            });
            tokio::spawn(async move {
                while let Some(x) = rx.recv().await {
                    tx2.send(std::hint::black_box(x)).await.unwrap();
                }
            });
            for i in 0..N {
                tx.send(i).await.unwrap();
            }
            drop(tx);
            assert_eq!(sink.await.unwrap(), N);
            start.elapsed()
        })
    })
}

/// What a worker spends on metrics per item, in isolation: `(timed,
/// amortized)` — one fully timed iteration (three clock reads, the time
/// counters, two histogram records, the item counter) and the average per
/// item once the stride times only one fast iteration in sixteen.
fn metrics_cost_ns() -> (f64, f64) {
    use engine::stats::{NodeInfo, NodeStats, Stride};
    let stats = NodeStats::new(NodeInfo {
        name: "m".into(),
        kind: shared::metrics::NodeKind::Stage,
        runtime: shared::spec::Runtime::Thread,
        capacity: shared::spec::Capacity::Bounded(1),
        when_full: shared::spec::WhenFull::Block,
    });
    let shard = stats.shard(0);
    let reps = 5_000_000u64;
    let per_item = |adaptive: bool| {
        let mut stride = Stride::default();
        let start = Instant::now();
        for _ in 0..reps {
            if stride.tick() {
                let t0 = Instant::now();
                let a = Instant::now();
                let b = Instant::now();
                shard.add_time(&shard.0.idle_ns, a - t0);
                shard.add_time(&shard.0.busy_ns, b - a);
                shard.record(Some(a - t0), Some(b - a), None);
                if adaptive {
                    stride.adapt(b - t0);
                }
            }
            shard
                .0
                .out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        start.elapsed().as_nanos() as f64 / reps as f64
    };
    (per_item(false), per_item(true))
}

fn main() {
    println!("QueueLab engine throughput, {N} items per run, median of {RUNS} runs");
    println!("(items/s; ratio = engine / hand-written baseline in this run)\n");

    let spsc_base = crossbeam_baseline(1);
    let spsc = engine_rate(&stage("w", "thread", 1));
    let mpmc_base = crossbeam_baseline(4);
    let mpmc = engine_rate(&stage("w", "thread", 4));
    let tokio_base = tokio_baseline();
    let async1 = engine_rate(&stage("a", "async", 1));
    let t2a = engine_rate(&(stage("t", "thread", 1) + &stage("a", "async", 1)));
    let a2t = engine_rate(&(stage("a", "async", 1) + &stage("t", "thread", 1)));
    let (timed_ns, amortized_ns) = metrics_cost_ns();

    let row = |name: &str, engine: f64, base: f64, base_name: &str| {
        println!(
            "{name:<44} {engine:>12.0}   {base_name:<34} {base:>12.0}   ratio {:.2}",
            engine / base
        );
    };
    row(
        "thread stage, 1 worker (SPSC, no-op)",
        spsc,
        spsc_base,
        "crossbeam loop, 1 consumer",
    );
    row(
        "thread stage, 1 producer / 4 workers",
        mpmc,
        mpmc_base,
        "crossbeam loop, 4 consumers",
    );
    row(
        "async stage, 1 task (no-op)",
        async1,
        tokio_base,
        "tokio mpsc loop, 1 task",
    );
    row(
        "thread -> bridge -> async",
        t2a,
        spsc_base,
        "crossbeam loop, 1 consumer",
    );
    row(
        "async -> bridge -> thread",
        a2t,
        spsc_base,
        "crossbeam loop, 1 consumer",
    );
    let per_item_ns = 1e9 / spsc;
    println!(
        "\nmetrics on a worker: {timed_ns:.0} ns per timed item; {amortized_ns:.1} ns per item amortized at the fast-item stride ({:.0}% of the {per_item_ns:.0} ns per item of the SPSC thread stage)",
        amortized_ns / per_item_ns * 100.0
    );
}
