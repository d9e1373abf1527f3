//! Randomized specs, stop times and stop modes: the buckets always add up.

use std::time::Duration;

use proptest::prelude::*;
use shared::metrics::JobState;
use shared::spec::{
    AutoRange, Capacity, Distribution, Limit, OpSpec, PipelineSpec, QueueSpec, Runtime, SinkSpec,
    SourceSpec, StageSpec, WhenFull,
};

use crate::helpers::{assert_balanced, start};

#[derive(Debug, Clone, Copy)]
enum Stop {
    Never,
    Drain,
    Abort,
}

fn op() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (0u64..200).prop_map(|micros| OpSpec::Spin { micros }),
        (0.0f64..2.0).prop_map(|ms| OpSpec::Sleep {
            latency: Distribution::Fixed { ms }
        }),
        (0.0f64..0.5).prop_map(|share| OpSpec::Fail {
            share,
            retryable: false
        }),
        Just(OpSpec::ParseJson {
            require: vec!["id".into()],
            schema: Default::default(),
        }),
    ]
}

fn stage() -> impl Strategy<Value = StageSpec> {
    (
        prop_oneof![Just(Runtime::Thread), Just(Runtime::Async)],
        // A fixed count, or automatic in a range: the controller's changes
        // start and retire workers mid-run, and nothing may be lost.
        prop_oneof![
            (1u32..5).prop_map(Limit::Fixed),
            (1u32..3, 3u32..9).prop_map(|(min, max)| Limit::Auto(AutoRange {
                min: Some(min),
                max: Some(max),
            })),
        ],
        prop_oneof![
            (1u64..64).prop_map(Capacity::Bounded),
            Just(Capacity::Unbounded)
        ],
        prop_oneof![
            Just(WhenFull::Block),
            Just(WhenFull::DropNewest),
            Just(WhenFull::DropOldest),
            Just(WhenFull::Reject)
        ],
        op(),
    )
        .prop_map(|(runtime, workers, capacity, when_full, op)| StageSpec {
            name: String::new(),
            runtime,
            workers,
            queue: QueueSpec {
                capacity,
                when_full,
            },
            concurrency: None,
            op,
            timeout_ms: None,
            retry: None,
            rate_limit: None,
            on_error: shared::spec::OnError::Drop,
            transport: None,
            placement: None,
        })
}

fn pipeline() -> impl Strategy<Value = (PipelineSpec, Stop, u64)> {
    (
        proptest::collection::vec(stage(), 1..=5),
        100u64..3000,
        0.0f64..0.2,
        any::<u64>(),
        prop_oneof![Just(Stop::Never), Just(Stop::Drain), Just(Stop::Abort)],
        0u64..30,
    )
        .prop_map(
            |(mut stages, count, malformed, seed, stop, stop_after_ms)| {
                for (i, s) in stages.iter_mut().enumerate() {
                    s.name = format!("s{i}");
                }
                let spec = PipelineSpec {
                    name: "prop".into(),
                    description: None,
                    source: SourceSpec::Synthetic {
                        count: Some(count),
                        duration_ms: None,
                        rate: None,
                        payload: shared::spec::Payload::LogLine,
                        malformed_share: malformed,
                        duplicate_share: 0.0,
                        seed,
                    },
                    stages,
                    sink: SinkSpec::Null,
                    drain_deadline_ms: 20_000,
                    sample_hz: 20.0,
                    lesson: None,
                    dead_letter: Default::default(),
                };
                (spec, stop, stop_after_ms)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn buckets_always_add_up((spec, stop, after) in pipeline()) {
        let policies: Vec<WhenFull> = spec.stages.iter().map(|s| s.queue.when_full).collect();
        let (job, _dir) = start(spec);
        std::thread::sleep(Duration::from_millis(after));
        match stop {
            Stop::Never => {}
            Stop::Drain => { let _ = job.drain(); }
            Stop::Abort => { let _ = job.abort(); }
        }
        let report = job.wait();
        assert_balanced(&report);
        match report.state {
            JobState::Completed | JobState::Stopped => {
                prop_assert_eq!(report.accounting.leftovers, 0, "no leftovers after a drain");
            }
            JobState::Aborted => prop_assert!(matches!(stop, Stop::Abort)),
            other => prop_assert!(false, "unexpected final state {other}: {report:#?}"),
        }
        // Drops happen only where the policy allows them.
        for (policy, node) in policies.iter().zip(report.nodes.iter().filter(|n| n.name.starts_with('s'))) {
            if *policy == WhenFull::Block {
                prop_assert_eq!(node.dropped, 0, "{} blocks, so it never drops", node.name);
            }
        }
        let node_drops: u64 = report.nodes.iter().map(|n| n.dropped + n.errors).sum();
        prop_assert_eq!(report.accounting.dropped_by_policy, node_drops);
    }
}

/// A source whose items are pushed by clients, not generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pushed {
    Ingest,
    Tcp,
}

/// How a job fed by clients is stopped.
#[derive(Debug, Clone, Copy)]
enum Halt {
    Abort,
    /// Drain with this deadline (ms): may finish, or escalate to an abort.
    DrainWithin(u64),
}

/// A pushed pipeline: one slow stage before a file sink, the clients,
/// lines per client, lines per ingest request, how and when it stops.
#[derive(Debug, Clone)]
struct PushCase {
    runtime: Runtime,
    workers: u32,
    capacity: u64,
    sleep_ms: f64,
    clients: usize,
    lines: usize,
    batch: usize,
    halt: Halt,
    after_ms: u64,
}

fn push_case() -> impl Strategy<Value = PushCase> {
    (
        prop_oneof![Just(Runtime::Thread), Just(Runtime::Async)],
        1u32..4,
        1u64..8,
        0.0f64..2.0,
        1usize..6,
        1usize..400,
        1usize..6,
        prop_oneof![Just(Halt::Abort), (1u64..60).prop_map(Halt::DrainWithin)],
        0u64..80,
    )
        .prop_map(
            |(runtime, workers, capacity, sleep_ms, clients, lines, batch, halt, after_ms)| {
                PushCase {
                    runtime,
                    workers,
                    capacity,
                    sleep_ms,
                    clients,
                    lines,
                    batch,
                    halt,
                    after_ms,
                }
            },
        )
}

/// Runs `case` with clients of `source`, stops the job, and checks that
/// each client's lines are accounted for exactly once.
fn run_pushed(source: Pushed, case: &PushCase) -> Result<(), TestCaseError> {
    use engine::source::IngestError;
    use std::collections::BTreeMap;
    use std::io::Write;

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.jsonl");
    let source_toml = match source {
        Pushed::Ingest => r#"{ kind = "http_ingest" }"#,
        Pushed::Tcp => r#"{ kind = "tcp", bind = "127.0.0.1:0" }"#,
    };
    let spec = crate::helpers::spec(&format!(
        r#"
name = "pushed"
source = {source_toml}
sink = {{ kind = "file", path = "{}" }}
[[stages]]
name = "slow"
runtime = "{}"
workers = {}
queue = {{ capacity = {}, when_full = "block" }}
op = {{ kind = "sleep", latency = {{ dist = "fixed", ms = {:?} }} }}
"#,
        out.display(),
        case.runtime,
        case.workers,
        case.capacity,
        case.sleep_ms,
    ));
    let (job, _dir) = start(spec);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (lines, batch) = (case.lines, case.batch);
    // Each client returns how many of its lines the job took, if it knows.
    let clients: Vec<std::thread::JoinHandle<Option<u64>>> = (0..case.clients)
        .map(|k| {
            let line = move |i: usize| format!("c{k}-{i}");
            match source {
                Pushed::Ingest => {
                    let ingest = job.ingest().unwrap();
                    let rt = rt.handle().clone();
                    std::thread::spawn(move || {
                        let (mut next, mut taken) = (0, 0);
                        while next < lines {
                            let req: Vec<String> =
                                (next..(next + batch).min(lines)).map(line).collect();
                            let n = req.len() as u64;
                            // Half the clients wait on a runtime, half on a thread.
                            let answer = if k % 2 == 0 {
                                ingest.push(req)
                            } else {
                                rt.block_on(ingest.push_async(req))
                            };
                            match answer {
                                Err(IngestError::NotReady) => {
                                    std::thread::sleep(Duration::from_millis(1));
                                    continue;
                                }
                                Err(IngestError::Stopped) => break,
                                Ok(a) => {
                                    assert_eq!(a.accepted + a.refused + a.not_taken, n, "{a:?}");
                                    assert_eq!(a.refused, 0, "a block queue refuses nothing");
                                    taken += a.accepted;
                                    next += n as usize;
                                    if a.not_taken > 0 {
                                        break;
                                    }
                                }
                            }
                        }
                        Some(taken)
                    })
                }
                Pushed::Tcp => {
                    let addr = job.source_addr().unwrap();
                    std::thread::spawn(move || {
                        let text: String = (0..lines).map(|i| line(i) + "\n").collect();
                        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                            let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
                            // Cut off by the stop, maybe: the client cannot tell.
                            let _ = s.write_all(text.as_bytes());
                        }
                        None
                    })
                }
            }
        })
        .collect();
    // The stop lands some time after the first line came in.
    crate::helpers::wait_for(&job, "a first line", |s| s.accounting.produced > 0);
    std::thread::sleep(Duration::from_millis(case.after_ms));
    match case.halt {
        Halt::Abort => {
            let _ = job.abort();
        }
        Halt::DrainWithin(ms) => {
            let _ = job.drain_within(Some(Duration::from_millis(ms)));
        }
    }
    let report = job.wait();
    let taken: Vec<Option<u64>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert_balanced(&report);
    prop_assert!(
        matches!(report.state, JobState::Aborted | JobState::Stopped),
        "{}",
        report.state
    );
    if report.state == JobState::Stopped {
        prop_assert_eq!(report.accounting.leftovers, 0);
    }
    let a = report.accounting;
    prop_assert_eq!(
        a.produced,
        a.sunk + a.leftovers,
        "nothing filtered, failed or dropped"
    );
    // Every produced line is in the sink's file or the leftovers, once;
    // per client, its lines there are exactly the first ones it sent
    // (and as many as it was told were taken).
    let mut found: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut files = vec![out];
    files.extend(report.leftovers_file.as_ref().map(std::path::PathBuf::from));
    for f in &files {
        for l in std::fs::read_to_string(f).unwrap_or_default().lines() {
            let (k, i) = l
                .strip_prefix('c')
                .and_then(|r| r.split_once('-'))
                .unwrap_or_else(|| panic!("unexpected line {l:?}"));
            found
                .entry(k.parse().unwrap())
                .or_default()
                .push(i.parse().unwrap());
        }
    }
    let total: usize = found.values().map(Vec::len).sum();
    prop_assert_eq!(total as u64, a.produced, "every produced line, once");
    for (k, told) in taken.iter().enumerate() {
        let mut got = found.remove(&k).unwrap_or_default();
        got.sort_unstable();
        let expect: Vec<usize> = (0..got.len()).collect();
        prop_assert_eq!(&got, &expect, "client {}: its first lines, each once", k);
        if let Some(told) = told {
            prop_assert_eq!(
                got.len() as u64,
                *told,
                "client {}: as many as it was told",
                k
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn ingest_clients_lose_nothing_whenever_the_job_stops(case in push_case()) {
        run_pushed(Pushed::Ingest, &case)?;
    }

    #[test]
    fn tcp_clients_lose_nothing_whenever_the_job_stops(case in push_case()) {
        run_pushed(Pushed::Tcp, &case)?;
    }
}
