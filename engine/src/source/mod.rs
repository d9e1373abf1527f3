//! Sources: the thread that produces a job's items.
//!
//! * this module — `Source` (a source opened and ready to run), `run`
//!   (its thread's loop), and the emitter that numbers, stamps and hands
//!   on items in chunks;
//! * `synthetic` — generated counters or log lines ([`log_line`]);
//! * `file` — JSON lines from a file, with a saved offset;
//! * `tcp` — JSON lines from TCP clients;
//! * `ingest` — lines pushed through an [`IngestHandle`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shared::spec::SourceSpec;

use crate::confine::{SpecPaths, UncheckedPath};
use crate::core::JobCore;
use crate::fail::Failure;
use crate::item::{Item, Payload};
use crate::queue::{CHUNK, PushError, Pushed, Tx};
use crate::stats::{Laps, NodeStats, SourceTime, Stride};

mod file;
mod ingest;
mod synthetic;
mod tcp;

pub(crate) use file::{OffsetSaveError, write_sample};
pub use ingest::{IngestError, IngestHandle, Ingested};
pub use synthetic::log_line;

/// Why a source could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    /// Its file was never checked against the files policy.
    #[error("source file {path}: {error}")]
    Unchecked {
        /// The file, as the spec names it.
        path: String,
        /// The refusal.
        error: UncheckedPath,
    },
    /// Its offset file was never checked against the files policy.
    #[error("source offset file: {0}")]
    UncheckedOffset(UncheckedPath),
    /// Its file or port could not be opened.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// Why a running source stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// Its file could not be read.
    #[error("reading source file: {0}")]
    Read(std::io::Error),
    /// Its offset could not be saved.
    #[error(transparent)]
    SaveOffset(#[from] OffsetSaveError),
}

/// A source ready to run: its spec, plus whatever it reads from already
/// opened, so a bad path or a busy port fails the start, not the run.
#[derive(Debug)]
pub(crate) enum Source {
    /// Generated items.
    Synthetic(SourceSpec),
    /// Lines of an opened file, from a given offset.
    File {
        /// The file, positioned at `offset`.
        reader: BufReader<File>,
        /// Byte offset of the next line to read.
        offset: u64,
        /// Keep reading as the file grows.
        follow: bool,
        /// Where the offset is persisted.
        offset_file: Option<PathBuf>,
    },
    /// Lines pushed through an [`IngestHandle`].
    Ingest(IngestHandle),
    /// A bound TCP listener.
    Tcp {
        /// The listener.
        listener: TcpListener,
        /// Connections to serve before stopping.
        connections: Option<u64>,
    },
}

impl Source {
    /// Prepares `spec`: opens and positions its file, or binds its port.
    /// Files are opened where `paths` resolved them; messages show them as
    /// written.
    pub(crate) fn open(spec: &SourceSpec, paths: &SpecPaths) -> Result<Self, OpenError> {
        match spec {
            SourceSpec::Synthetic { .. } => Ok(Source::Synthetic(spec.clone())),
            SourceSpec::File {
                path,
                follow,
                offset_file,
                sample,
            } => {
                let at = paths.get(path).map_err(|error| OpenError::Unchecked {
                    path: path.clone(),
                    error,
                })?;
                if let Some(sample) = sample
                    && !at.exists()
                {
                    write_sample(at, sample).map_err(|e| {
                        crate::fail::io(
                            format_args!("source file `{path}`: writing the sample"),
                            &e,
                        )
                    })?;
                    tracing::info!(%path, lines = sample.count, "wrote a sample input");
                }
                let mut file = File::open(at)
                    .map_err(|e| crate::fail::io(format_args!("source file `{path}`"), &e))?;
                let offset_file = offset_file
                    .as_deref()
                    .map(|o| paths.get(o).map(Path::to_path_buf))
                    .transpose()
                    .map_err(OpenError::UncheckedOffset)?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let saved = offset_file
                    .as_deref()
                    .and_then(file::read_offset)
                    .unwrap_or(0);
                let offset = if saved > len {
                    tracing::warn!(%path, saved, len, "file is shorter than the saved offset; reading from the start");
                    0
                } else {
                    saved
                };
                file.seek(SeekFrom::Start(offset))
                    .map_err(|e| crate::fail::io(format_args!("source file `{path}`"), &e))?;
                Ok(Source::File {
                    reader: BufReader::new(file),
                    offset,
                    follow: *follow,
                    offset_file,
                })
            }
            SourceSpec::HttpIngest { .. } => Ok(Source::Ingest(IngestHandle::default())),
            SourceSpec::Tcp { bind, connections } => {
                let listener = TcpListener::bind(bind)
                    .map_err(|e| crate::fail::io(format_args!("source tcp {bind}"), &e))?;
                listener
                    .set_nonblocking(true)
                    .map_err(|e| crate::fail::io(format_args!("source tcp {bind}"), &e))?;
                Ok(Source::Tcp {
                    listener,
                    connections: *connections,
                })
            }
        }
    }

    /// The handle through which an ingest source receives lines.
    pub(crate) fn ingest(&self) -> Option<IngestHandle> {
        match self {
            Source::Ingest(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// The address a TCP source listens on.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Source::Tcp { listener, .. } => listener.local_addr().ok(),
            _ => None,
        }
    }
}

/// A producing thread's connection to the first node. Several may run at
/// once (one per TCP client); the item sequence is the shared `produced`
/// counter.
struct Emitter<'a> {
    core: &'a JobCore,
    tx: Tx,
    first: &'a Arc<NodeStats>,
    /// Which items to stamp with a birth time (for end-to-end latency).
    stride: Stride,
    last_timed: Option<(Instant, u64)>,
    /// Items produced and not yet pushed: handed on a chunk at a time,
    /// and before the source waits for anything (see [`crate::queue`]).
    out: VecDeque<Item>,
    /// Splits this producer's time into the source's busy, idle and
    /// blocked time; `None` for producers driven from outside (ingest
    /// requests), whose time is the clients'.
    laps: Option<Laps>,
}

impl<'a> Emitter<'a> {
    fn new(core: &'a JobCore, tx: Tx, first: &'a Arc<NodeStats>) -> Self {
        Self {
            core,
            tx,
            first,
            stride: Stride::default(),
            last_timed: None,
            out: VecDeque::with_capacity(CHUNK),
            laps: Some(Laps::start()),
        }
    }

    /// An emitter for items that arrive from outside (HTTP ingest): it
    /// numbers them but does not measure the source's time.
    fn driven(core: &'a JobCore, tx: Tx, first: &'a Arc<NodeStats>) -> Self {
        let mut out = Self::new(core, tx, first);
        out.laps = None;
        out
    }

    /// Books the time since the last lap to one of the source's counters.
    fn lap(&mut self, counter: fn(&SourceTime) -> &AtomicU64) {
        if let Some(laps) = &mut self.laps {
            laps.lap(counter(&self.core.source_time));
        }
    }

    /// Runs `wait` (for a timer, a file being followed, a client) as the
    /// source's idle time.
    fn wait<T>(&mut self, wait: impl FnOnce() -> T) -> T {
        self.lap(|t| &t.busy_ns);
        let got = wait();
        self.lap(|t| &t.idle_ns);
        got
    }

    /// Produces one item; false when the job is aborting and the source
    /// must stop (what it held went to leftovers).
    fn emit(&mut self, payload: Payload) -> bool {
        self.emit_due(payload, None)
    }

    /// [`Emitter::emit`] for an item of a schedule (a rated source), due at
    /// `due`: its end-to-end latency counts from then, so a source held
    /// back by a slow pipeline does not hide that wait (no coordinated
    /// omission).
    fn emit_due(&mut self, payload: Payload, due: Option<Instant>) -> bool {
        let item = self.next_item(payload, due);
        self.out.push_back(item);
        self.out.len() < CHUNK || self.flush()
    }

    /// [`Emitter::emit_due`] from a task: yields after every chunk.
    async fn emit_async(&mut self, payload: Payload, due: Option<Instant>) -> bool {
        let item = self.next_item(payload, due);
        self.out.push_back(item);
        if self.out.len() < CHUNK {
            return true;
        }
        let pushed = self.flush_async().await;
        tokio::task::yield_now().await;
        pushed
    }

    /// [`Emitter::flush`] from a task: awaits room instead of blocking.
    async fn flush_async(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        self.lap(|t| &t.busy_ns);
        let pushed = self.tx.push(&mut self.out).await;
        self.after_push(pushed)
    }

    /// [`Emitter::wait`] from a task.
    async fn wait_async<T>(&mut self, wait: impl std::future::Future<Output = T>) -> T {
        self.lap(|t| &t.busy_ns);
        let got = wait.await;
        self.lap(|t| &t.idle_ns);
        got
    }

    /// Hands on what was produced, waiting for room under `block`; false
    /// when the job is aborting (what was not pushed went to leftovers).
    /// Called when the chunk is full and before every wait.
    fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        self.lap(|t| &t.busy_ns);
        let pushed = self.tx.push_blocking(&mut self.out, &self.core.abort);
        self.after_push(pushed)
    }

    /// Books a push's time; on an error, what was not pushed goes to
    /// leftovers and the source must stop (false).
    fn after_push(&mut self, pushed: Result<Pushed, PushError>) -> bool {
        match pushed {
            Ok(p) if !p.waited => self.lap(|t| &t.busy_ns),
            _ => self.lap(|t| &t.blocked_ns),
        }
        match pushed {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(job = %self.core.id, error = %e, "source: push stopped");
                for item in self.out.drain(..) {
                    self.core.leftovers.put(self.first, item);
                }
                false
            }
        }
    }

    /// Numbers and stamps the next item (born when `due`, if it had a due
    /// time, else now); it counts as produced from now on (see
    /// [`Emitter::unproduce`] for one that is handed back).
    fn next_item(&mut self, payload: Payload, due: Option<Instant>) -> Item {
        let seq = self.core.produced.fetch_add(1, Ordering::Relaxed);
        let born = self.stride.tick().then(Instant::now);
        if let Some(now) = born {
            if let Some((then, then_seq)) = self.last_timed {
                // Saturating: a handed-back item may have lowered the count.
                let per_item = (now - then) / seq.saturating_sub(then_seq).max(1) as u32;
                self.stride.adapt(per_item);
            }
            self.last_timed = Some((now, seq));
        }
        let mut item = Item::new(seq, payload, born.map(|now| due.unwrap_or(now).min(now)));
        // Its wait for the first queue starts now, whatever it was due.
        item.enqueued = born;
        item
    }

    fn stopping(&self) -> bool {
        self.core.stop.is_set()
    }
}

impl Drop for Emitter<'_> {
    /// Whatever way the source ends, what it produced goes on (or, on an
    /// abort, to leftovers).
    fn drop(&mut self) {
        self.flush();
        self.lap(|t| &t.busy_ns);
    }
}

impl Source {
    /// Whether this source can run as a task on the job's runtime: a
    /// synthetic source does no blocking I/O. Not when it is paced by a
    /// rate: tokio's timer ticks in whole milliseconds, a thread's timed
    /// wait does not, and at a low rate that precision is worth more than
    /// a cross-thread wake-up per item (measured by `cargo bench -p engine
    /// --bench latency`). The job runs it there when the first stage is
    /// async.
    pub(crate) fn can_run_async(&self) -> bool {
        matches!(
            self,
            Source::Synthetic(SourceSpec::Synthetic { rate: None, .. })
        )
    }
}

/// Runs a source that [`Source::can_run_async`] as a task, until it is
/// exhausted, stopped or aborted.
pub(crate) async fn run_async(source: Source, core: Arc<JobCore>, tx: Tx, first: Arc<NodeStats>) {
    let Source::Synthetic(spec) = source else {
        unreachable!("only synthetic sources run as tasks")
    };
    let mut out = Emitter::new(&core, tx, &first);
    synthetic::run_async(&spec, &mut out).await;
}

/// Runs the source until it is exhausted, stopped (drain) or aborted.
/// Dropping `tx` at the end starts the drain cascade.
pub(crate) fn run(
    source: Source,
    core: &Arc<JobCore>,
    tx: Tx,
    first: Arc<NodeStats>,
) -> Result<(), RunError> {
    match source {
        Source::Ingest(handle) => {
            handle.open(core.clone(), tx, first);
            // Lines arrive through the handle until the source is stopped;
            // then the handle lets go of its sender, closing the queue, and
            // waits for the pushes under way to settle: this thread is
            // joined before the leftovers are written.
            while !core.stop.wait_timeout(Duration::from_secs(3600)) {}
            handle.close();
            Ok(())
        }
        Source::Synthetic(spec) => synthetic::run(&spec, &mut Emitter::new(core, tx, &first)),
        Source::File {
            reader,
            offset,
            follow,
            offset_file,
        } => file::run(
            reader,
            offset,
            follow,
            offset_file.as_deref(),
            &mut Emitter::new(core, tx, &first),
        ),
        Source::Tcp {
            listener,
            connections,
        } => tcp::run(&listener, connections, core, &tx, &first),
    }
}
