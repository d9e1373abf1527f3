//! End-to-end latency at a low rate, where chunked hand-offs must cost
//! nothing: a synthetic source at 1,000 items/s, one stage whose op takes
//! 1 ms (`sleep`), a null sink. Prints the P50/P99 end-to-end latency the
//! job's report measured, for a thread stage and an async stage.
//!
//!     cargo bench -p engine --bench latency
//!
//! To compare with an older engine, run the same file there (it uses only
//! `engine::start` and the report).
#![allow(clippy::print_stdout)]

use engine::JobOptions;
use shared::metrics::JobState;
use shared::spec::{PipelineSpec, SpecFormat};

const RATE: u64 = 1_000;
const COUNT: u64 = 5_000;
const RUNS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// (P50, P99) end-to-end in µs, medians of `RUNS`.
fn latency(runtime: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"latency\"\nsource = {{ kind = \"synthetic\", count = {COUNT}, rate = {RATE}.0, payload = \"counter\" }}\n\
         [[stages]]\nname = \"work\"\nruntime = \"{runtime}\"\nworkers = 4\nop = {{ kind = \"sleep\", latency = {{ dist = \"fixed\", ms = 1.0 }} }}\n"
    );
    let spec = PipelineSpec::parse(&toml, SpecFormat::Toml).unwrap();
    let (p50, p99): (Vec<f64>, Vec<f64>) = (0..RUNS)
        .map(|_| {
            let job = engine::start(spec.clone(), JobOptions::new("latency", dir.path())).unwrap();
            let report = job.wait();
            assert_eq!(report.state, JobState::Completed);
            assert_eq!(report.accounting.sunk, COUNT);
            (
                report.end_to_end.p50_us as f64,
                report.end_to_end.p99_us as f64,
            )
        })
        .unzip();
    (median(p50), median(p99))
}

fn main() {
    println!(
        "QueueLab end-to-end latency at {RATE} items/s, 1 ms op, {COUNT} items, median of {RUNS} runs"
    );
    for runtime in ["thread", "async"] {
        let (p50, p99) = latency(runtime);
        println!("{runtime:<7} stage, 4 workers   P50 {p50:>7.0} µs   P99 {p99:>7.0} µs");
    }
}
