//! The unit of work that flows through a pipeline.

use std::borrow::Cow;
use std::time::Instant;

use serde_json::{Map, Value};

/// One item on its way from the source to the sink.
#[derive(Debug)]
pub struct Item {
    /// Position in the source's output, from 0.
    pub seq: u64,
    /// When the source produced it, if the source timed this item
    /// (end-to-end latency is measured from here; see [`crate::stats::Stride`]).
    pub born: Option<Instant>,
    /// When it entered its current queue, if its producer timed it (queue
    /// wait is measured from here).
    pub enqueued: Option<Instant>,
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
    /// A parsed record.
    Record(Record),
}

/// A parsed record: its fields, and the JSON text they were parsed from
/// for as long as they are unchanged. Sinks and the leftovers file write
/// that text instead of serialising the fields again (the parse is the
/// only pass over the text); a change to the fields forgets it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    fields: Map<String, Value>,
    text: Option<String>,
}

impl Record {
    /// Fields parsed from `text`, which must be their JSON form.
    pub fn parsed(fields: Map<String, Value>, text: String) -> Self {
        Self {
            fields,
            text: Some(text),
        }
    }

    /// The fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The fields, to change: the text they came from no longer holds.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        self.text = None;
        &mut self.fields
    }

    /// The record as JSON text: the parsed text if the fields are
    /// unchanged, else the fields serialised.
    pub fn to_text(&self) -> Cow<'_, str> {
        match &self.text {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(
                serde_json::to_string(&self.fields).expect("a JSON map always serialises"),
            ),
        }
    }
}

impl From<Map<String, Value>> for Record {
    fn from(fields: Map<String, Value>) -> Self {
        Self { fields, text: None }
    }
}

/// Records are equal when their fields are: the text is how they were
/// written, not what they hold.
impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Item {
    /// A new item, stamped with `born` when the producer read the clock.
    pub fn new(seq: u64, payload: Payload, born: Option<Instant>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_replay_as_written() {
        assert_eq!(Payload::Counter(7).to_line(), "7");
        assert_eq!(Payload::Line("{bad".into()).to_line(), "{bad");
        let mut map = Map::new();
        map.insert("id".into(), Value::from("a"));
        assert_eq!(
            Payload::Record(map.clone().into()).to_line(),
            r#"{"id":"a"}"#
        );
    }

    #[test]
    fn a_parsed_record_keeps_its_text_until_it_changes() {
        let text = r#"{ "id": "a", "n": 1.10 }"#;
        let Value::Object(fields) = serde_json::from_str(text).unwrap() else {
            panic!()
        };
        let mut record = Record::parsed(fields.clone(), text.to_owned());
        assert_eq!(
            record.to_text(),
            text,
            "written as read, not serialised again"
        );
        assert_eq!(record, Record::from(fields), "equal by fields");
        record.fields_mut().insert("x".into(), Value::from(2));
        assert_eq!(record.to_text(), r#"{"id":"a","n":1.1,"x":2}"#);
    }
}
