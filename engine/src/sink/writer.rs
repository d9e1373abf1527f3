//! What a sink's writer is, below the sink's runner and every writer: the
//! [`SinkWriter`] contract, how a write fails ([`WriteError`]), and the
//! helpers keyed writers share ([`keyed`], [`epoch_secs`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::item::{Item, Payload, Record};

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// The target is unavailable; trying again later may succeed.
    Outage(String),
    /// Something in the batch is unacceptable to the target.
    Data(String),
}

/// A sink's writing half: writes a batch all-or-nothing where it can.
pub(crate) trait SinkWriter: Send {
    /// Writes `items`; on error nothing of the batch may be assumed written
    /// (an upserting writer makes a partial write harmless).
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError>;

    /// Rows written more than once into a target that keeps them all
    /// (an inserting writer whose batch was retried after its commit).
    fn duplicates(&self) -> u64 {
        0
    }

    /// Whether a write costs next to nothing (counting only), so the
    /// runner may group items by chunks even when the spec has no batch.
    fn is_instant(&self) -> bool {
        false
    }
}

/// The record an item carries and the value of its key field (borrowed
/// from the record's text when it is a string without escapes), or the
/// data error that makes it unwritable to a keyed sink.
pub(crate) fn keyed<'a>(
    item: &'a Item,
    key: &str,
) -> Result<(&'a Record, std::borrow::Cow<'a, str>), WriteError> {
    let Payload::Record(record) = &item.payload else {
        return Err(WriteError::Data(
            "not a record: put a `parse_json` stage before this sink".into(),
        ));
    };
    match record.get(key) {
        Some(field) if field.is_null() => Err(missing_key(key)),
        None => Err(missing_key(key)),
        Some(field) => Ok((
            record,
            field.as_str().unwrap_or_else(|| field.to_json().into()),
        )),
    }
}

fn missing_key(key: &str) -> WriteError {
    WriteError::Data(format!("record has no `{key}` to upsert on"))
}

/// Seconds since the Unix epoch, for `written_at` columns.
pub(crate) fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
