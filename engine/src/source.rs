//! Sources: the thread that produces a job's items.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::spec::{Payload as PayloadShape, SourceSpec};

use crate::item::{Item, Payload};
use crate::job::JobCore;
use crate::queue::{PushError, Tx};
use crate::stats::{NodeStats, Stride};

/// A source ready to run: its spec, plus the file already opened so a bad
/// path fails the start instead of the run.
#[derive(Debug)]
pub enum Source {
    /// Generated items.
    Synthetic(SourceSpec),
    /// Lines of an opened file.
    File(BufReader<File>),
}

impl Source {
    /// Prepares `spec`, opening its file if it has one.
    pub fn open(spec: &SourceSpec) -> Result<Self, String> {
        match spec {
            SourceSpec::Synthetic { .. } => Ok(Source::Synthetic(spec.clone())),
            SourceSpec::File { path } => File::open(path)
                .map(|f| Source::File(BufReader::new(f)))
                .map_err(|e| format!("source file {path}: {e}")),
        }
    }
}

/// The source's connection to the first node.
struct Emitter<'a> {
    core: &'a JobCore,
    tx: Tx,
    first: Arc<NodeStats>,
    seq: u64,
    /// Which items to stamp with a birth time (for end-to-end latency).
    stride: Stride,
    last_timed: Option<(Instant, u64)>,
}

impl Emitter<'_> {
    /// Produces one item; false when the job is aborting and the source
    /// must stop (the item went to leftovers).
    fn emit(&mut self, payload: Payload) -> bool {
        let born = self.stride.tick().then(Instant::now);
        if let Some(now) = born {
            if let Some((then, seq)) = self.last_timed {
                let per_item = (now - then) / (self.seq - seq).max(1) as u32;
                self.stride.adapt(per_item);
            }
            self.last_timed = Some((now, self.seq));
        }
        let item = Item::new(self.seq, payload, born);
        self.seq += 1;
        self.core.produced.fetch_add(1, Ordering::Relaxed);
        match self.tx.push_blocking(item, born, &self.core.abort) {
            Ok(_) => true,
            Err(PushError::Aborted(item)) => {
                self.core.leftovers.put(&self.first, item);
                false
            }
        }
    }

    fn stopping(&self) -> bool {
        self.core.stop.is_set()
    }
}

/// Runs the source on the current thread until it is exhausted, stopped
/// (drain) or aborted. Dropping `tx` at the end starts the drain cascade.
pub fn run(source: Source, core: &JobCore, tx: Tx, first: Arc<NodeStats>) -> Result<(), String> {
    let mut out = Emitter {
        core,
        tx,
        first,
        seq: 0,
        stride: Stride::default(),
        last_timed: None,
    };
    match source {
        Source::Synthetic(spec) => synthetic(&spec, &mut out),
        Source::File(reader) => file(reader, &mut out),
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
        let seq = out.seq;
        if count.is_some_and(|c| seq >= c) || out.stopping() {
            return Ok(());
        }
        if let Some(period) = period {
            let due = start + Duration::from_secs_f64(seq as f64 * period);
            let now = Instant::now();
            if due > now && out.core.stop.wait_timeout(due - now) {
                return Ok(());
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

fn file(mut reader: BufReader<File>, out: &mut Emitter<'_>) -> Result<(), String> {
    let mut buf = Vec::new();
    loop {
        if out.stopping() {
            return Ok(());
        }
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading source file: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        if !out.emit(Payload::Line(line.to_owned())) {
            return Ok(());
        }
    }
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
