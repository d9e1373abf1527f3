//! How a failure to open a source, a sink or a dead-letter target is
//! worded: what failed, as the spec names it, and the kind of failure
//! ("entity not found", "address in use"). The operating system's or the
//! database's own text — which names server paths, hosts and SQL — goes to
//! the log, so a server can hand the wording to any client.

/// A failure to open (or write) something a spec names, as the user sees
/// it: what failed and the kind of failure, never the OS's or database's
/// own text (that went to the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// An I/O error: its kind is shown.
    #[error("{what}: {kind}")]
    Io {
        /// What failed, as the spec names it.
        what: String,
        /// The kind of I/O error ("entity not found", "address in use").
        kind: std::io::ErrorKind,
    },
    /// Another error (a database's): only that it failed is shown.
    #[error("{what}: failed (the server's log has the details)")]
    Other {
        /// What failed, as the spec names it.
        what: String,
    },
}

/// `what` failed with an I/O error: its kind is shown, its text logged.
pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Failure {
    tracing::warn!(%what, error = %e, "cannot open");
    Failure::Io {
        what: what.to_string(),
        kind: e.kind(),
    }
}

/// `what` failed with another error (a database's): only that it failed
/// is shown, the error is logged.
pub fn other(what: impl std::fmt::Display, e: &dyn std::fmt::Display) -> Failure {
    tracing::warn!(%what, error = %e, "cannot open");
    Failure::Other {
        what: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_keeps_the_os_text_out() {
        let e = std::io::Error::from_raw_os_error(2);
        let text = io("source file `in.jsonl`", &e).to_string();
        assert_eq!(text, "source file `in.jsonl`: entity not found");
        assert!(!text.contains("os error"));
        let text = other(
            "sink postgres",
            &"password authentication failed for user x at 10.0.0.5",
        )
        .to_string();
        assert!(!text.contains("10.0.0.5"));
    }
}
