//! The TCP source: a listener whose clients each send JSON lines, read on
//! a thread per client.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::emitter::Emitter;
use super::error::RunError;
use super::file::FOLLOW_POLL;
use crate::core::JobCore;
use crate::item::Payload;
use crate::queue::{POLL, Tx};
use crate::stats::NodeStats;

/// Accepts clients and reads JSON lines from each on a thread of its own.
/// A full queue blocks that thread, which stops reading its socket: TCP
/// flow control then slows the client down. Nothing is dropped.
pub(super) fn run(
    listener: &TcpListener,
    connections: Option<u64>,
    core: &JobCore,
    tx: &Tx,
    first: &Arc<NodeStats>,
) -> Result<(), RunError> {
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
        match out.wait(|| reader.read_until(b'\n', &mut buf)) {
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
