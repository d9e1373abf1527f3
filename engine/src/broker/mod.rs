//! Broker edges: a stage whose input is a NATS JetStream stream, so its
//! workers can run in other processes on other hosts, with the same
//! accounting as a stage in memory.
//!
//! The data path of a broker stage `s`, as the files show it:
//!
//! ```text
//!   upstream ──queue──▶ publish ──▶ [QLI_job_s] ──▶ worker × N ──▶ [QLO_job_s] ──▶ collect ──queue──▶ downstream
//!   (server)            (server)     stream         (anywhere)       stream        (server)
//! ```
//!
//! * `wire` — the envelope of an item and of a worker's result.
//! * `edge` — names, streams and the shared consumer ([`EdgeNames`],
//!   [`EdgeLimits`]), the broker's figures ([`EdgeStats`]), and what is
//!   read back out of a stream when a job is aborted.
//! * `publish` — the server task that moves items from the stage's
//!   in-memory input into its stream, with a message id per item, and
//!   meets a full stream with the stage's `when_full`.
//! * `worker` — [`RemoteStage`]: a stage's workers wherever they run (a
//!   `queuelab worker` process, or the server's own share). Each takes an
//!   item from the shared consumer, runs it with the same stage machinery
//!   as in memory (policy, attempts, timeouts, retries), stores the result
//!   in the output stream and only then acks the input.
//! * `collect` — the server task that reads results back, books each one
//!   exactly once (passed on, filtered, dropped, dead letter), counts
//!   redeliveries, and closes the downstream queue once every published
//!   item has come back: the drain cascade crosses the broker.
//! * `stage` — [`BrokerStage`]: the server's view of one broker stage
//!   of a running job (its edge, its figures, its desired workers and the
//!   server's own share).
//!
//! Nothing here is placed: the server decides which worker runs what.

use std::time::Duration;

mod collect;
pub mod edge;
mod ledger;
mod publish;
mod stage;
pub mod wire;
mod worker;

pub use edge::{EdgeLimits, EdgeNames, EdgeStats};
pub use stage::BrokerStage;
pub use worker::{Assignment, RemoteStage, WorkerCounts};

pub(crate) use collect::collect;
pub(crate) use ledger::Flow;
pub(crate) use publish::{per_message, publish};
pub(crate) use stage::watch;

/// The dead-letter kind of an item or result larger than the broker
/// takes in one message.
pub const TOO_LARGE: &str = "too large for the broker";

/// How long connecting to the broker may take before a start fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a broker edge could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No broker URL: the spec says `env:QUEUELAB_NATS_URL` and the
    /// server has none configured.
    #[error("no broker is configured (set QUEUELAB_NATS_URL or the server's --nats-url)")]
    NoUrl,
    /// The broker did not answer. The text a client sees names neither
    /// the URL nor the client library's words (both go to the log).
    #[error("the broker is unreachable")]
    Connect {
        /// Where.
        url: String,
        /// The client's text, for the log.
        detail: String,
    },
    /// A stream or consumer could not be made or found.
    #[error("the broker refused to set up the job's stream")]
    Setup(String),
}

impl BrokerError {
    pub(crate) fn setup(e: impl std::fmt::Display) -> Self {
        BrokerError::Setup(e.to_string())
    }
}

/// The broker URL a stage names, with `env:QUEUELAB_NATS_URL` read from
/// `configured` (the server's setting) or, failing that, the environment.
pub fn resolve_url(written: &str, configured: Option<&str>) -> Result<String, BrokerError> {
    if written.starts_with("env:") {
        if let Some(url) = configured {
            return Ok(url.to_owned());
        }
        return std::env::var(shared::spec::NATS_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or(BrokerError::NoUrl);
    }
    Ok(written.to_owned())
}

/// Connects to the broker, bounded by [`CONNECT_TIMEOUT`].
pub async fn connect(url: &str) -> Result<async_nats::Client, BrokerError> {
    let fail = |detail: String| {
        tracing::warn!(url = %url, error = %detail, "cannot reach the broker");
        BrokerError::Connect {
            url: url.to_owned(),
            detail,
        }
    };
    let options = async_nats::ConnectOptions::new().connection_timeout(CONNECT_TIMEOUT);
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect(url)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail("timed out".into())),
    }
}

/// A bounded backoff between tries of a refused or failed broker call.
pub(crate) fn backoff(tries: u32) -> Duration {
    Duration::from_millis((2u64 << tries.min(7)).min(200))
}
