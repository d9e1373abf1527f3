use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use lab::launch::LocalLauncher;
use shared::lab::{SoakReport, SoakSpec, SweepReport, SweepSpec};
use shared::spec::{PipelineSpec, SpecFormat};

/// One measurement at a time: a sweep measures what the machine can do,
/// so two at once would measure each other.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn template(name: &str) -> PipelineSpec {
    shared::templates::get(name)
        .unwrap_or_else(|| panic!("no template {name}"))
        .spec()
        .unwrap()
}

pub fn spec(toml: &str) -> PipelineSpec {
    PipelineSpec::parse(toml, SpecFormat::Toml).unwrap_or_else(|e| panic!("{e}"))
}

pub fn sweep_spec(pipeline: PipelineSpec, knob: &str, values: &[f64]) -> SweepSpec {
    SweepSpec::over(pipeline, knob, values, 1_000, 3_000)
}

pub fn sweep(spec: &SweepSpec) -> (SweepReport, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = LocalLauncher::new(dir.path(), "lab-test");
    let report = lab::sweep::run(spec, &mut launcher, &AtomicBool::new(false), &mut ())
        .unwrap_or_else(|e| panic!("{e}"));
    for run in &report.runs {
        assert!(run.balanced, "every run's accounting adds up: {run:#?}");
    }
    (report, dir)
}

pub fn soak(spec: &SoakSpec) -> SoakReport {
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = LocalLauncher::new(dir.path(), "lab-soak");
    let report = lab::soak::run(spec, &mut launcher, &AtomicBool::new(false), &mut ())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.finished && report.balanced, "{report:#?}");
    report
}

/// A report's table, for failure messages.
pub fn table(r: &SweepReport) -> String {
    let mut s = String::new();
    for p in &r.points {
        s.push_str(&format!(
            "{:>8} tp {:>10.1} p99 {:>8}us busiest {:?} cpu {:?}\n",
            p.value, p.median.throughput, p.median.latency.p99_us, p.busiest, p.busiest_cpu
        ));
    }
    s.push_str(&format!("knee {:?}\nverdict {:#?}\n", r.knee, r.verdict));
    s
}
