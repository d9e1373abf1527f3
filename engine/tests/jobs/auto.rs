//! Automatic limits on running jobs: the range is kept, a manual tune
//! pins the limit and `auto: true` lets the engine choose again, and
//! every item is accounted for on the way. Every check reads snapshots
//! and events, never the clock. (Where the limit settles against a sweep
//! is the tuning lab's test: `lab/tests/lab/auto.rs`.)

use shared::metrics::{EventKind, JobEvent, NodeSnapshot, TuneRequest};

use crate::helpers::{assert_balanced, node, spec, start, wait_for};

/// The auto events of `stage`: (from, to, reason).
fn auto_events(events: &[JobEvent], stage: &str) -> Vec<(f64, f64, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Auto {
                stage: s,
                from,
                to,
                reason,
                ..
            } if s == stage => Some((*from, *to, reason.clone())),
            _ => None,
        })
        .collect()
}

fn auto_of<'a>(nodes: &'a [NodeSnapshot], stage: &str) -> &'a shared::metrics::AutoSnapshot {
    node(nodes, stage)
        .auto
        .as_ref()
        .unwrap_or_else(|| panic!("{stage} has no auto limit"))
}

#[test]
fn an_auto_range_is_kept_and_every_item_is_accounted_for() {
    let (job, _dir) = start(spec(
        r#"
name = "auto-range"
source = { kind = "synthetic", count = 20000, payload = "counter" }
[[stages]]
name = "hash"
workers = { min = 2, max = 3 }
op = { kind = "spin", micros = 100 }
"#,
    ));
    let mut seen = Vec::new();
    loop {
        let snap = job.snapshot();
        let a = auto_of(&snap.nodes, "hash");
        assert_eq!((a.min, a.max, a.field.as_str()), (2, 3, "workers"));
        seen.push((a.limit, node(&snap.nodes, "hash").workers));
        if snap.state.is_some_and(|s| s.is_finished()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let report = job.wait();
    assert_balanced(&report);
    // The limit always, and the live threads once started (a retired
    // one counts until it has finished its item).
    assert!(seen.iter().all(|(l, _)| (2..=3).contains(l)), "{seen:?}");
    assert!(seen.iter().all(|(_, w)| *w <= 4), "{seen:?}");
    for (from, to, why) in auto_events(&report.events, "hash") {
        assert!(
            (2.0..=3.0).contains(&from) && (2.0..=3.0).contains(&to),
            "{from} → {to}: {why}"
        );
    }
    let last = auto_of(&report.nodes, "hash");
    assert!(!last.pinned);
}

#[test]
fn a_manual_tune_pins_an_auto_stage_and_auto_true_lets_the_engine_choose_again() {
    // About one worker's worth of work: 400 items/s of 2 ms each.
    let (job, _dir) = start(spec(
        r#"
name = "auto-pin"
source = { kind = "synthetic", rate = 400.0, duration_ms = 120000, payload = "counter" }
[[stages]]
name = "io"
workers = "auto"
op = { kind = "sleep", latency = { dist = "fixed", ms = 2.0 } }
"#,
    ));
    let snap = wait_for(&job, "the controller's first reading", |s| {
        s.nodes[0]
            .auto
            .as_ref()
            .is_some_and(|a| a.baseline_us.is_some())
    });
    assert!(!auto_of(&snap.nodes, "io").pinned);

    // By hand: six workers, and the controller stays out.
    job.tune(&TuneRequest {
        stage: "io".into(),
        workers: Some(6),
        ..TuneRequest::default()
    })
    .unwrap();
    let pinned = wait_for(&job, "the pin", |s| {
        s.nodes[0].auto.as_ref().is_some_and(|a| a.pinned) && s.nodes[0].workers == 6
    });
    let reasons = auto_events(&job.events(), "io");
    assert!(
        reasons
            .iter()
            .any(|(_, _, r)| r.contains("pinned by a manual tune")),
        "{reasons:?}"
    );
    // Six workers are far more than 400 items/s of 2 ms need (13% busy):
    // auto would release them, pinned it must not. Sixteen samples on.
    let later = wait_for(&job, "sixteen more samples", |s| s.seq >= pinned.seq + 16);
    assert_eq!(later.nodes[0].workers, 6);
    assert_eq!(auto_of(&later.nodes, "io").limit, 6);
    assert!(node(&later.nodes, "io").busy < 0.5, "{:?}", later.nodes[0]);

    // Both at once is a contradiction.
    let both = job.tune(&TuneRequest {
        stage: "io".into(),
        workers: Some(2),
        auto: Some(true),
        ..TuneRequest::default()
    });
    assert!(both.is_err());

    // Back to auto: it releases the idle workers, and says why.
    job.tune(&TuneRequest {
        stage: "io".into(),
        auto: Some(true),
        ..TuneRequest::default()
    })
    .unwrap();
    let released = wait_for(&job, "the idle workers released", |s| {
        s.nodes[0]
            .auto
            .as_ref()
            .is_some_and(|a| !a.pinned && a.limit < 6)
    });
    let a = auto_of(&released.nodes, "io");
    assert!(
        a.reason.as_deref().is_some_and(|r| r.contains("busy")),
        "{a:?}"
    );
    let reasons = auto_events(&job.events(), "io");
    assert!(
        reasons.iter().any(|(_, _, r)| r.contains("turned back on")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(from, to, _)| *from == 6.0 && *to < 6.0),
        "{reasons:?}"
    );

    // `auto: false` pins it where it is.
    job.tune(&TuneRequest {
        stage: "io".into(),
        auto: Some(false),
        ..TuneRequest::default()
    })
    .unwrap();
    wait_for(&job, "pinned again", |s| {
        s.nodes[0].auto.as_ref().is_some_and(|a| a.pinned)
    });
    job.abort().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    assert!(auto_of(&report.nodes, "io").pinned);
}

#[test]
fn a_fixed_stage_can_be_turned_to_auto_and_the_sink_cannot() {
    let (job, _dir) = start(spec(
        r#"
name = "auto-later"
source = { kind = "synthetic", rate = 400.0, duration_ms = 120000, payload = "counter" }
[[stages]]
name = "io"
workers = 8
op = { kind = "sleep", latency = { dist = "fixed", ms = 2.0 } }
"#,
    ));
    let first = job.snapshot();
    assert!(
        node(&first.nodes, "io").auto.is_none(),
        "a fixed stage shows no auto"
    );
    assert!(
        job.tune(&TuneRequest {
            stage: "sink".into(),
            auto: Some(true),
            ..TuneRequest::default()
        })
        .is_err()
    );
    job.tune(&TuneRequest {
        stage: "io".into(),
        auto: Some(true),
        ..TuneRequest::default()
    })
    .unwrap();
    wait_for(&job, "the engine choosing fewer", |s| {
        s.nodes[0]
            .auto
            .as_ref()
            .is_some_and(|a| !a.pinned && a.limit < 8)
            && s.nodes[0].workers < 8
    });
    job.abort().unwrap();
    assert_balanced(&job.wait());
}
