//! Soak figures for the dashboard's job page: the real binary, a job
//! sampling at 20 Hz (the hub forwards about ten snapshots a second, so the
//! 2400-sample chart window, ten minutes at the default 4 Hz, fills in
//! four), and headless Chromium reading its own heap, DOM and main-thread
//! counters.
//!
//! ```sh
//! ./dev build && cargo run -p e2e --example dashboard_soak -- 5
//! ```
//!
//! Prints one line per sample and two ratios against a baseline taken in
//! the same run: the JS heap at the end over the heap when the window
//! filled (about 1.0: nothing grows once the window is full), and the main
//! thread's script share at the end over its share when 400 samples were
//! first kept (about 1.0: a redraw costs the same with ten minutes of
//! history as with forty seconds).

// A measuring program: printing its figures is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use e2e::{ServerProcess, browser};

fn main() {
    let minutes = std::env::args().nth(1).unwrap_or_else(|| "5".into());
    let server = ServerProcess::spawn();
    let report = browser("soak.mjs", &[&server.url, &minutes]);
    if let Some(f) = report.get("failure") {
        eprintln!("soak failed: {f}");
        std::process::exit(1);
    }
    let samples = report["samples"].as_array().cloned().unwrap_or_default();
    println!("  at   heap MiB  DOM nodes  script  tasks  samples kept  points drawn");
    for s in &samples {
        println!(
            "{:>4}s {:>9} {:>10} {:>6.1}% {:>5.1}% {:>13} {:>13}",
            s["at_s"],
            s["heap_mb"],
            s["dom_nodes"],
            s["script_share"].as_f64().unwrap_or(0.0) * 100.0,
            s["task_share"].as_f64().unwrap_or(0.0) * 100.0,
            s["kept"],
            s["drawn"]
        );
    }
    // The window is full once the page keeps its 2400 samples.
    let full = samples
        .iter()
        .find(|s| s["kept"].as_u64().unwrap_or(0) >= 2400)
        .or(samples.last());
    // Charts draw at most about 400 points each; once the page keeps more
    // samples than that, a redraw should cost the same however many.
    let share = |s: &serde_json::Value| s["script_share"].as_f64().unwrap_or(0.0);
    let budget = samples
        .iter()
        .find(|s| s["kept"].as_u64().unwrap_or(0) >= 400)
        .or(samples.first());
    if let (Some(base), Some(end)) = (budget, samples.last()) {
        println!(
            "script share at end / when 400 samples were first kept: {:.2} ({:.1}% / {:.1}%, {} / {} samples kept)",
            share(end) / share(base).max(1e-9),
            share(end) * 100.0,
            share(base) * 100.0,
            end["kept"],
            base["kept"]
        );
    }
    if let (Some(full), Some(end)) = (full, samples.last()) {
        let ratio =
            end["heap_mb"].as_f64().unwrap_or(0.0) / full["heap_mb"].as_f64().unwrap_or(1.0);
        println!(
            "heap at end / heap when the window filled: {ratio:.2} ({} MiB / {} MiB)",
            end["heap_mb"], full["heap_mb"]
        );
    }
}
