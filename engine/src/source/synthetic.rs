//! The synthetic source: counters or log lines at a given rate, for a
//! count or a duration; [`log_line`] writes the JSON log lines (a share
//! malformed, a share with a duplicate `id`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shared::spec::{Payload as PayloadShape, SourceSpec};

use super::{Emitter, RunError};
use crate::item::Payload;

pub(super) fn run(spec: &SourceSpec, out: &mut Emitter<'_>) -> Result<(), RunError> {
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
                let core = out.core;
                if out.wait(|| core.stop.wait_timeout(due - now)) {
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
