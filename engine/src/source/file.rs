//! The file source: JSON lines from a file, from a saved offset,
//! optionally following it as it grows; and the sample input it may write
//! first.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shared::spec::SampleSpec;

use super::emitter::Emitter;
use super::error::{OffsetSaveError, RunError};
use super::synthetic::log_line;
use crate::item::Payload;

/// Writes `sample.count` synthetic log lines to `path` (creating folders).
pub(crate) fn write_sample(path: &Path, sample: &SampleSpec) -> std::io::Result<()> {
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
pub(super) fn read_offset(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Persists an offset atomically (write a temporary file, then rename).
fn write_offset(path: &Path, offset: u64) -> Result<(), OffsetSaveError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|error| OffsetSaveError {
            path: path.to_owned(),
            error,
        })
}
/// How often a following file source looks for new lines, and how often
/// a source persists its offset.
pub(super) const FOLLOW_POLL: Duration = Duration::from_millis(100);

pub(super) fn run(
    mut reader: BufReader<File>,
    mut offset: u64,
    follow: bool,
    offset_file: Option<&Path>,
    out: &mut Emitter<'_>,
) -> Result<(), RunError> {
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
            Err(e) => break Err(RunError::Read(e)),
        };
        let complete = buf.last() == Some(&b'\n');
        if n == 0 || (follow && !complete) {
            // At the end for now: a following source waits for more (and
            // for the rest of a half-written line); a plain one is done.
            if !follow {
                break Ok(());
            }
            let core = out.core;
            if !out.flush() || out.wait(|| core.stop.wait_timeout(FOLLOW_POLL)) {
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
    result.and(save(offset).map_err(RunError::from))
}
