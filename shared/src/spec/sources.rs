//! Sources: where a pipeline's items come from.

use serde::{Deserialize, Serialize};

use super::defaults;
use super::limits;
use super::validation::Validator;

/// Where items come from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// Generated items: JSON log lines by default.
    Synthetic {
        /// Stop after this many items.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
        /// Stop after this long.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// Items per second; as fast as possible when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<f64>,
        /// Shape of each item.
        #[serde(default)]
        payload: Payload,
        /// Share of lines that are not valid JSON, 0..=1.
        #[serde(default)]
        malformed_share: f64,
        /// Share of lines that reuse an earlier record's key, 0..=1.
        #[serde(default)]
        duplicate_share: f64,
        /// Seed, so a run can be repeated exactly.
        #[serde(default)]
        seed: u64,
    },
    /// A file of JSON lines, one item per line (also how leftovers replay).
    File {
        /// Path of the file.
        path: String,
        /// Keep reading as the file grows (like `tail -f`) until stopped.
        #[serde(default)]
        follow: bool,
        /// Where to keep the byte offset of the next unread line, so a
        /// restarted job resumes where the last one stopped (no duplicates).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset_file: Option<String>,
        /// Write a sample of synthetic log lines to `path` first if the
        /// file does not exist (how the log-cleaning templates run out of
        /// the box).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample: Option<SampleSpec>,
    },
    /// Lines POSTed over HTTP, one item per line. Under a `block` queue a
    /// request waits for room; under `reject` a full queue answers 429 with
    /// how many lines were taken.
    HttpIngest {
        /// Address the ingest endpoint listens on when run headless
        /// (`queuelab run`); the server mounts it under the job instead.
        #[serde(default = "defaults::ingest_bind")]
        bind: String,
    },
    /// JSON lines from TCP clients (the article's StreamReader). A full
    /// queue stops the reading, so TCP flow control pushes back on the
    /// client: nothing is dropped.
    Tcp {
        /// Address to listen on; port 0 picks a free one.
        bind: String,
        /// Stop after this many connections have come and gone; until
        /// stopped when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connections: Option<u64>,
    },
}

/// A sample file of synthetic JSON log lines.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleSpec {
    /// Lines in the sample.
    pub count: u64,
    /// Share of malformed lines, 0..=1.
    #[serde(default)]
    pub malformed_share: f64,
    /// Share of lines reusing an earlier `id`, 0..=1.
    #[serde(default)]
    pub duplicate_share: f64,
    /// Seed, so the sample is the same every time.
    #[serde(default)]
    pub seed: u64,
}

/// Shape of a synthetic item.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// `{"id": "...", "level": "INFO", "msg": "...", "ts": ...}`
    #[default]
    LogLine,
    /// A bare sequence number: the cheapest item, for raw queue throughput.
    Counter,
}

impl SourceSpec {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Synthetic { .. } => "synthetic",
            SourceSpec::File { .. } => "file",
            SourceSpec::Tcp { .. } => "tcp",
            SourceSpec::HttpIngest { .. } => "http_ingest",
        }
    }

    /// Checks the source's fields (paths `source.…`).
    pub(super) fn validate(&self, v: &mut Validator) {
        match self {
            SourceSpec::Synthetic {
                count,
                duration_ms,
                rate,
                malformed_share,
                duplicate_share,
                ..
            } => {
                if count.is_none() && duration_ms.is_none() {
                    v.err(
                        "source",
                        "a synthetic source needs `count` or `duration_ms` (or both)".into(),
                    );
                }
                if *duration_ms == Some(0) {
                    v.err("source.duration_ms", "must be at least 1".into());
                }
                if let Some(rate) = rate
                    && !(rate.is_finite() && (limits::MIN_RATE..=limits::MAX_RATE).contains(rate))
                {
                    v.err(
                        "source.rate",
                        format!(
                            "must be between {} and {}",
                            limits::MIN_RATE,
                            limits::MAX_RATE
                        ),
                    );
                }
                v.check_share("source.malformed_share", *malformed_share);
                v.check_share("source.duplicate_share", *duplicate_share);
                if malformed_share + duplicate_share > 1.0 {
                    v.err(
                        "source.duplicate_share",
                        "malformed_share + duplicate_share must not exceed 1".into(),
                    );
                }
            }
            SourceSpec::File {
                path,
                offset_file,
                sample,
                ..
            } => {
                v.check_path("source.path", path);
                if let Some(o) = offset_file {
                    v.check_path("source.offset_file", o);
                }
                if let Some(s) = sample {
                    if !(1..=100_000_000).contains(&s.count) {
                        v.err(
                            "source.sample.count",
                            "must be between 1 and 100000000".into(),
                        );
                    }
                    v.check_share("source.sample.malformed_share", s.malformed_share);
                    v.check_share("source.sample.duplicate_share", s.duplicate_share);
                }
            }
            SourceSpec::HttpIngest { bind } => {
                if bind.parse::<std::net::SocketAddr>().is_err() {
                    v.err(
                        "source.bind",
                        format!("`{bind}` is not an address like 127.0.0.1:9010"),
                    );
                }
            }
            SourceSpec::Tcp { bind, connections } => {
                if bind.parse::<std::net::SocketAddr>().is_err() {
                    v.err(
                        "source.bind",
                        format!("`{bind}` is not an address like 127.0.0.1:9000"),
                    );
                }
                if *connections == Some(0) {
                    v.err("source.connections", "must be at least 1".into());
                }
            }
        }
    }
}
