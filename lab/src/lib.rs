//! # `lab` — QueueLab's tuning lab
//!
//! (tour to be written)

pub mod analysis;
