//! The null sink: counts items and writes nothing.

use super::writer::{SinkWriter, WriteError};
use crate::item::Item;

pub(super) struct NullWriter;

impl SinkWriter for NullWriter {
    fn write(&mut self, _items: &[Item]) -> Result<(), WriteError> {
        Ok(())
    }

    fn is_instant(&self) -> bool {
        true
    }
}
