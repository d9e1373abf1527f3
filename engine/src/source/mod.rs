//! Sources: the thread that produces a job's items.
//!
//! * this module — `Source` (a source opened and ready to run) and `run`
//!   (its thread's loop), which dispatches to the kinds below;
//! * `emitter` — the emitter every kind produces through: it numbers,
//!   stamps and hands on items in chunks;
//! * `error` — how a source fails, at open or while it runs;
//! * `synthetic` — generated counters or log lines ([`log_line`]);
//! * `file` — JSON lines from a file, with a saved offset;
//! * `tcp` — JSON lines from TCP clients;
//! * `ingest` — lines pushed through an [`IngestHandle`].

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shared::spec::SourceSpec;

use crate::confine::SpecPaths;
use crate::core::JobCore;
use crate::queue::Tx;
use crate::stats::NodeStats;

mod emitter;
mod error;
mod file;
mod ingest;
mod synthetic;
mod tcp;

use emitter::Emitter;
pub(crate) use error::{OpenError, RunError};
pub(crate) use file::write_sample;
pub use ingest::{IngestError, IngestHandle, Ingested};
pub use synthetic::log_line;

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
