//! Sinks: where items end. The sink runs on a thread of its own at the end
//! of the pipeline, behind its own queue.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use shared::spec::SinkSpec;

use crate::item::Item;
use crate::job::JobCore;
use crate::queue::{Recv, Rx};
use crate::stats::{NodeStats, Stride};

/// Items a file sink buffers before it writes and counts them.
const FILE_BATCH: usize = 256;

/// An opened sink.
#[derive(Debug)]
pub enum Sink {
    /// Counts only.
    Null,
    /// JSON lines appended to a file. Items count as sunk only once their
    /// batch is written; until then they are held, so a failed write can
    /// hand them to leftovers instead of losing them.
    File {
        /// The open file.
        file: File,
        /// Encoded lines of the held items.
        buf: Vec<u8>,
        /// Items written to `buf` but not to the file yet.
        held: Vec<Item>,
    },
}

impl Sink {
    /// Opens `spec`'s target, so a bad path fails the start, not the run.
    pub fn open(spec: &SinkSpec) -> Result<Self, String> {
        match spec {
            SinkSpec::Null => Ok(Sink::Null),
            SinkSpec::File { path } => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(|file| Sink::File {
                    file,
                    buf: Vec::new(),
                    held: Vec::new(),
                })
                .map_err(|e| format!("sink file {path}: {e}")),
        }
    }

    /// Takes an item. Returns how many items are now durably sunk (0 while
    /// a file batch is filling).
    fn put(&mut self, item: Item) -> Result<usize, SinkError> {
        match self {
            Sink::Null => Ok(1),
            Sink::File { buf, held, .. } => {
                buf.extend_from_slice(item.payload.to_line().as_bytes());
                buf.push(b'\n');
                held.push(item);
                if held.len() >= FILE_BATCH {
                    self.flush()
                } else {
                    Ok(0)
                }
            }
        }
    }

    /// Writes what is held; returns how many items that sank.
    fn flush(&mut self) -> Result<usize, SinkError> {
        match self {
            Sink::Null => Ok(0),
            Sink::File { file, buf, held } => {
                if held.is_empty() {
                    return Ok(0);
                }
                let result = file.write_all(buf).and_then(|()| file.flush());
                buf.clear();
                let items = std::mem::take(held);
                match result {
                    Ok(()) => Ok(items.len()),
                    Err(e) => Err(SinkError {
                        message: format!("sink write failed: {e}"),
                        items,
                    }),
                }
            }
        }
    }
}

/// A failed write, with the items it could not sink.
struct SinkError {
    message: String,
    items: Vec<Item>,
}

/// Consumes the sink's queue until it closes (drain) or the job aborts.
pub fn run(mut sink: Sink, rx: Rx, node: Arc<NodeStats>, core: &JobCore) -> Result<(), String> {
    let shard = node.shard(0);
    let mut stride = Stride::default();
    let sunk = |n: usize| {
        shard.0.out.fetch_add(n as u64, Ordering::Relaxed);
    };
    let fail = |e: SinkError| {
        for item in e.items {
            core.leftovers.put(&node, item);
        }
        e.message
    };
    let result = loop {
        let t0 = stride.tick().then(Instant::now);
        let item = match rx.recv_blocking() {
            Recv::Item(item) => item,
            Recv::Timeout => {
                if let Some(t0) = t0 {
                    shard.add_time(&shard.0.idle_ns, t0.elapsed());
                }
                if core.abort.is_set() {
                    break Ok(());
                }
                // Idle: write what is held so counts and files keep up.
                match sink.flush() {
                    Ok(n) => sunk(n),
                    Err(e) => break Err(fail(e)),
                }
                continue;
            }
            Recv::Closed => break Ok(()),
        };
        if core.abort.is_set() {
            core.leftovers.put(&node, item);
            break Ok(());
        }
        // Items the source timed are timed here too, for end-to-end latency.
        let now = (t0.is_some() || item.born.is_some()).then(Instant::now);
        if let Some(now) = now {
            let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
            shard.record(since(item.enqueued), None, since(item.born));
        }
        match sink.put(item) {
            Ok(n) => sunk(n),
            Err(e) => break Err(fail(e)),
        }
        if let (Some(t0), Some(now)) = (t0, now) {
            let done = Instant::now();
            shard.add_time(&shard.0.idle_ns, now - t0);
            shard.add_time(&shard.0.busy_ns, done - now);
            stride.adapt(done - t0);
        }
    };
    // Whatever is held is written now, even on abort: it was received.
    match sink.flush() {
        Ok(n) => {
            sunk(n);
            result
        }
        Err(e) => {
            let message = fail(e);
            result.and(Err(message))
        }
    }
}
