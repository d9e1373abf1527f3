//! Sources: the thread that produces a job's items.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::spec::{Payload as PayloadShape, SampleSpec, SourceSpec};

use crate::confine::SpecPaths;
use crate::core::JobCore;
use crate::item::{Item, Payload};
use crate::queue::{CHUNK, POLL, Tx};
use crate::stats::{NodeStats, Stride};

/// A source ready to run: its spec, plus whatever it reads from already
/// opened, so a bad path or a busy port fails the start, not the run.
#[derive(Debug)]
pub enum Source {
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
    pub fn open(spec: &SourceSpec, paths: &SpecPaths) -> Result<Self, String> {
        match spec {
            SourceSpec::Synthetic { .. } => Ok(Source::Synthetic(spec.clone())),
            SourceSpec::File {
                path,
                follow,
                offset_file,
                sample,
            } => {
                let at = paths
                    .get(path)
                    .map_err(|e| format!("source file {path}: {e}"))?;
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
                    .map_err(|e| format!("source offset file: {e}"))?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let saved = offset_file.as_deref().and_then(read_offset).unwrap_or(0);
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
    pub fn ingest(&self) -> Option<IngestHandle> {
        match self {
            Source::Ingest(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// The address a TCP source listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Source::Tcp { listener, .. } => listener.local_addr().ok(),
            _ => None,
        }
    }
}

/// Writes `sample.count` synthetic log lines to `path` (creating folders).
pub fn write_sample(path: &Path, sample: &SampleSpec) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut rng = SmallRng::seed_from_u64(sample.seed);
    let mut out = std::io::BufWriter::new(File::create(path)?);
    for seq in 0..sample.count {
        let line = log_line(
            seq,
            sample.malformed_share,
            sample.duplicate_share,
            &mut rng,
        );
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// Reads a persisted offset.
fn read_offset(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Persists an offset atomically (write a temporary file, then rename).
fn write_offset(path: &Path, offset: u64) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot save the offset to {}: {e}", path.display()))
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
        }
    }

    /// Produces one item; false when the job is aborting and the source
    /// must stop (what it held went to leftovers).
    fn emit(&mut self, payload: Payload) -> bool {
        let item = self.next_item(payload);
        self.out.push_back(item);
        self.out.len() < CHUNK || self.flush()
    }

    /// Hands on what was produced, waiting for room under `block`; false
    /// when the job is aborting (what was not pushed went to leftovers).
    /// Called when the chunk is full and before every wait.
    fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        match self.tx.push_blocking(&mut self.out, &self.core.abort) {
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

    /// Numbers and stamps the next item; it counts as produced from now on
    /// (see [`Emitter::unproduce`] for one that is handed back).
    fn next_item(&mut self, payload: Payload) -> Item {
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
        Item::new(seq, payload, born)
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
    }
}

/// Runs the source until it is exhausted, stopped (drain) or aborted.
/// Dropping `tx` at the end starts the drain cascade.
pub fn run(
    source: Source,
    core: &Arc<JobCore>,
    tx: Tx,
    first: Arc<NodeStats>,
) -> Result<(), String> {
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
        Source::Synthetic(spec) => synthetic(&spec, &mut Emitter::new(core, tx, &first)),
        Source::File {
            reader,
            offset,
            follow,
            offset_file,
        } => file(
            reader,
            offset,
            follow,
            offset_file.as_deref(),
            &mut Emitter::new(core, tx, &first),
        ),
        Source::Tcp {
            listener,
            connections,
        } => tcp(&listener, connections, core, &tx, &first),
    }
}

fn synthetic(spec: &SourceSpec, out: &mut Emitter<'_>) -> Result<(), String> {
    let SourceSpec::Synthetic {
        count,
        duration_ms,
        rate,
        payload,
        malformed_share,
        duplicate_share,
        seed,
    } = *spec
    else {
        unreachable!("synthetic spec")
    };
    let mut rng = SmallRng::seed_from_u64(seed);
    let start = Instant::now();
    let deadline = duration_ms.map(|ms| start + Duration::from_millis(ms));
    let period = rate.map(|r| 1.0 / r);
    loop {
        let seq = out.core.produced.load(Ordering::Relaxed);
        if count.is_some_and(|c| seq >= c) || out.stopping() {
            return Ok(());
        }
        if let Some(period) = period {
            let due = start + Duration::from_secs_f64(seq as f64 * period);
            let now = Instant::now();
            if due > now {
                if !out.flush() {
                    return Ok(());
                }
                if out.core.stop.wait_timeout(due - now) {
                    return Ok(());
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let item = match payload {
            PayloadShape::Counter => Payload::Counter(seq),
            PayloadShape::LogLine => {
                Payload::Line(log_line(seq, malformed_share, duplicate_share, &mut rng))
            }
        };
        if !out.emit(item) {
            return Ok(());
        }
    }
}

const LEVELS: [(&str, f64); 4] = [
    ("DEBUG", 0.20),
    ("INFO", 0.80),
    ("WARN", 0.95),
    ("ERROR", 1.0),
];
const MESSAGES: [&str; 5] = [
    "user {} logged in",
    "order {} paid",
    "cache miss for key {}",
    "request {} took too long",
    "payment {} declined",
];

/// One synthetic JSON log line; a share of them are malformed (truncated)
/// and a share reuse an earlier record's `id`.
pub fn log_line(seq: u64, malformed: f64, duplicate: f64, rng: &mut SmallRng) -> String {
    let roll: f64 = rng.random();
    let id = if roll >= malformed && roll < malformed + duplicate && seq > 0 {
        rng.random_range(0..seq)
    } else {
        seq
    };
    let pick: f64 = rng.random();
    let level = LEVELS
        .iter()
        .find(|(_, p)| pick < *p)
        .map_or("INFO", |l| l.0);
    let msg = MESSAGES[(seq % MESSAGES.len() as u64) as usize]
        .replace("{}", &rng.random_range(1..100_000u32).to_string());
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let line =
        format!(r#"{{"id":"k-{id}","ts":{ts:.3},"level":"{level}","msg":"{msg}","seq":{seq}}}"#);
    if roll < malformed {
        // Cut inside the message: invalid JSON, like a torn write.
        let cut = line.find(r#""msg""#).unwrap_or(line.len() / 2) + 9;
        line[..cut.min(line.len() - 1)].to_owned()
    } else {
        line
    }
}

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
    fn open(&self, core: Arc<JobCore>, tx: Tx, first: Arc<NodeStats>) {
        self.shared.lock().phase = Phase::Open(core, tx, first);
    }

    /// Takes no more pushes, lets go of the sender, and waits until every
    /// push under way has settled.
    fn close(&self) {
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
        let mut out = Emitter::new(core, flight.tx.clone(), &flight.first);
        let mut done = Ingested::default();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            if core.stop.is_set() {
                done.not_taken += 1;
                continue;
            }
            let item = out.next_item(Payload::Line(line));
            let unsettled = Unsettled(Some(&core.produced));
            match out.tx.push_one_blocking(item, &core.abort) {
                Ok(pushed) => {
                    unsettled.settled();
                    done.add(pushed.refused > 0);
                }
                Err(_) => done.not_taken += 1,
            }
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
        let mut out = Emitter::new(core, flight.tx.clone(), &flight.first);
        let mut done = Ingested::default();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            if core.stop.is_set() {
                done.not_taken += 1;
                continue;
            }
            let item = out.next_item(Payload::Line(line));
            let unsettled = Unsettled(Some(&core.produced));
            // Awaits room in either kind of queue; an abort closes the
            // queue, which hands the item back here.
            match out.tx.push_one(item).await {
                Ok(pushed) => {
                    unsettled.settled();
                    done.add(pushed.refused > 0);
                }
                Err(_) => done.not_taken += 1,
            }
        }
        Ok(done)
    }
}

impl Ingested {
    fn add(&mut self, refused: bool) {
        if refused {
            self.refused += 1;
        } else {
            self.accepted += 1;
        }
    }
}

/// How often a following file source looks for new lines, and how often
/// a source persists its offset.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

fn file(
    mut reader: BufReader<File>,
    mut offset: u64,
    follow: bool,
    offset_file: Option<&Path>,
    out: &mut Emitter<'_>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut saved_at = Instant::now();
    let save = |offset: u64| offset_file.map_or(Ok(()), |p| write_offset(p, offset));
    let result = loop {
        if out.stopping() {
            break Ok(());
        }
        // The next read may wait for the disk: hand on what is ready.
        if reader.buffer().is_empty() && !out.flush() {
            break Ok(());
        }
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => break Err(format!("reading source file: {e}")),
        };
        let complete = buf.last() == Some(&b'\n');
        if n == 0 || (follow && !complete) {
            // At the end for now: a following source waits for more (and
            // for the rest of a half-written line); a plain one is done.
            if !follow {
                break Ok(());
            }
            if !out.flush() || out.core.stop.wait_timeout(FOLLOW_POLL) {
                break Ok(());
            }
            continue;
        }
        let consumed = buf.len() as u64;
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']).to_owned();
        buf.clear();
        if line.trim().is_empty() {
            // Not an item; counted so the report shows it was read.
            out.core.skipped_lines.fetch_add(1, Ordering::Relaxed);
        } else if !out.emit(Payload::Line(line)) {
            // Aborted: this line went to leftovers, so count it as read.
            offset += consumed;
            break Ok(());
        }
        offset += consumed;
        if offset_file.is_some() && saved_at.elapsed() >= FOLLOW_POLL {
            save(offset)?;
            saved_at = Instant::now();
        }
    };
    result.and(save(offset))
}

/// Accepts clients and reads JSON lines from each on a thread of its own.
/// A full queue blocks that thread, which stops reading its socket: TCP
/// flow control then slows the client down. Nothing is dropped.
fn tcp(
    listener: &TcpListener,
    connections: Option<u64>,
    core: &JobCore,
    tx: &Tx,
    first: &Arc<NodeStats>,
) -> Result<(), String> {
    let finished = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let mut accepted = 0u64;
        loop {
            if core.stop.is_set() {
                break;
            }
            if let Some(max) = connections
                && accepted >= max
            {
                if finished.load(Ordering::Acquire) >= max {
                    break;
                }
                core.stop.wait_timeout(FOLLOW_POLL);
                continue;
            }
            match listener.accept() {
                Ok((stream, peer)) => {
                    accepted += 1;
                    tracing::debug!(job = %core.id, %peer, "tcp source: client connected");
                    let out = Emitter::new(core, tx.clone(), first);
                    let finished = &finished;
                    let spawned = std::thread::Builder::new()
                        .name(format!("ql-{}-tcp-{accepted}", core.name))
                        .spawn_scoped(scope, move || {
                            if let Err(e) = read_client(stream, out) {
                                tracing::warn!(job = %core.id, %peer, error = %e, "tcp source: client dropped");
                            }
                            finished.fetch_add(1, Ordering::Release);
                        });
                    if let Err(e) = spawned {
                        // The refused closure took the connection with it:
                        // the client sees it closed, having sent nothing
                        // that was counted.
                        tracing::warn!(job = %core.id, %peer, error = %e, "tcp source: no thread for a client; connection closed");
                        finished.fetch_add(1, Ordering::Release);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    core.stop.wait_timeout(POLL);
                }
                Err(e) => {
                    tracing::warn!(job = %core.id, error = %e, "tcp source: accept failed");
                    core.stop.wait_timeout(POLL);
                }
            }
        }
    });
    Ok(())
}

/// Reads lines from one client until it closes, or the source stops.
fn read_client(stream: TcpStream, mut out: Emitter<'_>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    // Wake up now and then to notice a stop.
    stream.set_read_timeout(Some(POLL))?;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        if out.stopping() {
            return Ok(());
        }
        // The next read may wait for the client: hand on what is ready.
        if reader.buffer().is_empty() && !out.flush() {
            return Ok(());
        }
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => {
                // The client closed; a last line without a newline counts.
                flush_line(&mut buf, &mut out);
                return Ok(());
            }
            Ok(_) if buf.last() == Some(&b'\n') => {
                if !flush_line(&mut buf, &mut out) {
                    return Ok(());
                }
            }
            Ok(_) => {}
            // A timeout keeps what was read so far in `buf`.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Emits the line in `buf` (if any; a blank one is counted as skipped);
/// false when the job is aborting.
fn flush_line(buf: &mut Vec<u8>, out: &mut Emitter<'_>) -> bool {
    if buf.is_empty() {
        return true;
    }
    let line = String::from_utf8_lossy(buf)
        .trim_end_matches(['\n', '\r'])
        .to_owned();
    buf.clear();
    if line.trim().is_empty() {
        out.core.skipped_lines.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    out.emit(Payload::Line(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_have_the_requested_shares() {
        let mut rng = SmallRng::seed_from_u64(7);
        let (mut bad, mut dup) = (0, 0);
        let n = 20_000;
        for seq in 0..n {
            let line = log_line(seq, 0.1, 0.2, &mut rng);
            match serde_json::from_str::<serde_json::Value>(&line) {
                Err(_) => bad += 1,
                Ok(v) => {
                    if v["id"] != format!("k-{seq}") {
                        dup += 1;
                    }
                    assert_eq!(v["seq"], seq);
                }
            }
        }
        assert!((1800..2200).contains(&bad), "malformed {bad}");
        assert!((3600..4400).contains(&dup), "duplicates {dup}");
    }

    #[test]
    fn clean_lines_parse_with_the_default_fields() {
        let mut rng = SmallRng::seed_from_u64(1);
        for seq in 0..100 {
            let line = log_line(seq, 0.0, 0.0, &mut rng);
            let parsed = crate::ops::parse_record(
                &Payload::Line(line.clone()),
                &shared::spec::defaults::required_fields(),
            );
            assert!(parsed.is_ok(), "{line}");
        }
    }
}
