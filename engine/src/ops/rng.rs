//! The random numbers an op draws: one seeded generator per worker.

use rand::SeedableRng;
use rand::rngs::SmallRng;

/// A small fast RNG for worker `n` of a stage, derived from the job seed
/// so runs repeat.
pub fn worker_rng(seed: u64, stage: usize, worker: usize) -> SmallRng {
    SmallRng::seed_from_u64(
        seed ^ (stage as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (worker as u64) << 32,
    )
}
