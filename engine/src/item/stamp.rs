//! A moment on the process's monotonic clock in 8 bytes, for the times an
//! item carries.
//!
//! An `Option<Instant>` takes 16 bytes; an item carries two (when it was
//! born, when it entered its queue), and a no-op pipeline is bound by the
//! bytes its items move between cores. An `Option<Stamp>` takes 8: the
//! nanoseconds since the process first read a stamp, never zero, so the
//! `None` costs nothing. 2⁶⁴ ns is 584 years.

use std::num::NonZeroU64;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The clock's zero: the first stamp read in this process.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// A moment, as an [`Instant`] is, in 8 bytes (and `Option<Stamp>` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(NonZeroU64);

impl Stamp {
    /// Now.
    #[inline]
    pub fn now() -> Self {
        Self::from(Instant::now())
    }

    /// The moment as an [`Instant`].
    #[inline]
    pub fn instant(self) -> Instant {
        epoch() + Duration::from_nanos(self.0.get() - 1)
    }
}

impl From<Instant> for Stamp {
    /// A moment before the epoch (read before the first stamp) counts as
    /// the epoch itself.
    #[inline]
    fn from(at: Instant) -> Self {
        let nanos = at.saturating_duration_since(epoch()).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        Self(NonZeroU64::new(nanos + 1).expect("nanos + 1 > 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_the_instant_it_was_made_from_in_eight_bytes() {
        let before = Stamp::now();
        let at = Instant::now() + Duration::from_millis(3);
        let stamp = Stamp::from(at);
        assert_eq!(stamp.instant(), at);
        assert!(before < stamp);
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 8);
    }
}
