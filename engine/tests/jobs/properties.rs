//! Randomized specs, stop times and stop modes: the buckets always add up.

use std::time::Duration;

use proptest::prelude::*;
use shared::metrics::JobState;
use shared::spec::{
    Capacity, Distribution, OpSpec, PipelineSpec, QueueSpec, Runtime, SinkSpec, SourceSpec,
    StageSpec, WhenFull,
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
            require: vec!["id".into()]
        }),
    ]
}

fn stage() -> impl Strategy<Value = StageSpec> {
    (
        prop_oneof![Just(Runtime::Thread), Just(Runtime::Async)],
        1u32..5,
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
