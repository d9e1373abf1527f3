//! The URLs a spec may hold: absolute HTTP URLs, or the built-in test
//! target of whatever runs the job. Below the ops and sinks that check
//! them.

/// What a URL starts with to mean the built-in test target of whatever
/// runs the job (`/target?fail_share=0.3&status=503`): the server's own
/// `/target`, or one `queuelab run` starts for the run. A template can then
/// call a flaky service without knowing the server's address.
pub const BUILTIN_TARGET: &str = "/target";

/// Whether `url` names the built-in test target (`/target`, `/target/…` or
/// `/target?…`).
pub fn is_builtin_target(url: &str) -> bool {
    url.strip_prefix(BUILTIN_TARGET)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
}

/// Whether a URL field holds an absolute HTTP URL or the built-in target.
pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://") || is_builtin_target(url)
}

/// What a URL field must hold, for its error message.
pub(crate) const HTTP_URL_RULE: &str =
    "must start with http:// or https://, or be /target… (the built-in test target)";
