//! Stages and bridges: the workers that move items from one queue to the
//! next.
//!
//! * A **thread stage** runs N named OS threads, each looping
//!   `take → op → push` on its input queue.
//! * An **async stage** runs N tokio tasks on the job's runtime, each
//!   looping `take().await → permit → op → push().await`, with a semaphore
//!   bounding the operations in flight (`concurrency`).
//! * A **bridge** is one task on the job's runtime that hands chunks
//!   across worlds: it awaits both of its queues, whose other ends a
//!   thread blocks on, so neither threads nor tasks ever wait in the other
//!   world's way.
//!
//! Items move in chunks where no item can wait (see
//! `crate::queue`): a worker takes up to `CHUNK` items in one go, runs
//! them one by one, and hands its results on when it has a chunk or is
//! about to wait, whichever comes first. An async worker holds one permit
//! for a chunk of instant items. Stages whose items may wait (sleeps,
//! HTTP, rate limits, retries) take and hand on one item at a time.
//!
//! Workers stop when their input queue is empty and closed (a drain
//! cascading down the pipeline), when they are retired by a tune (after
//! the chunk they hold), or when the job aborts, in which case whatever
//! they hold goes to leftovers.
//!
//! * `control` — `StageCtl`: starting and retiring workers, the
//!   concurrency limit; [`ScaleError`] when a tune cannot apply.
//! * `workers` — the thread and task workers.
//! * `in_poll` — counts task workers inside a poll, so a blocking call on
//!   the event loop can be pinned on its stage.
//! * `attempt` — one item's attempts under the `policy`, and how it
//!   settles.
//! * `policy` — per-attempt timeout, retries with backoff and jitter,
//!   the rate limit.
//! * `bridge` — `spawn_bridge`, the task between two worlds.
//! * `spawn` — `spawn_running`: a worker thread runs before the next is
//!   asked for (a burst of spawns must not abort the process).

mod attempt;
mod bridge;
mod control;
mod in_poll;
pub(crate) mod policy;
mod spawn;
mod workers;

pub(crate) use attempt::Unsettled;
pub(crate) use bridge::spawn_bridge;
pub use control::ScaleError;
pub(crate) use control::StageCtl;
pub(crate) use spawn::spawn_running;
