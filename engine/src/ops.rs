//! Operations: the work a stage does on each item, compiled from
//! [`OpSpec`]s. Each runs in either world: `run_blocking` on a thread,
//! `run_async` on a task.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution as _;
use serde_json::Value;
use shared::spec::{Distribution, FieldType, FilterMode, HttpMethod, JsonType, OpSpec};

use crate::egress::Egress;
use crate::item::{FieldKind, Item, ParseError, Payload, Record};
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
        /// Fields with the type each must have, in name order.
        schema: Vec<(String, FieldType)>,
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
            OpSpec::ParseJson { require, schema } => Op::ParseJson {
                require: require.clone(),
                schema: schema.iter().map(|(k, t)| (k.clone(), t.clone())).collect(),
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
            Op::ParseJson { require, schema } => {
                // A line is parsed once; on success its text moves into the
                // record (no copy), on failure the item stays as it was.
                item.payload = match &mut item.payload {
                    Payload::Line(line) => {
                        let record = Record::parse(std::mem::take(line)).map_err(|failure| {
                            *line = failure.text;
                            unparsed(&failure.error)
                        })?;
                        if let Err(e) = check_fields(&record, require, schema) {
                            *line = record.into_text();
                            return Err(e.into());
                        }
                        Payload::Record(Box::new(record))
                    }
                    other => parse_checked(other, require, schema)?,
                };
                Ok(Verdict::Pass)
            }
            Op::Filter {
                field,
                values,
                mode,
            } => {
                let Payload::Record(record) = &item.payload else {
                    return Err(not_a_record("filter").into());
                };
                let matches = record
                    .get(field)
                    .is_some_and(|f| values.iter().any(|v| f == *v));
                Ok(if matches == (*mode == FilterMode::Keep) {
                    Verdict::Pass
                } else {
                    Verdict::Filter
                })
            }
            Op::Map { set, rename } => {
                let Payload::Record(record) = &mut item.payload else {
                    return Err(not_a_record("map").into());
                };
                let map = record.fields_mut();
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
    parse_checked(payload, require, &[])
}

/// Parses a log line into a record that matches `schema` (checked first,
/// so its reasons name the field) and has the `require`d fields.
pub fn parse_checked(
    payload: &Payload,
    require: &[String],
    schema: &[(String, FieldType)],
) -> Result<Payload, OpError> {
    match payload {
        Payload::Record(record) => {
            check_fields(record, require, schema)?;
            Ok(Payload::Record(record.clone()))
        }
        Payload::Counter(n) => Err(OpError {
            kind: "not JSON",
            detail: format!("item {n} is a counter, not a JSON line"),
            retryable: false,
        }),
        Payload::Line(line) => {
            let record = Record::parse(line.clone()).map_err(|f| unparsed(&f.error))?;
            check_fields(&record, require, schema)?;
            Ok(Payload::Record(Box::new(record)))
        }
    }
}

/// The error of a line that is not a JSON object.
fn unparsed(error: &ParseError) -> OpError {
    OpError {
        kind: match error {
            ParseError::Invalid(_) => "invalid JSON",
            ParseError::NotObject(_) => "not a JSON object",
        },
        detail: error.to_string(),
        retryable: false,
    }
}

/// The schema first (its reasons name the field), then `require`.
fn check_fields(
    record: &Record,
    require: &[String],
    schema: &[(String, FieldType)],
) -> Result<(), OpError> {
    check_schema(record, schema)?;
    if let Some(missing) = require.iter().find(|f| !record.contains_key(f)) {
        return Err(OpError {
            kind: "missing field",
            detail: format!("missing field `{missing}`"),
            retryable: false,
        });
    }
    Ok(())
}

/// Checks a record against a `parse_json` schema. Every field that does
/// not match is named in the reason, as `field: what was wrong`
/// (`id: missing`, `level: expected string, got integer`), in name order.
pub fn check_schema(record: &Record, schema: &[(String, FieldType)]) -> Result<(), OpError> {
    let mut detail = String::new();
    let mut kind = None;
    for (field, ty) in schema {
        let (want, optional) = match ty {
            FieldType::Required(t) => (*t, false),
            FieldType::Optional(t) => (*t, true),
            FieldType::Unknown(name) => {
                // Validation refuses these; never pass a record unchecked.
                note(
                    &mut detail,
                    &mut kind,
                    "wrong type",
                    field,
                    &format!("`{name}` is not a type"),
                );
                continue;
            }
        };
        match record.get(field).map(|f| f.kind()) {
            None if optional => {}
            None => note(&mut detail, &mut kind, "missing field", field, "missing"),
            Some(FieldKind::Null) if optional => {}
            Some(got) if has_type(got, want) => {}
            Some(got) => note(
                &mut detail,
                &mut kind,
                "wrong type",
                field,
                &format!("expected {want}, got {}", got.name()),
            ),
        }
    }
    match kind {
        None => Ok(()),
        Some(kind) => Err(OpError {
            kind,
            detail,
            retryable: false,
        }),
    }
}

/// Adds `field: problem` to a schema error's detail; the first problem
/// gives the error its kind.
fn note(
    detail: &mut String,
    kind: &mut Option<&'static str>,
    k: &'static str,
    field: &str,
    problem: &str,
) {
    if !detail.is_empty() {
        detail.push_str("; ");
    }
    detail.push_str(field);
    detail.push_str(": ");
    detail.push_str(problem);
    kind.get_or_insert(k);
}

/// Whether a field of type `got` is of schema type `want`.
fn has_type(got: FieldKind, want: JsonType) -> bool {
    match want {
        JsonType::String => got == FieldKind::String,
        JsonType::Integer => got == FieldKind::Integer,
        JsonType::Number => matches!(got, FieldKind::Integer | FieldKind::Number),
        JsonType::Boolean => got == FieldKind::Boolean,
        JsonType::Object => got == FieldKind::Object,
        JsonType::Array => got == FieldKind::Array,
        JsonType::Any => true,
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
            schema: Default::default(),
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

    fn schema_op(schema: &[(&str, &str)], require: &[&str]) -> Op {
        Op::new(&OpSpec::ParseJson {
            require: require.iter().map(|f| f.to_string()).collect(),
            schema: schema
                .iter()
                .map(|(f, t)| (f.to_string(), FieldType::from(t.to_string())))
                .collect(),
        })
    }

    /// The reason a line is refused for, or `None` if it passes.
    fn refusal(op: &Op, text: &str) -> Option<(&'static str, String)> {
        let mut item = line(text);
        match run(op, &mut item) {
            Ok(Verdict::Pass) => None,
            Err(OpFailure::Error(e)) => {
                assert!(!e.retryable, "{text}");
                assert_eq!(item.payload, Payload::Line(text.into()), "item kept intact");
                Some((e.kind, e.detail))
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn each_schema_type_takes_its_values_and_names_what_it_got() {
        // (type, value, what a mismatch is called; None: accepted)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("string", r#""x""#, None),
            ("string", "1", Some("integer")),
            ("string", "null", Some("null")),
            ("integer", "-7", None),
            ("integer", "18446744073709551615", None),
            ("integer", "1.5", Some("number")),
            ("integer", "1e3", Some("number")),
            ("integer", r#""1""#, Some("string")),
            ("number", "3", None),
            ("number", "3.25", None),
            ("number", r#""3""#, Some("string")),
            ("boolean", "true", None),
            ("boolean", "0", Some("integer")),
            ("object", r#"{"a":1}"#, None),
            ("object", "[1]", Some("array")),
            ("array", "[]", None),
            ("array", "{}", Some("object")),
            ("any", "null", None),
            ("any", r#"[{"a":null}]"#, None),
            ("any", "false", None),
        ];
        for (ty, value, got) in cases {
            let op = schema_op(&[("f", ty)], &[]);
            let text = format!(r#"{{"f":{value}}}"#);
            let expected = got.map(|got| ("wrong type", format!("f: expected {ty}, got {got}")));
            assert_eq!(refusal(&op, &text), expected, "{ty} <- {value}");
        }
    }

    #[test]
    fn schema_reasons_name_the_field_and_what_was_wrong() {
        let op = schema_op(
            &[
                ("id", "integer"),
                ("level", "string"),
                ("msg", "string"),
                ("ts", "number?"),
            ],
            &[],
        );
        let ok = r#"{"id":1,"level":"INFO","msg":"m","ts":1.5}"#;
        assert_eq!(refusal(&op, ok), None);
        let mut item = line(ok);
        assert_eq!(run(&op, &mut item), Ok(Verdict::Pass));
        assert!(matches!(item.payload, Payload::Record(_)));
        for (text, kind, reason) in [
            (
                r#"{"id":1,"level":3,"msg":"m"}"#,
                "wrong type",
                "level: expected string, got integer",
            ),
            (
                r#"{"id":1,"level":"I","msg":"m","ts":"noon"}"#,
                "wrong type",
                "ts: expected number, got string",
            ),
            (r#"{"level":"I","msg":"m"}"#, "missing field", "id: missing"),
            (
                r#"{"id":null,"level":"I","msg":"m"}"#,
                "wrong type",
                "id: expected integer, got null",
            ),
            (
                r#"{"id":"k-1","msg":"m"}"#,
                "wrong type",
                "id: expected integer, got string; level: missing",
            ),
        ] {
            assert_eq!(
                refusal(&op, text),
                Some((kind, reason.to_owned())),
                "{text}"
            );
        }
        // A nullable-optional field may be absent or null.
        assert_eq!(refusal(&op, r#"{"id":1,"level":"I","msg":"m"}"#), None);
        assert_eq!(
            refusal(&op, r#"{"id":1,"level":"I","msg":"m","ts":null}"#),
            None
        );
        // Bad JSON is still told apart from a record that does not match.
        assert_eq!(refusal(&op, "[1]").unwrap().0, "not a JSON object");
        assert_eq!(refusal(&op, "{torn").unwrap().0, "invalid JSON");
    }

    #[test]
    fn schema_reads_fields_as_serde_json_would() {
        // (line, what a schema `f = "integer"` says; None: accepted)
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"f":-0}"#, Some("f: expected integer, got number")),
            (r#"{"f":-9223372036854775808}"#, None),
            (
                r#"{"f":-9223372036854775809}"#,
                Some("f: expected integer, got number"),
            ),
            (
                r#"{"f":18446744073709551616}"#,
                Some("f: expected integer, got number"),
            ),
            (r#"{"f":"x","f":2}"#, None),
            (
                r#"{"f":2,"f":"x"}"#,
                Some("f: expected integer, got string"),
            ),
            (r#"{"\u0066":2}"#, None),
            (
                r#"{"f":2,"\u0066":{}}"#,
                Some("f: expected integer, got object"),
            ),
            (r#"{ "f" :  7 }"#, None),
            (r#"{"g":7}"#, Some("f: missing")),
        ];
        let op = schema_op(&[("f", "integer")], &[]);
        for (text, reason) in cases {
            let got = refusal(&op, text).map(|(_, detail)| detail);
            assert_eq!(got.as_deref(), *reason, "{text}");
        }
        // Malformed lines keep serde_json's words, position included.
        for bad in [
            r#"{"f":1e400}"#,
            r#"{"f":"\ud800"}"#,
            r#"{"f":1,}"#,
            "{\"f\":1} x",
        ] {
            let e = serde_json::from_str::<Value>(bad).unwrap_err();
            assert_eq!(
                refusal(&op, bad),
                Some(("invalid JSON", format!("invalid JSON: {e}"))),
                "{bad}"
            );
        }
        assert_eq!(
            refusal(&op, "[1]"),
            Some((
                "not a JSON object",
                "expected a JSON object, got an array".to_owned()
            ))
        );
    }

    #[test]
    fn filter_compares_raw_fields_as_values() {
        let rec = |text: &str| {
            Item::new(
                0,
                parse_record(&Payload::Line(text.into()), &[]).unwrap(),
                None,
            )
        };
        let keep = |values: Vec<Value>| {
            Op::new(&OpSpec::Filter {
                field: "f".into(),
                values,
                mode: FilterMode::Keep,
            })
        };
        let op = keep(vec![
            json!(1),
            json!(true),
            json!("a\"b"),
            json!({"x": [1.5]}),
        ]);
        for (text, verdict) in [
            (r#"{"f":1}"#, Verdict::Pass),
            (r#"{"f":1.0}"#, Verdict::Filter),
            (r#"{"f":true}"#, Verdict::Pass),
            (r#"{"f":"a\"b"}"#, Verdict::Pass),
            (r#"{"f":"a"}"#, Verdict::Filter),
            (r#"{"f": { "x" : [ 1.50 ] } }"#, Verdict::Pass),
            (r#"{"f":null}"#, Verdict::Filter),
            (r#"{"g":1}"#, Verdict::Filter),
        ] {
            assert_eq!(run(&op, &mut rec(text)), Ok(verdict), "{text}");
        }
        let nulls = keep(vec![json!(null)]);
        assert_eq!(run(&nulls, &mut rec(r#"{"f":null}"#)), Ok(Verdict::Pass));
        assert_eq!(run(&nulls, &mut rec(r#"{"g":1}"#)), Ok(Verdict::Filter));
    }

    #[test]
    fn schema_and_require_work_together() {
        // The schema is checked first, so its reasons name the field; what
        // only `require` lists keeps its own reason.
        let op = schema_op(&[("id", "string")], &["id", "level"]);
        assert_eq!(
            refusal(&op, r#"{"level":"I"}"#),
            Some(("missing field", "id: missing".to_owned()))
        );
        assert_eq!(
            refusal(&op, r#"{"id":"a"}"#),
            Some(("missing field", "missing field `level`".to_owned()))
        );
        assert_eq!(refusal(&op, r#"{"id":"a","level":1}"#), None);
        // An optional field listed in `require` must be there (null is fine).
        let op = schema_op(&[("ts", "number?")], &["ts"]);
        assert_eq!(refusal(&op, r#"{"ts":null}"#), None);
        assert_eq!(
            refusal(&op, "{}"),
            Some(("missing field", "missing field `ts`".to_owned()))
        );
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
