//! The `http` op: one request per item, through the stage's client.

use shared::spec::HttpMethod;

use super::outcome::OpError;
use crate::item::Item;

/// An HTTP request per item. One `reqwest::Client` (one connection pool)
/// per stage; thread workers drive it on the job's runtime, blocking only
/// themselves.
#[derive(Debug, Clone)]
pub struct HttpOp {
    pub(super) client: reqwest::Client,
    pub(super) method: HttpMethod,
    pub(super) url: String,
    pub(super) runtime: Option<tokio::runtime::Handle>,
}

impl HttpOp {
    pub(super) async fn call(&self, item: &Item) -> Result<(), OpError> {
        let request = match self.method {
            HttpMethod::Get => self.client.get(&self.url),
            HttpMethod::Post => self.client.post(&self.url).body(item.payload.to_line()),
        };
        let response = request.send().await.map_err(|e| {
            // Only the few words of `describe` reach the dead letter: an
            // OS error would tell a refused port from a closed one.
            tracing::debug!(url = %self.url, error = %e, "http operation failed");
            let reason = crate::egress::describe(&e);
            OpError {
                kind: reason,
                detail: reason.to_owned(),
                retryable: reason != crate::egress::REFUSED,
            }
        })?;
        let status = response.status();
        if status.is_success() {
            // Read the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            return Ok(());
        }
        let retryable = status.is_server_error() || status.as_u16() == 429;
        Err(OpError {
            kind: if retryable {
                "http 5xx/429"
            } else {
                "http 4xx"
            },
            detail: format!("HTTP {}", status.as_u16()),
            retryable,
        })
    }
}
