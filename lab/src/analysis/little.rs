//! Does a stage's metrics agree with Little's law?
//!
//! Over any window in which a stage is stable, the mean number of items in
//! it equals its completion rate times the mean time an item spends in it
//! (L = λW, Little 1961). The engine measures all three separately — depth
//! and in-flight from the queue and the workers, the rate from the
//! completion counter, the time from the queue-wait and service
//! histograms — so a large mismatch that persists over several windows
//! means one of those figures is wrong, not that the law failed.
//!
//! A single window can disagree for honest reasons (a burst at its edge,
//! a stage that is filling up), and tiny figures are all noise; so a
//! window is only judged when both sides are above a floor, and a stage is
//! flagged only when most of its judged windows disagree.

/// One window's comparison for one stage.
///
/// Why: the dashboard shows both sides and the ratio, not only a flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LittleCheck {
    /// Mean items in the stage (queued plus being worked on), as sampled.
    pub observed: f64,
    /// Completion rate × mean time in stage.
    pub expected: f64,
    /// `observed / expected` (1 is perfect agreement).
    pub ratio: f64,
    /// Whether this window was large enough to judge.
    pub judged: bool,
    /// Judged, and the ratio is outside `[1 / tolerance, tolerance]`.
    pub mismatch: bool,
}

/// How strict the check is.
///
/// Why: a stage of a few items has more sampling noise than one of
/// thousands; the floor and tolerance are the knobs for that.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LittleRule {
    /// A window is judged only when both sides reach this many items.
    pub floor: f64,
    /// The largest ratio (either way) still counted as agreement.
    pub tolerance: f64,
    /// Share of judged windows that must disagree to flag the stage.
    pub persistent_share: f64,
    /// Judged windows needed before a stage can be flagged at all.
    pub min_windows: usize,
}

impl Default for LittleRule {
    fn default() -> Self {
        Self {
            floor: 0.5,
            tolerance: 2.0,
            persistent_share: 0.6,
            min_windows: 3,
        }
    }
}

/// Compares a window's mean items in stage with `rate` (items/s) × the
/// mean time in stage (`mean_secs`).
pub fn check(observed: f64, rate: f64, mean_secs: f64, rule: &LittleRule) -> LittleCheck {
    let expected = rate * mean_secs;
    let finite = observed.is_finite() && expected.is_finite();
    let judged = finite && observed >= rule.floor && expected >= rule.floor;
    let ratio = if finite && expected > 0.0 {
        observed / expected
    } else {
        f64::NAN
    };
    let mismatch = judged && !(ratio <= rule.tolerance && ratio >= 1.0 / rule.tolerance);
    LittleCheck {
        observed,
        expected,
        ratio,
        judged,
        mismatch,
    }
}

/// Whether a stage's windows disagree persistently enough to flag it.
pub fn persistent_mismatch(checks: &[LittleCheck], rule: &LittleRule) -> bool {
    let judged = checks.iter().filter(|c| c.judged).count();
    let bad = checks.iter().filter(|c| c.mismatch).count();
    judged >= rule.min_windows && bad as f64 >= rule.persistent_share * judged as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consistent_stage_agrees() {
        // 8 workers busy, 100 queued; 400 items/s at 0.27 s each → 108.
        let c = check(108.0, 400.0, 0.27, &LittleRule::default());
        assert!(c.judged && !c.mismatch, "{c:?}");
        assert!((c.ratio - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_wrong_metric_is_flagged_when_it_persists() {
        let rule = LittleRule::default();
        // A depth gauge that reads ten times too high.
        let windows: Vec<_> = (0..5).map(|_| check(1000.0, 400.0, 0.25, &rule)).collect();
        assert!(windows.iter().all(|c| c.mismatch));
        assert!(persistent_mismatch(&windows, &rule));
        // And one that reads ten times too low.
        let low = check(10.0, 400.0, 0.25, &rule);
        assert!(low.mismatch);
    }

    #[test]
    fn one_odd_window_is_not_persistent() {
        let rule = LittleRule::default();
        let mut windows: Vec<_> = (0..5).map(|_| check(100.0, 400.0, 0.25, &rule)).collect();
        windows.push(check(500.0, 400.0, 0.25, &rule));
        assert!(!persistent_mismatch(&windows, &rule));
    }

    #[test]
    fn tiny_or_missing_figures_are_not_judged() {
        let rule = LittleRule::default();
        let idle = check(0.01, 1.0, 0.001, &rule);
        assert!(!idle.judged && !idle.mismatch);
        let none = check(5.0, f64::NAN, 0.1, &rule);
        assert!(!none.judged);
        let few: Vec<_> = (0..2).map(|_| check(1000.0, 1.0, 1.0, &rule)).collect();
        assert!(!persistent_mismatch(&few, &rule), "two windows are too few");
    }
}
