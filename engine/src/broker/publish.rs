//! The publisher: the server task that moves a broker stage's input from
//! memory into its stream.
//!
//! Items are published a chunk at a time and their acks awaited together
//! (one round trip per chunk, not per item). Each carries the message id
//! `job:stage:seq`, so a publish retried after a lost ack is stored once.
//! A full stream refuses a publish (discard new) and the stage's
//! `when_full` decides: `block` retries with backoff until there is room
//! (backpressure reaching upstream), `drop_newest` and `reject` count the
//! item as dropped with its reason.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::jetstream::{self, message::PublishMessage as Publish};
use shared::spec::WhenFull;

use super::edge::is_full;
use super::stage::Flow;
use super::wire::encode_item;
use crate::core::JobCore;
use crate::item::Item;
use crate::queue::{CHUNK, Chunk, Rx};
use crate::stats::NodeStats;

/// What became of one publish.
enum Sent {
    Stored,
    Full,
    Failed(String),
}

async fn send(
    js: &jetstream::Context,
    subject: &str,
    id: String,
    item: &Item,
) -> Result<jetstream::context::PublishAckFuture, Sent> {
    let msg = Publish::build().payload(encode_item(item)).message_id(id);
    js.send_publish(subject.to_owned(), msg)
        .await
        .map_err(|e| Sent::Failed(e.to_string()))
}

async fn settle(ack: Result<jetstream::context::PublishAckFuture, Sent>) -> Sent {
    match ack {
        Ok(fut) => match fut.await {
            Ok(_) => Sent::Stored,
            Err(e) if is_full(&e) => Sent::Full,
            Err(e) => Sent::Failed(e.to_string()),
        },
        Err(sent) => sent,
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
) {
    let subject = flow.names.input_subject();
    let stage = node.info.name.clone();
    let mut chunk = Chunk::new(&rx);
    let mut held: VecDeque<Item> = VecDeque::with_capacity(CHUNK);
    'run: loop {
        let got = tokio::select! {
            biased;
            _ = core.abort.cancelled() => break 'run,
            got = rx.take(CHUNK, &mut chunk) => got,
        };
        if !got {
            break;
        }
        held.extend(chunk.drain());
        // One round trip for the chunk: send all, then await the acks.
        let mut acks = Vec::with_capacity(held.len());
        for item in &held {
            if let Some(born) = item.born {
                flow.note_born(item.seq, born);
            }
            acks.push(send(&js, &subject, flow.names.input_id(item.seq), item).await);
        }
        let mut tries = 0u32;
        let mut aborted = false;
        let mut pending: VecDeque<_> = held.drain(..).zip(acks).collect();
        while let Some((item, ack)) = pending.pop_front() {
            match settle(ack).await {
                Sent::Stored => {
                    flow.published.fetch_add(1, Ordering::Relaxed);
                    tries = 0;
                }
                Sent::Full => {
                    flow.edge.refusals.fetch_add(1, Ordering::Relaxed);
                    match when_full {
                        WhenFull::DropNewest | WhenFull::Reject | WhenFull::DropOldest => {
                            let reason = if when_full == WhenFull::Reject {
                                "rejected: stream full"
                            } else {
                                "dropped newest: stream full"
                            };
                            node.dropped.fetch_add(1, Ordering::Relaxed);
                            node.note_reason(format!("{reason} at `{stage}`"));
                            flow.forget_born(item.seq);
                        }
                        WhenFull::Block => {
                            if !wait(&core, tries).await {
                                flow.leave(&core, &node, item);
                                aborted = true;
                                break;
                            }
                            tries += 1;
                            let again =
                                send(&js, &subject, flow.names.input_id(item.seq), &item).await;
                            pending.push_front((item, again));
                        }
                    }
                }
                Sent::Failed(detail) => {
                    // The broker is away or slow: try again (the id makes
                    // a second store of the same item a no-op).
                    if tries == 0 {
                        tracing::warn!(job = %core.id, stage = %stage, error = %detail, "publish to the broker failed; retrying");
                    }
                    if !wait(&core, tries).await {
                        flow.leave(&core, &node, item);
                        aborted = true;
                        break;
                    }
                    tries += 1;
                    let again = send(&js, &subject, flow.names.input_id(item.seq), &item).await;
                    pending.push_front((item, again));
                }
            }
        }
        // Aborted mid-chunk: the rest may or may not be stored; the
        // sweep of the stream skips what is booked here.
        for (item, _) in pending {
            flow.leave(&core, &node, item);
        }
        if aborted {
            break;
        }
    }
    for item in held.drain(..).chain(chunk.drain()) {
        core.leftovers.put(&node, item);
    }
    flow.publishing_done();
}

/// Waits before another try; false when the job aborted meanwhile.
async fn wait(core: &JobCore, tries: u32) -> bool {
    tokio::select! {
        biased;
        _ = core.abort.cancelled() => false,
        _ = tokio::time::sleep(super::backoff(tries)) => true,
    }
}
