//! SQLite's WAL checkpoints, on a thread of their own.
//!
//! In WAL mode every commit appends pages to the log, and a checkpoint
//! copies them back into the database file. Left to SQLite, the
//! checkpoint runs inside the commit that crosses `wal_autocheckpoint`,
//! on the sink's only writer thread: a profile of the log pipeline put it
//! at a sixth of that thread's time, while the pipeline's other threads
//! waited for it. A [`Checkpointer`] runs a passive checkpoint from a
//! second connection on another thread every [`EVERY`] instead; a
//! passive checkpoint never blocks the writer (it copies what no reader
//! needs and stops), so the writer mostly appends. The writer keeps its
//! `wal_autocheckpoint`: the log only starts again from its beginning
//! after a checkpoint that copied all of it, which under a writer that
//! never pauses is the writer's own, and by then the checkpointer has
//! copied all but the last moments' pages. The log stays as bounded as
//! before, and the writer copies a fraction of what it did.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::Connection;

/// How often the checkpointer looks at the log.
const EVERY: Duration = Duration::from_millis(100);

/// Runs passive checkpoints of one database until dropped (public so the
/// `log_clean` bench times SQLite alone checkpointed as the sink is).
#[derive(Debug)]
pub struct Checkpointer {
    /// Dropped to stop the thread: a disconnect wakes it at once.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `path`. `None` when no second connection or
    /// thread could be had: the writer's backstop then checkpoints.
    pub fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open(path)
            .inspect_err(
                |e| tracing::warn!(error = %e, "no checkpoint connection; the writer checkpoints"),
            )
            .ok()?;
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let thread = std::thread::Builder::new()
            .name("ql-sqlite-checkpoint".into())
            .spawn(move || run(conn, stopped))
            .inspect_err(
                |e| tracing::warn!(error = %e, "no checkpoint thread; the writer checkpoints"),
            )
            .ok()?;
        Some(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn run(conn: Connection, stopped: Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        if let Err(e) = checkpoint(&conn) {
            tracing::debug!(error = %e, "passive checkpoint failed; trying again");
        }
    }
    // The connection closes here, before the writer's: the writer's close
    // is the last one, which checkpoints what is left and removes the log.
}

/// Copies back what the log holds and no reader needs. The pragma
/// answers (busy, pages in the log, pages copied); with nothing new it
/// costs a look at the log's index.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let (log, copied): (i64, i64) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })?;
    tracing::trace!(log, copied, "passive checkpoint");
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
