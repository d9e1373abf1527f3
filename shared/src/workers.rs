//! Worker processes: what `queuelab worker` and the server say to each
//! other, and what `GET /api/v1/workers` shows.
//!
//! A worker registers ([`RegisterRequest`] → [`Registered`]), then
//! heartbeats ([`Heartbeat`] → [`HeartbeatReply`]) well inside its lease.
//! Each reply is the whole of what the worker should be running — every
//! [`Placed`] assignment with its worker count — so a worker that missed
//! replies, or a server that restarted, converges on the next beat. A
//! worker whose lease runs out is marked lost and its share is placed
//! elsewhere; what it held unacked is redelivered by the broker.

use serde::{Deserialize, Serialize};

use crate::spec::StageSpec;

/// Where one broker stage of one job lives on the broker: the names of
/// its streams, subjects and message ids.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EdgeNames {
    /// The job's id.
    pub job: String,
    /// The stage's name.
    pub stage: String,
}

/// A name's characters as a stream name or a subject token allows.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl EdgeNames {
    /// Names for `stage` of `job`.
    pub fn new(job: &str, stage: &str) -> Self {
        Self {
            job: job.to_owned(),
            stage: stage.to_owned(),
        }
    }
    /// The input stream.
    pub fn input_stream(&self) -> String {
        format!("QLI_{}_{}", token(&self.job), token(&self.stage))
    }
    /// The subject items are published on.
    pub fn input_subject(&self) -> String {
        format!("ql.{}.{}.in", token(&self.job), token(&self.stage))
    }
    /// The output stream (the workers' results).
    pub fn output_stream(&self) -> String {
        format!("QLO_{}_{}", token(&self.job), token(&self.stage))
    }
    /// The subject results are published on.
    pub fn output_subject(&self) -> String {
        format!("ql.{}.{}.out", token(&self.job), token(&self.stage))
    }
    /// The message id of an input message carrying the edge's items
    /// `first..=last` (`job:edge:first-last`): a publish retried after a
    /// lost ack is stored once.
    pub fn input_id(&self, first: u64, last: u64) -> String {
        format!("{}:{}:{first}-{last}", self.job, self.stage)
    }
    /// The message id of part `part` of the results of that message.
    pub fn output_id(&self, first: u64, last: u64, part: u32) -> String {
        format!("{}:{}.out:{first}-{last}.{part}", self.job, self.stage)
    }
}

/// What a worker is told to run: one broker stage of one job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The edge's streams.
    pub names: EdgeNames,
    /// The stage's position in its pipeline (it seeds the workers' RNGs
    /// as in memory).
    pub index: usize,
    /// The stage.
    pub stage: StageSpec,
    /// The broker, as the server reaches it (a worker may be told its own
    /// with `--nats-url`).
    pub url: String,
    /// The job's seed.
    pub seed: u64,
}

/// What one host's workers of one stage did so far.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    /// Items settled (each delivery that ended in a stored result).
    pub processed: u64,
    /// Passed on downstream.
    pub passed: u64,
    /// Filtered out.
    pub filtered: u64,
    /// Failed for good (dropped or dead letters).
    pub failed: u64,
    /// Deliveries after an item's first (the item had been held by a
    /// worker that was lost).
    pub redelivered: u64,
}

impl StageCounts {
    /// Adds `other` in.
    pub fn add(&mut self, other: &StageCounts) {
        // Counts come from other processes: a bad one must not overflow.
        self.processed = self.processed.saturating_add(other.processed);
        self.passed = self.passed.saturating_add(other.passed);
        self.filtered = self.filtered.saturating_add(other.filtered);
        self.failed = self.failed.saturating_add(other.failed);
        self.redelivered = self.redelivered.saturating_add(other.redelivered);
    }
}

/// A worker introducing itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Its name (`HOST-N`), unique among live workers.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{1,64}$"))]
    pub name: String,
    /// The host it runs on.
    #[cfg_attr(feature = "openapi", schema(max_length = 253))]
    pub host: String,
    /// Its build.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub version: String,
    /// Labels a stage's placement can ask for.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 16))]
    pub labels: Vec<String>,
    /// Most stage workers it wants to run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 4096))]
    pub capacity_hint: Option<u32>,
}

/// The most labels a worker carries.
pub const MAX_LABELS: usize = 16;

impl RegisterRequest {
    /// Every problem with the request, as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let name_ok = (1..=64).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !name_ok {
            out.push((
                "name".into(),
                "1 to 64 letters, digits, `.`, `-` or `_`".into(),
            ));
        }
        if self.host.is_empty() || self.host.len() > 253 || self.host.chars().any(char::is_control)
        {
            out.push(("host".into(), "1 to 253 printable characters".into()));
        }
        if self.version.len() > 64 || self.version.chars().any(char::is_control) {
            out.push(("version".into(), "at most 64 printable characters".into()));
        }
        if self.labels.len() > MAX_LABELS {
            out.push(("labels".into(), format!("at most {MAX_LABELS}")));
        }
        for (i, l) in self.labels.iter().enumerate() {
            if !crate::spec::is_label(l) {
                out.push((
                    format!("labels[{i}]"),
                    "1 to 64 letters, digits, `-` or `_`".into(),
                ));
            }
        }
        if let Some(c) = self.capacity_hint
            && !(1..=crate::spec::limits::MAX_WORKERS).contains(&c)
        {
            out.push((
                "capacity_hint".into(),
                format!("must be between 1 and {}", crate::spec::limits::MAX_WORKERS),
            ));
        }
        out
    }
}

/// The server's answer to a registration.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The worker's id, for its heartbeats.
    pub id: String,
    /// A worker not heard from for this long is lost.
    pub lease_ms: u64,
    /// How often to beat.
    pub heartbeat_ms: u64,
}

/// One assignment as a worker runs it, reported with each beat.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// Which stage of which job.
    pub names: EdgeNames,
    /// Workers running it.
    pub workers: u32,
    /// What they did so far.
    pub counts: StageCounts,
}

/// A worker's heartbeat.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// What it runs now.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1024))]
    pub running: Vec<Running>,
}

/// The most assignments a heartbeat may report.
pub const MAX_RUNNING: usize = 1024;

impl Heartbeat {
    /// Every problem with the beat, as `(field, message)`: a beat comes
    /// from another process, and its names end up in the server's maps,
    /// logs and metrics, so each is bounded like a spec's.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.running.len() > MAX_RUNNING {
            out.push((
                "running".into(),
                format!("at most {MAX_RUNNING} assignments"),
            ));
        }
        for (i, r) in self.running.iter().enumerate().take(MAX_RUNNING) {
            for (field, value) in [("job", &r.names.job), ("stage", &r.names.stage)] {
                if !crate::spec::is_label(value) {
                    out.push((
                        format!("running[{i}].names.{field}"),
                        "1 to 64 letters, digits, `-` or `_`".into(),
                    ));
                }
            }
            if r.workers > crate::spec::limits::MAX_WORKERS {
                out.push((
                    format!("running[{i}].workers"),
                    format!("at most {}", crate::spec::limits::MAX_WORKERS),
                ));
            }
        }
        out
    }
}

/// An assignment with the number of workers this worker should run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    /// What to run.
    pub assignment: Assignment,
    /// How many of the stage's workers run here.
    pub workers: u32,
    /// This host's share of the stage's live limits (they follow a tune;
    /// the assignment's spec holds the values the job started with).
    #[serde(default)]
    pub limits: HostLimits,
}

/// A broker stage's limits on one host. The job's `concurrency` and
/// `rate_limit` are job-wide budgets, and each host runs with its share of
/// them, by its share of the stage's workers ([`HostLimits::split`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HostLimits {
    /// Operations in flight at once (async stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Items per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
}

impl HostLimits {
    /// Splits the job-wide `total` over hosts running `workers` each: the
    /// rate in proportion, the concurrency by largest remainder (so the
    /// shares add up to the total), with at least 1 for each host that
    /// runs workers at all. A host with no workers gets nothing.
    pub fn split(total: HostLimits, workers: &[u32]) -> Vec<HostLimits> {
        let all: u64 = workers.iter().map(|&n| u64::from(n)).sum();
        if all == 0 {
            return vec![HostLimits::default(); workers.len()];
        }
        let concurrency = total.concurrency.map(|c| {
            let c = u64::from(c);
            let mut shares: Vec<u64> = workers.iter().map(|&n| c * u64::from(n) / all).collect();
            let mut order: Vec<usize> = (0..workers.len()).collect();
            // Largest remainder first; ties in host order.
            order.sort_by_key(|&i| std::cmp::Reverse(c * u64::from(workers[i]) % all));
            let mut left = c.saturating_sub(shares.iter().sum());
            for &i in &order {
                if left == 0 {
                    break;
                }
                if workers[i] > 0 {
                    shares[i] += 1;
                    left -= 1;
                }
            }
            shares
        });
        workers
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                if n == 0 {
                    return HostLimits::default();
                }
                HostLimits {
                    concurrency: concurrency
                        .as_ref()
                        .map(|c| u32::try_from(c[i]).unwrap_or(u32::MAX).max(1)),
                    rate_limit: total.rate_limit.map(|r| r * f64::from(n) / all as f64),
                }
            })
            .collect()
    }
}

/// The answer to a heartbeat: everything this worker should run now
/// (an assignment not listed is to be stopped).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The worker's assignments.
    pub assignments: Vec<Placed>,
}

/// A worker's state, as the server sees it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Beating within its lease.
    Active,
    /// Its lease ran out; its share went to the others.
    Lost,
}

/// A worker's figures in `GET /api/v1/workers`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its host.
    pub host: String,
    /// Its build.
    pub version: String,
    /// Its labels.
    pub labels: Vec<String>,
    /// Active or lost.
    pub state: WorkerState,
    /// Since its last heartbeat.
    pub last_heartbeat_ms_ago: u64,
    /// What it runs, with its counts.
    pub assignments: Vec<Running>,
    /// Its counts over every assignment it reported.
    pub counts: StageCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_other_processes_saturate() {
        let mut total = StageCounts {
            processed: u64::MAX - 1,
            ..Default::default()
        };
        total.add(&StageCounts {
            processed: 5,
            redelivered: 1,
            ..Default::default()
        });
        assert_eq!((total.processed, total.redelivered), (u64::MAX, 1));
    }

    #[test]
    fn batch_ids_name_their_range() {
        let names = EdgeNames::new("j1", "parse");
        assert_eq!(names.input_id(3, 9), "j1:parse:3-9");
        assert_eq!(names.output_id(3, 9, 1), "j1:parse.out:3-9.1");
    }
}

#[cfg(test)]
mod limits_tests {
    use super::HostLimits;

    #[test]
    fn job_wide_limits_are_split_by_share_of_the_workers() {
        let total = HostLimits {
            concurrency: Some(10),
            rate_limit: Some(90.0),
        };
        let shares = HostLimits::split(total, &[1, 2, 0, 3]);
        let c: Vec<_> = shares.iter().map(|s| s.concurrency).collect();
        let r: Vec<_> = shares.iter().map(|s| s.rate_limit).collect();
        assert_eq!(r, [Some(15.0), Some(30.0), None, Some(45.0)]);
        // 10 × (1, 2, 3)/6 = 1.67, 3.33, 5: the remainder goes to the first.
        assert_eq!(c, [Some(2), Some(3), None, Some(5)]);
        assert_eq!(c.iter().flatten().sum::<u32>(), 10);
        // Fewer permits than hosts: each host that runs workers gets one.
        let small = HostLimits::split(
            HostLimits {
                concurrency: Some(1),
                rate_limit: None,
            },
            &[2, 2],
        );
        assert_eq!(
            small.iter().map(|s| s.concurrency).collect::<Vec<_>>(),
            [Some(1), Some(1)]
        );
        assert!(small.iter().all(|s| s.rate_limit.is_none()));
        assert_eq!(
            HostLimits::split(total, &[0, 0]),
            vec![HostLimits::default(); 2]
        );
    }
}
