//! Where does a sweep stop paying off? Kneedle knee detection and a simple
//! "first climb" detector.
//!
//! [`kneedle`] implements the offline Kneedle algorithm of Satopää, Albrecht,
//! Irwin and Raghavan, *"Finding a 'Kneedle' in a Haystack: Detecting Knee
//! Points in System Behavior"* (ICDCS workshops, 2011), and reports **every**
//! knee it finds rather than only the first:
//!
//! 1. normalise x and y to `[0, 1]`;
//! 2. flip the curve so it becomes concave and increasing (see [`Shape`] and
//!    [`Direction`]);
//! 3. compute the difference curve `d = y' − x'`;
//! 4. find the local maxima of `d`;
//! 5. for each local maximum `(x_lmx, d_lmx)` set the threshold
//!    `T = d_lmx − S · mean(Δx')` where `S` is the sensitivity and `Δx'` the
//!    gaps between consecutive normalised x values;
//! 6. declare a knee at that maximum when the difference curve drops *strictly*
//!    below `T` before the next local maximum. Reaching the end of the data
//!    is not enough on its own: as in the `kneed` Python package's offline
//!    mode, the difference must actually fall below `T`.
//!
//! The paper also resets the threshold to zero when the difference curve
//! reaches a local minimum before crossing `T`. With the strict maxima used
//! here the difference curve is non-decreasing between a local minimum and the
//! next local maximum, so that reset can never produce a knee and is subsumed
//! by "before the next local maximum".
//!
//! Inputs may be unevenly spaced (e.g. worker counts 1, 2, 4, 8, 16): the
//! flips are done on the normalised coordinates (`x' ↦ 1 − x'`), not by
//! reversing the y array against an unchanged x array, so uneven spacing is
//! handled exactly.
//!
//! **Invalid input gives no knees.** [`kneedle`] returns an empty `Vec` when
//! there are fewer than 3 points, the slices differ in length, any value is
//! not finite, the xs are not strictly increasing (unsorted or duplicated),
//! all ys are equal, or the sensitivity is negative or not finite. The same
//! "nothing to report" convention is used by [`first_climb`], which returns
//! `None` for invalid input.

/// Curvature of the curve, which decides how it is flipped before detection.
///
/// Why: Kneedle only finds knees of concave increasing curves; the shape and
/// direction say how to turn the input into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Bends downwards (e.g. throughput levelling off as workers are added).
    Concave,
    /// Bends upwards (e.g. latency rising sharply as load increases).
    Convex,
}

/// Whether y grows or shrinks with x, which decides how the curve is flipped.
///
/// Why: together with [`Shape`] this selects one of the four flips of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// y grows with x.
    Increasing,
    /// y shrinks as x grows.
    Decreasing,
}

/// A knee found by [`kneedle`], in the caller's coordinates.
///
/// Why: reports both the position in the input and the values there, so a
/// caller can name the setting ("4 workers") without re-indexing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knee {
    /// Index into the input slices.
    pub index: usize,
    /// `xs[index]`.
    pub x: f64,
    /// `ys[index]`.
    pub y: f64,
}

/// Difference-curve values this close to zero are treated as exactly zero.
///
/// Why: normalising a straight line leaves rounding noise of ~1e-16 in the
/// difference curve, which would otherwise create spurious local maxima.
const DIFF_SNAP: f64 = 1e-12;

/// Find every knee of the curve `(xs, ys)` with the offline Kneedle algorithm.
///
/// Why: the knee is the point of diminishing returns in a sweep (e.g. the
/// worker count past which throughput stops growing).
///
/// `sensitivity` is the paper's `S`: larger values demand a more pronounced
/// bend (the paper recommends `S = 1`); `S = 0` reports every local maximum of
/// the difference curve that is followed by any decrease. Knees are returned
/// in increasing x order. Interior points only: the first and last samples
/// are never knees. Invalid input yields an empty `Vec` (see the module docs).
pub fn kneedle(
    xs: &[f64],
    ys: &[f64],
    sensitivity: f64,
    shape: Shape,
    direction: Direction,
) -> Vec<Knee> {
    let n = xs.len();
    if n < 3
        || ys.len() != n
        || !sensitivity.is_finite()
        || sensitivity < 0.0
        || !all_finite(xs)
        || !all_finite(ys)
        || !strictly_increasing(xs)
    {
        return Vec::new();
    }
    let (Some(xn), Some(yn)) = (normalise(xs), normalise(ys)) else {
        return Vec::new();
    };

    // Flip so that the curve is concave increasing. `flip_x` reflects the x
    // axis (x' -> 1 - x'), which reverses the order of the points; `flip_y`
    // reflects the y axis (y' -> 1 - y').
    let (flip_x, flip_y) = match (shape, direction) {
        (Shape::Concave, Direction::Increasing) => (false, false),
        (Shape::Convex, Direction::Decreasing) => (false, true),
        (Shape::Concave, Direction::Decreasing) => (true, false),
        (Shape::Convex, Direction::Increasing) => (true, true),
    };
    // `order[k]` is the input index of the k-th point of the flipped curve.
    let order: Vec<usize> = if flip_x {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    let diff: Vec<f64> = order
        .iter()
        .map(|&i| {
            let x = if flip_x { 1.0 - xn[i] } else { xn[i] };
            let y = if flip_y { 1.0 - yn[i] } else { yn[i] };
            let d = y - x;
            if d.abs() <= DIFF_SNAP { 0.0 } else { d }
        })
        .collect();

    // Normalised x spans exactly [0, 1], so the mean gap is 1 / (n - 1).
    let mean_gap = 1.0 / (n - 1) as f64;
    let maxima = local_maxima(&diff);

    let mut knees: Vec<Knee> = Vec::new();
    for (m, &k) in maxima.iter().enumerate() {
        let threshold = diff[k] - sensitivity * mean_gap;
        let stop = maxima.get(m + 1).copied().unwrap_or(n);
        if diff[k + 1..stop].iter().any(|&d| d < threshold) {
            let index = order[k];
            knees.push(Knee {
                index,
                x: xs[index],
                y: ys[index],
            });
        }
    }
    knees.sort_by_key(|k| k.index);
    knees
}

/// The first index `i ≥ 1` where `values[i] > factor × values[0]`.
///
/// Why: a cheap, explainable alarm for "latency (or error rate) climbed away
/// from where it started" that complements [`kneedle`] on P99 or error curves.
///
/// `values[0]` is the baseline. Rules:
/// * `factor` must be finite and at least 1 (a "climb" below the baseline is
///   not a climb); otherwise `None`.
/// * `values` must be finite and non-negative (latencies, rates); otherwise
///   `None`.
/// * With a baseline of 0 the threshold is `factor × 0 = 0`, so a climb is
///   any value strictly greater than 0.
/// * `xs` is only validated — same length as `values`, finite and strictly
///   increasing — so that the returned index means the same as in
///   [`kneedle`]; otherwise `None`.
///
/// Returns `None` when nothing climbs or the input is invalid (including fewer
/// than 2 points).
pub fn first_climb(xs: &[f64], values: &[f64], factor: f64) -> Option<usize> {
    if values.len() < 2
        || xs.len() != values.len()
        || !factor.is_finite()
        || factor < 1.0
        || !all_finite(xs)
        || !strictly_increasing(xs)
        || values.iter().any(|v| !v.is_finite() || *v < 0.0)
    {
        return None;
    }
    let limit = factor * values[0];
    values
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, v)| **v > limit)
        .map(|(i, _)| i)
}

/// True when every value is finite.
fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// True when the values are strictly increasing (no duplicates, sorted).
fn strictly_increasing(v: &[f64]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

/// Map values linearly onto `[0, 1]`; `None` when they are all equal.
fn normalise(v: &[f64]) -> Option<Vec<f64>> {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return None;
    }
    Some(v.iter().map(|x| (x - lo) / span).collect())
}

/// Interior local maxima of `d`, plateau-aware.
///
/// A point `k` (with `0 < k < len − 1`) is a local maximum when it is strictly
/// above its left neighbour and the first later value that differs from it is
/// lower. On a flat top only the left-most point counts.
fn local_maxima(d: &[f64]) -> Vec<usize> {
    let n = d.len();
    let mut out = Vec::new();
    for k in 1..n.saturating_sub(1) {
        if d[k] <= d[k - 1] {
            continue;
        }
        if let Some(next) = d[k + 1..].iter().find(|&&v| v != d[k])
            && *next < d[k]
        {
            out.push(k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_noise::Lcg;

    /// Throughput of a stage with service time `s` seconds, `n` workers and a
    /// source capped at `cap` items/s.
    fn capped(n: f64, s: f64, cap: f64) -> f64 {
        (n / s).min(cap)
    }

    fn indices(knees: &[Knee]) -> Vec<usize> {
        knees.iter().map(|k| k.index).collect()
    }

    #[test]
    fn capped_source_dense_sweep_knee_at_four_workers() {
        let xs: Vec<f64> = (1..=16).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|&n| capped(n, 0.010, 400.0)).collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Increasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        assert!((knees[0].x - 4.0).abs() <= 1.0, "{knees:?}");
        assert_eq!(knees[0].x, 4.0);
        assert_eq!(knees[0].y, 400.0);
    }

    #[test]
    fn capped_source_doubling_sweep_knee_at_four_workers() {
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        let ys: Vec<f64> = xs.iter().map(|&n| capped(n, 0.010, 400.0)).collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Increasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        // ±1 step of the sweep around N = 4 (index 2) means N in 2..=8.
        assert!((1..=3).contains(&knees[0].index), "{knees:?}");
        assert_eq!(knees[0].x, 4.0);
    }

    #[test]
    fn straight_line_has_no_knee() {
        let xs: Vec<f64> = (0..50).map(|i| f64::from(i) * 0.37 + 1.0).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 * x - 7.0).collect();
        for s in [0.0, 1.0, 5.0] {
            for shape in [Shape::Concave, Shape::Convex] {
                assert!(kneedle(&xs, &ys, s, shape, Direction::Increasing).is_empty());
            }
        }
        let down: Vec<f64> = ys.iter().map(|y| -y).collect();
        assert!(kneedle(&xs, &down, 0.0, Shape::Convex, Direction::Decreasing).is_empty());
    }

    /// Figure 2 of the paper, as reproduced by `kneed`'s `DataGenerator.figure2`:
    /// y = −1/(x + 0.1) + 5 on ten even points in [0, 1]; the known knee is
    /// x ≈ 0.22 (kneed's own test uses a 5 % relative tolerance).
    #[test]
    fn paper_figure_two_knee() {
        let xs: Vec<f64> = (0..10).map(|i| f64::from(i) / 9.0).collect();
        let ys: Vec<f64> = xs.iter().map(|x| -1.0 / (x + 0.1) + 5.0).collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Increasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        assert!((knees[0].x - 0.22).abs() / 0.22 < 0.05, "{knees:?}");
    }

    /// The same curve on x in 0.1..=10 (y = −1/x + 5): the continuous
    /// difference curve peaks at x = 1, where the discrete knee must land.
    #[test]
    fn reciprocal_on_wide_range() {
        let xs: Vec<f64> = (1..=100).map(|i| f64::from(i) * 0.1).collect();
        let ys: Vec<f64> = xs.iter().map(|x| -1.0 / x + 5.0).collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Increasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        // Normalised, d(x) = (10.1 − 1/x − x) / 9.9, which peaks at x = 1.
        assert!((knees[0].x - 1.0).abs() <= 0.1, "{knees:?}");
    }

    #[test]
    fn two_plateaus_report_both_knees() {
        let xs: Vec<f64> = (0..=40).map(f64::from).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| {
                if x <= 20.0 {
                    x.min(10.0)
                } else {
                    10.0 + (x - 20.0).min(10.0)
                }
            })
            .collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Increasing);
        assert_eq!(indices(&knees), vec![10, 30], "{knees:?}");
    }

    #[test]
    fn higher_sensitivity_never_finds_more_knees() {
        // A bumpy saturating curve with several local maxima in its difference curve.
        let mut lcg = Lcg::new(7);
        let xs: Vec<f64> = (1..=60).map(f64::from).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| 100.0 * (1.0 - (-x / 8.0).exp()) + 4.0 * lcg.next_signed())
            .collect();
        let mut last = usize::MAX;
        let mut counts = Vec::new();
        for step in 0..=40 {
            let s = f64::from(step) * 0.25;
            let found = kneedle(&xs, &ys, s, Shape::Concave, Direction::Increasing).len();
            assert!(found <= last, "S = {s}: {found} knees after {last}");
            last = found;
            counts.push(found);
        }
        assert!(
            counts[0] > 1,
            "the noisy curve should have several candidates"
        );
        assert!(*counts.last().unwrap() < counts[0]);
    }

    #[test]
    fn convex_increasing_latency_hockey_stick() {
        // Latency flat until load 70, then rising steeply.
        let xs: Vec<f64> = (0..=100).step_by(5).map(f64::from).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| {
                if x <= 70.0 {
                    10.0
                } else {
                    10.0 + 5.0 * (x - 70.0)
                }
            })
            .collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Convex, Direction::Increasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        assert_eq!(knees[0].x, 70.0);
    }

    #[test]
    fn convex_decreasing_elbow() {
        // y = 1/x: the elbow of a decreasing convex curve; flipped, it is the
        // curve above, so the elbow is at x = 1.
        let xs: Vec<f64> = (1..=100).map(|i| f64::from(i) * 0.1).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 1.0 / x).collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Convex, Direction::Decreasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        assert!((knees[0].x - 1.0).abs() <= 0.1, "{knees:?}");
    }

    #[test]
    fn concave_decreasing_uneven_spacing() {
        // Mirror image of the capped-source curve: flat, then falling linearly
        // from x = 12 on, sampled unevenly.
        let xs: [f64; 11] = [1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 13.0, 14.0, 15.0, 16.0];
        let ys: Vec<f64> = xs
            .iter()
            .map(|&x| (100.0 * (16.0 - x)).min(400.0))
            .collect();
        let knees = kneedle(&xs, &ys, 1.0, Shape::Concave, Direction::Decreasing);
        assert_eq!(knees.len(), 1, "{knees:?}");
        assert_eq!(knees[0].x, 12.0);
    }

    #[test]
    fn invalid_input_gives_no_knees() {
        let f =
            |xs: &[f64], ys: &[f64]| kneedle(xs, ys, 1.0, Shape::Concave, Direction::Increasing);
        assert!(f(&[1.0, 2.0], &[1.0, 2.0]).is_empty());
        assert!(f(&[1.0, 2.0, 3.0], &[1.0, 2.0]).is_empty());
        assert!(f(&[1.0, 3.0, 2.0, 4.0], &[1.0, 3.0, 3.0, 3.0]).is_empty());
        assert!(f(&[1.0, 2.0, 2.0, 4.0], &[1.0, 3.0, 3.0, 3.0]).is_empty());
        assert!(f(&[1.0, 2.0, 3.0, 4.0], &[1.0, f64::NAN, 3.0, 3.0]).is_empty());
        assert!(f(&[1.0, 2.0, f64::INFINITY], &[1.0, 3.0, 3.0]).is_empty());
        assert!(f(&[1.0, 2.0, 3.0, 4.0], &[5.0; 4]).is_empty());
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        let ys = [1.0, 4.0, 5.0, 5.0, 5.0];
        assert_eq!(f(&xs, &ys).len(), 1);
        for s in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(kneedle(&xs, &ys, s, Shape::Concave, Direction::Increasing).is_empty());
        }
    }

    #[test]
    fn first_climb_rules() {
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert_eq!(
            first_climb(&xs, &[10.0, 11.0, 19.0, 25.0, 90.0], 2.0),
            Some(3)
        );
        // Equal to factor × baseline is not a climb.
        assert_eq!(first_climb(&xs, &[10.0, 20.0, 20.0, 20.0, 20.0], 2.0), None);
        // Zero baseline: any positive value climbs.
        assert_eq!(first_climb(&xs, &[0.0, 0.0, 0.001, 0.0, 0.0], 3.0), Some(2));
        assert_eq!(first_climb(&xs, &[0.0; 5], 1.0), None);
        // Factor 1: anything above the baseline.
        assert_eq!(first_climb(&xs, &[5.0, 5.0, 5.1, 4.0, 4.0], 1.0), Some(2));
    }

    #[test]
    fn first_climb_invalid_input() {
        let xs = [1.0, 2.0, 3.0];
        let v = [1.0, 2.0, 3.0];
        assert_eq!(first_climb(&xs, &v, 0.5), None);
        assert_eq!(first_climb(&xs, &v, f64::NAN), None);
        assert_eq!(first_climb(&xs, &[1.0, f64::NAN, 3.0], 1.5), None);
        assert_eq!(first_climb(&xs, &[1.0, -2.0, 3.0], 1.5), None);
        assert_eq!(first_climb(&[1.0, 1.0, 3.0], &v, 1.5), None);
        assert_eq!(first_climb(&[1.0, 2.0], &v, 1.5), None);
        assert_eq!(first_climb(&[1.0], &[1.0], 1.5), None);
        assert_eq!(first_climb(&xs, &v, 1.5), Some(1));
    }
}
