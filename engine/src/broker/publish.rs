//! The publisher: the server task that moves a broker stage's input from
//! memory into its stream, many items per message.
//!
//! It takes what the stage's input queue holds (never waiting for more:
//! at a low rate a message carries one item), up to [`per_message`] items
//! and the broker's `max_payload`, opens them in the edge's ledger and
//! publishes them as one message with the id `job:stage:first-last`, so a
//! publish retried after a lost ack is stored once. Publish acks are
//! awaited by a second task, a window of messages behind, so the broker's
//! round trip is not paid per message.
//!
//! `capacity` counts items: the ledger's open items (published and not
//! yet booked) never pass it. At capacity the stage's `when_full`
//! decides: `block` waits for room (backpressure reaching upstream),
//! `drop_newest` and `reject` count the items that do not fit as dropped
//! with their reason. An item larger than the broker takes is a dead
//! letter (`too large for the broker (N > M bytes)`).

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::jetstream::{self, message::PublishMessage as Publish};
use bytes::Bytes;
use shared::spec::{StageSpec, WhenFull};
use tokio::sync::mpsc;

use super::ledger::{Flow, dead_letter};
use super::wire::{Builder, TooLarge};
use crate::core::JobCore;
use crate::item::Item;
use crate::ops::OpError;
use crate::queue::{Chunk, Rx};
use crate::stats::NodeStats;

/// Items per message for instant operations: large enough that the
/// broker's cost per message vanishes per item.
pub const INSTANT_PER_MESSAGE: usize = 1024;
/// Items per message at most for operations that wait (a worker works
/// through a message's items one after another).
pub const WAITING_PER_MESSAGE: usize = 16;
/// Messages whose publish acks may be awaited at once.
const WINDOW: usize = 64;
/// Bytes of `max_payload` kept for the message's headers.
const HEADROOM: usize = 1024;

/// Items per message for `stage`: many for an instant operation; for one
/// that waits, few enough that every worker finds a message while the
/// stage is at capacity.
pub fn per_message(stage: &StageSpec, capacity: u64) -> usize {
    let waits = stage.retry.is_some() || stage.rate_limit.is_some() || !stage.op.is_instant();
    if !waits {
        return INSTANT_PER_MESSAGE.min(capacity as usize).max(1);
    }
    let share = capacity / (4 * u64::from(stage.start_workers().max(1)));
    (share as usize).clamp(1, WAITING_PER_MESSAGE)
}

/// The largest message the publisher builds for a broker that takes
/// `max_payload` bytes.
pub fn message_limit(max_payload: usize) -> usize {
    max_payload.saturating_sub(HEADROOM).max(64)
}

type AckFuture = Pin<
    Box<
        dyn std::future::Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// A message sent and not yet acknowledged by the broker.
struct Sending {
    first: u64,
    items: Vec<Item>,
    bytes: Bytes,
    /// `None` when the send itself failed: to send again.
    ack: Option<AckFuture>,
}

/// What the two tasks share.
struct Edge {
    js: jetstream::Context,
    subject: String,
    flow: Arc<Flow>,
    node: Arc<NodeStats>,
    core: Arc<JobCore>,
}

impl Edge {
    async fn send(&self, first: u64, last: u64, bytes: Bytes) -> Option<AckFuture> {
        let msg = Publish::build()
            .payload(bytes)
            .message_id(self.flow.names.input_id(first, last));
        match self.js.send_publish(self.subject.clone(), msg).await {
            Ok(fut) => Some(Box::pin(fut.into_future())),
            Err(e) => {
                tracing::debug!(job = %self.core.id, error = %e, "a publish was not sent");
                None
            }
        }
    }

    /// Items of an unacknowledged message, given up on an abort: to
    /// leftovers, each unless it was settled already (stored, run and
    /// booked before the ack came).
    fn leave(&self, s: Sending) {
        for (k, item) in s.items.into_iter().enumerate() {
            if self.flow.settle(s.first + k as u64) {
                self.core.leftovers.put(&self.node, item);
            }
        }
    }
}

/// Runs until the stage's input closes (a drain) or the job aborts; what
/// it holds on an abort goes to leftovers.
pub(crate) async fn publish(
    rx: Rx,
    js: jetstream::Context,
    flow: Arc<Flow>,
    node: Arc<NodeStats>,
    core: Arc<JobCore>,
    when_full: WhenFull,
    per_message: usize,
) {
    let max_payload = js.client().server_info().max_payload;
    let limit = message_limit(if max_payload == 0 {
        1 << 20
    } else {
        max_payload
    });
    let edge = Arc::new(Edge {
        subject: flow.names.input_subject(),
        js,
        flow,
        node,
        core,
    });
    let (window, acks) = mpsc::channel::<Sending>(WINDOW);
    let acker = tokio::spawn(settle_acks(acks, edge.clone()));
    let (flow, node, core) = (&edge.flow, &edge.node, &edge.core);
    let stage = node.info.name.clone();
    let mut chunk = Chunk::new(&rx);
    let mut held: VecDeque<Item> = VecDeque::with_capacity(per_message);
    'run: loop {
        if held.is_empty() {
            let got = tokio::select! {
                biased;
                _ = core.abort.cancelled() => break 'run,
                got = rx.take(per_message, &mut chunk) => got,
            };
            if !got {
                break;
            }
            held.extend(chunk.drain());
        }
        let mut room = flow.room_now().min(per_message);
        // At capacity under `block`, wait for room for a whole message
        // (or for all that is held) rather than trickle out the few
        // items each settled message frees: small messages at capacity
        // would cost the broker per item what batching saves. (Below
        // capacity nothing waits: at a low rate a message goes at once.)
        let want = per_message.min(held.len());
        if when_full == WhenFull::Block && room > 0 && room < want {
            tokio::select! {
                biased;
                _ = core.abort.cancelled() => break 'run,
                _ = flow.room_for(want) => {}
            }
            room = flow.room_now().min(per_message);
        }
        if room == 0 {
            flow.edge.refusals.fetch_add(1, Ordering::Relaxed);
            match when_full {
                WhenFull::Block => {
                    tokio::select! {
                        biased;
                        _ = core.abort.cancelled() => break 'run,
                        _ = flow.room() => {}
                    }
                }
                WhenFull::DropNewest | WhenFull::Reject | WhenFull::DropOldest => {
                    let reason = if when_full == WhenFull::Reject {
                        "rejected: stream full"
                    } else {
                        "dropped newest: stream full"
                    };
                    let n = held.len() as u64;
                    held.clear();
                    flow.edge.refusals.fetch_add(n - 1, Ordering::Relaxed);
                    node.dropped.fetch_add(n, Ordering::Relaxed);
                    node.note_reason(format!("{reason} at `{stage}`"));
                }
            }
            continue;
        }
        // As many of the held items as fit one message.
        let mut message = Builder::items(0);
        let mut items = Vec::with_capacity(room.min(held.len()));
        while items.len() < room {
            let Some(item) = held.pop_front() else { break };
            match message.push_item(&item, limit) {
                Ok(()) => items.push(item),
                Err(TooLarge(size)) if message.is_empty() => {
                    let err = OpError {
                        kind: super::TOO_LARGE,
                        detail: format!("{} ({size} > {limit} bytes)", super::TOO_LARGE),
                        retryable: false,
                    };
                    dead_letter(core, node, &item, &err, 0);
                }
                Err(TooLarge(_)) => {
                    held.push_front(item);
                    break;
                }
            }
        }
        if items.is_empty() {
            continue;
        }
        let first = flow.open(&items);
        let last = first + items.len() as u64 - 1;
        message.set_first(first);
        let bytes = message.finish();
        let ack = edge.send(first, last, bytes.clone()).await;
        let sending = Sending {
            first,
            items,
            bytes,
            ack,
        };
        if let Err(mpsc::error::SendError(s)) = window.send(sending).await {
            edge.leave(s);
            break;
        }
    }
    for item in held.drain(..).chain(chunk.drain()) {
        core.leftovers.put(node, item);
    }
    drop(window);
    if let Err(e) = acker.await {
        tracing::error!(job = %core.id, stage = %stage, error = %e, "the publish acker ended early");
    }
    flow.publishing_done();
}

/// Awaits each message's publish ack in order: a stored message counts
/// as published; a failed one is sent again with the same id (stored
/// once); on an abort what is still unacknowledged goes to leftovers.
async fn settle_acks(mut window: mpsc::Receiver<Sending>, edge: Arc<Edge>) {
    let (flow, core) = (&edge.flow, &edge.core);
    while let Some(mut s) = window.recv().await {
        let mut tries = 0u32;
        loop {
            let stored = match s.ack.take() {
                Some(ack) => tokio::select! {
                    biased;
                    _ = core.abort.cancelled() => None,
                    stored = ack => Some(stored),
                },
                None => Some(Err(jetstream::context::PublishError::new(
                    jetstream::context::PublishErrorKind::BrokenPipe,
                ))),
            };
            match stored {
                None => {
                    edge.leave(s);
                    break;
                }
                Some(Ok(_)) => {
                    flow.edge.messages.fetch_add(1, Ordering::Relaxed);
                    flow.edge
                        .items
                        .fetch_add(s.items.len() as u64, Ordering::Relaxed);
                    break;
                }
                Some(Err(e)) => {
                    // The broker is away or slow: try again (the id makes
                    // a second store of the same message a no-op).
                    if tries == 0 {
                        tracing::warn!(job = %core.id, stage = %edge.node.info.name, error = %e, "publish to the broker failed; retrying");
                    }
                    let waited = tokio::select! {
                        biased;
                        _ = core.abort.cancelled() => false,
                        _ = tokio::time::sleep(super::backoff(tries)) => true,
                    };
                    if !waited {
                        edge.leave(s);
                        break;
                    }
                    tries += 1;
                    let last = s.first + s.items.len() as u64 - 1;
                    s.ack = edge.send(s.first, last, s.bytes.clone()).await;
                }
            }
        }
    }
}
