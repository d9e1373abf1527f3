//! `workers = "auto"` / `concurrency = "auto"` against the best fixed
//! setting of a sweep, in the same run, for three shapes: CPU-bound
//! threads (`cpu-on-threads`), a rate-fed I/O pool (1,500 items/s of
//! 5–10 ms sleeps) and an async HTTP stage against the built-in target
//! (10 ms answers, 8 slots). Then the limit over time through a latency
//! step (the target's latency doubled mid-run), written as an SVG.
//!
//!     cargo bench -p server --bench auto_knee [-- SVG_PATH]
//!
//! Each fixed point: 1 s warm-up, 3 s measured (the lab's sweep). Auto:
//! 12 s to settle, 5 s measured. Throughput is items sunk per second in
//! the measured window; P99 is the end-to-end latency of the items sunk
//! in it.
#![allow(clippy::print_stdout)]

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lab::launch::LocalLauncher;
use lab::point::Launcher;
use shared::lab::SweepSpec;
use shared::metrics::EventKind;
use shared::spec::{Limit, PipelineSpec, SpecFormat};

fn parse(toml: &str) -> PipelineSpec {
    PipelineSpec::parse(toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"))
}

fn cpu() -> PipelineSpec {
    parse(
        r#"
name = "bench-cpu"
source = { kind = "synthetic", duration_ms = 3600000, payload = "counter" }
[[stages]]
name = "s"
workers = 1
op = { kind = "spin", micros = 200 }
"#,
    )
}

fn io() -> PipelineSpec {
    parse(
        r#"
name = "bench-io"
source = { kind = "synthetic", rate = 1500.0, duration_ms = 3600000, payload = "counter" }
[[stages]]
name = "s"
workers = 1
op = { kind = "sleep", latency = { dist = "uniform", min_ms = 5.0, max_ms = 10.0 } }
"#,
    )
}

fn http(base: &str) -> PipelineSpec {
    parse(&format!(
        r#"
name = "bench-http"
source = {{ kind = "synthetic", duration_ms = 3600000, payload = "counter" }}
[[stages]]
name = "s"
runtime = "async"
workers = 64
concurrency = 1
op = {{ kind = "http", url = "{base}/knee?slots=8&delay_ms=10" }}
"#
    ))
}

/// The best fixed point of a sweep: (value, throughput, P99 µs).
fn best_fixed(pipeline: &PipelineSpec, knob: &str, values: &[f64]) -> (f64, f64, u64) {
    let sweep = SweepSpec::over(pipeline.clone(), knob, values, 1_000, 3_000);
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = LocalLauncher::new(dir.path(), "bench-auto");
    let r = lab::sweep::run(&sweep, &mut launcher, &AtomicBool::new(false), &mut ())
        .unwrap_or_else(|e| panic!("{e}"));
    for p in &r.points {
        println!(
            "    fixed {:>4}: {:>9.0} items/s  p99 {:>8} µs",
            p.value, p.median.throughput, p.median.latency.p99_us
        );
    }
    let best = r
        .points
        .iter()
        .max_by(|a, b| a.median.throughput.total_cmp(&b.median.throughput))
        .unwrap();
    (
        best.value,
        best.median.throughput,
        best.median.latency.p99_us,
    )
}

/// Auto on the first stage: (throughput, P99 µs, the limit at the end,
/// (elapsed s, limit) each sample).
fn auto(mut pipeline: PipelineSpec, step: Option<&dyn Fn()>) -> (f64, u64, u32, Vec<(f64, u32)>) {
    match pipeline.stages[0].runtime {
        shared::spec::Runtime::Thread => pipeline.stages[0].workers = Limit::AUTO,
        shared::spec::Runtime::Async => pipeline.stages[0].concurrency = Some(Limit::AUTO),
    }
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = LocalLauncher::new(dir.path(), "bench-auto");
    let job = launcher.launch(pipeline, "auto").unwrap();
    let mut trace = Vec::new();
    let mut sample = |job: &engine::JobHandle, secs: f64| {
        let until = std::time::Instant::now() + Duration::from_secs_f64(secs);
        while std::time::Instant::now() < until {
            let s = job.snapshot();
            if let Some(a) = &s.nodes[0].auto {
                trace.push((s.elapsed_ms as f64 / 1000.0, a.limit));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    sample(&job, 12.0);
    let (mark, sunk) = (job.latency_mark(), job.snapshot().accounting.sunk);
    let t0 = std::time::Instant::now();
    sample(&job, 5.0);
    let secs = t0.elapsed().as_secs_f64();
    let (end, sunk_end) = (job.latency_mark(), job.snapshot().accounting.sunk);
    if let Some(step) = step {
        step();
        sample(&job, 10.0);
    }
    let limit = job.snapshot().nodes[0].auto.as_ref().map_or(0, |a| a.limit);
    job.abort().unwrap();
    let report = job.wait();
    assert!(report.balanced);
    for e in &report.events {
        if let EventKind::Auto {
            from, to, reason, ..
        } = &e.kind
        {
            println!("      {:>6} ms {from} → {to}: {reason}", e.elapsed_ms);
        }
    }
    (
        (sunk_end - sunk) as f64 / secs,
        end.since(&mark).p99_us,
        limit,
        trace,
    )
}

fn compare(name: &str, pipeline: PipelineSpec, knob: &str, values: &[f64]) {
    println!("{name}");
    let (value, tp, p99) = best_fixed(&pipeline, knob, values);
    let (atp, ap99, limit, _) = auto(pipeline, None);
    println!(
        "  best fixed {value}: {tp:.0}/s p99 {p99} µs | auto (settled at {limit}): {atp:.0}/s p99 {ap99} µs | throughput {:.3}× | p99 {:.2}×",
        atp / tp,
        ap99 as f64 / p99.max(1) as f64
    );
}

fn svg(trace: &[(f64, u32)], step_at: f64, slots: u32) -> String {
    let (w, h, pad) = (640.0, 240.0, 40.0);
    let t_max = trace.last().map_or(1.0, |t| t.0).max(1.0);
    let l_max = trace.iter().map(|t| t.1).max().unwrap_or(1).max(1) as f64 * 1.2;
    let x = |t: f64| pad + (w - 2.0 * pad) * t / t_max;
    let y = |l: f64| h - pad - (h - 2.0 * pad) * l / l_max;
    let points: Vec<String> = trace
        .iter()
        .map(|(t, l)| format!("{:.1},{:.1}", x(*t), y(f64::from(*l))))
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#888"/>
<text x="{pad}" y="{ty}">concurrency limit (auto) over time, s; the service's latency doubles at {step_at:.1} s</text>
<line x1="{sx:.1}" y1="{pad}" x2="{sx:.1}" y2="{b}" stroke="#c33" stroke-dasharray="4 3"/>
<text x="{sx:.1}" y="{lab}" fill="#c33">latency ×2</text>
<text x="{pad}" y="{yl}" text-anchor="end" dx="-4">{lm:.0}</text>
<line x1="{pad}" y1="{ky:.1}" x2="{r}" y2="{ky:.1}" stroke="#999" stroke-dasharray="2 3"/>
<text x="{pad}" y="{ky:.1}" dx="4" dy="12" fill="#666">the service's {slots} slots</text>
<text x="{r}" y="{xl}" text-anchor="end">{t_max:.0} s</text>
<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{pts}"/>
</svg>
"##,
        b = h - pad,
        r = w - pad,
        ty = pad - 14.0,
        sx = x(step_at),
        lab = pad + 12.0,
        yl = y(l_max / 1.2) + 4.0,
        lm = l_max / 1.2,
        xl = h - pad + 16.0,
        ky = y(f64::from(slots)),
        pts = points.join(" ")
    )
}

fn main() {
    let svg_path = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = server::target::router(server::target::TargetConfig::default());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    compare(
        "cpu-bound threads (spin 200 µs)",
        cpu(),
        "stages[s].workers",
        &[1.0, 2.0, 4.0, 8.0],
    );
    compare(
        "rate-fed I/O pool (1,500/s of 5–10 ms)",
        io(),
        "stages[s].workers",
        &[2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    );
    compare(
        "async HTTP, 10 ms, 8 slots",
        http(&base),
        "stages[s].concurrency",
        &[2.0, 4.0, 8.0, 16.0, 32.0],
    );
    println!("latency step (async HTTP: 10 ms → 20 ms at 17 s)");
    let client = reqwest::Client::new();
    let handle = rt.handle().clone();
    let tune = || {
        let r = handle
            .block_on(
                client
                    .put(format!("{base}/_tune"))
                    .json(&serde_json::json!({"latency_factor": 2.0}))
                    .send(),
            )
            .unwrap();
        assert!(r.status().is_success());
    };
    let (_, _, limit, trace) = auto(http(&base), Some(&tune));
    println!("  limit after the step: {limit}");
    if let Some(path) = svg_path {
        std::fs::write(&path, svg(&trace, 17.0, 8)).unwrap();
        println!("  wrote {path}");
    }
    drop(rt);
}
