//! How items cross a broker edge: a small binary envelope, so a counter
//! costs a dozen bytes and a record is its text as read.
//!
//! * Input message (server → workers): `seq: u64 LE`, then the payload.
//! * Result message (workers → server): a tag (`P` passed, `F` filtered,
//!   `X` dropped by `on_error = "drop"`, `D` failed for good), the
//!   delivery count (`u32 LE`), `seq`, for `X`/`D` the attempts (`u32`),
//!   the error kind and detail (each `u16 LE` length + UTF-8), then the
//!   payload.
//! * Payload: `c` + `u64 LE` (a counter), `l` + text (a line), `r` + text
//!   (a record: parsed again on arrival, as it was before it left).
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

/// A result as it crossed the edge: the outcome and how many times the
/// broker had delivered the item when it was settled.
#[derive(Debug)]
pub struct Settled {
    /// What became of it.
    pub outcome: Outcome,
    /// Deliveries, 1 for the first.
    pub delivered: u32,
}

fn put_payload(buf: &mut BytesMut, payload: &Payload) {
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

/// An input message for an item.
pub fn encode_item(item: &Item) -> Bytes {
    let mut buf = BytesMut::with_capacity(16);
    buf.put_u64_le(item.seq);
    put_payload(&mut buf, &item.payload);
    buf.freeze()
}

/// A result message.
pub fn encode_settled(outcome: &Outcome, delivered: u32) -> Bytes {
    let mut buf = BytesMut::with_capacity(24);
    let tag = match outcome {
        Outcome::Passed(_) => b'P',
        Outcome::Filtered(_) => b'F',
        Outcome::Dropped { .. } => b'X',
        Outcome::Failed { .. } => b'D',
    };
    buf.put_u8(tag);
    buf.put_u32_le(delivered);
    buf.put_u64_le(outcome.seq());
    match outcome {
        Outcome::Passed(item) => put_payload(&mut buf, &item.payload),
        Outcome::Filtered(_) => {}
        Outcome::Dropped { kind, .. } => put_text(&mut buf, kind),
        Outcome::Failed {
            item,
            attempts,
            kind,
            detail,
        } => {
            buf.put_u32_le(*attempts);
            put_text(&mut buf, kind);
            put_text(&mut buf, detail);
            put_payload(&mut buf, &item.payload);
        }
    }
    buf.freeze()
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
    fn payload(&mut self) -> Result<Payload, WireError> {
        let tag = self.u8()?;
        let rest = std::mem::take(&mut self.0);
        let text = || {
            std::str::from_utf8(rest)
                .map(str::to_owned)
                .map_err(|_| WireError::Utf8)
        };
        match tag {
            b'c' => {
                let mut r = Reader(rest);
                let n = r.u64()?;
                if !r.0.is_empty() {
                    return Err(WireError::Tag(b'c'));
                }
                Ok(Payload::Counter(n))
            }
            b'l' => Ok(Payload::Line(text()?)),
            b'r' => Record::parse(text()?)
                .map(|r| Payload::Record(Box::new(r)))
                .map_err(|_| WireError::Record),
            t => Err(WireError::Tag(t)),
        }
    }
}

/// Reads an input message; its item has no timestamps (clocks do not
/// cross processes).
pub fn decode_item(bytes: &[u8]) -> Result<Item, WireError> {
    let mut r = Reader(bytes);
    let seq = r.u64()?;
    let payload = r.payload()?;
    Ok(Item::new(seq, payload, None))
}

/// Reads a result message.
pub fn decode_settled(bytes: &[u8]) -> Result<Settled, WireError> {
    let mut r = Reader(bytes);
    let tag = r.u8()?;
    let delivered = r.u32()?;
    let seq = r.u64()?;
    let outcome = match tag {
        b'P' => Outcome::Passed(Item::new(seq, r.payload()?, None)),
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
                item: Item::new(seq, r.payload()?, None),
                attempts,
                kind,
                detail,
            }
        }
        t => return Err(WireError::Tag(t)),
    };
    if matches!(tag, b'F' | b'X') && !r.0.is_empty() {
        return Err(WireError::Tag(tag));
    }
    Ok(Settled { outcome, delivered })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Payload {
        Payload::Record(Box::new(Record::parse(text.into()).unwrap()))
    }

    #[test]
    fn items_and_results_cross_as_they_left() {
        for payload in [
            Payload::Counter(u64::MAX),
            Payload::Line("{not json".into()),
            record(r#"{"id":"a","n":1.10}"#),
        ] {
            let item = Item::new(41, payload.clone(), None);
            let back = decode_item(&encode_item(&item)).unwrap();
            assert_eq!((back.seq, &back.payload), (41, &payload));
            let failed = Outcome::Failed {
                item,
                attempts: 3,
                kind: "timed out".into(),
                detail: "é".repeat(40_000),
            };
            let Settled { outcome, delivered } =
                decode_settled(&encode_settled(&failed, 2)).unwrap();
            assert_eq!(delivered, 2);
            let Outcome::Failed {
                item,
                attempts,
                kind,
                detail,
            } = outcome
            else {
                panic!("{outcome:?}")
            };
            assert_eq!((item.seq, attempts, kind.as_str()), (41, 3, "timed out"));
            assert_eq!(item.payload, payload);
            assert!(detail.len() <= u16::MAX as usize && detail.starts_with('é'));
        }
        let f = decode_settled(&encode_settled(&Outcome::Filtered(9), 1)).unwrap();
        assert!(matches!(f.outcome, Outcome::Filtered(9)));
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        assert_eq!(decode_item(b"short").unwrap_err(), WireError::Short);
        assert_eq!(
            decode_item(&[0, 0, 0, 0, 0, 0, 0, 0, b'z']).unwrap_err(),
            WireError::Tag(b'z')
        );
        let mut bad = encode_item(&Item::new(1, record(r#"{"a":1}"#), None)).to_vec();
        bad.pop();
        assert_eq!(decode_item(&bad).unwrap_err(), WireError::Record);
        assert_eq!(decode_settled(b"Q").unwrap_err(), WireError::Short);
        assert!(decode_settled(b"").is_err());
    }
}
