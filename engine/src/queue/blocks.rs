//! The queued items, kept in the chunks they were pushed in.
//!
//! A no-op pipeline is bound by how often each item's bytes are copied: a
//! profile of the thread shape put a quarter of its time in moving items
//! from a producer's buffer into one `VecDeque` and from there into a
//! consumer's (each an 80-byte copy per item, across cores, under the
//! lock). Here a whole chunk moves as its buffer: a push of a chunk that
//! fits hands its `VecDeque` over and takes an empty one back, a take of
//! a whole chunk hands it on the same way; only pushes that fit partly,
//! small pushes (merged into the last chunk, so a queue of single items
//! does not hold a buffer each) and takes of part of a chunk copy items.
//! Emptied buffers are kept for reuse, so the steady state allocates
//! nothing. Order and per-item counts are as with one `VecDeque`.

use std::collections::VecDeque;

use crate::item::Item;

/// The most items a producer pushes, or a consumer takes, in one lock.
/// Why 256: each chunk that finds its consumer parked costs a wake-up
/// and a context switch, which is most of what an async stage's input
/// costs on a machine with fewer cores than threads; 256 took the no-op
/// async shape from 5.2 to 7.1 M items/s against 64 (`bench/peer`, five
/// alternating runs each), the thread shape unchanged. A chunk of 256
/// cheap items is still processed in microseconds, so items taken early
/// do not wait long for their turn, and chunks are only for operations
/// that never wait.
pub const CHUNK: usize = 256;

/// Empty buffers kept for reuse; past this they are freed.
const SPARE: usize = 16;

/// Items in FIFO order, in chunks.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    blocks: VecDeque<VecDeque<Item>>,
    /// Items in all blocks.
    len: usize,
    spare: Vec<VecDeque<Item>>,
}

impl Blocks {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An empty buffer to hand back to a pusher or a taker.
    fn buffer(&mut self) -> VecDeque<Item> {
        self.spare
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(CHUNK))
    }

    fn keep(&mut self, buffer: VecDeque<Item>) {
        debug_assert!(buffer.is_empty());
        if self.spare.len() < SPARE && buffer.capacity() > 0 {
            self.spare.push(buffer);
        }
    }

    /// Queues the first `n` items of `items`, in order, at the back.
    pub(super) fn push(&mut self, items: &mut VecDeque<Item>, n: usize) {
        if n == 0 {
            return;
        }
        self.len += n;
        if let Some(last) = self.blocks.back_mut()
            && last.len() + n <= CHUNK
        {
            last.extend(items.drain(..n));
        } else if n == items.len() {
            let empty = self.buffer();
            self.blocks.push_back(std::mem::replace(items, empty));
        } else {
            let mut block = self.buffer();
            block.extend(items.drain(..n));
            self.blocks.push_back(block);
        }
    }

    /// Queues one item at the back.
    pub(super) fn push_back(&mut self, item: Item) {
        self.len += 1;
        match self.blocks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push_back(item),
            _ => {
                let mut block = self.buffer();
                block.push_back(item);
                self.blocks.push_back(block);
            }
        }
    }

    /// The oldest item.
    pub(super) fn pop_front(&mut self) -> Option<Item> {
        let front = self.blocks.front_mut()?;
        let item = front.pop_front();
        if front.is_empty() {
            let empty = self.blocks.pop_front().expect("a front block");
            self.keep(empty);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    /// Moves up to `n` of the oldest items to the back of `into`; how
    /// many. A whole front chunk moves as its buffer when `into` is empty
    /// (then fewer than `n` may move: the rest of the queue stays for the
    /// next take or another consumer).
    pub(super) fn take(&mut self, into: &mut VecDeque<Item>, n: usize) -> usize {
        let Some(front) = self.blocks.front_mut() else {
            return 0;
        };
        let moved = if into.is_empty() && front.len() <= n {
            let block = self.blocks.pop_front().expect("a front block");
            let moved = block.len();
            let empty = std::mem::replace(into, block);
            self.keep(empty);
            moved
        } else {
            let moved = n.min(front.len());
            into.extend(front.drain(..moved));
            if front.is_empty() {
                let empty = self.blocks.pop_front().expect("a front block");
                self.keep(empty);
            }
            moved
        };
        self.len -= moved;
        moved
    }

    /// Every item, in order.
    pub(super) fn drain_all(&mut self) -> Vec<Item> {
        self.len = 0;
        self.blocks.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::Payload;

    fn items(range: std::ops::Range<u64>) -> VecDeque<Item> {
        range
            .map(|i| Item::new(i, Payload::Counter(i), None))
            .collect()
    }

    fn seqs(items: &VecDeque<Item>) -> Vec<u64> {
        items.iter().map(|i| i.seq).collect()
    }

    #[test]
    fn chunks_keep_their_order_whether_moved_whole_merged_or_split() {
        let mut q = Blocks::default();
        let mut a = items(0..CHUNK as u64);
        q.push(&mut a, CHUNK);
        assert!(a.is_empty(), "a whole chunk moves as its buffer");
        let mut b = items(100..103);
        q.push(&mut b, 2); // part of a push: two of three
        assert_eq!(seqs(&b), [102]);
        q.push_back(Item::new(200, Payload::Counter(0), None));
        assert_eq!(q.len(), CHUNK + 3);
        let mut into = VecDeque::new();
        // More than the front chunk asked: the front chunk moves whole.
        assert_eq!(q.take(&mut into, CHUNK * 2), CHUNK);
        assert_eq!(seqs(&into), (0..CHUNK as u64).collect::<Vec<_>>());
        into.clear();
        // Part of a chunk is copied.
        assert_eq!(q.take(&mut into, 1), 1);
        assert_eq!(q.pop_front().map(|i| i.seq), Some(101));
        assert_eq!(
            q.drain_all().iter().map(|i| i.seq).collect::<Vec<_>>(),
            [200]
        );
        assert!(q.is_empty() && q.pop_front().is_none());
        assert_eq!(q.take(&mut into, 4), 0);
    }

    #[test]
    fn small_pushes_share_a_buffer() {
        let mut q = Blocks::default();
        for i in 0..(3 * CHUNK as u64) {
            let mut one = items(i..i + 1);
            q.push(&mut one, 1);
        }
        assert_eq!(
            q.blocks.len(),
            3,
            "single items fill chunks, not a buffer each"
        );
        let mut into = VecDeque::new();
        let mut seen = Vec::new();
        while q.take(&mut into, CHUNK) > 0 {
            seen.extend(into.drain(..).map(|i| i.seq));
        }
        assert_eq!(seen, (0..3 * CHUNK as u64).collect::<Vec<_>>());
        assert!(q.spare.len() <= SPARE);
    }
}
