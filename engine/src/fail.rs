//! How a failure to open a source, a sink or a dead-letter target is
//! worded: what failed, as the spec names it, and the kind of failure
//! ("entity not found", "address in use"). The operating system's or the
//! database's own text — which names server paths, hosts and SQL — goes to
//! the log, so a server can hand the wording to any client.

/// `what` failed with an I/O error: its kind is shown, its text logged.
pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> String {
    tracing::warn!(%what, error = %e, "cannot open");
    format!("{what}: {}", e.kind())
}

/// `what` failed with another error (a database's): only that it failed
/// is shown, the error is logged.
pub fn other(what: impl std::fmt::Display, e: &dyn std::fmt::Display) -> String {
    tracing::warn!(%what, error = %e, "cannot open");
    format!("{what}: failed (the server's log has the details)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_keeps_the_os_text_out() {
        let e = std::io::Error::from_raw_os_error(2);
        let text = io("source file `in.jsonl`", &e);
        assert_eq!(text, "source file `in.jsonl`: entity not found");
        assert!(!text.contains("os error"));
        let text = other(
            "sink postgres",
            &"password authentication failed for user x at 10.0.0.5",
        );
        assert!(!text.contains("10.0.0.5"));
    }
}
