//! How items cross a broker edge: a small binary envelope carrying a
//! batch of items per message, so a counter costs a dozen bytes and a
//! record is its text as read.
//!
//! * Input message (server → workers): the edge sequence of its first
//!   item (`u64 LE`; the rest follow one by one), the item count (`u32`),
//!   then per item its `seq` (`u64`) and its payload.
//! * Result message (workers → server): the delivery count of the input
//!   message (`u32`), the result count (`u32`), then per item its edge
//!   sequence (`u64`), a tag (`P` passed, `F` filtered, `X` dropped by
//!   `on_error = "drop"`, `D` failed for good), `seq`, for `X`/`D` the
//!   attempts (`u32`), the error kind and detail (each `u16 LE` length +
//!   UTF-8), and for `P`/`D` the payload.
//! * Payload: its length (`u32`), then `c` + `u64 LE` (a counter), `l` +
//!   text (a line) or `r` + text (a record: parsed again on arrival, as it
//!   was before it left).
//!
//! Decoding is strict: a message that does not parse is refused with a
//! [`WireError`], never guessed at.

use bytes::{BufMut, Bytes, BytesMut};

use crate::item::{Item, Payload, Record};

/// Why a message from the broker could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// It ended before a field did.
    #[error("the message is cut short")]
    Short,
    /// An unknown tag.
    #[error("unknown tag {0:#x}")]
    Tag(u8),
    /// Text that is not UTF-8.
    #[error("text that is not UTF-8")]
    Utf8,
    /// A record that no longer parses.
    #[error("a record that does not parse")]
    Record,
    /// Bytes after the last entry.
    #[error("bytes after the last entry")]
    Trailing,
}

/// What a worker made of one item.
#[derive(Debug)]
pub enum Outcome {
    /// Passed on downstream.
    Passed(Item),
    /// A filter let it go.
    Filtered(u64),
    /// It failed for good and the stage's `on_error` drops it.
    Dropped {
        /// The item's sequence number.
        seq: u64,
        /// The error's kind.
        kind: String,
    },
    /// It failed for good: a dead letter.
    Failed {
        /// The item, as it was when it failed.
        item: Item,
        /// Attempts made.
        attempts: u32,
        /// The error's kind.
        kind: String,
        /// The error's detail.
        detail: String,
    },
}

impl Outcome {
    /// The item's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Outcome::Passed(item) | Outcome::Failed { item, .. } => item.seq,
            Outcome::Filtered(seq) | Outcome::Dropped { seq, .. } => *seq,
        }
    }
}

/// One item's result as it crossed the edge.
#[derive(Debug)]
pub struct Settled {
    /// The item's sequence on the edge.
    pub edge: u64,
    /// What became of it.
    pub outcome: Outcome,
}

/// A result message: the results of (part of) one input message.
#[derive(Debug)]
pub struct Results {
    /// Deliveries of the input message when it was settled, 1 for the first.
    pub delivered: u32,
    /// One per item.
    pub items: Vec<Settled>,
}

/// An item of an input message that does not decode: a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// Its sequence number, 0 when even that was lost.
    pub seq: u64,
    /// What was readable of it.
    pub text: String,
    /// Why.
    pub error: WireError,
}

/// An input message, read.
#[derive(Debug)]
pub struct Decoded {
    /// The edge sequence of its first item.
    pub first: u64,
    /// Its items in order (item `k` has edge sequence `first + k`).
    pub items: Vec<Result<Item, Undecodable>>,
}

/// Bytes of an input message before its items.
pub const INPUT_HEADER: usize = 12;
/// Bytes of a result message before its results.
pub const RESULTS_HEADER: usize = 8;

fn put_payload(buf: &mut BytesMut, payload: &Payload) {
    let at = buf.len();
    buf.put_u32_le(0);
    match payload {
        Payload::Counter(n) => {
            buf.put_u8(b'c');
            buf.put_u64_le(*n);
        }
        Payload::Line(line) => {
            buf.put_u8(b'l');
            buf.put_slice(line.as_bytes());
        }
        Payload::Record(record) => {
            buf.put_u8(b'r');
            buf.put_slice(record.to_text().as_bytes());
        }
    }
    let len = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

fn put_text(buf: &mut BytesMut, text: &str) {
    // Kinds and details are short; a longer detail is cut at a char edge.
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    buf.put_u16_le(end as u16);
    buf.put_slice(&text.as_bytes()[..end]);
}

/// A message being filled, up to a size limit (the broker's
/// `max_payload`).
#[derive(Debug)]
pub struct Builder {
    buf: BytesMut,
    count: u32,
    header: usize,
}

/// Why an entry did not go into a message: it would pass the limit. On
/// its own it takes `.0` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl Builder {
    /// An input message whose first item has edge sequence `first`.
    pub fn items(first: u64) -> Self {
        let mut buf = BytesMut::with_capacity(256);
        buf.put_u64_le(first);
        buf.put_u32_le(0);
        Self {
            buf,
            count: 0,
            header: INPUT_HEADER,
        }
    }

    /// A result message of an input message delivered `delivered` times.
    pub fn results(delivered: u32) -> Self {
        let mut buf = BytesMut::with_capacity(256);
        buf.put_u32_le(delivered);
        buf.put_u32_le(0);
        Self {
            buf,
            count: 0,
            header: RESULTS_HEADER,
        }
    }

    /// Sets the edge sequence of an input message's first item (known
    /// once its items are chosen).
    pub fn set_first(&mut self, first: u64) {
        self.buf[..8].copy_from_slice(&first.to_le_bytes());
    }

    /// Entries so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True with no entries yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends with `put` unless the message would pass `limit` bytes;
    /// then the message is as it was.
    fn append(&mut self, limit: usize, put: impl FnOnce(&mut BytesMut)) -> Result<(), TooLarge> {
        let mark = self.buf.len();
        put(&mut self.buf);
        if self.buf.len() > limit {
            let own = self.buf.len() - mark + self.header;
            self.buf.truncate(mark);
            return Err(TooLarge(own));
        }
        self.count += 1;
        Ok(())
    }

    /// Appends an item (an input message).
    pub fn push_item(&mut self, item: &Item, limit: usize) -> Result<(), TooLarge> {
        self.append(limit, |buf| {
            buf.put_u64_le(item.seq);
            put_payload(buf, &item.payload);
        })
    }

    /// Appends an item's result (a result message).
    pub fn push_result(
        &mut self,
        edge: u64,
        outcome: &Outcome,
        limit: usize,
    ) -> Result<(), TooLarge> {
        self.append(limit, |buf| {
            buf.put_u64_le(edge);
            let tag = match outcome {
                Outcome::Passed(_) => b'P',
                Outcome::Filtered(_) => b'F',
                Outcome::Dropped { .. } => b'X',
                Outcome::Failed { .. } => b'D',
            };
            buf.put_u8(tag);
            buf.put_u64_le(outcome.seq());
            match outcome {
                Outcome::Passed(item) => put_payload(buf, &item.payload),
                Outcome::Filtered(_) => {}
                Outcome::Dropped { kind, .. } => put_text(buf, kind),
                Outcome::Failed {
                    item,
                    attempts,
                    kind,
                    detail,
                } => {
                    buf.put_u32_le(*attempts);
                    put_text(buf, kind);
                    put_text(buf, detail);
                    put_payload(buf, &item.payload);
                }
            }
        })
    }

    /// The message.
    pub fn finish(mut self) -> Bytes {
        let at = self.header - 4;
        self.buf[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.buf.freeze()
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Short);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn text(&mut self) -> Result<String, WireError> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Utf8)
    }
    /// A payload's bytes (its length read first).
    fn payload_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn payload(bytes: &[u8]) -> Result<Payload, WireError> {
    let (&tag, rest) = bytes.split_first().ok_or(WireError::Short)?;
    let text = || {
        std::str::from_utf8(rest)
            .map(str::to_owned)
            .map_err(|_| WireError::Utf8)
    };
    match tag {
        b'c' => {
            let n: [u8; 8] = rest.try_into().map_err(|_| WireError::Tag(b'c'))?;
            Ok(Payload::Counter(u64::from_le_bytes(n)))
        }
        b'l' => Ok(Payload::Line(text()?)),
        b'r' => Record::parse(text()?)
            .map(|r| Payload::Record(Box::new(r)))
            .map_err(|_| WireError::Record),
        t => Err(WireError::Tag(t)),
    }
}

/// Reads an input message; its items have no timestamps (clocks do not
/// cross processes). Only a message too short for its header is refused
/// whole: an item that does not decode (or is missing) comes back as
/// [`Undecodable`], so it is still accounted for.
pub fn decode_items(bytes: &[u8]) -> Result<Decoded, WireError> {
    let mut r = Reader(bytes);
    let first = r.u64()?;
    let count = r.u32()?;
    // A count is at most what the bytes can hold (13 bytes per item).
    let room = r.0.len() / 13 + 1;
    let mut items = Vec::with_capacity((count as usize).min(room));
    let mut broken: Option<WireError> = None;
    for _ in 0..count {
        if let Some(error) = &broken {
            items.push(Err(Undecodable {
                seq: 0,
                text: String::new(),
                error: error.clone(),
            }));
            continue;
        }
        let read = r.u64().and_then(|seq| Ok((seq, r.payload_bytes()?)));
        match read {
            Ok((seq, bytes)) => items.push(
                payload(bytes)
                    .map(|p| Item::new(seq, p, None))
                    .map_err(|error| Undecodable {
                        seq,
                        text: String::from_utf8_lossy(bytes.get(1..).unwrap_or_default())
                            .into_owned(),
                        error,
                    }),
            ),
            Err(error) => {
                broken = Some(error.clone());
                items.push(Err(Undecodable {
                    seq: 0,
                    text: String::new(),
                    error,
                }));
            }
        }
    }
    Ok(Decoded { first, items })
}

/// Reads a result message.
pub fn decode_results(bytes: &[u8]) -> Result<Results, WireError> {
    let mut r = Reader(bytes);
    let delivered = r.u32()?;
    let count = r.u32()?;
    let room = r.0.len() / 17 + 1;
    let mut items = Vec::with_capacity((count as usize).min(room));
    for _ in 0..count {
        let edge = r.u64()?;
        let tag = r.u8()?;
        let seq = r.u64()?;
        let outcome = match tag {
            b'P' => Outcome::Passed(Item::new(seq, payload(r.payload_bytes()?)?, None)),
            b'F' => Outcome::Filtered(seq),
            b'X' => Outcome::Dropped {
                seq,
                kind: r.text()?,
            },
            b'D' => {
                let attempts = r.u32()?;
                let kind = r.text()?;
                let detail = r.text()?;
                Outcome::Failed {
                    item: Item::new(seq, payload(r.payload_bytes()?)?, None),
                    attempts,
                    kind,
                    detail,
                }
            }
            t => return Err(WireError::Tag(t)),
        };
        items.push(Settled { edge, outcome });
    }
    if !r.0.is_empty() {
        return Err(WireError::Trailing);
    }
    Ok(Results { delivered, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Payload {
        Payload::Record(Box::new(Record::parse(text.into()).unwrap()))
    }

    const NO_LIMIT: usize = usize::MAX;

    #[test]
    fn items_and_results_cross_as_they_left() {
        let payloads = [
            Payload::Counter(u64::MAX),
            Payload::Line("{not json".into()),
            record(r#"{"id":"a","n":1.10}"#),
        ];
        let mut input = Builder::items(7);
        for (k, p) in payloads.iter().enumerate() {
            input
                .push_item(&Item::new(40 + k as u64, p.clone(), None), NO_LIMIT)
                .unwrap();
        }
        let back = decode_items(&input.finish()).unwrap();
        assert_eq!(back.first, 7);
        for (k, (item, p)) in back.items.iter().zip(&payloads).enumerate() {
            let item = item.as_ref().unwrap();
            assert_eq!((item.seq, &item.payload), (40 + k as u64, p));
        }

        let mut results = Builder::results(2);
        for (k, p) in payloads.iter().enumerate() {
            let failed = Outcome::Failed {
                item: Item::new(41, p.clone(), None),
                attempts: 3,
                kind: "timed out".into(),
                detail: "é".repeat(40_000),
            };
            results.push_result(k as u64, &failed, NO_LIMIT).unwrap();
        }
        results
            .push_result(9, &Outcome::Filtered(9), NO_LIMIT)
            .unwrap();
        let Results { delivered, items } = decode_results(&results.finish()).unwrap();
        assert_eq!((delivered, items.len()), (2, 4));
        for (k, (settled, p)) in items.iter().zip(&payloads).enumerate() {
            assert_eq!(settled.edge, k as u64);
            let Outcome::Failed {
                item,
                attempts,
                kind,
                detail,
            } = &settled.outcome
            else {
                panic!("{settled:?}")
            };
            assert_eq!((item.seq, *attempts, kind.as_str()), (41, 3, "timed out"));
            assert_eq!(&item.payload, p);
            assert!(detail.len() <= u16::MAX as usize && detail.starts_with('é'));
        }
        assert!(matches!(items[3].outcome, Outcome::Filtered(9)));
    }

    #[test]
    fn a_message_stops_at_its_limit() {
        let mut input = Builder::items(0);
        let item = Item::new(1, Payload::Line("x".repeat(100)), None);
        input.push_item(&item, 200).unwrap();
        let before = input.len();
        assert_eq!(
            input.push_item(&item, 200),
            Err(TooLarge(INPUT_HEADER + 113))
        );
        assert_eq!((input.len(), input.count()), (before, 1));
        assert_eq!(decode_items(&input.finish()).unwrap().items.len(), 1);
    }

    #[test]
    fn what_does_not_parse_is_refused_or_dead_lettered() {
        assert_eq!(decode_items(b"short").unwrap_err(), WireError::Short);
        let mut input = Builder::items(0);
        input
            .push_item(&Item::new(1, record(r#"{"a":1}"#), None), NO_LIMIT)
            .unwrap();
        input
            .push_item(&Item::new(2, Payload::Counter(1), None), NO_LIMIT)
            .unwrap();
        let mut bad = input.finish().to_vec();
        // The record's text loses its last byte; the counter is cut short.
        bad[12 + 8 + 4 + 7] = b' ';
        bad.truncate(bad.len() - 3);
        let items = decode_items(&bad).unwrap().items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap_err().error, WireError::Record);
        assert_eq!(items[0].as_ref().unwrap_err().seq, 1);
        assert!(items[1].is_err());
        assert_eq!(decode_results(b"Q").unwrap_err(), WireError::Short);
        assert!(decode_results(b"").is_err());
    }
}
