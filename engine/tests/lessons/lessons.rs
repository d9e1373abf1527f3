//! One test per lesson: its signal, from snapshots and reports.

use shared::metrics::JobState;

use engine::JobOptions;

use crate::helpers::*;

#[test]
fn threads_for_blocking_io_throughput_follows_the_workers() {
    let run = start(spec("threads-for-blocking-io", None));
    let job = &run.job;
    wait_for(job, "the pool to warm up", |s| s.accounting.sunk >= 200);
    let with_8 = sunk_rate(job, 8);
    let sleeping = next_snapshots(job, 1)
        .last()
        .and_then(|s| node(s, "io").cpu)
        .expect("a thread stage reports its CPU");
    assert!(
        sleeping < 0.5,
        "threads waiting on I/O use almost no CPU: {sleeping:.2} cores"
    );
    tune(job, "io", |r| r.workers = Some(16));
    wait_for(job, "16 workers", |s| node(s, "io").workers == 16);
    let with_16 = sunk_rate(job, 8);
    assert!(
        with_16 > with_8 * 1.4,
        "doubling the threads of a blocking-I/O pool should nearly double throughput: {with_8:.0}/s → {with_16:.0}/s"
    );
    job.drain().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn coroutines_for_massive_io_throughput_follows_the_concurrency() {
    let run = start(spec("coroutines-for-massive-io", None));
    let job = &run.job;
    wait_for(job, "200 in flight", |s| s.accounting.sunk >= 400);
    let wide = sunk_rate(job, 10);
    tune(job, "fetch", |r| r.concurrency = Some(20));
    // Lowering takes permits back as calls finish (each within a second).
    next_snapshots(job, 8);
    let narrow = sunk_rate(job, 10);
    assert!(
        narrow < wide * 0.4,
        "a tenth of the concurrency should be a fraction of the throughput: {wide:.0}/s → {narrow:.0}/s"
    );
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn backpressure_marks_the_slow_stage_the_bottleneck_and_blocks_upstream() {
    let run = start(spec("backpressure", None));
    let job = &run.job;
    let snap = wait_for(job, "slow to be the bottleneck", |s| {
        s.bottleneck() == Some("slow")
            && node(s, "slow").fill().is_some_and(|f| f >= 0.9)
            && node(s, "parse").blocked >= 0.5
    });
    assert!(
        snap.source.blocked >= 0.3,
        "the source is held back too: {:?}",
        snap.source
    );
    job.drain().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Stopped);
    assert_eq!(report.accounting.leftovers, 0);
    assert_balanced(&report);
}

#[test]
fn when_full_policies_side_by_side_count_what_each_loses() {
    let l = lesson("when-full");
    assert!(l.side_by_side);
    let mut runs = vec![(
        "block".to_owned(),
        start(lasting(spec("when-full", None), 1500)),
    )];
    for v in l.variants {
        runs.push((
            v.id.to_owned(),
            start(lasting(spec("when-full", Some(v.id)), 1500)),
        ));
    }
    for (policy, run) in &runs {
        let report = run.job.wait();
        assert_balanced(&report);
        let work = report.nodes.iter().find(|n| n.name == "work").unwrap();
        if policy == "block" {
            assert_eq!(work.dropped, 0, "block loses nothing");
            assert!(
                report.source.blocked > 0.3,
                "block slows the source instead"
            );
        } else {
            assert!(work.dropped > 0, "{policy} drops when full: {report:#?}");
            assert_eq!(report.accounting.dropped_by_policy, work.dropped);
        }
    }
}

#[test]
fn timeouts_are_counted_and_abort_counts_its_leftovers() {
    let run = start(spec("timeouts-and-cancellation", None));
    let job = &run.job;
    wait_for(job, "timeouts", |s| node(s, "call").timeouts >= 20);
    job.abort().unwrap();
    let report = job.wait();
    assert_eq!(report.state, JobState::Aborted);
    assert_balanced(&report);
    let call = report.nodes.iter().find(|n| n.name == "call").unwrap();
    assert!(call.dead_lettered >= 20, "timed-out calls are dead letters");
    assert!(
        report.accounting.leftovers > 0,
        "calls in flight at the abort are leftovers: {report:#?}"
    );
    let file = report.leftovers_file.as_ref().expect("a leftovers file");
    let lines = std::fs::read_to_string(file).unwrap().lines().count() as u64;
    assert_eq!(
        lines, report.accounting.leftovers,
        "every leftover is replayable"
    );
}

/// The retries lesson calls the built-in flaky target, which the server
/// (or `queuelab run`) serves: its signal is tested against the real one
/// in `tests/tests/cli.rs`. Without a target, the engine says so.
#[test]
fn retries_with_backoff_need_the_built_in_target() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JobOptions::new("no-target", dir.path());
    let Err(err) = engine::start(spec("retries-with-backoff", None), opts) else {
        panic!("no built-in target to call");
    };
    assert!(err.to_string().contains("built-in test target"), "{err}");
}

/// The auto-knee lesson calls the built-in target (a service with slots),
/// which the server serves: its signal is tested against the real one in
/// `server/tests/api/jobs.rs`. Without a target, the engine says so.
#[test]
fn auto_knee_needs_the_built_in_target() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JobOptions::new("no-target", dir.path());
    let Err(err) = engine::start(spec("auto-knee", None), opts) else {
        panic!("no built-in target to call");
    };
    assert!(err.to_string().contains("built-in test target"), "{err}");
}

#[test]
fn rate_limit_pins_throughput_and_the_semaphore_pins_what_is_in_flight() {
    let run = start(spec("rate-limit-and-semaphore", None));
    let job = &run.job;
    wait_for(job, "a steady flow", |s| s.accounting.sunk >= 100);
    let snaps = next_snapshots(job, 12);
    let (a, b) = (&snaps[0], &snaps[11]);
    let throttle = |s: &shared::metrics::JobSnapshot| node(s, "throttle").items_out;
    let secs = (b.elapsed_ms - a.elapsed_ms) as f64 / 1000.0;
    let passed = (throttle(b) - throttle(a)) as f64;
    // A token bucket of 200/s lets through at most 200 a second plus its
    // burst, however long the window.
    assert!(
        passed <= 200.0 * secs + 200.0,
        "the limiter let {passed} through in {secs:.2} s"
    );
    for s in &snaps {
        let call = node(s, "call");
        let held = call.items_in - call.items_out - call.depth;
        assert!(held <= 8, "at most 8 calls in flight, saw {held}");
        assert_eq!(call.concurrency, Some(8));
    }
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn graceful_shutdown_drain_leaves_nothing_and_abort_counts_leftovers() {
    let run = start(spec("graceful-shutdown", None));
    wait_for(&run.job, "items in every stage", |s| {
        s.accounting.sunk >= 200 && node(s, "enrich").items_in > node(s, "enrich").items_out
    });
    run.job.drain().unwrap();
    let drained = run.job.wait();
    assert_eq!(drained.state, JobState::Stopped);
    assert_eq!(
        drained.accounting.leftovers, 0,
        "a drain empties every stage"
    );
    assert_eq!(drained.accounting.sunk, drained.accounting.produced);
    assert_balanced(&drained);

    let run = start(spec("graceful-shutdown", None));
    wait_for(&run.job, "items in flight", |s| {
        s.accounting.in_flight() >= 20
    });
    run.job.abort().unwrap();
    let aborted = run.job.wait();
    assert_eq!(aborted.state, JobState::Aborted);
    assert!(aborted.accounting.leftovers > 0, "{aborted:#?}");
    assert_balanced(&aborted);
    let file = aborted.leftovers_file.as_ref().expect("a leftovers file");
    let lines = std::fs::read_to_string(file).unwrap().lines().count() as u64;
    assert_eq!(lines, aborted.accounting.leftovers);
}

#[test]
fn the_bridge_carries_backpressure_from_the_writer_to_the_fetchers() {
    let run = start(spec("the-bridge", None));
    let job = &run.job;
    wait_for(job, "a flow", |s| s.accounting.sunk >= 200);
    tune(job, "disk", |r| r.workers = Some(1));
    let snap = wait_for(job, "disk's queue full and the fetchers blocked", |s| {
        node(s, "disk").fill().is_some_and(|f| f >= 0.8) && node(s, "fetch").blocked >= 0.3
    });
    assert_eq!(snap.bottleneck(), Some("disk"), "{:#?}", snap.nodes);
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn a_blocking_call_in_a_coroutine_shows_as_lag_and_is_named() {
    let run = start(spec("blocking-in-async", None));
    let job = &run.job;
    let snap = wait_for(job, "lag with fetch named", |s| {
        s.event_loop
            .as_ref()
            .is_some_and(|l| l.lag_ms >= 5.0 && l.blocking_stages == ["fetch"])
    });
    let lp = snap.event_loop.as_ref().unwrap();
    assert!(lp.missed_ticks > 0, "{lp:?}");
    // The blocked loop, not the tasks, is what is busy.
    wait_for(job, "fetch holding the loop", |s| {
        node(s, "fetch").loop_share.is_some_and(|x| x > 0.5)
    });
    job.abort().unwrap();
    assert_balanced(&job.wait());

    // The fix one click away: an awaited sleep leaves the loop free.
    let run = start(spec("blocking-in-async", Some("awaited")));
    wait_for(&run.job, "a flow", |s| s.accounting.sunk >= 500);
    let snaps = next_snapshots(&run.job, 12);
    let named = snaps
        .iter()
        .filter(|s| {
            s.event_loop
                .as_ref()
                .is_some_and(|l| !l.blocking_stages.is_empty())
        })
        .count();
    assert!(
        named <= 1,
        "an awaited sleep blocks nobody: {named} of 12 named a stage"
    );
    run.job.abort().unwrap();
    assert_balanced(&run.job.wait());

    // On a thread stage there is no event loop to block.
    let run = start(spec("blocking-in-async", Some("on-threads")));
    let snap = wait_for(&run.job, "a flow", |s| s.accounting.sunk >= 200);
    assert!(snap.event_loop.is_none(), "{:?}", snap.event_loop);
    run.job.abort().unwrap();
    assert_balanced(&run.job.wait());
}

#[test]
fn an_unbounded_queue_only_grows() {
    let run = start(spec("unbounded-queue", None));
    let job = &run.job;
    wait_for(job, "a backlog", |s| node(s, "slow").depth >= 5_000);
    let snaps = next_snapshots(job, 4);
    let depths: Vec<u64> = snaps.iter().map(|s| node(s, "slow").depth).collect();
    assert!(
        depths.windows(2).all(|w| w[1] > w[0]),
        "nothing pushes back, so the queue only grows: {depths:?}"
    );
    job.abort().unwrap();
    let report = job.wait();
    assert_balanced(&report);
    assert!(
        report.accounting.leftovers >= depths[3],
        "the backlog is leftovers"
    );
}

#[test]
fn cpu_work_gains_nothing_past_the_core_count() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let run = start(spec("cpu-on-threads", None));
    let job = &run.job;
    wait_for(job, "a flow", |s| s.accounting.sunk >= 2_000);
    let with_8 = sunk_rate(job, 8);
    // The CPU share is the stage's own threads', read from `/proc`.
    let spinning = next_snapshots(job, 1)
        .last()
        .and_then(|s| node(s, "hash").cpu)
        .expect("a thread stage reports its CPU");
    assert!(
        spinning >= 0.5,
        "eight spinning threads keep at least half a core busy: {spinning:.2} cores"
    );
    tune(job, "hash", |r| r.workers = Some(2));
    wait_for(job, "2 workers", |s| node(s, "hash").workers == 2);
    next_snapshots(job, 2);
    let with_2 = sunk_rate(job, 8);
    if cores <= 2 {
        assert!(
            with_8 < with_2 * 2.5,
            "on {cores} cores, 8 spinning threads are not 4× 2 of them: {with_2:.0}/s vs {with_8:.0}/s"
        );
    }
    job.abort().unwrap();
    assert_balanced(&job.wait());
}

#[test]
fn log_cleaning_turns_malformed_lines_into_dead_letters_with_reasons() {
    let run = start(spec("log-cleaning", None));
    let report = run.job.wait();
    assert_balanced(&report);
    let a = report.accounting;
    assert!(
        a.dead_lettered > 0 && a.dead_lettered * 10 < a.produced,
        "{a}"
    );
    let file = report
        .dead_letters_file
        .as_ref()
        .expect("dead letters kept");
    let text = std::fs::read_to_string(file).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let reason = first["error"]
        .as_str()
        .or(first["reason"].as_str())
        .unwrap_or_default();
    assert!(!reason.is_empty(), "every dead letter says why: {first}");
    assert_eq!(text.lines().count() as u64, a.dead_lettered);
}

#[test]
fn every_lesson_is_tested_here() {
    let here = include_str!("lessons.rs");
    for l in shared::lessons::ALL {
        assert!(
            here.contains(&format!("\"{}\"", l.id)),
            "lesson {} has no test",
            l.id
        );
    }
}

#[test]
fn non_idempotent_writes_duplicate_rows_on_retry_and_an_upsert_does_not() {
    let l = lesson("non-idempotent-writes");
    assert!(l.side_by_side);
    let insert = start(lasting(spec("non-idempotent-writes", None), 3000));
    let upsert = start(lasting(spec("non-idempotent-writes", Some("upsert")), 3000));
    let rows = |run: &Run, db: &str| -> (u64, u64) {
        rusqlite::Connection::open(run.dir.path().join(db))
            .unwrap()
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT key) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let (ri, ru) = (insert.job.wait(), upsert.job.wait());
    for r in [&ri, &ru] {
        assert_balanced(r);
        let sink = r.nodes.iter().find(|n| n.name == "sink").unwrap();
        assert!(
            sink.retries > 0,
            "lost acknowledgements are retried: {r:#?}"
        );
    }
    let sink =
        |r: &shared::metrics::JobReport| r.nodes.iter().find(|n| n.name == "sink").unwrap().clone();
    let (total, keys) = rows(&insert, "non-idempotent.db");
    assert_eq!(keys, ri.accounting.sunk, "every item is there");
    assert!(total > keys, "a retried insert duplicates its rows");
    assert_eq!(
        sink(&ri).duplicates,
        total - keys,
        "the report counts exactly the duplicate rows"
    );
    let (total, keys) = rows(&upsert, "idempotent.db");
    assert_eq!(
        (total, keys),
        (ru.accounting.sunk, ru.accounting.sunk),
        "one row per item"
    );
    assert_eq!(sink(&ru).duplicates, 0);
}
