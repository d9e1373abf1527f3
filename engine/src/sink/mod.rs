//! Sinks: where items end. The sink runs on a thread of its own at the end
//! of the pipeline, behind its own (blocking) queue.
//!
//! The runner groups items into batches (`size`, `linger_ms`, both
//! live-tunable) and hands each batch to a `SinkWriter` (the contract
//! every writer implements is in `writer`, below the runner and the
//! writers). Items count as
//! *sunk* only once their batch is written. A failed write is classified:
//!
//! * an **outage** (busy database, full disk, lost connection) is retried
//!   with the sink's backoff; if it persists the job fails and the held
//!   items go to leftovers, to be replayed later;
//! * a **data** error (a record without a key, a constraint) is narrowed
//!   down by writing the batch's items one by one: the good ones are sunk,
//!   the bad ones become dead letters with the database's reason.
//!
//! Writers that upsert on a key (SQLite) make every retry and replay
//! idempotent: no duplicate rows, whatever failed in the middle of a batch.
//! A SQLite sink in `insert` mode does not, on purpose, and `lost_acks`
//! (fault injection: a commit whose acknowledgement is lost) shows what a
//! retry then does to it; the rows it duplicates are counted. A SQLite
//! writer's WAL checkpoints run on a thread of their own (`checkpoint`),
//! so the one writer thread only writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use shared::spec::{BatchSpec, RetrySpec, SinkSpec, WriteMode};

use crate::confine::{SpecPaths, UncheckedPath};
use crate::core::JobCore;
use crate::egress::Egress;
use crate::fail::Failure;
use crate::item::{Item, Stamp};
use crate::ops::OpError;
use crate::queue::{CHUNK, Chunk, Rx, Took};
use crate::stage::policy::backoff;
use crate::stats::{Laps, NodeStats, Stride};

pub mod checkpoint;
mod file;
mod http;
mod lost_acks;
mod null;
pub mod postgres;
pub mod sqlite;
mod writer;

use file::{FileWriter, append_at};
use http::HttpWriter;
use null::NullWriter;
use postgres::resolve_url;
use writer::{SinkWriter, WriteError};

/// Why a sink could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// Its path was never checked against the files policy.
    #[error(transparent)]
    Unchecked(#[from] UncheckedPath),
    /// Its file or database could not be opened.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// A PostgreSQL sink names an unset variable and has no SQLite fallback.
    #[error("sink postgres: no PostgreSQL configured: set {0} to a postgres:// URL")]
    NoPostgres(String),
}

/// Why the sink stopped with a failure: an outage outlasted its retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sink write failed: {0}")]
pub(crate) struct RunError(String);

/// Live batching knobs of the sink, shared with the job handle for tuning.
#[derive(Debug)]
pub(crate) struct BatchCtl {
    /// Items per write.
    pub(crate) size: AtomicU32,
    /// Longest wait for a batch to fill, in milliseconds.
    pub(crate) linger_ms: AtomicU64,
}

impl BatchCtl {
    /// Knobs starting at `spec` (unbatched sinks write every item at once).
    pub(crate) fn new(spec: Option<BatchSpec>) -> Self {
        let spec = spec.unwrap_or(BatchSpec {
            size: 1,
            linger_ms: 0,
        });
        Self {
            size: AtomicU32::new(spec.size),
            linger_ms: AtomicU64::new(spec.linger_ms),
        }
    }
}

/// An opened sink, ready to run.
pub(crate) struct Sink {
    writer: Box<dyn SinkWriter>,
    retry: Option<RetrySpec>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink {
    /// Opens `spec`'s target, so a bad path or schema fails the start,
    /// not the run. `runtime` drives asynchronous clients (HTTP); `paths`
    /// are where the spec's paths were resolved to (they are what is
    /// opened); `egress` is where clients may connect.
    pub(crate) fn open(
        spec: &SinkSpec,
        runtime: &tokio::runtime::Handle,
        paths: &SpecPaths,
        egress: &Egress,
    ) -> Result<Self, OpenError> {
        Ok(match spec {
            SinkSpec::Null => Sink {
                writer: Box::new(NullWriter),
                retry: None,
            },
            SinkSpec::File { path, .. } => Sink {
                writer: Box::new(FileWriter {
                    file: append_at(paths.get(path)?)
                        .map_err(|e| crate::fail::io(format_args!("sink file `{path}`"), &e))?,
                    buf: Vec::new(),
                }),
                retry: None,
            },
            SinkSpec::Sqlite {
                path,
                table,
                key,
                columns,
                retry,
                write,
                fault,
                ..
            } => {
                let writer: Box<dyn SinkWriter> = Box::new(
                    sqlite::SqliteWriter::open(paths.get(path)?, table, key, columns, *write)
                        .map_err(|e| {
                            crate::fail::other(format_args!("sink sqlite `{path}`"), &e)
                        })?,
                );
                Sink {
                    writer: match fault {
                        Some(f) if f.lost_ack_share > 0.0 => Box::new(lost_acks::LostAcks::new(
                            writer,
                            f.lost_ack_share,
                            *write == WriteMode::Upsert,
                            0x5eed,
                        )),
                        _ => writer,
                    },
                    retry: Some(*retry),
                }
            }
            SinkSpec::Http { url, retry, .. } => Sink {
                writer: Box::new(HttpWriter {
                    client: egress.client(),
                    url: url.clone(),
                    runtime: runtime.clone(),
                }),
                retry: Some(*retry),
            },
            SinkSpec::Postgres {
                url,
                fallback_sqlite,
                table,
                key,
                columns,
                retry,
                pool_size,
                ..
            } => match resolve_url(url) {
                Some(url) => Sink {
                    writer: Box::new(
                        postgres::PgWriter::open(&url, table, key, columns, *pool_size)
                            .map_err(|e| crate::fail::other("sink postgres", &e))?,
                    ),
                    retry: Some(*retry),
                },
                None => {
                    let var = url.trim_start_matches("env:");
                    let Some(path) = fallback_sqlite else {
                        return Err(OpenError::NoPostgres(var.to_owned()));
                    };
                    tracing::warn!(
                        variable = var,
                        sqlite = %path,
                        "no PostgreSQL configured; writing to the SQLite fallback"
                    );
                    Sink {
                        writer: Box::new(
                            sqlite::SqliteWriter::open(
                                paths.get(path)?,
                                table,
                                key,
                                columns,
                                WriteMode::Upsert,
                            )
                            .map_err(|e| {
                                crate::fail::other(
                                    format_args!("sink sqlite fallback `{path}`"),
                                    &e,
                                )
                            })?,
                        ),
                        retry: Some(*retry),
                    }
                }
            },
        })
    }
}

/// The sink thread's state.
struct Runner<'a> {
    sink: Sink,
    node: &'a NodeStats,
    core: &'a JobCore,
    rng: rand::rngs::SmallRng,
}

/// A flush that could not finish: the job must fail.
struct Outage(String);

impl Runner<'_> {
    fn sunk(&self, n: usize) {
        self.node.shards[0]
            .out
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Writes with the sink's retries; on abort, one attempt only.
    fn write_retrying(&mut self, items: &[Item]) -> Result<(), WriteError> {
        let mut attempt = 1;
        loop {
            let result = self.sink.writer.write(items);
            self.node
                .duplicates
                .store(self.sink.writer.duplicates(), Ordering::Relaxed);
            match result {
                Ok(()) => return Ok(()),
                Err(WriteError::Outage(msg)) => {
                    let Some(retry) = self.sink.retry else {
                        return Err(WriteError::Outage(msg));
                    };
                    if attempt >= retry.max_attempts || self.core.abort.is_set() {
                        return Err(WriteError::Outage(msg));
                    }
                    self.node.shards[0].retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(job = %self.core.id, attempt, error = %msg, "sink write failed; retrying");
                    let wait = backoff(&retry, attempt, self.rng.random());
                    if self.core.abort.wait_timeout(wait) {
                        return Err(WriteError::Outage(msg));
                    }
                    attempt += 1;
                }
                Err(data) => return Err(data),
            }
        }
    }

    /// Writes the held batch. Data errors are narrowed down item by item
    /// (bad items to dead letters); an outage fails the job, and what was
    /// not written goes to leftovers.
    fn flush(&mut self, held: &mut Vec<Item>) -> Result<(), Outage> {
        if held.is_empty() {
            return Ok(());
        }
        // Written in place and cleared after, so the batch's buffer is
        // reused rather than grown again for every batch.
        let result = self.write_retrying(held);
        let batch = held.drain(..);
        match result {
            Ok(()) => {
                self.sunk(batch.len());
                Ok(())
            }
            Err(WriteError::Outage(msg)) => {
                for item in batch {
                    self.core.leftovers.put(self.node, item);
                }
                Err(Outage(msg))
            }
            Err(WriteError::Data(msg)) if batch.len() == 1 => {
                for item in batch {
                    self.dead_letter(&item, msg.clone());
                }
                Ok(())
            }
            Err(WriteError::Data(_)) => {
                let mut items = batch;
                while let Some(item) = items.next() {
                    match self.write_retrying(std::slice::from_ref(&item)) {
                        Ok(()) => self.sunk(1),
                        Err(WriteError::Data(msg)) => self.dead_letter(&item, msg),
                        Err(WriteError::Outage(msg)) => {
                            self.core.leftovers.put(self.node, item);
                            for rest in items {
                                self.core.leftovers.put(self.node, rest);
                            }
                            return Err(Outage(msg));
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn dead_letter(&self, item: &Item, detail: String) {
        let err = OpError {
            kind: "rejected by sink",
            detail,
            retryable: false,
        };
        self.core.dead_letters.put(self.node, item, &err, 1);
        self.node.shards[0]
            .dead_lettered
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Consumes the sink's queue until it closes (drain) or the job aborts,
/// writing in batches of `batch.size`, or after `batch.linger_ms`. Items
/// are taken in chunks of at most what the batch still needs.
pub(crate) fn run(
    sink: Sink,
    rx: Rx,
    node: Arc<NodeStats>,
    core: &JobCore,
    batch: &BatchCtl,
) -> Result<(), RunError> {
    let shard = node.shard(0);
    let _cpu = node.enlist_thread();
    let mut stride = Stride::default();
    let mut runner = Runner {
        sink,
        node: &node,
        core,
        rng: crate::ops::worker_rng(core.seed, usize::MAX, 0),
    };
    let mut input = Chunk::new(&rx);
    let mut laps = Laps::start();
    let mut held: Vec<Item> = Vec::new();
    let mut first_at: Option<Instant> = None;
    // A writer that only counts takes whole chunks: with no linger, what
    // is held is still written as soon as the queue runs dry.
    let least = if runner.sink.writer.is_instant() {
        CHUNK
    } else {
        1
    };
    let result = loop {
        let size = (batch.size.load(Ordering::Relaxed) as usize).max(least);
        if input.is_empty() {
            let want = size.saturating_sub(held.len()).clamp(1, CHUNK);
            if rx.try_take(want, &mut input) == 0 {
                let linger = Duration::from_millis(batch.linger_ms.load(Ordering::Relaxed));
                let deadline = first_at.map(|t| t + linger);
                laps.lap(&shard.0.busy_ns);
                let took = rx.take_blocking(want, deadline, &mut input);
                laps.lap(&shard.0.idle_ns);
                match took {
                    Took::Items => {}
                    Took::Timeout => {
                        if core.abort.is_set() {
                            break Ok(());
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            first_at = None;
                            if let Err(Outage(e)) = runner.flush(&mut held) {
                                break Err(e);
                            }
                        }
                        continue;
                    }
                    Took::Closed => break Ok(()),
                }
            }
        }
        if core.abort.is_set() {
            break Ok(());
        }
        let Some(item) = input.pop() else {
            continue;
        };
        // Items the source timed are timed here too, for end-to-end latency.
        let now = (stride.tick() || item.born.is_some()).then(Instant::now);
        if let Some(now) = now {
            let since = |t: Option<Stamp>| t.map(|t| now.saturating_duration_since(t.instant()));
            shard.record(since(item.enqueued), None, since(item.born));
            // Holding an item for its batch is always quick: sample one in
            // a stride.
            stride.adapt(Duration::ZERO);
        }
        held.push(item);
        if held.len() >= size {
            first_at = None;
            if let Err(Outage(e)) = runner.flush(&mut held) {
                break Err(e);
            }
        } else if first_at.is_none() {
            // The batch's linger starts with its first item.
            first_at = Some(now.unwrap_or_else(Instant::now));
        }
    };
    // What was taken but not held yet was never written: leftovers.
    for item in input.drain() {
        core.leftovers.put(&node, item);
    }
    // What is held was received: write it now, on drain and on abort alike
    // (an abort allows one attempt; what fails goes to leftovers).
    let flushed = runner.flush(&mut held).map_err(|Outage(e)| e);
    laps.lap(&shard.0.busy_ns);
    result.and(flushed).map_err(RunError)
}
