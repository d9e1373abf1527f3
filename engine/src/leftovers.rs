//! Files the engine writes beside a job: the **leftovers** (items queued
//! or in flight when the job was aborted, as JSON lines a `file` source can
//! replay) and the **dead letters** (items whose operation failed for
//! good, with the stage, the error and the attempts).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::item::Item;
use crate::ops::OpError;
use crate::stats::NodeStats;

/// A JSON-lines file opened on first use and shared by every worker.
#[derive(Debug)]
pub struct LazyLines {
    path: PathBuf,
    /// The writer once opened, or the first error met opening/writing it.
    writer: Mutex<Result<Option<BufWriter<File>>, String>>,
}

impl LazyLines {
    /// A file that will be created at `path` (and its folders) on first use.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            writer: Mutex::new(Ok(None)),
        }
    }

    /// Where the file is (or would be).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line. A failure is kept and reported by [`LazyLines::finish`].
    pub fn append(&self, line: &str) {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(slot) = &mut *guard else { return };
        if slot.is_none() {
            let opened = self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(file) => *slot = Some(BufWriter::new(file)),
                Err(e) => {
                    *guard = Err(format!("cannot open {}: {e}", self.path.display()));
                    return;
                }
            }
        }
        let writer = slot.as_mut().expect("opened above");
        if let Err(e) = writeln!(writer, "{line}") {
            *guard = Err(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// Flushes. `Ok(Some(path))` if anything was written, `Ok(None)` if
    /// nothing was, `Err` if some line could not be saved.
    pub fn finish(&self) -> Result<Option<PathBuf>, String> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *guard {
            Ok(None) => Ok(None),
            Ok(Some(writer)) => match writer.flush() {
                Ok(()) => Ok(Some(self.path.clone())),
                Err(e) => Err(format!("cannot write {}: {e}", self.path.display())),
            },
            Err(e) => Err(e.clone()),
        }
    }
}

/// The job's leftovers file.
#[derive(Debug)]
pub struct Leftovers(LazyLines);

impl Leftovers {
    /// Leftovers that will go to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self(LazyLines::new(path))
    }

    /// Saves `item`, counted against `node`. The count always moves, so
    /// the accounting holds even if the disk fails; the failure is kept and
    /// reported by [`Leftovers::finish`].
    pub fn put(&self, node: &NodeStats, item: Item) {
        node.leftovers.fetch_add(1, Ordering::Relaxed);
        self.0.append(&item.payload.to_line());
    }

    /// See [`LazyLines::finish`].
    pub fn finish(&self) -> Result<Option<PathBuf>, String> {
        self.0.finish()
    }
}

/// The job's dead-letter sink.
#[derive(Debug)]
pub struct DeadLetters(LazyLines);

impl DeadLetters {
    /// Dead letters that will go to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self(LazyLines::new(path))
    }

    /// Keeps `item`, which failed for good at `node` after `attempts`.
    pub fn put(&self, node: &NodeStats, item: &Item, error: &OpError, attempts: u32) {
        node.note_reason(format!(
            "dead-lettered at `{}`: {}",
            node.info.name, error.kind
        ));
        let record = serde_json::json!({
            "at_ms": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            "stage": node.info.name,
            "error_kind": error.kind,
            "error": error.detail,
            "attempts": attempts,
            "seq": item.seq,
            "item": item.payload.to_line(),
        });
        self.0.append(&record.to_string());
    }

    /// See [`LazyLines::finish`].
    pub fn finish(&self) -> Result<Option<PathBuf>, String> {
        self.0.finish()
    }
}
