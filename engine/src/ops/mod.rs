//! Operations: the work a stage does on each item, compiled from
//! [`OpSpec`]s. Each runs in either world: `run_blocking` on a thread,
//! `run_async` on a task.
//!
//! [`Op`] compiles a spec and dispatches each attempt to its family:
//! `timing` (sleep, spin, blocking sleep), `records` (`parse_json`,
//! `filter`, `map`), `http`; `outcome` says how an attempt ended and
//! `rng` seeds each worker's generator. The families import only
//! `outcome`, never this module.

mod http;
mod outcome;
mod records;
mod rng;
#[cfg(test)]
mod tests;
mod timing;

use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::Value;
use shared::spec::{FieldType, FilterMode, OpSpec};

use crate::egress::Egress;
use crate::item::{Item, Payload, Record};
use crate::signal::Flag;
use http::HttpOp;
use records::{check_fields, not_a_record, unparsed};
use timing::{blocking_sleep, spin};

pub use outcome::{OpError, OpFailure, OpResult, Verdict};
pub use records::{check_schema, parse_checked, parse_record};
pub use rng::worker_rng;
pub use timing::Latency;

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
