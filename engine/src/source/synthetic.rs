//! The synthetic source: counters or log lines at a given rate, for a
//! count or a duration; [`log_line`] writes the JSON log lines (a share
//! malformed, a share with a duplicate `id`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::spec::{Payload as PayloadShape, SourceSpec};

use super::emitter::Emitter;
use super::error::RunError;
use crate::item::Payload;

/// What the synthetic source does next.
enum Next {
    /// Produce this payload, due at that time when the source has a rate.
    Emit(Payload, Option<Instant>),
    /// Wait until then (the rate), then ask again.
    WaitUntil(Instant),
    /// The count or the duration is reached, or the source was stopped.
    Done,
}

/// The synthetic source's plan, apart from how it waits: shared by the
/// thread that runs it and the task that runs it on the job's runtime.
struct Synth {
    count: Option<u64>,
    start: Instant,
    deadline: Option<Instant>,
    period: Option<f64>,
    payload: PayloadShape,
    malformed_share: f64,
    duplicate_share: f64,
    rng: SmallRng,
}

impl Synth {
    fn new(spec: &SourceSpec) -> Self {
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
        let start = Instant::now();
        Self {
            count,
            start,
            deadline: duration_ms.map(|ms| start + Duration::from_millis(ms)),
            period: rate.map(|r| 1.0 / r),
            payload,
            malformed_share,
            duplicate_share,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The next step for item number `seq`.
    fn next(&mut self, seq: u64, stopping: bool) -> Next {
        if self.count.is_some_and(|c| seq >= c) || stopping {
            return Next::Done;
        }
        let due = self
            .period
            .map(|period| self.start + Duration::from_secs_f64(seq as f64 * period));
        if let Some(due) = due
            && due > Instant::now()
        {
            return Next::WaitUntil(due);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Next::Done;
        }
        let payload = match self.payload {
            PayloadShape::Counter => Payload::Counter(seq),
            PayloadShape::LogLine => Payload::Line(log_line(
                seq,
                self.malformed_share,
                self.duplicate_share,
                &mut self.rng,
            )),
        };
        Next::Emit(payload, due)
    }
}

/// Runs the synthetic source on the calling thread.
pub(super) fn run(spec: &SourceSpec, out: &mut Emitter<'_>) -> Result<(), RunError> {
    let mut synth = Synth::new(spec);
    loop {
        let seq = out.core.produced.load(Ordering::Relaxed);
        match synth.next(seq, out.stopping()) {
            Next::Done => return Ok(()),
            Next::WaitUntil(due) => {
                if !out.flush() {
                    return Ok(());
                }
                let core = out.core;
                let wait = due.saturating_duration_since(Instant::now());
                if out.wait(|| core.stop.wait_timeout(wait)) {
                    return Ok(());
                }
            }
            Next::Emit(payload, due) => {
                if !out.emit_due(payload, due) {
                    return Ok(());
                }
            }
        }
    }
}

/// Runs the synthetic source as a task on the job's runtime, when the
/// first stage is async: its items reach the stage's tasks without a
/// cross-thread wake-up. It yields after every chunk, so it shares the
/// runtime's threads with the stage it feeds.
pub(super) async fn run_async(spec: &SourceSpec, out: &mut Emitter<'_>) {
    let mut synth = Synth::new(spec);
    loop {
        let seq = out.core.produced.load(Ordering::Relaxed);
        match synth.next(seq, out.stopping()) {
            Next::Done => break,
            Next::WaitUntil(due) => {
                if !out.flush_async().await {
                    return;
                }
                let core = out.core;
                let stopped = out
                    .wait_async(async {
                        tokio::select! {
                            () = core.stop.cancelled() => true,
                            () = tokio::time::sleep_until(due.into()) => false,
                        }
                    })
                    .await;
                if stopped {
                    break;
                }
            }
            Next::Emit(payload, due) => {
                if !out.emit_async(payload, due).await {
                    return;
                }
            }
        }
    }
    // Handed on here, not by the emitter's drop, which would block.
    out.flush_async().await;
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
