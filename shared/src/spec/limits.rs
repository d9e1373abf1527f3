//! Limits enforced by [`PipelineSpec::validate`](super::PipelineSpec::validate),
//! and the defaults of omitted fields (re-exported as `spec::defaults`).

/// Most workers per stage.
pub const MAX_WORKERS: u32 = 4096;
/// Largest bounded capacity.
pub const MAX_CAPACITY: u64 = 10_000_000;
/// Most stages per pipeline.
pub const MAX_STAGES: usize = 32;
/// Largest async concurrency.
pub const MAX_CONCURRENCY: u32 = 100_000;
/// Longest simulated latency, in milliseconds.
pub const MAX_LATENCY_MS: f64 = 600_000.0;
/// Longest spin per item, in microseconds.
pub const MAX_SPIN_US: u64 = 10_000_000;
/// Lowest rate (source or limit), items per second.
pub const MIN_RATE: f64 = 0.001;
/// Highest synthetic rate, items per second.
pub const MAX_RATE: f64 = 100_000_000.0;
/// Longest drain deadline, in milliseconds.
pub const MAX_DRAIN_DEADLINE_MS: u64 = 3_600_000;
/// Most attempts of a retry policy.
pub const MAX_ATTEMPTS: u32 = 100;
/// Longest per-item timeout and retry backoff, in milliseconds.
pub const MAX_WAIT_MS: f64 = 3_600_000.0;
/// Deepest nesting of arrays and objects in a `filter`'s values or a
/// `map`'s `set`: the spec's JSON form (how the store keeps it) must
/// stay within the 128 levels serde_json reads back. TOML's own limit
/// is per construct, so table headers and arrays together go deeper.
pub const MAX_VALUE_DEPTH: usize = 64;
/// Most fields in a `parse_json` schema.
pub const MAX_SCHEMA_FIELDS: usize = 64;
/// Longest field name in a `parse_json` schema, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 128;

/// The only environment variable a broker URL may name: specs come from
/// users, and must not read the server's other variables.
pub const NATS_URL_ENV: &str = "QUEUELAB_NATS_URL";

/// Defaults for omitted fields, shared with the dashboard's form.
pub mod defaults {
    /// Default queue capacity.
    pub const CAPACITY: u64 = 1000;
    /// Default drain deadline.
    pub fn drain_deadline_ms() -> u64 {
        30_000
    }
    /// Default metrics sample rate.
    pub fn sample_hz() -> f64 {
        4.0
    }
    /// Default number of workers.
    pub fn workers() -> crate::spec::Limit {
        crate::spec::Limit::Fixed(1)
    }
    /// Default SQL table.
    pub fn table() -> String {
        "records".into()
    }
    /// Default key field.
    pub fn key() -> String {
        "id".into()
    }
    /// Default table of SQLite dead letters.
    pub fn dead_letter_table() -> String {
        "dead_letters".into()
    }
    /// Default address of a headless ingest endpoint.
    pub fn ingest_bind() -> String {
        "127.0.0.1:9010".into()
    }
    /// Default connections per database pool.
    pub fn pool_size() -> u32 {
        2
    }
    /// Default items per sink write.
    pub fn batch_size() -> u32 {
        500
    }
    /// Default batch linger.
    pub fn linger_ms() -> u64 {
        100
    }
    pub use crate::spec::retry::sink_retry;
    /// `true`, for boolean fields that default to on.
    pub fn yes() -> bool {
        true
    }
    /// First retry backoff.
    pub fn retry_base_ms() -> f64 {
        100.0
    }
    /// Longest retry backoff.
    pub fn retry_cap_ms() -> f64 {
        10_000.0
    }
    /// A broker stage's URL when omitted: the server's configured broker.
    pub fn nats_url() -> String {
        format!("env:{}", crate::spec::limits::NATS_URL_ENV)
    }
    /// Fields a parsed log record needs by default.
    pub fn required_fields() -> Vec<String> {
        vec!["id".into(), "level".into(), "msg".into()]
    }
}
