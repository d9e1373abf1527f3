use shared::lab::{SoakBudgets, SoakSpec};

use crate::helpers::{exclusive, soak, template};

fn soak_spec(name: &str) -> SoakSpec {
    SoakSpec {
        pipeline: template(name),
        duration_ms: 10_000,
        warmup_ms: 1_000,
        interval_ms: 1_000,
        // Budgets for a 10 s soak (a real one runs for an hour against
        // the defaults).
        budgets: SoakBudgets {
            rss_bytes: 16.0 * 1024.0 * 1024.0,
            open_fds: 16.0,
            threads: 8.0,
            queue_depth: 1000.0,
        },
        alpha: 0.05,
    }
}

#[test]
fn a_soak_of_an_unbounded_queue_flags_its_memory() {
    let _turn = exclusive();
    let r = soak(&soak_spec("unbounded-queue"));
    let trend = |f: &str| r.trends.iter().find(|t| t.figure == f).unwrap();
    assert!(trend("queue_depth").leak, "{r:#?}");
    assert!(trend("rss_bytes").leak, "{r:#?}");
    assert!(!trend("threads").leak && !trend("open_fds").leak, "{r:#?}");
    assert!(r.intervals.len() >= 8, "{r:#?}");
    assert!(
        r.verdict.iter().any(|v| v.contains("grows")),
        "{:?}",
        r.verdict
    );
}

#[test]
fn a_soak_of_a_bounded_io_pool_flags_nothing() {
    let _turn = exclusive();
    let r = soak(&soak_spec("thread-io-pool"));
    assert!(!r.leaks(), "{r:#?}");
    assert!(
        r.verdict.iter().any(|v| v.starts_with("No leak")),
        "{:?}",
        r.verdict
    );
    assert!(r.throughput_cv.is_some());
}
