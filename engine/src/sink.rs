//! Sinks: where items end. The sink runs on a thread of its own at the end
//! of the pipeline, behind its own queue.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use shared::spec::SinkSpec;

use crate::item::Item;
use crate::job::JobCore;
use crate::queue::{Recv, Rx};
use crate::stats::{NodeStats, Stride};

/// An opened sink.
#[derive(Debug)]
pub enum Sink {
    /// Counts only.
    Null,
    /// JSON lines appended to a file.
    File(BufWriter<File>),
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
                .map(|f| Sink::File(BufWriter::new(f)))
                .map_err(|e| format!("sink file {path}: {e}")),
        }
    }

    fn write(&mut self, item: &Item) -> std::io::Result<()> {
        match self {
            Sink::Null => Ok(()),
            Sink::File(w) => writeln!(w, "{}", item.payload.to_line()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Null => Ok(()),
            Sink::File(w) => w.flush(),
        }
    }
}

/// Consumes the sink's queue until it closes (drain) or the job aborts.
pub fn run(mut sink: Sink, rx: Rx, node: Arc<NodeStats>, core: &JobCore) -> Result<(), String> {
    let shard = node.shard(0);
    let mut stride = Stride::default();
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
        if let Err(e) = sink.write(&item) {
            core.leftovers.put(&node, item);
            break Err(format!("sink write failed: {e}"));
        }
        shard.0.out.fetch_add(1, Ordering::Relaxed);
        if let Some(now) = now {
            let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
            shard.record(since(item.enqueued), None, since(item.born));
        }
        if let (Some(t0), Some(now)) = (t0, now) {
            let done = Instant::now();
            shard.add_time(&shard.0.idle_ns, now - t0);
            shard.add_time(&shard.0.busy_ns, done - now);
            stride.adapt(done - t0);
        }
    };
    let flushed = sink.flush().map_err(|e| format!("sink flush failed: {e}"));
    result.and(flushed)
}
