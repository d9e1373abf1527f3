//! The `http_ingest` source: lines pushed from outside (the server's
//! ingest route, or `queuelab run`) through an [`IngestHandle`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::emitter::Emitter;
use crate::core::JobCore;
use crate::item::Payload;
use crate::queue::{POLL, PushError, Pushed, Tx};
use crate::stats::NodeStats;

/// How an ingest request went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ingested {
    /// Lines queued.
    pub accepted: u64,
    /// Lines refused by a full queue's policy (`reject`, `drop_newest`);
    /// counted as dropped. The client may send them again.
    pub refused: u64,
    /// Lines not taken because the source stopped (a drain, or an abort
    /// that handed a waiting line back); not counted as produced. Send
    /// them elsewhere.
    pub not_taken: u64,
}

/// Why an ingest request could not be served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The job has not started its source yet.
    #[error("the job is not ready for input yet")]
    NotReady,
    /// The source has stopped (drain or abort), or the job has finished.
    #[error("the job takes no more input")]
    Stopped,
}

/// Where an ingest source is in its life, as its handle sees it.
#[derive(Debug, Default)]
enum Phase {
    /// The source thread has not opened the way in yet.
    #[default]
    NotStarted,
    /// Running: pushes go to the first queue.
    Open(Arc<JobCore>, Tx, Arc<NodeStats>),
    /// The source has stopped; nothing more is taken.
    Stopped,
}

#[derive(Debug, Default)]
struct Slot {
    phase: Phase,
    /// Pushes that started and have not settled yet. Counted under the
    /// same mutex as `phase`, so no push can start once the source closed.
    in_flight: usize,
}

#[derive(Debug, Default)]
struct IngestShared {
    slot: std::sync::Mutex<Slot>,
    /// Signalled when `in_flight` drops to zero.
    settled: std::sync::Condvar,
}

impl IngestShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The way in for lines pushed to an `http_ingest` source. Cheap to
/// clone; the HTTP layer (headless `queuelab run`, or the server) calls
/// [`IngestHandle::push_async`] (or [`IngestHandle::push`] from a thread).
/// It holds the first queue's sender only while the source runs, so a
/// drain can close the queue behind the last request.
///
/// Nothing is lost on abort: the source thread (which the supervisor joins
/// before it sweeps the queues and finishes the leftovers file) waits until
/// every push that started has settled. A line is then either in the queue
/// (processed, or swept into leftovers) or handed back to its client as
/// `not_taken` and no longer counted as produced.
#[derive(Debug, Clone, Default)]
pub struct IngestHandle {
    shared: Arc<IngestShared>,
}

/// One push under way; dropping it (even with its future cancelled) marks
/// it settled.
struct InFlight<'a> {
    shared: &'a IngestShared,
    core: Arc<JobCore>,
    tx: Tx,
    first: Arc<NodeStats>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        slot.in_flight -= 1;
        if slot.in_flight == 0 {
            self.shared.settled.notify_all();
        }
    }
}

/// An item counted as produced whose push has not settled: if it is
/// dropped unsettled (handed back, or its future cancelled with the item
/// inside), the count goes back down.
struct Unsettled<'a>(Option<&'a AtomicU64>);

impl Unsettled<'_> {
    fn settled(mut self) {
        self.0 = None;
    }
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if let Some(produced) = self.0 {
            produced.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl IngestHandle {
    pub(super) fn open(&self, core: Arc<JobCore>, tx: Tx, first: Arc<NodeStats>) {
        self.shared.lock().phase = Phase::Open(core, tx, first);
    }

    /// Takes no more pushes, lets go of the sender, and waits until every
    /// push under way has settled.
    pub(super) fn close(&self) {
        let mut slot = self.shared.lock();
        slot.phase = Phase::Stopped;
        while slot.in_flight > 0 {
            // Pushes watch the abort flag themselves; the timeout only
            // guards against a missed wake-up.
            slot = self
                .shared
                .settled
                .wait_timeout(slot, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Registers a push, unless the source is not open.
    fn begin(&self) -> Result<InFlight<'_>, IngestError> {
        let mut slot = self.shared.lock();
        let (core, tx, first) = match &slot.phase {
            Phase::NotStarted => return Err(IngestError::NotReady),
            Phase::Stopped => return Err(IngestError::Stopped),
            Phase::Open(core, tx, first) => (core.clone(), tx.clone(), first.clone()),
        };
        if core.stop.is_set() {
            return Err(IngestError::Stopped);
        }
        slot.in_flight += 1;
        Ok(InFlight {
            shared: &self.shared,
            core,
            tx,
            first,
        })
    }

    /// Produces one item per non-empty line, blocking while a `block`
    /// queue is full. Blocking: call it from a thread, not a task (see
    /// [`IngestHandle::push_async`]).
    pub fn push<I: IntoIterator<Item = String>>(&self, lines: I) -> Result<Ingested, IngestError> {
        let flight = self.begin()?;
        let core = &flight.core;
        let mut out = Emitter::driven(core, flight.tx.clone(), &flight.first);
        let mut done = Ingested::default();
        for line in lines {
            let Some(item) = take_line(&mut out, &mut done, line) else {
                continue;
            };
            let unsettled = Unsettled(Some(&core.produced));
            let pushed = out.tx.push_one_blocking(item, &core.abort);
            done.settle(unsettled, pushed.map_err(|(e, _)| e));
        }
        Ok(done)
    }

    /// [`IngestHandle::push`] for a task: waits for room on the caller's
    /// runtime, holding no thread, so any number of blocked requests cost
    /// the server only memory. Cancelling the future loses nothing: a line
    /// not yet queued is no longer counted as produced.
    pub async fn push_async<I>(&self, lines: I) -> Result<Ingested, IngestError>
    where
        I: IntoIterator<Item = String>,
        I::IntoIter: Send,
    {
        let flight = self.begin()?;
        let core = &flight.core;
        let mut out = Emitter::driven(core, flight.tx.clone(), &flight.first);
        let mut done = Ingested::default();
        for line in lines {
            let Some(item) = take_line(&mut out, &mut done, line) else {
                continue;
            };
            let unsettled = Unsettled(Some(&core.produced));
            // Awaits room in either kind of queue; an abort closes the
            // queue, which hands the item back here.
            let pushed = out.tx.push_one(item).await;
            done.settle(unsettled, pushed.map_err(|(e, _)| e));
        }
        Ok(done)
    }
}

impl Ingested {
    /// Counts how one line's push ended: taken (accepted, or refused by
    /// the queue's policy) or handed back to the client.
    fn settle(&mut self, unsettled: Unsettled<'_>, pushed: Result<Pushed, PushError>) {
        match pushed {
            Ok(pushed) => {
                unsettled.settled();
                if pushed.refused > 0 {
                    self.refused += 1;
                } else {
                    self.accepted += 1;
                }
            }
            Err(_) => self.not_taken += 1,
        }
    }
}

/// One pushed line, before its push: `None` for a blank line (counted as
/// skipped, not lost silently) and for a line that came after a stop
/// (handed back to the client); else the numbered item.
fn take_line(
    out: &mut Emitter<'_>,
    done: &mut Ingested,
    line: String,
) -> Option<crate::item::Item> {
    let core = out.core;
    if line.trim().is_empty() {
        core.skipped_lines.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    if core.stop.is_set() {
        done.not_taken += 1;
        return None;
    }
    Some(out.next_item(Payload::Line(line), None))
}
