//! The unit of work that flows through a pipeline: an [`Item`] and its
//! [`Payload`], a line or a [`Record`].
//!
//! [`Item`] is here; below it, `record` (a parsed object that keeps its
//! text), `field` (one field read in place) and `scan` (the validating
//! scanner that finds each field) and `stamp` (the 8-byte moments an item
//! carries), each re-exported.

mod field;
mod record;
mod scan;
mod stamp;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use field::{Field, FieldKind};
pub use record::{ParseError, Record, Unparsed};
pub use stamp::Stamp;

/// One item on its way from the source to the sink.
#[derive(Debug)]
pub struct Item {
    /// Position in the source's output, from 0.
    pub seq: u64,
    /// When the source produced it, if the source timed this item
    /// (end-to-end latency is measured from here; see [`crate::stats::Stride`]).
    pub born: Option<Stamp>,
    /// When it entered its current queue, if its producer timed it (queue
    /// wait is measured from here).
    pub enqueued: Option<Stamp>,
    /// The data.
    pub payload: Payload,
}

/// What an item carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A bare number: the cheapest item, for raw queue throughput.
    Counter(u64),
    /// A raw text line, such as a JSON log line not parsed yet.
    Line(String),
    /// A parsed record, boxed: a record is several times the size of the
    /// other payloads, and items are moved through every queue by value.
    Record(Box<Record>),
}

impl Item {
    /// A new item, stamped with `born` when the producer read the clock.
    pub fn new(seq: u64, payload: Payload, born: Option<Instant>) -> Self {
        let born = born.map(Stamp::from);
        Self {
            seq,
            born,
            enqueued: born,
            payload,
        }
    }
}

impl Payload {
    /// The payload as one line of text, as written by file sinks and the
    /// leftovers file; reading it back with a `file` source replays it.
    pub fn to_line(&self) -> String {
        match self {
            Payload::Counter(n) => n.to_string(),
            Payload::Line(line) => line.clone(),
            Payload::Record(record) => record.to_text().into_owned(),
        }
    }
}
