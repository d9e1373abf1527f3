//! The collector: the server task that reads a broker stage's results
//! back and books each item exactly once.
//!
//! A result message carries the results of (part of) one input message.
//! The ledger books each item still open and skips one settled already
//! (a result delivered again while this task waited on a full downstream
//! queue, or stored twice), so what the broker repeats is never counted
//! twice. The passed items go on downstream, and only then is the result
//! acked. Once the publisher has finished and every item it opened is
//! settled, the collector drops its sender, and the drain cascade goes on
//! downstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use shared::spec::OnError;

use super::edge::collect_consumer;
use super::ledger::Flow;
use super::wire::decode_results;
use crate::core::JobCore;
use crate::queue::Tx;
use crate::stats::NodeStats;

/// Result messages asked for at once.
const PULL_BATCH: usize = 64;

/// Runs until every opened item is settled (then drops `tx`) or the job
/// aborts.
pub(crate) async fn collect(
    js: jetstream::Context,
    flow: Arc<Flow>,
    node: Arc<NodeStats>,
    core: Arc<JobCore>,
    tx: Tx,
    on_error: OnError,
) {
    let consumer = match collect_consumer(&js, &flow.names).await {
        Ok(c) => c,
        Err(e) => {
            core.fail(e.to_string());
            return;
        }
    };
    let mut out = VecDeque::new();
    'pull: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(job = %core.id, stage = %node.info.name, error = %e, "cannot read results; retrying");
                tokio::select! {
                    _ = core.abort.cancelled() => break 'pull,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue 'pull,
                }
            }
        };
        loop {
            if flow.all_back() {
                break 'pull;
            }
            let next = tokio::select! {
                biased;
                _ = core.abort.cancelled() => break 'pull,
                _ = flow.changed.notified() => continue,
                // The last item may have settled before the publisher
                // finished: look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                m = messages.next() => m,
            };
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "result pull interrupted");
                    continue;
                }
                None => continue 'pull,
            };
            let results = match decode_results(&msg.payload) {
                Ok(r) => r,
                Err(e) => {
                    // Not a worker's: nothing to book, never to return.
                    tracing::error!(job = %core.id, stage = %node.info.name, error = %e, "a result that does not parse: refused");
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            out.extend(flow.book(results, &node, &core, on_error));
            let n = out.len() as u64;
            if n > 0 {
                if tx.push(&mut out).await.is_err() {
                    // Aborted: the items were booked here, so they are
                    // this task's to leave.
                    let pushed = n - out.len() as u64;
                    node.shard(0).0.out.fetch_add(pushed, Ordering::Relaxed);
                    for item in out.drain(..) {
                        core.leftovers.put(&node, item);
                    }
                    break 'pull;
                }
                node.shard(0).0.out.fetch_add(n, Ordering::Relaxed);
            }
            if let Err(e) = msg.ack().await {
                tracing::debug!(error = %e, "result ack not sent");
            }
        }
    }
}
