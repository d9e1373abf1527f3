//! Operations: the work a stage does on each item, compiled from
//! [`OpSpec`]s. Each runs in either world: `run_blocking` on a thread,
//! `run_async` on a task.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution as _;
use serde_json::Value;
use shared::spec::{Distribution, FilterMode, OpSpec};

use crate::item::{Item, Payload};
use crate::signal::Flag;

/// Why an operation failed on an item: a stable `kind` for counting and a
/// `detail` for the item's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Category, bounded in number (used as a metric label).
    pub kind: &'static str,
    /// The specific reason.
    pub detail: String,
}

/// What became of an item.
#[derive(Debug)]
pub enum Outcome {
    /// Pass it downstream.
    Pass(Item),
    /// Removed on purpose by a filter.
    Filtered,
    /// The operation failed; the item is kept for dead letters.
    Failed(Item, OpError),
    /// The job was aborted mid-operation; the item goes to leftovers.
    Interrupted(Item),
}

/// A sampler for a latency distribution.
#[derive(Debug, Clone)]
pub enum Latency {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds, in ms.
    Uniform(rand_distr::Uniform<f64>),
    /// Exponential, in ms.
    Exponential(rand_distr::Exp<f64>),
    /// Log-normal, in ms.
    LogNormal(rand_distr::LogNormal<f64>),
}

impl Latency {
    /// Compiles a validated distribution.
    pub fn new(d: &Distribution) -> Self {
        match *d {
            Distribution::Fixed { ms } => Latency::Fixed(ms_to_duration(ms)),
            Distribution::Uniform { min_ms, max_ms } => Latency::Uniform(
                rand_distr::Uniform::new_inclusive(min_ms, max_ms).expect("validated bounds"),
            ),
            Distribution::Exponential { mean_ms } if mean_ms > 0.0 => {
                Latency::Exponential(rand_distr::Exp::new(1.0 / mean_ms).expect("positive rate"))
            }
            Distribution::Exponential { .. } => Latency::Fixed(Duration::ZERO),
            Distribution::LogNormal { median_ms, sigma } if median_ms > 0.0 => Latency::LogNormal(
                rand_distr::LogNormal::new(median_ms.ln(), sigma).expect("validated sigma"),
            ),
            Distribution::LogNormal { .. } => Latency::Fixed(Duration::ZERO),
        }
    }

    /// Draws one latency.
    pub fn sample(&self, rng: &mut SmallRng) -> Duration {
        let ms = match self {
            Latency::Fixed(d) => return *d,
            Latency::Uniform(u) => u.sample(rng),
            Latency::Exponential(e) => e.sample(rng),
            Latency::LogNormal(l) => l.sample(rng),
        };
        ms_to_duration(ms.min(shared::spec::limits::MAX_LATENCY_MS))
    }
}

fn ms_to_duration(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

/// A compiled operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// Waits without blocking its world.
    Sleep(Latency),
    /// Burns CPU for a while.
    Spin(Duration),
    /// Blocks the calling thread, whichever world it belongs to.
    BlockingSleep(Latency),
    /// Parses a JSON line into a record.
    ParseJson {
        /// Required fields.
        require: Vec<String>,
    },
    /// Keeps or drops records by a field's value.
    Filter {
        /// Field to test.
        field: String,
        /// Matching values.
        values: Vec<Value>,
        /// Keep or drop matches.
        mode: FilterMode,
    },
    /// Sets and renames fields.
    Map {
        /// Fields to set.
        set: Vec<(String, Value)>,
        /// Fields to rename.
        rename: Vec<(String, String)>,
    },
    /// Fails a share of items.
    Fail {
        /// Share that fails.
        share: f64,
    },
}

impl Op {
    /// Compiles a validated spec.
    pub fn new(spec: &OpSpec) -> Self {
        match spec {
            OpSpec::Sleep { latency } => Op::Sleep(Latency::new(latency)),
            OpSpec::Spin { micros } => Op::Spin(Duration::from_micros(*micros)),
            OpSpec::BlockingSleep { latency } => Op::BlockingSleep(Latency::new(latency)),
            OpSpec::ParseJson { require } => Op::ParseJson {
                require: require.clone(),
            },
            OpSpec::Filter {
                field,
                values,
                mode,
            } => Op::Filter {
                field: field.clone(),
                values: values.clone(),
                mode: *mode,
            },
            OpSpec::Map { set, rename } => Op::Map {
                set: set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                rename: rename.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            OpSpec::Fail { share } => Op::Fail { share: *share },
        }
    }

    /// Runs the operation on a thread. Waits park on `abort`, so an abort
    /// interrupts them and the item becomes a leftover.
    pub fn run_blocking(&self, item: Item, rng: &mut SmallRng, abort: &Flag) -> Outcome {
        match self {
            Op::Sleep(latency) => {
                let d = latency.sample(rng);
                if !d.is_zero() && abort.wait_timeout(d) {
                    return Outcome::Interrupted(item);
                }
                Outcome::Pass(item)
            }
            Op::BlockingSleep(latency) => {
                std::thread::sleep(latency.sample(rng));
                Outcome::Pass(item)
            }
            Op::Spin(d) => {
                if spin(*d, abort) {
                    Outcome::Pass(item)
                } else {
                    Outcome::Interrupted(item)
                }
            }
            _ => self.run_pure(item, rng),
        }
    }

    /// Runs the operation on an async task. `sleep` awaits a timer (the
    /// runtime thread stays free); `blocking_sleep` and `spin` hold the
    /// runtime thread, which is the point of the pitfall templates.
    pub async fn run_async(&self, item: Item, rng: &mut SmallRng, abort: &Flag) -> Outcome {
        match self {
            Op::Sleep(latency) => {
                let d = latency.sample(rng);
                if d.is_zero() {
                    return Outcome::Pass(item);
                }
                tokio::select! {
                    biased;
                    _ = abort.cancelled() => Outcome::Interrupted(item),
                    _ = tokio::time::sleep(d) => Outcome::Pass(item),
                }
            }
            _ => self.run_blocking(item, rng, abort),
        }
    }

    /// Operations that only transform data.
    fn run_pure(&self, mut item: Item, rng: &mut SmallRng) -> Outcome {
        match self {
            Op::ParseJson { require } => match parse_record(&item.payload, require) {
                Ok(record) => {
                    item.payload = record;
                    Outcome::Pass(item)
                }
                Err(err) => Outcome::Failed(item, err),
            },
            Op::Filter {
                field,
                values,
                mode,
            } => {
                let Payload::Record(map) = &item.payload else {
                    return Outcome::Failed(item, not_a_record("filter"));
                };
                let matches = map.get(field).is_some_and(|v| values.contains(v));
                if matches == (*mode == FilterMode::Keep) {
                    Outcome::Pass(item)
                } else {
                    Outcome::Filtered
                }
            }
            Op::Map { set, rename } => {
                let Payload::Record(map) = &mut item.payload else {
                    return Outcome::Failed(item, not_a_record("map"));
                };
                for (from, to) in rename {
                    if let Some(v) = map.remove(from) {
                        map.insert(to.clone(), v);
                    }
                }
                for (k, v) in set {
                    map.insert(k.clone(), v.clone());
                }
                Outcome::Pass(item)
            }
            Op::Fail { share } => {
                if rng.random::<f64>() < *share {
                    Outcome::Failed(
                        item,
                        OpError {
                            kind: "injected failure",
                            detail: "failed on purpose by a `fail` op".into(),
                        },
                    )
                } else {
                    Outcome::Pass(item)
                }
            }
            Op::Sleep(_) | Op::Spin(_) | Op::BlockingSleep(_) => Outcome::Pass(item),
        }
    }
}

fn not_a_record(op: &str) -> OpError {
    OpError {
        kind: "not a record",
        detail: format!("`{op}` needs a parsed record: put a `parse_json` stage before it"),
    }
}

/// Busy-waits for `d`; returns false if `abort` was set meanwhile.
fn spin(d: Duration, abort: &Flag) -> bool {
    if d.is_zero() {
        return true;
    }
    let end = Instant::now() + d;
    let mut x = 0u64;
    loop {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        if Instant::now() >= end {
            return true;
        }
        if abort.is_set() {
            return false;
        }
    }
}

/// Parses a log line into a record with the required fields.
pub fn parse_record(payload: &Payload, require: &[String]) -> Result<Payload, OpError> {
    let map = match payload {
        Payload::Record(map) => map.clone(),
        Payload::Counter(n) => {
            return Err(OpError {
                kind: "not JSON",
                detail: format!("item {n} is a counter, not a JSON line"),
            });
        }
        Payload::Line(line) => match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(OpError {
                    kind: "not a JSON object",
                    detail: format!("expected a JSON object, got {}", json_type(&other)),
                });
            }
            Err(e) => {
                return Err(OpError {
                    kind: "invalid JSON",
                    detail: format!("invalid JSON: {e}"),
                });
            }
        },
    };
    if let Some(missing) = require.iter().find(|f| !map.contains_key(f.as_str())) {
        return Err(OpError {
            kind: "missing field",
            detail: format!("missing field `{missing}`"),
        });
    }
    Ok(Payload::Record(map))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A small fast RNG for worker `n` of a stage, derived from the job seed
/// so runs repeat.
pub fn worker_rng(seed: u64, stage: usize, worker: usize) -> SmallRng {
    SmallRng::seed_from_u64(
        seed ^ (stage as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (worker as u64) << 32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rng() -> SmallRng {
        worker_rng(1, 0, 0)
    }

    fn line(s: &str) -> Item {
        Item::new(0, Payload::Line(s.into()), None)
    }

    fn run(op: &Op, item: Item) -> Outcome {
        op.run_blocking(item, &mut rng(), &Flag::new())
    }

    #[test]
    fn parse_json_gives_records_or_reasons() {
        let op = Op::new(&OpSpec::ParseJson {
            require: vec!["id".into(), "level".into()],
        });
        let Outcome::Pass(item) = run(&op, line(r#"{"id":"a","level":"INFO"}"#)) else {
            panic!("valid line passes")
        };
        assert!(matches!(item.payload, Payload::Record(_)));
        for (bad, kind) in [
            (r#"{"id":"a","lev"#, "invalid JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"id":"a"}"#, "missing field"),
        ] {
            match run(&op, line(bad)) {
                Outcome::Failed(item, err) => {
                    assert_eq!(err.kind, kind, "{bad}");
                    assert_eq!(item.payload, Payload::Line(bad.into()), "item kept intact");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn filter_keeps_or_drops_matches() {
        let rec = |level: &str| {
            let Payload::Record(map) = parse_record(
                &Payload::Line(json!({"id": "x", "level": level, "msg": ""}).to_string()),
                &[],
            )
            .unwrap() else {
                unreachable!()
            };
            Item::new(0, Payload::Record(map), None)
        };
        let keep = Op::new(&OpSpec::Filter {
            field: "level".into(),
            values: vec![json!("ERROR")],
            mode: FilterMode::Keep,
        });
        assert!(matches!(run(&keep, rec("ERROR")), Outcome::Pass(_)));
        assert!(matches!(run(&keep, rec("INFO")), Outcome::Filtered));
        let drop = Op::new(&OpSpec::Filter {
            field: "level".into(),
            values: vec![json!("DEBUG")],
            mode: FilterMode::Drop,
        });
        assert!(matches!(run(&drop, rec("DEBUG")), Outcome::Filtered));
        assert!(matches!(run(&drop, rec("INFO")), Outcome::Pass(_)));
        assert!(
            matches!(run(&drop, line("raw")), Outcome::Failed(_, e) if e.kind == "not a record")
        );
    }

    #[test]
    fn map_renames_then_sets() {
        let op = Op::new(&OpSpec::Map {
            set: [("source".to_owned(), json!("ql"))].into(),
            rename: [("msg".to_owned(), "message".to_owned())].into(),
        });
        let item = Item::new(
            0,
            parse_record(&Payload::Line(r#"{"msg":"hi"}"#.into()), &[]).unwrap(),
            None,
        );
        let Outcome::Pass(item) = run(&op, item) else {
            panic!()
        };
        assert_eq!(
            item.payload.to_line(),
            json!({"message": "hi", "source": "ql"}).to_string()
        );
    }

    #[test]
    fn fail_share_is_respected_statistically_and_at_the_edges() {
        let never = Op::new(&OpSpec::Fail { share: 0.0 });
        let always = Op::new(&OpSpec::Fail { share: 1.0 });
        let some = Op::new(&OpSpec::Fail { share: 0.25 });
        let mut r = rng();
        let abort = Flag::new();
        let mut failed = 0;
        for i in 0..4000 {
            assert!(matches!(
                never.run_blocking(Item::new(i, Payload::Counter(i), None), &mut r, &abort),
                Outcome::Pass(_)
            ));
            assert!(matches!(
                always.run_blocking(Item::new(i, Payload::Counter(i), None), &mut r, &abort),
                Outcome::Failed(..)
            ));
            if let Outcome::Failed(..) =
                some.run_blocking(Item::new(i, Payload::Counter(i), None), &mut r, &abort)
            {
                failed += 1;
            }
        }
        assert!((800..1200).contains(&failed), "{failed} of 4000 at 25%");
    }

    #[test]
    fn latencies_stay_within_their_bounds() {
        let mut r = rng();
        let u = Latency::new(&Distribution::Uniform {
            min_ms: 5.0,
            max_ms: 10.0,
        });
        for _ in 0..1000 {
            let d = u.sample(&mut r);
            assert!(
                d >= Duration::from_millis(5) && d <= Duration::from_millis(10),
                "{d:?}"
            );
        }
        let e = Latency::new(&Distribution::Exponential { mean_ms: 2.0 });
        let mean: f64 = (0..20_000)
            .map(|_| e.sample(&mut r).as_secs_f64() * 1000.0)
            .sum::<f64>()
            / 20_000.0;
        assert!((1.8..2.2).contains(&mean), "{mean}");
        let l = Latency::new(&Distribution::LogNormal {
            median_ms: 3.0,
            sigma: 0.5,
        });
        let mut xs: Vec<f64> = (0..20_001)
            .map(|_| l.sample(&mut r).as_secs_f64() * 1000.0)
            .collect();
        xs.sort_by(f64::total_cmp);
        assert!((2.8..3.2).contains(&xs[10_000]), "median {}", xs[10_000]);
        assert_eq!(
            Latency::new(&Distribution::Fixed { ms: 1.5 }).sample(&mut r),
            Duration::from_micros(1500)
        );
    }

    #[test]
    fn abort_interrupts_a_long_sleep_and_spin() {
        let abort = Flag::new();
        abort.set();
        let sleep = Op::new(&OpSpec::Sleep {
            latency: Distribution::Fixed { ms: 60_000.0 },
        });
        assert!(matches!(
            sleep.run_blocking(line("x"), &mut rng(), &abort),
            Outcome::Interrupted(_)
        ));
        let spin = Op::new(&OpSpec::Spin { micros: 60_000_000 });
        assert!(matches!(
            spin.run_blocking(line("x"), &mut rng(), &abort),
            Outcome::Interrupted(_)
        ));
    }
}
