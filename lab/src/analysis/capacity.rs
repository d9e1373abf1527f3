//! The capacity search: the highest arrival rate (or the fewest workers)
//! that keeps an SLO, by a bracketing search.
//!
//! The search is a state machine that does no measuring itself: the
//! driver asks [`CapacitySearch::next`] what to run, runs it, and tells
//! [`CapacitySearch::record`] whether the SLO held. That keeps the maths
//! testable against a simulated system of known capacity and keeps the
//! driver (real jobs, warm-up and measure windows) separate.
//!
//! 1. **Bracket**: from the start value, step geometrically (×growth)
//!    towards where the SLO breaks while it holds, or towards where it
//!    holds while it breaks, until one value that holds and one that
//!    breaks are known (or a bound of the knob is reached).
//! 2. **Bisect** between them until they are within the stated precision
//!    (relative for real-valued knobs, one step for whole numbers).
//! 3. **Confirm**: re-measure the best value that held before accepting
//!    it. A boundary point that breaks on the second look is a break: the
//!    search moves below it and converges again.

/// Which end of the knob is better.
///
/// Why: "highest rate that keeps the SLO" and "fewest workers that keep
/// it" are the same search mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// The SLO holds below some value and breaks above it (arrival rate).
    Highest,
    /// The SLO breaks below some value and holds above it (workers).
    Lowest,
}

/// The search's settings.
///
/// Why: the driver builds one from the sweep spec; the bounds come from
/// the knob's validation limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSpec {
    /// Which end is better.
    pub goal: Goal,
    /// First value measured.
    pub start: f64,
    /// Factor of each bracketing step (> 1).
    pub growth: f64,
    /// Stop bisecting when the bracket is this close, relative to the value
    /// that held (ignored for whole numbers, which stop one step apart).
    pub precision: f64,
    /// Whether the knob takes whole numbers only.
    pub integer: bool,
    /// Smallest value the knob allows.
    pub min: f64,
    /// Largest value the knob allows.
    pub max: f64,
    /// Measurements allowed before the search gives up.
    pub max_probes: usize,
}

/// What to do next.
///
/// Why: the driver loops on this until it says done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Measure at this value and [`CapacitySearch::record`] the result.
    Probe(f64),
    /// The search is over.
    Done(Outcome),
}

/// Why the search ended.
///
/// Why: "the SLO holds even at the knob's limit" and "never holds" are
/// answers a person must see, not a silent number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Bracketed, bisected to precision and confirmed.
    Converged,
    /// The SLO held at the knob's best bound: the capacity is beyond it.
    HeldAtBound,
    /// The SLO broke even at the knob's worst bound.
    NeverHeld,
    /// Ran out of probes; the best confirmed-or-not value is reported.
    OutOfProbes,
}

/// The answer of a search.
///
/// Why: the value alone is not enough; the bracket says how sure it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The best value at which the SLO held (`None` if it never did).
    pub value: Option<f64>,
    /// The nearest value at which it broke, if any.
    pub broke_at: Option<f64>,
    /// How the search ended.
    pub ending: Ending,
    /// Measurements made.
    pub probes: usize,
}

/// The search in progress.
///
/// Why: the driver owns one per capacity sweep and persists its history.
#[derive(Debug, Clone)]
pub struct CapacitySearch {
    spec: SearchSpec,
    /// Every measurement, in order: value and whether the SLO held.
    history: Vec<(f64, bool)>,
}

impl CapacitySearch {
    /// A search with `spec` (the start is clamped into the bounds).
    pub fn new(mut spec: SearchSpec) -> Self {
        if spec.growth.is_nan() || spec.growth <= 1.0 {
            spec.growth = 2.0;
        }
        if spec.precision.is_nan() || spec.precision <= 0.0 {
            spec.precision = 0.05;
        }
        spec.start = spec.start.clamp(spec.min, spec.max);
        if spec.integer {
            spec.start = spec.start.round();
        }
        Self {
            spec,
            history: Vec::new(),
        }
    }

    /// The measurements so far.
    pub fn history(&self) -> &[(f64, bool)] {
        &self.history
    }

    /// Records that the SLO held (`ok`) or broke at `value`.
    pub fn record(&mut self, value: f64, ok: bool) {
        self.history.push((value, ok));
    }

    /// Whether the best held value has held on two measurements.
    fn confirmed(&self) -> bool {
        self.best_held()
            .is_some_and(|h| self.history.iter().filter(|&&(v, ok)| ok && v == h).count() >= 2)
    }

    /// Whether `a` is further towards the goal than `b`.
    fn better(&self, a: f64, b: f64) -> bool {
        match self.spec.goal {
            Goal::Highest => a > b,
            Goal::Lowest => a < b,
        }
    }

    /// Values that ever broke: a value is trusted to hold only if it never
    /// broke, and any value past a break is assumed to break too.
    fn broke(&self, v: f64) -> bool {
        self.history
            .iter()
            .any(|&(b, ok)| !ok && (b == v || self.better(v, b)))
    }

    /// The best value that held and has not broken since.
    fn best_held(&self) -> Option<f64> {
        self.history
            .iter()
            .filter(|&&(v, ok)| ok && !self.broke(v))
            .map(|&(v, _)| v)
            .reduce(|a, b| if self.better(a, b) { a } else { b })
    }

    /// The break nearest the goal side of the best held value.
    fn nearest_break(&self) -> Option<f64> {
        self.history
            .iter()
            .filter(|&&(_, ok)| !ok)
            .map(|&(v, _)| v)
            .reduce(|a, b| if self.better(a, b) { b } else { a })
    }

    fn towards_break(&self, v: f64) -> f64 {
        let next = match self.spec.goal {
            Goal::Highest => v * self.spec.growth,
            Goal::Lowest => v / self.spec.growth,
        };
        self.snap(next, v, true)
    }

    fn towards_hold(&self, v: f64) -> f64 {
        let next = match self.spec.goal {
            Goal::Highest => v / self.spec.growth,
            Goal::Lowest => v * self.spec.growth,
        };
        self.snap(next, v, false)
    }

    /// Clamps into the bounds and, for whole numbers, moves at least one
    /// step away from `from` in the intended direction.
    fn snap(&self, next: f64, from: f64, to_break: bool) -> f64 {
        let up = (self.spec.goal == Goal::Highest) == to_break;
        let mut n = next;
        if self.spec.integer {
            n = if up {
                n.ceil().max(from + 1.0)
            } else {
                n.floor().min(from - 1.0)
            };
        }
        n.clamp(self.spec.min, self.spec.max)
    }

    fn converged(&self, held: f64, broke: f64) -> bool {
        if self.spec.integer {
            (broke - held).abs() <= 1.0
        } else {
            (broke - held).abs() <= self.spec.precision * held.abs().max(f64::MIN_POSITIVE)
        }
    }

    fn done(&self, ending: Ending) -> Step {
        Step::Done(Outcome {
            value: self.best_held(),
            broke_at: self.nearest_break(),
            ending,
            probes: self.history.len(),
        })
    }

    /// What to measure next, or the answer.
    pub fn next(&self) -> Step {
        let held = self.best_held();
        let broke = self.nearest_break();
        let best_bound = match self.spec.goal {
            Goal::Highest => self.spec.max,
            Goal::Lowest => self.spec.min,
        };
        let worst_bound = match self.spec.goal {
            Goal::Highest => self.spec.min,
            Goal::Lowest => self.spec.max,
        };
        // Whether the next probe would only confirm the answer.
        let confirming = match (held, broke) {
            (Some(h), Some(b)) => self.converged(h, b),
            (Some(h), None) => h == best_bound,
            _ => false,
        };
        // One confirming probe is allowed past the budget: an answer is never
        // reported unconfirmed just because the budget ran out on it.
        if self.history.len() >= self.spec.max_probes && (!confirming || self.confirmed()) {
            let ending = if confirming && self.confirmed() {
                match broke {
                    Some(_) => Ending::Converged,
                    None => Ending::HeldAtBound,
                }
            } else {
                Ending::OutOfProbes
            };
            return self.done(ending);
        }
        match (held, broke) {
            (None, None) => Step::Probe(self.spec.start),
            (Some(h), None) => {
                if h == best_bound {
                    if self.confirmed() {
                        self.done(Ending::HeldAtBound)
                    } else {
                        Step::Probe(h)
                    }
                } else {
                    Step::Probe(self.towards_break(h))
                }
            }
            (None, Some(b)) => {
                if b == worst_bound {
                    self.done(Ending::NeverHeld)
                } else {
                    Step::Probe(self.towards_hold(b))
                }
            }
            (Some(h), Some(b)) => {
                if self.converged(h, b) {
                    if self.confirmed() {
                        self.done(Ending::Converged)
                    } else {
                        Step::Probe(h)
                    }
                } else {
                    let mid = if self.spec.integer {
                        ((h + b) / 2.0).floor()
                    } else {
                        (h + b) / 2.0
                    };
                    Step::Probe(mid)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_noise::Lcg;

    fn spec(goal: Goal, start: f64, integer: bool) -> SearchSpec {
        SearchSpec {
            goal,
            start,
            growth: 2.0,
            precision: 0.02,
            integer,
            min: 1.0,
            max: 1_000_000.0,
            max_probes: 60,
        }
    }

    /// Runs a search against `holds` and returns its outcome.
    fn run(mut s: CapacitySearch, mut holds: impl FnMut(f64) -> bool) -> Outcome {
        loop {
            match s.next() {
                Step::Probe(v) => {
                    let ok = holds(v);
                    s.record(v, ok);
                }
                Step::Done(o) => return o,
            }
        }
    }

    #[test]
    fn finds_a_known_rate_capacity_within_precision() {
        for start in [10.0, 1234.0, 50_000.0] {
            let capacity = 4321.0;
            let o = run(
                CapacitySearch::new(spec(Goal::Highest, start, false)),
                |r| r <= capacity,
            );
            assert_eq!(o.ending, Ending::Converged, "{o:?}");
            let v = o.value.unwrap();
            assert!(
                v <= capacity && v >= capacity * 0.98,
                "start {start}: {o:?}"
            );
            assert!(o.broke_at.unwrap() > capacity);
        }
    }

    #[test]
    fn finds_the_fewest_workers_exactly() {
        // A demand of 650 items/s on workers of 100 items/s each.
        let o = run(CapacitySearch::new(spec(Goal::Lowest, 1.0, true)), |w| {
            w * 100.0 >= 650.0
        });
        assert_eq!(o.ending, Ending::Converged, "{o:?}");
        assert_eq!(o.value, Some(7.0));
        assert_eq!(o.broke_at, Some(6.0));
    }

    #[test]
    fn the_boundary_is_measured_twice_and_a_flaky_one_is_rejected() {
        let capacity = 1000.0;
        let mut calls: Vec<f64> = Vec::new();
        // Just under capacity the system passes once, then fails.
        let mut flaked = false;
        let o = run(
            CapacitySearch::new(spec(Goal::Highest, 100.0, false)),
            |r| {
                calls.push(r);
                if r > capacity {
                    return false;
                }
                if r > capacity * 0.97 && !flaked && calls.iter().filter(|&&c| c == r).count() == 2
                {
                    flaked = true;
                    return false;
                }
                true
            },
        );
        assert_eq!(o.ending, Ending::Converged, "{o:?}");
        let v = o.value.unwrap();
        // The accepted value was measured twice and held both times.
        let holds: Vec<_> = calls.iter().filter(|&&c| c == v).collect();
        assert!(holds.len() >= 2, "{calls:?}");
        assert!(v <= capacity && v >= capacity * 0.9, "{o:?}");
    }

    #[test]
    fn a_noisy_system_still_lands_near_its_capacity() {
        let capacity = 2500.0;
        let mut rng = Lcg::new(3);
        // Within ±1% of the capacity the answer is a coin toss.
        let o = run(
            CapacitySearch::new(spec(Goal::Highest, 100.0, false)),
            |r| {
                if (r - capacity).abs() < capacity * 0.01 {
                    rng.next_unit() < 0.5
                } else {
                    r < capacity
                }
            },
        );
        let v = o.value.unwrap();
        assert!((v - capacity).abs() / capacity < 0.1, "{o:?}");
    }

    #[test]
    fn bounds_are_reported_in_words() {
        let held = run(
            CapacitySearch::new(spec(Goal::Highest, 100.0, false)),
            |_| true,
        );
        assert_eq!(held.ending, Ending::HeldAtBound);
        assert_eq!(held.value, Some(1_000_000.0));
        let never = run(
            CapacitySearch::new(spec(Goal::Highest, 100.0, false)),
            |_| false,
        );
        assert_eq!(never.ending, Ending::NeverHeld);
        assert_eq!(never.value, None);
        assert_eq!(never.broke_at, Some(1.0));
    }

    #[test]
    fn the_probe_budget_ends_the_search() {
        let mut s = spec(Goal::Highest, 1.0, false);
        s.max_probes = 4;
        s.precision = 1e-9;
        let o = run(CapacitySearch::new(s), |r| r < 777.0);
        assert_eq!(o.ending, Ending::OutOfProbes);
        assert_eq!(o.probes, 4);
        assert!(o.value.unwrap() < 777.0);
    }
}
