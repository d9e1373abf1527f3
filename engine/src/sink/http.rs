//! The HTTP sink: POSTs each batch as JSON lines, driven on the job's
//! runtime; 5xx and 429 are outages (retried), other statuses data errors.

use super::writer::{SinkWriter, WriteError};
use crate::item::Item;

/// POSTs each batch as JSON lines, driven on the job's runtime.
pub(super) struct HttpWriter {
    pub(super) client: reqwest::Client,
    pub(super) url: String,
    pub(super) runtime: tokio::runtime::Handle,
}

impl SinkWriter for HttpWriter {
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError> {
        let mut body = String::new();
        for item in items {
            body.push_str(&item.payload.to_line());
            body.push('\n');
        }
        let request = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| {
                // Only the few words of `describe` leave the engine: an OS
                // error would tell a refused port from a closed one.
                tracing::debug!(url = %self.url, error = %e, "http sink request failed");
                match crate::egress::describe(&e) {
                    // Not transient: every item is refused alike.
                    crate::egress::REFUSED => WriteError::Data(crate::egress::REFUSED.into()),
                    reason => WriteError::Outage(format!("POST {}: {reason}", self.url)),
                }
            })?;
            let status = response.status();
            let _ = response.bytes().await;
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 {
                Err(WriteError::Outage(format!(
                    "POST {}: HTTP {}",
                    self.url,
                    status.as_u16()
                )))
            } else {
                Err(WriteError::Data(format!("HTTP {}", status.as_u16())))
            }
        })
    }
}
