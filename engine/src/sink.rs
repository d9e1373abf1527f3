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
use crate::stats::NodeStats;

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
    let mut mark = Instant::now();
    let result = loop {
        let got = rx.recv_blocking();
        let now = Instant::now();
        shard.add_time(&shard.0.idle_ns, now - mark);
        mark = now;
        let item = match got {
            Recv::Item(item) => item,
            Recv::Timeout if core.abort.is_set() => break Ok(()),
            Recv::Timeout => continue,
            Recv::Closed => break Ok(()),
        };
        if core.abort.is_set() {
            core.leftovers.put(&node, item);
            break Ok(());
        }
        if let Err(e) = sink.write(&item) {
            core.leftovers.put(&node, item);
            break Err(format!("sink write failed: {e}"));
        }
        let done = Instant::now();
        shard.add_time(&shard.0.busy_ns, done - mark);
        shard.record_end_to_end(now - item.enqueued, done - item.born);
        shard.0.out.fetch_add(1, Ordering::Relaxed);
        mark = done;
    };
    let flushed = sink.flush().map_err(|e| format!("sink flush failed: {e}"));
    result.and(flushed)
}
