//! Fault injection for a sink: batches that commit but whose
//! acknowledgement is lost, as when the connection drops between the
//! commit and its answer. The writer reports an outage, the runner retries
//! the batch, and the batch is written a second time: harmless for an
//! upserting writer, a duplicate of every row for an inserting one. That is
//! the article's lesson on non-idempotent writes under retries, and this
//! wrapper counts the rows it duplicates.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::item::Item;
use crate::sink::writer::{SinkWriter, WriteError};

/// A writer whose acknowledgements are lost for a share of its batches.
pub(crate) struct LostAcks {
    inner: Box<dyn SinkWriter>,
    share: f64,
    rng: SmallRng,
    /// Whether writing a batch again leaves the target as it was.
    idempotent: bool,
    /// Rows written more than once into a target that keeps them all.
    duplicates: u64,
    /// The batch whose acknowledgement was lost last: if it comes back,
    /// its rows are now there twice (for a non-idempotent writer).
    lost: Option<(u64, usize)>,
}

impl LostAcks {
    pub(crate) fn new(inner: Box<dyn SinkWriter>, share: f64, idempotent: bool, seed: u64) -> Self {
        Self {
            inner,
            share,
            rng: SmallRng::seed_from_u64(seed),
            idempotent,
            duplicates: 0,
            lost: None,
        }
    }
}

/// Identifies a batch by its first item and its size: the runner retries
/// exactly the batch it sent.
fn batch_id(items: &[Item]) -> (u64, usize) {
    (items.first().map_or(0, |i| i.seq), items.len())
}

impl SinkWriter for LostAcks {
    fn write(&mut self, items: &[Item]) -> Result<(), WriteError> {
        self.inner.write(items)?;
        let id = batch_id(items);
        if self.lost.take() == Some(id) && !self.idempotent {
            self.duplicates += items.len() as u64;
        }
        if self.rng.random::<f64>() < self.share {
            self.lost = Some(id);
            return Err(WriteError::Outage(
                "the batch was committed but its acknowledgement was lost (fault injection)".into(),
            ));
        }
        Ok(())
    }

    fn duplicates(&self) -> u64 {
        self.duplicates
    }
}
