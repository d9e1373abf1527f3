//! The tuning lab's vocabulary: what a sweep, a capacity search or a soak
//! asks for ([`SweepSpec`], [`SoakSpec`]), the SLO it checks ([`Slo`]),
//! and what it found ([`SweepReport`], [`SoakReport`]).
//!
//! Config is data: the CLI and `POST /api/v1/sweeps` both build a
//! [`SweepSpec`], [`SweepSpec::validate`] checks every count, duration and
//! value against the limits here before anything runs, and the `lab` crate
//! runs it. The results are plain data too, so a saved sweep reopens in the
//! dashboard exactly as it was measured.
//!
//! One file per concept, each re-exported here so `shared::lab::SweepSpec`
//! and the like are the paths to use: [`specs`] (what a run asks for),
//! [`knobs`] (the values it varies), [`slo`] (what it checks), [`figures`]
//! and [`reports`] (what it found), [`runs`] (a server's saved runs),
//! [`limits`] and [`duration`]. They import downwards: [`runs`] →
//! [`reports`], [`specs`] → [`slo`], [`knobs`] → [`figures`], [`limits`].

pub mod duration;
pub mod figures;
pub mod knobs;
pub mod limits;
pub mod reports;
pub mod runs;
pub mod slo;
pub mod specs;

pub use duration::*;
pub use figures::*;
pub use knobs::*;
pub use limits::*;
pub use reports::*;
pub use runs::*;
pub use slo::*;
pub use specs::*;
