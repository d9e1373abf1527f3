//! The collector: the server task that reads a broker stage's results
//! back and books each exactly once.
//!
//! The output stream stores one result per item (a republished result
//! has the same message id and is not stored again), so each result read
//! here is one item settled: passed on downstream, filtered, dropped by
//! `on_error`, or a dead letter. An item whose result says it was
//! delivered more than once counts as redelivered, once. The result is
//! acked after its item is in the downstream queue. Once the publisher
//! has finished and every item it stored has come back, the collector
//! drops its sender, and the drain cascade goes on downstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use shared::spec::OnError;

use super::edge::collect_consumer;
use super::stage::Flow;
use super::wire::{Outcome, Settled, decode_settled};
use crate::core::JobCore;
use crate::item::Item;
use crate::ops::OpError;
use crate::queue::Tx;
use crate::stats::NodeStats;

/// Why an item was delivered more than once, as the report words it.
pub const REDELIVERED: &str =
    "redelivered after ack_wait: the worker holding it was lost or stalled";

/// Error kinds as `&'static str` (a dead letter's kind is a bounded
/// metric label); one from elsewhere reads as `remote error`.
fn static_kind(kind: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "timed out",
        "injected failure",
        "not a record",
        "not JSON",
        "missing field",
        "wrong type",
        "panic",
        "http",
        "http status",
        "redelivered",
        "undecodable",
        "no runtime",
    ];
    KNOWN
        .iter()
        .find(|k| **k == kind)
        .copied()
        .unwrap_or("remote error")
}

/// Books one result; the item of a passed one comes back, to go on.
pub(super) fn book(
    settled: Settled,
    flow: &Flow,
    node: &NodeStats,
    core: &JobCore,
    on_error: OnError,
) -> Option<Item> {
    let shard = node.shard(0);
    if settled.delivered > 1 {
        flow.redelivered.fetch_add(1, Ordering::Relaxed);
    }
    match settled.outcome {
        Outcome::Passed(mut item) => {
            item.born = flow.take_born(item.seq);
            return Some(item);
        }
        Outcome::Filtered(seq) => {
            flow.forget_born(seq);
            shard.0.filtered.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Dropped { seq, kind } => {
            flow.forget_born(seq);
            shard.0.errors.fetch_add(1, Ordering::Relaxed);
            node.note_reason(format!("op error at `{}`: {kind}", node.info.name));
        }
        Outcome::Failed {
            item,
            attempts,
            kind,
            detail,
        } => {
            flow.forget_born(item.seq);
            let err = OpError {
                kind: static_kind(&kind),
                detail,
                retryable: false,
            };
            core.dead_letters.put(node, &item, &err, attempts);
            shard.0.dead_lettered.fetch_add(1, Ordering::Relaxed);
            if on_error == OnError::FailJob && kind != "redelivered" {
                core.fail(format!(
                    "stage `{}` failed an item (on_error = fail_job): {}",
                    node.info.name, err.detail
                ));
            }
        }
    }
    None
}

/// Runs until every stored item has come back (then drops `tx`) or the
/// job aborts.
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
    let mut out = VecDeque::with_capacity(1);
    'pull: loop {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(256)
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
                // The last result may have come before the publisher
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
            let settled = match decode_settled(&msg.payload) {
                Ok(s) => s,
                Err(e) => {
                    // Not a worker's: nothing to book, never to return.
                    tracing::error!(job = %core.id, stage = %node.info.name, error = %e, "a result that does not parse: refused");
                    let _ = msg.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            if flow.was_left(settled.outcome.seq()) {
                let _ = msg.ack().await;
                continue;
            }
            if let Some(item) = book(settled, &flow, &node, &core, on_error) {
                out.push_back(item);
                if tx.push(&mut out).await.is_err() {
                    // Aborted: the item stays in the stream (unacked) and
                    // the sweep finds it there.
                    out.clear();
                    break 'pull;
                }
                node.shard(0).0.out.fetch_add(1, Ordering::Relaxed);
            }
            flow.collected.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = msg.ack().await {
                tracing::debug!(error = %e, "result ack not sent");
            }
        }
    }
}
