//! The job's leftovers file: items that were queued or in flight when the
//! job was aborted, written as JSON lines so a `file` source can replay
//! them.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::item::Item;
use crate::stats::NodeStats;

/// Collects leftovers; the file is created on the first one.
#[derive(Debug)]
pub struct Leftovers {
    path: PathBuf,
    /// Lazily opened writer, or the first error met opening/writing it.
    writer: Mutex<Result<Option<BufWriter<File>>, String>>,
}

impl Leftovers {
    /// Leftovers that will go to `path`.
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

    /// Saves `item`, counted against `node`. The count always moves, so
    /// the accounting holds even if the disk fails; the failure is kept
    /// and reported by [`Leftovers::finish`].
    pub fn put(&self, node: &NodeStats, item: Item) {
        node.leftovers.fetch_add(1, Ordering::Relaxed);
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
        if let Err(e) = writeln!(writer, "{}", item.payload.to_line()) {
            *guard = Err(format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// Flushes the file. `Ok(Some(path))` if leftovers were written,
    /// `Ok(None)` if there were none, `Err` if any could not be saved.
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
