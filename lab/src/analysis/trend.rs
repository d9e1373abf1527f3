//! Is a soak run's figure drifting? The Mann–Kendall trend test, Sen's
//! slope, the leak verdict built from both, and the jitter of a series.
//!
//! A soak samples RSS, open files, threads and total queue depth once a
//! minute (medians of the samples in that minute). A leak is a figure that
//! keeps growing; noise and a warm-up step are not. So a leak is flagged
//! only when both hold:
//!
//! * **the trend is real** — the Mann–Kendall test (Mann 1945, Kendall
//!   1975) rejects "no monotonic trend" at the chosen level (p < 0.05 by
//!   default). It is rank-based: it needs no distribution and one outlier
//!   cannot fake a trend. The variance is corrected for ties, which are
//!   common in integer figures such as thread counts;
//! * **it matters** — Sen's slope (the median of all pairwise slopes,
//!   Sen 1968), projected over the soak's planned duration, exceeds a
//!   budget (say 64 MiB of RSS over an hour). A significant but tiny drift
//!   is reported, not flagged.
//!
//! Jitter is the spread of a series (per-minute throughput or P99): its
//! coefficient of variation and its min/median/max, which a person reads
//! as "steady" or "jumpy".

/// The outcome of a Mann–Kendall test on one series.
///
/// Why: the soak verdict and the dashboard both need the statistic, its
/// significance and the direction in one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// Kendall's S: concordant minus discordant pairs.
    pub s: i64,
    /// Variance of S under the null hypothesis, corrected for ties.
    pub var_s: f64,
    /// The standardised statistic (with the continuity correction).
    pub z: f64,
    /// Two-sided p-value of "no monotonic trend".
    pub p_value: f64,
}

impl MannKendall {
    /// Whether the series has a trend at significance level `alpha`.
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// The Mann–Kendall test over `ys` taken at equal intervals; `None` with
/// fewer than 3 values or a non-finite one (no test can be made).
pub fn mann_kendall(ys: &[f64]) -> Option<MannKendall> {
    let n = ys.len();
    if n < 3 || ys.iter().any(|y| !y.is_finite()) {
        return None;
    }
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            s += match ys[j].partial_cmp(&ys[i]) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let nf = n as f64;
    let mut var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    for t in tie_groups(ys) {
        let t = t as f64;
        var_s -= t * (t - 1.0) * (2.0 * t + 5.0);
    }
    var_s /= 18.0;
    let z = if var_s <= 0.0 {
        0.0
    } else if s > 0 {
        (s as f64 - 1.0) / var_s.sqrt()
    } else if s < 0 {
        (s as f64 + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    // Two-sided: P(|Z| ≥ |z|) = erfc(|z| / √2).
    let p_value = libm::erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0);
    Some(MannKendall {
        s,
        var_s,
        z,
        p_value,
    })
}

/// Sizes of the groups of equal values (only groups of two or more).
fn tie_groups(ys: &[f64]) -> Vec<usize> {
    let mut sorted = ys.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut groups = Vec::new();
    let mut run = 1;
    for w in sorted.windows(2) {
        if w[0] == w[1] {
            run += 1;
        } else {
            if run > 1 {
                groups.push(run);
            }
            run = 1;
        }
    }
    if run > 1 {
        groups.push(run);
    }
    groups
}

/// Sen's slope: the median of `(y_j − y_i) / (j − i)` over all pairs, in
/// units of y per sample interval; `None` with fewer than 2 finite values.
pub fn sen_slope(ys: &[f64]) -> Option<f64> {
    if ys.len() < 2 || ys.iter().any(|y| !y.is_finite()) {
        return None;
    }
    let mut slopes = Vec::with_capacity(ys.len() * (ys.len() - 1) / 2);
    for i in 0..ys.len() {
        for j in i + 1..ys.len() {
            slopes.push((ys[j] - ys[i]) / (j - i) as f64);
        }
    }
    median(&mut slopes)
}

/// The median of `xs` (reordering them); `None` when empty.
pub fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

/// What a soak says about one figure.
///
/// Why: the flag needs both a significant trend and a projected growth
/// above budget; keeping the parts lets the page say which one failed.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendVerdict {
    /// The test, when there were enough samples for one.
    pub test: Option<MannKendall>,
    /// Sen's slope per sample interval.
    pub slope: Option<f64>,
    /// The slope projected over the planned number of intervals.
    pub projected: Option<f64>,
    /// Growth allowed over the planned duration before it is a leak.
    pub budget: f64,
    /// A significant upward trend whose projection exceeds the budget.
    pub leak: bool,
    /// Samples the verdict was made from.
    pub samples: usize,
}

/// The verdict on `ys` (one value per interval) for a soak planned to last
/// `planned_intervals`, flagging growth beyond `budget` at level `alpha`.
pub fn leak_verdict(ys: &[f64], planned_intervals: f64, budget: f64, alpha: f64) -> TrendVerdict {
    let test = mann_kendall(ys);
    let slope = sen_slope(ys);
    let projected = slope.map(|s| s * planned_intervals);
    let leak = matches!(
        (test, projected),
        (Some(t), Some(p)) if t.significant(alpha) && t.s > 0 && p > budget
    );
    TrendVerdict {
        test,
        slope,
        projected,
        budget,
        leak,
        samples: ys.len(),
    }
}

/// How much a series wanders around its middle.
///
/// Why: a soak's jitter is read from per-minute throughput and P99; a
/// coefficient of variation compares series of different units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median value.
    pub median: f64,
    /// Largest value.
    pub max: f64,
    /// Standard deviation over the mean (0 for a constant series).
    pub cv: f64,
}

/// The spread of the finite values of `ys`; `None` when there are none.
pub fn spread(ys: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n;
    let cv = if mean.abs() > f64::EPSILON {
        var.sqrt() / mean.abs()
    } else {
        0.0
    };
    let median = median(&mut v)?;
    Some(Spread {
        min: v[0],
        median,
        max: v[v.len() - 1],
        cv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_noise::Lcg;

    #[test]
    fn a_flat_noisy_series_has_no_trend() {
        let mut rng = Lcg::new(7);
        let ys: Vec<f64> = (0..60).map(|_| 100.0 + 5.0 * rng.next_signed()).collect();
        let t = mann_kendall(&ys).unwrap();
        assert!(!t.significant(0.05), "{t:?}");
        let v = leak_verdict(&ys, 60.0, 50.0, 0.05);
        assert!(!v.leak, "{v:?}");
    }

    #[test]
    fn a_growing_noisy_series_has_a_trend_and_its_slope() {
        let mut rng = Lcg::new(11);
        let ys: Vec<f64> = (0..60)
            .map(|i| 100.0 + 2.0 * i as f64 + 5.0 * rng.next_signed())
            .collect();
        let t = mann_kendall(&ys).unwrap();
        assert!(t.significant(0.05) && t.s > 0, "{t:?}");
        let slope = sen_slope(&ys).unwrap();
        assert!((slope - 2.0).abs() < 0.2, "slope {slope}");
        let v = leak_verdict(&ys, 60.0, 50.0, 0.05);
        assert!(v.leak, "{v:?}");
    }

    #[test]
    fn a_significant_drift_under_budget_is_not_a_leak() {
        let ys: Vec<f64> = (0..30).map(|i| 1000.0 + 0.1 * i as f64).collect();
        let v = leak_verdict(&ys, 30.0, 100.0, 0.05);
        assert!(v.test.unwrap().significant(0.05));
        assert!(!v.leak, "{v:?}");
    }

    #[test]
    fn a_shrinking_series_is_not_a_leak() {
        let ys: Vec<f64> = (0..30).map(|i| 1000.0 - 10.0 * i as f64).collect();
        let v = leak_verdict(&ys, 30.0, 1.0, 0.05);
        assert!(v.test.unwrap().s < 0);
        assert!(!v.leak);
    }

    #[test]
    fn the_statistic_matches_a_hand_count_with_ties() {
        // Pairs of [1, 2, 2, 3]: (1,2)+ (1,2)+ (1,3)+ (2,2)0 (2,3)+ (2,3)+.
        let t = mann_kendall(&[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert_eq!(t.s, 5);
        // n=4: 4·3·13 = 156; one tie of 2: 2·1·9 = 18; (156 − 18) / 18.
        assert!((t.var_s - 138.0 / 18.0).abs() < 1e-12);
        // z = (5 − 1) / √7.667 ≈ 1.4446; p ≈ 0.1486.
        assert!((t.z - 1.4446).abs() < 1e-3, "{}", t.z);
        assert!((t.p_value - 0.1486).abs() < 1e-3, "{}", t.p_value);
    }

    #[test]
    fn a_constant_series_has_no_trend_and_a_zero_spread() {
        let ys = [5.0; 20];
        let t = mann_kendall(&ys).unwrap();
        assert_eq!(t.s, 0);
        assert_eq!(t.p_value, 1.0);
        let s = spread(&ys).unwrap();
        assert_eq!((s.min, s.median, s.max, s.cv), (5.0, 5.0, 5.0, 0.0));
    }

    #[test]
    fn too_few_or_bad_samples_make_no_test() {
        assert!(mann_kendall(&[1.0, 2.0]).is_none());
        assert!(mann_kendall(&[1.0, f64::NAN, 3.0]).is_none());
        assert!(sen_slope(&[1.0]).is_none());
        assert!(!leak_verdict(&[1.0, 9.0], 10.0, 0.0, 0.05).leak);
        assert!(spread(&[]).is_none());
    }

    #[test]
    fn one_outlier_does_not_make_a_trend() {
        let mut ys = vec![10.0; 40];
        ys[39] = 10_000.0;
        let t = mann_kendall(&ys).unwrap();
        assert!(!t.significant(0.05), "{t:?}");
        assert_eq!(sen_slope(&ys), Some(0.0));
    }

    #[test]
    fn spread_reads_min_median_max_and_cv() {
        let s = spread(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.5, 4.0));
        // mean 2.5, population sd √1.25.
        assert!((s.cv - 1.25f64.sqrt() / 2.5).abs() < 1e-12);
    }
}
