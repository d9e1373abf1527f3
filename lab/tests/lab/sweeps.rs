use shared::lab::{KneeRule, Slo, SweepMode};

use crate::helpers::{exclusive, spec, sweep, sweep_spec, table, template};

#[test]
fn a_cpu_bound_stage_stops_scaling_at_the_core_count() {
    let _turn = exclusive();
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let values = [1.0, 2.0, 4.0, 8.0];
    let s = sweep_spec(template("cpu-on-threads"), "stages[hash].workers", &values);
    let (r, _dir) = sweep(&s);
    let knee = r
        .knee
        .clone()
        .unwrap_or_else(|| panic!("no knee\n{}", table(&r)));
    // The knee is the core count, or the next value run (± one step).
    let at = values
        .iter()
        .position(|v| *v >= cores)
        .unwrap_or(values.len() - 1);
    let got = values.iter().position(|v| *v == knee.value).unwrap();
    assert!(
        got.abs_diff(at) <= 1,
        "knee at {} on {cores} cores\n{}",
        knee.value,
        table(&r)
    );
    assert_eq!(knee.rule, KneeRule::Kneedle, "{}", table(&r));
    // The stage is the busiest, and its CPU is what limits it.
    assert_eq!(r.points[0].busiest.as_deref(), Some("hash"));
    let last = r.points.last().unwrap();
    assert!(
        last.busiest_cpu.unwrap() > 0.5 * cores,
        "8 workers keep the cores busy\n{}",
        table(&r)
    );
    assert!(
        r.usl_refused.is_some(),
        "4 worker counts are too few to fit"
    );
    assert!(
        r.verdict.iter().any(|v| v.contains("Knee at")),
        "{:?}",
        r.verdict
    );
    assert!(lab::svg::render(&r).contains("knee "));
}

#[test]
fn a_blocking_io_pool_delivers_workers_over_latency() {
    let _turn = exclusive();
    let s = sweep_spec(
        template("thread-io-pool"),
        "stages[io].workers",
        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
    );
    let (r, _dir) = sweep(&s);
    for p in &r.points {
        // Each item sleeps 5–10 ms (mean 7.5): N workers cannot beat N / 5 ms,
        // and a loaded machine only makes the sleeps longer.
        let n = p.value;
        let tp = p.median.throughput;
        assert!(tp <= n / 0.005 * 1.05, "{n} workers: {tp}/s\n{}", table(&r));
        assert!(tp >= 0.5 * n / 0.0075, "{n} workers: {tp}/s\n{}", table(&r));
        assert_eq!(p.busiest.as_deref(), Some("io"), "{}", table(&r));
    }
    // Six worker counts: the USL fit is made, and it sees near-linear
    // scaling (sleeping threads do not contend).
    let usl = r
        .usl
        .clone()
        .unwrap_or_else(|| panic!("{:?}", r.usl_refused));
    assert!(usl.r_squared > 0.9, "{usl:?}");
    assert!(usl.sigma < 0.1, "{usl:?}");
    // Little's law holds for the stage: its figures are consistent.
    assert!(
        r.little_flags.is_empty(),
        "{:?}\n{:#?}",
        r.little_flags,
        r.runs
    );
}

#[test]
fn a_capacity_search_finds_the_rate_a_known_pipeline_sustains() {
    let _turn = exclusive();
    // Two workers of 5 ms each: 400 items/s at most. Above it the open
    // model's backlog grows and with it P99.
    let mut s = sweep_spec(
        spec(
            r#"
name = "known-capacity"
source = { kind = "synthetic", count = 1, rate = 50.0, payload = "counter" }
[[stages]]
name = "work"
workers = 2
queue = { capacity = 100000 }
op = { kind = "sleep", latency = { dist = "fixed", ms = 5.0 } }
"#,
        ),
        "source.rate",
        &[100.0],
    );
    s.warmup_ms = 500;
    s.measure_ms = 2_500;
    s.slo = Some(Slo::parse("p99<100ms").unwrap());
    s.mode = SweepMode::Capacity {
        precision: 0.05,
        max_probes: 16,
    };
    let (r, _dir) = sweep(&s);
    let c = r.capacity.clone().unwrap();
    let v = c.value.unwrap_or_else(|| panic!("{c:?}\n{}", table(&r)));
    assert!(
        (v - 400.0).abs() <= 40.0,
        "capacity {v} (known: 400/s)\n{c:?}\n{}",
        table(&r)
    );
    assert_eq!(r.chosen, Some(v));
    assert!(r.slo_broken.is_empty());
    // The accepted value was measured twice.
    assert!(r.runs.iter().filter(|run| run.value == v).count() >= 2);
    assert!(r.verdict[0].contains("highest"), "{:?}", r.verdict);
}

#[test]
fn a_bad_knob_value_is_refused_before_anything_runs() {
    let s = sweep_spec(
        template("cpu-on-threads"),
        "stages[hash].workers",
        &[1.0, 0.0],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = lab::launch::LocalLauncher::new(dir.path(), "refused");
    let err = lab::sweep::run(&s, &mut launcher, &Default::default(), &mut ()).unwrap_err();
    assert!(err.to_string().contains("workers"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no job ran"
    );
}
