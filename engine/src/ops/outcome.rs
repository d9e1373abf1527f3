//! What an op's attempt comes to: passed, filtered, failed with an
//! [`OpError`] (retryable or not) or interrupted. Below every op family.

use std::time::Duration;

/// Why an operation failed on an item: a stable `kind` for counting, a
/// `detail` for the dead letter, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Category, bounded in number (used as a metric label).
    pub kind: &'static str,
    /// The specific reason.
    pub detail: String,
    /// Transient (timeouts, injected faults, 5xx): a retry policy retries it.
    pub retryable: bool,
}

impl OpError {
    /// The error of an attempt that ran out of time.
    pub fn timed_out(limit: Duration) -> Self {
        OpError {
            kind: "timed out",
            detail: format!("no result within {} ms", limit.as_millis()),
            retryable: true,
        }
    }
}

/// What an operation decided about an item it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it downstream.
    Pass,
    /// Removed on purpose by a filter.
    Filter,
}

/// Why an operation gave no verdict. The item stays with the caller
/// (operations only borrow it), so nothing is lost on failure or timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpFailure {
    /// The operation failed.
    Error(OpError),
    /// The job was aborted mid-operation; the item goes to leftovers.
    Interrupted,
}

impl From<OpError> for OpFailure {
    fn from(e: OpError) -> Self {
        OpFailure::Error(e)
    }
}

/// The result of one attempt.
pub type OpResult = Result<Verdict, OpFailure>;
