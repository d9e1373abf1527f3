//! Operations: the work a stage does on each item, compiled from
//! [`OpSpec`]s. Each runs in either world: `run_blocking` on a thread,
//! `run_async` on a task.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution as _;
use serde_json::Value;
use shared::spec::{Distribution, FilterMode, HttpMethod, OpSpec};

use crate::egress::Egress;
use crate::item::{Item, Payload};
use crate::signal::Flag;

/// Why an operation failed on an item: a stable `kind` for counting, a
/// `detail` for the dead letter, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Category, bounded in number (used as a metric label).
    pub kind: &'static str,
    /// The specific reason.
    pub detail: String,
    /// Transient (timeouts, injected faults, 5xx): a retry policy retries it.
    pub retryable: bool,
}

impl OpError {
    /// The error of an attempt that ran out of time.
    pub fn timed_out(limit: Duration) -> Self {
        OpError {
            kind: "timed out",
            detail: format!("no result within {} ms", limit.as_millis()),
            retryable: true,
        }
    }
}

/// What an operation decided about an item it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it downstream.
    Pass,
    /// Removed on purpose by a filter.
    Filter,
}

/// Why an operation gave no verdict. The item stays with the caller
/// (operations only borrow it), so nothing is lost on failure or timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpFailure {
    /// The operation failed.
    Error(OpError),
    /// The job was aborted mid-operation; the item goes to leftovers.
    Interrupted,
}

impl From<OpError> for OpFailure {
    fn from(e: OpError) -> Self {
        OpFailure::Error(e)
    }
}

/// The result of one attempt.
pub type OpResult = Result<Verdict, OpFailure>;

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
    /// Fails a share of attempts.
    Fail {
        /// Share that fails.
        share: f64,
        /// Whether the failure is transient.
        retryable: bool,
    },
    /// An HTTP request.
    Http(HttpOp),
}

/// An HTTP request per item. One `reqwest::Client` (one connection pool)
/// per stage; thread workers drive it on the job's runtime, blocking only
/// themselves.
#[derive(Debug, Clone)]
pub struct HttpOp {
    client: reqwest::Client,
    method: HttpMethod,
    url: String,
    runtime: Option<tokio::runtime::Handle>,
}

impl HttpOp {
    async fn call(&self, item: &Item) -> Result<(), OpError> {
        let request = match self.method {
            HttpMethod::Get => self.client.get(&self.url),
            HttpMethod::Post => self.client.post(&self.url).body(item.payload.to_line()),
        };
        let response = request.send().await.map_err(|e| {
            // Only the few words of `describe` reach the dead letter: an
            // OS error would tell a refused port from a closed one.
            tracing::debug!(url = %self.url, error = %e, "http operation failed");
            let reason = crate::egress::describe(&e);
            OpError {
                kind: reason,
                detail: reason.to_owned(),
                retryable: reason != crate::egress::REFUSED,
            }
        })?;
        let status = response.status();
        if status.is_success() {
            // Read the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            return Ok(());
        }
        let retryable = status.is_server_error() || status.as_u16() == 429;
        Err(OpError {
            kind: if retryable {
                "http 5xx/429"
            } else {
                "http 4xx"
            },
            detail: format!("HTTP {}", status.as_u16()),
            retryable,
        })
    }
}

impl Op {
    /// Compiles a validated spec (HTTP requests may go anywhere).
    pub fn new(spec: &OpSpec) -> Self {
        Self::compile(spec, &Egress::Anywhere)
    }

    fn compile(spec: &OpSpec, egress: &Egress) -> Self {
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
            OpSpec::Fail { share, retryable } => Op::Fail {
                share: *share,
                retryable: *retryable,
            },
            OpSpec::Http { method, url } => Op::Http(HttpOp {
                client: egress.client(),
                method: *method,
                url: url.clone(),
                runtime: None,
            }),
        }
    }

    /// Compiles a validated spec for a stage of a job whose runtime drives
    /// asynchronous I/O (HTTP) for thread workers too, and whose `egress`
    /// says where that I/O may go.
    pub fn for_job(spec: &OpSpec, runtime: &tokio::runtime::Handle, egress: &Egress) -> Self {
        let mut op = Self::compile(spec, egress);
        if let Op::Http(http) = &mut op {
            http.runtime = Some(runtime.clone());
        }
        op
    }

    /// Whether the operation only computes, briefly, and never waits:
    /// such stages take their input in chunks (see [`crate::queue`]).
    /// Sleeps, spins, blocking calls and requests take one item at a time,
    /// so a slow item never holds others back.
    pub fn is_instant(&self) -> bool {
        match self {
            Op::Spin(d) => d.is_zero(),
            Op::ParseJson { .. } | Op::Filter { .. } | Op::Map { .. } | Op::Fail { .. } => true,
            Op::Sleep(_) | Op::BlockingSleep(_) | Op::Http(_) => false,
        }
    }

    /// Runs the operation on a thread. Waits park on `abort`, so an abort
    /// interrupts them, and stop at `timeout`, which fails the attempt.
    pub fn run_blocking(
        &self,
        item: &mut Item,
        rng: &mut SmallRng,
        abort: &Flag,
        timeout: Option<Duration>,
    ) -> OpResult {
        // How long to wait, and whether the timeout cuts the wait short.
        let bounded = |d: Duration| match timeout {
            Some(t) if d > t => (t, Some(t)),
            _ => (d, None),
        };
        match self {
            Op::Sleep(latency) => {
                let (d, cut) = bounded(latency.sample(rng));
                if !d.is_zero() && abort.wait_timeout(d) {
                    return Err(OpFailure::Interrupted);
                }
                cut.map_or(Ok(Verdict::Pass), |t| Err(OpError::timed_out(t).into()))
            }
            Op::BlockingSleep(latency) => {
                let (d, cut) = bounded(latency.sample(rng));
                if !blocking_sleep(d, abort) {
                    return Err(OpFailure::Interrupted);
                }
                cut.map_or(Ok(Verdict::Pass), |t| Err(OpError::timed_out(t).into()))
            }
            Op::Spin(d) => {
                let (d, cut) = bounded(*d);
                if !spin(d, abort) {
                    return Err(OpFailure::Interrupted);
                }
                cut.map_or(Ok(Verdict::Pass), |t| Err(OpError::timed_out(t).into()))
            }
            Op::Http(http) => {
                let Some(runtime) = &http.runtime else {
                    return Err(OpError {
                        kind: "no runtime",
                        detail: "an http operation needs the job's runtime".into(),
                        retryable: false,
                    }
                    .into());
                };
                runtime.block_on(async {
                    let call = http.call(item);
                    tokio::select! {
                        biased;
                        _ = abort.cancelled() => Err(OpFailure::Interrupted),
                        result = async {
                            match timeout {
                                Some(t) => tokio::time::timeout(t, call)
                                    .await
                                    .unwrap_or_else(|_| Err(OpError::timed_out(t))),
                                None => call.await,
                            }
                        } => result.map(|()| Verdict::Pass).map_err(OpFailure::Error),
                    }
                })
            }
            _ => self.run_pure(item, rng),
        }
    }

    /// Runs the operation on an async task. `sleep` awaits a timer (the
    /// runtime thread stays free); `blocking_sleep` and `spin` hold the
    /// runtime thread, which is the point of the pitfall templates. The
    /// caller applies the timeout by dropping this future, which only
    /// borrows the item.
    pub async fn run_async(&self, item: &mut Item, rng: &mut SmallRng, abort: &Flag) -> OpResult {
        match self {
            Op::Sleep(latency) => {
                let d = latency.sample(rng);
                if d.is_zero() {
                    return Ok(Verdict::Pass);
                }
                tokio::select! {
                    biased;
                    _ = abort.cancelled() => Err(OpFailure::Interrupted),
                    _ = tokio::time::sleep(d) => Ok(Verdict::Pass),
                }
            }
            Op::Http(http) => tokio::select! {
                biased;
                _ = abort.cancelled() => Err(OpFailure::Interrupted),
                result = http.call(item) => result.map(|()| Verdict::Pass).map_err(OpFailure::Error),
            },
            _ => self.run_blocking(item, rng, abort, None),
        }
    }

    /// Operations that only transform data.
    fn run_pure(&self, item: &mut Item, rng: &mut SmallRng) -> OpResult {
        match self {
            Op::ParseJson { require } => {
                item.payload = parse_record(&item.payload, require)?;
                Ok(Verdict::Pass)
            }
            Op::Filter {
                field,
                values,
                mode,
            } => {
                let Payload::Record(map) = &item.payload else {
                    return Err(not_a_record("filter").into());
                };
                let matches = map.get(field).is_some_and(|v| values.contains(v));
                Ok(if matches == (*mode == FilterMode::Keep) {
                    Verdict::Pass
                } else {
                    Verdict::Filter
                })
            }
            Op::Map { set, rename } => {
                let Payload::Record(map) = &mut item.payload else {
                    return Err(not_a_record("map").into());
                };
                for (from, to) in rename {
                    if let Some(v) = map.remove(from) {
                        map.insert(to.clone(), v);
                    }
                }
                for (k, v) in set {
                    map.insert(k.clone(), v.clone());
                }
                Ok(Verdict::Pass)
            }
            Op::Fail { share, retryable } => {
                if rng.random::<f64>() < *share {
                    Err(OpError {
                        kind: "injected failure",
                        detail: "failed on purpose by a `fail` op".into(),
                        retryable: *retryable,
                    }
                    .into())
                } else {
                    Ok(Verdict::Pass)
                }
            }
            Op::Sleep(_) | Op::Spin(_) | Op::BlockingSleep(_) | Op::Http(_) => Ok(Verdict::Pass),
        }
    }
}

fn not_a_record(op: &str) -> OpError {
    OpError {
        kind: "not a record",
        detail: format!("`{op}` needs a parsed record: put a `parse_json` stage before it"),
        retryable: false,
    }
}

/// Blocks the calling thread for `d` (the pitfall, on an async stage),
/// in short slices so an abort is noticed within one slice; returns false
/// if `abort` was set meanwhile.
fn blocking_sleep(d: Duration, abort: &Flag) -> bool {
    const SLICE: Duration = Duration::from_millis(10);
    let end = Instant::now() + d;
    loop {
        let now = Instant::now();
        if now >= end {
            return true;
        }
        if abort.is_set() {
            return false;
        }
        std::thread::sleep((end - now).min(SLICE));
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
                retryable: false,
            });
        }
        Payload::Line(line) => match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(OpError {
                    kind: "not a JSON object",
                    detail: format!("expected a JSON object, got {}", json_type(&other)),
                    retryable: false,
                });
            }
            Err(e) => {
                return Err(OpError {
                    kind: "invalid JSON",
                    detail: format!("invalid JSON: {e}"),
                    retryable: false,
                });
            }
        },
    };
    if let Some(missing) = require.iter().find(|f| !map.contains_key(f.as_str())) {
        return Err(OpError {
            kind: "missing field",
            detail: format!("missing field `{missing}`"),
            retryable: false,
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

    fn run(op: &Op, item: &mut Item) -> OpResult {
        op.run_blocking(item, &mut rng(), &Flag::new(), None)
    }

    fn kind_of(r: OpResult) -> &'static str {
        match r {
            Err(OpFailure::Error(e)) => e.kind,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parse_json_gives_records_or_reasons() {
        let op = Op::new(&OpSpec::ParseJson {
            require: vec!["id".into(), "level".into()],
        });
        let mut item = line(r#"{"id":"a","level":"INFO"}"#);
        assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
        assert!(matches!(item.payload, Payload::Record(_)));
        for (bad, kind) in [
            (r#"{"id":"a","lev"#, "invalid JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"id":"a"}"#, "missing field"),
        ] {
            let mut item = line(bad);
            let result = run(&op, &mut item);
            assert!(
                matches!(&result, Err(OpFailure::Error(e)) if !e.retryable),
                "{bad}"
            );
            assert_eq!(kind_of(result), kind, "{bad}");
            assert_eq!(item.payload, Payload::Line(bad.into()), "item kept intact");
        }
    }

    #[test]
    fn filter_keeps_or_drops_matches() {
        let rec = |level: &str| {
            let payload = parse_record(
                &Payload::Line(json!({"id": "x", "level": level, "msg": ""}).to_string()),
                &[],
            )
            .unwrap();
            Item::new(0, payload, None)
        };
        let keep = Op::new(&OpSpec::Filter {
            field: "level".into(),
            values: vec![json!("ERROR")],
            mode: FilterMode::Keep,
        });
        assert_eq!(run(&keep, &mut rec("ERROR")), Ok(Verdict::Pass));
        assert_eq!(run(&keep, &mut rec("INFO")), Ok(Verdict::Filter));
        let drop = Op::new(&OpSpec::Filter {
            field: "level".into(),
            values: vec![json!("DEBUG")],
            mode: FilterMode::Drop,
        });
        assert_eq!(run(&drop, &mut rec("DEBUG")), Ok(Verdict::Filter));
        assert_eq!(run(&drop, &mut rec("INFO")), Ok(Verdict::Pass));
        assert_eq!(kind_of(run(&drop, &mut line("raw"))), "not a record");
    }

    #[test]
    fn map_renames_then_sets() {
        let op = Op::new(&OpSpec::Map {
            set: [("source".to_owned(), json!("ql"))].into(),
            rename: [("msg".to_owned(), "message".to_owned())].into(),
        });
        let mut item = Item::new(
            0,
            parse_record(&Payload::Line(r#"{"msg":"hi"}"#.into()), &[]).unwrap(),
            None,
        );
        assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
        assert_eq!(
            item.payload.to_line(),
            json!({"message": "hi", "source": "ql"}).to_string()
        );
    }

    #[test]
    fn fail_share_is_respected_statistically_and_at_the_edges() {
        let fail = |share| {
            Op::new(&OpSpec::Fail {
                share,
                retryable: true,
            })
        };
        let (never, always, some) = (fail(0.0), fail(1.0), fail(0.25));
        let mut r = rng();
        let abort = Flag::new();
        let mut failed = 0;
        for i in 0..4000 {
            let mut item = Item::new(i, Payload::Counter(i), None);
            assert_eq!(
                never.run_blocking(&mut item, &mut r, &abort, None),
                Ok(Verdict::Pass)
            );
            assert!(
                always
                    .run_blocking(&mut item, &mut r, &abort, None)
                    .is_err()
            );
            if some.run_blocking(&mut item, &mut r, &abort, None).is_err() {
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
        let spin = Op::new(&OpSpec::Spin { micros: 60_000_000 });
        let blocking = Op::new(&OpSpec::BlockingSleep {
            latency: Distribution::Fixed { ms: 60_000.0 },
        });
        for op in [sleep, spin, blocking] {
            let result = op.run_blocking(&mut line("x"), &mut rng(), &abort, None);
            assert_eq!(result, Err(OpFailure::Interrupted));
        }
    }

    #[test]
    fn a_timeout_cuts_waits_short_and_is_retryable() {
        let sleep = Op::new(&OpSpec::Sleep {
            latency: Distribution::Fixed { ms: 60_000.0 },
        });
        let result = sleep.run_blocking(
            &mut line("x"),
            &mut rng(),
            &Flag::new(),
            Some(Duration::from_millis(5)),
        );
        match result {
            Err(OpFailure::Error(e)) => {
                assert_eq!(e.kind, "timed out");
                assert!(e.retryable);
            }
            other => panic!("{other:?}"),
        }
        let quick = Op::new(&OpSpec::Sleep {
            latency: Distribution::Fixed { ms: 1.0 },
        });
        let ok = quick.run_blocking(
            &mut line("x"),
            &mut rng(),
            &Flag::new(),
            Some(Duration::from_millis(500)),
        );
        assert_eq!(ok, Ok(Verdict::Pass));
    }
}
