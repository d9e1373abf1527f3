//! Why does a stage stop scaling? A fit of Gunther's Universal Scalability Law.
//!
//! The USL models throughput at concurrency `N` as
//!
//! ```text
//! X(N) = λN / (1 + σ(N − 1) + κN(N − 1))
//! ```
//!
//! * `λ` — throughput of one worker with no interference (items/s per worker);
//! * `σ` — contention: the share of work serialised on a shared resource
//!   (queueing for a lock, a connection, a disk);
//! * `κ` — coherency: the cost of workers waiting on *one another*
//!   (cross-talk that grows with the number of pairs), which makes
//!   throughput fall past a peak at `N* = √((1 − σ)/κ)`.
//!
//! [`fit`] estimates `(σ, κ, λ)` by bounded Levenberg–Marquardt least squares
//! (`rmpfit`, a port of CMPFIT) with `σ ≥ 0`, `κ ≥ 0`, `λ ≥ 0`. Residuals are
//! *relative*, `(X_obs − X_model)/X_obs`, so a 2 % error at one worker weighs
//! as much as a 2 % error at sixty-four; that keeps `λ`, which is pinned down
//! by the small-N points, from being swamped by the large throughputs. The
//! solver starts from Gunther's linearisation (see [`fit`]) and from a small
//! grid of guesses, and keeps the fit with the smallest residual.
//!
//! # Regime rule
//!
//! With `N_max` the largest `N` measured, the fitted curve's losses at `N_max`
//! are the contention term `c = σ(N_max − 1)` and the coherency term
//! `k = κN_max(N_max − 1)` (the efficiency there is `1/(1 + c + k)`):
//!
//! 1. [`Regime::CoherencyBound`] when a peak exists (`n_star` is `Some`), lies
//!    within or near the range measured (`N* ≤ 2·N_max`), and the coherency
//!    term is significant (`k ≥ 0.05`);
//! 2. otherwise [`Regime::ContentionBound`] when the curve is clearly
//!    sub-linear at `N_max` (`c + k ≥ 0.1`, i.e. under ~91 % of linear
//!    scaling) — this includes a coherency peak far beyond the range, which
//!    inside the range looks exactly like levelling off;
//! 3. otherwise [`Regime::Linear`].
//!
//! `n_star` is `None` when `σ ≥ 1` (throughput never rises above one worker's)
//! or when `κ` is negligible over the range measured, `κ·N_max² < 0.01`, which
//! would put the peak beyond roughly ten times the largest `N` measured — too
//! far to extrapolate honestly.

use rmpfit::{MPConfig, MPFitter, MPPar, MPResult};
use thiserror::Error;

/// Fewest distinct worker counts [`fit`] accepts.
///
/// Why: three parameters need clearly more than three points to be told apart
/// from noise.
pub const MIN_DISTINCT_N: usize = 6;

/// How far past the largest measured `N` a peak still counts as "near" (× `N_max`).
///
/// Why: a peak just beyond the sweep already bends the measured curve.
pub const NEAR_RANGE_FACTOR: f64 = 2.0;

/// Coherency term `κN_max(N_max − 1)` at or above which coherency is significant.
///
/// Why: below 5 % of lost capacity the coherency cost is within measurement noise.
pub const SIGNIFICANT_COHERENCY: f64 = 0.05;

/// Total loss `σ(N_max − 1) + κN_max(N_max − 1)` at or above which scaling is sub-linear.
///
/// Why: 0.1 means the fitted curve delivers under ~91 % of linear scaling at `N_max`.
pub const SIGNIFICANT_LOSS: f64 = 0.1;

/// `κ·N_max²` below which `κ` is treated as zero and `n_star` is `None`.
///
/// Why: such a small `κ` would put the peak beyond ~10 × `N_max`.
pub const NEGLIGIBLE_KAPPA_TERM: f64 = 0.01;

/// Why a USL fit was refused or failed.
///
/// Why: callers show the reason next to the sweep instead of a bogus curve.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum UslError {
    /// Fewer distinct worker counts than the fit needs.
    #[error("a USL fit needs at least {need} distinct worker counts, got {got}")]
    TooFewPoints {
        /// Distinct `N` values supplied.
        got: usize,
        /// Distinct `N` values required ([`MIN_DISTINCT_N`]).
        need: usize,
    },
    /// A point has a NaN or infinite coordinate.
    #[error("point {index} is not finite (N = {n}, X = {throughput})")]
    NotFinite {
        /// Index of the point in the input.
        index: usize,
        /// Its concurrency.
        n: f64,
        /// Its throughput.
        throughput: f64,
    },
    /// A point has `N ≤ 0` or throughput `≤ 0`.
    #[error("point {index} needs N > 0 and throughput > 0 (N = {n}, X = {throughput})")]
    NotPositive {
        /// Index of the point in the input.
        index: usize,
        /// Its concurrency.
        n: f64,
        /// Its throughput.
        throughput: f64,
    },
    /// The least-squares solver failed from every starting point.
    #[error("the least-squares solver failed: {reason}")]
    SolverFailed {
        /// The solver's last error message.
        reason: String,
    },
}

/// What limits scaling over the range measured (see the module's regime rule).
///
/// Why: turns three fitted numbers into the one sentence an operator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// Throughput grows (close to) linearly with workers.
    Linear,
    /// Throughput levels off: workers queue for a shared resource.
    ContentionBound,
    /// Throughput peaks at `N*` and then falls: workers wait on one another.
    CoherencyBound,
}

impl Regime {
    /// A plain-words explanation of the regime.
    ///
    /// Why: lets reports show the verdict without re-deriving it.
    pub fn describe(&self) -> &'static str {
        match self {
            Regime::Linear => "scales linearly over the range measured",
            Regime::ContentionBound => {
                "contention-bound: throughput levels off as workers queue for a shared resource"
            }
            Regime::CoherencyBound => {
                "coherency-bound: throughput falls past N* as workers wait on one another"
            }
        }
    }
}

/// A fitted Universal Scalability Law curve.
///
/// Why: carries the parameters plus the derived peak and regime a report needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UslFit {
    /// Contention coefficient `σ ≥ 0`.
    pub sigma: f64,
    /// Coherency coefficient `κ ≥ 0`.
    pub kappa: f64,
    /// Single-worker throughput `λ` (items/s).
    pub lambda: f64,
    /// Coefficient of determination `1 − SS_res/SS_tot` on the raw throughputs.
    pub r_squared: f64,
    /// Concurrency of peak throughput `√((1 − σ)/κ)`; `None` when `σ ≥ 1` or `κ` is negligible.
    pub n_star: Option<f64>,
    /// Throughput at `n_star`, `X(N*)`.
    pub peak_throughput: Option<f64>,
    /// Largest `N` measured, the range the regime rule refers to.
    pub max_n: f64,
    /// What limits scaling (see the module's regime rule).
    pub regime: Regime,
}

impl UslFit {
    /// Throughput the fitted curve predicts at concurrency `n`.
    ///
    /// Why: lets callers draw the curve or ask "what would 48 workers give?".
    pub fn predict(&self, n: f64) -> f64 {
        usl(self.lambda, self.sigma, self.kappa, n)
    }
}

/// The USL throughput at concurrency `n`.
fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fit the USL to `(N, throughput)` points.
///
/// Why: separates contention from coherency so a sweep can say *why* adding
/// workers stopped helping, and where the peak is.
///
/// Points may repeat an `N` (repeated measurements), but at least
/// [`MIN_DISTINCT_N`] distinct `N` are required. Every `N` and throughput
/// must be finite and strictly positive.
///
/// Starting points: `λ₀` is the mean throughput at `N = 1` when measured,
/// else the largest `X/N` (which, for a USL curve, sits at the smallest `N`).
/// Gunther's linearisation `(Nλ₀/X − 1)/(N − 1) = σ + κN` gives `(σ₀, κ₀)`
/// by ordinary least squares; a 3 × 3 grid of small positive `(σ, κ)` guesses
/// is tried as well, and the solution with the smallest residual wins.
pub fn fit(points: &[(f64, f64)]) -> Result<UslFit, UslError> {
    for (index, &(n, throughput)) in points.iter().enumerate() {
        if !n.is_finite() || !throughput.is_finite() {
            return Err(UslError::NotFinite {
                index,
                n,
                throughput,
            });
        }
        if n <= 0.0 || throughput <= 0.0 {
            return Err(UslError::NotPositive {
                index,
                n,
                throughput,
            });
        }
    }
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_N {
        return Err(UslError::TooFewPoints {
            got: distinct.len(),
            need: MIN_DISTINCT_N,
        });
    }
    let max_n = distinct[distinct.len() - 1];

    let lambda0 = initial_lambda(points);
    // Solve in scaled parameters [λ/λ₀, σ, κ·N_max²] so that all three are of
    // order one, which keeps the solver's finite-difference steps sensible.
    let kappa_scale = max_n * max_n;
    let mut problem = UslProblem::new(points, lambda0, kappa_scale);

    let mut starts: Vec<[f64; 3]> = Vec::new();
    if let Some((s0, k0)) = linearised_start(points, lambda0) {
        starts.push([1.0, s0.max(1e-3), (k0 * kappa_scale).max(1e-3)]);
    }
    for s in [0.01, 0.1, 0.5] {
        for k in [1e-3, 0.1, 1.0] {
            starts.push([1.0, s, k]);
        }
    }

    let mut best: Option<([f64; 3], f64)> = None;
    let mut last_error = String::from("no starting point converged");
    for start in starts {
        let mut params = start;
        match problem.mpfit(&mut params) {
            Ok(status) => {
                let norm = status.best_norm;
                let finite = norm.is_finite() && params.iter().all(|p| p.is_finite());
                if finite && best.is_none_or(|(_, b)| norm < b) {
                    best = Some((params, norm));
                }
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    let Some((params, _)) = best else {
        return Err(UslError::SolverFailed { reason: last_error });
    };

    let lambda = params[0] * lambda0;
    let sigma = params[1].max(0.0);
    let kappa = (params[2] / kappa_scale).max(0.0);
    Ok(summarise(points, lambda, sigma, kappa, max_n))
}

/// Derive `r²`, the peak and the regime from fitted parameters.
fn summarise(points: &[(f64, f64)], lambda: f64, sigma: f64, kappa: f64, max_n: f64) -> UslFit {
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let ss_res: f64 = points
        .iter()
        .map(|&(n, x)| (x - usl(lambda, sigma, kappa, n)).powi(2))
        .sum();
    let r_squared = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res <= f64::EPSILON * mean * mean * points.len() as f64 {
        1.0
    } else {
        0.0
    };

    let n_star = if sigma < 1.0 && kappa * max_n * max_n >= NEGLIGIBLE_KAPPA_TERM {
        Some(((1.0 - sigma) / kappa).sqrt())
    } else {
        None
    };
    let peak_throughput = n_star.map(|n| usl(lambda, sigma, kappa, n));

    let contention = sigma * (max_n - 1.0);
    let coherency = kappa * max_n * (max_n - 1.0);
    let regime = match n_star {
        Some(ns) if ns <= NEAR_RANGE_FACTOR * max_n && coherency >= SIGNIFICANT_COHERENCY => {
            Regime::CoherencyBound
        }
        _ if contention + coherency >= SIGNIFICANT_LOSS => Regime::ContentionBound,
        _ => Regime::Linear,
    };

    UslFit {
        sigma,
        kappa,
        lambda,
        r_squared,
        n_star,
        peak_throughput,
        max_n,
        regime,
    }
}

/// `λ₀`: mean throughput at `N = 1` if measured, else the largest `X/N`.
fn initial_lambda(points: &[(f64, f64)]) -> f64 {
    let ones: Vec<f64> = points.iter().filter(|p| p.0 == 1.0).map(|p| p.1).collect();
    if ones.is_empty() {
        points
            .iter()
            .map(|&(n, x)| x / n)
            .fold(f64::NEG_INFINITY, f64::max)
    } else {
        ones.iter().sum::<f64>() / ones.len() as f64
    }
}

/// Gunther's linearisation: regress `(Nλ₀/X − 1)/(N − 1)` on `N` to get `(σ, κ)`.
fn linearised_start(points: &[(f64, f64)], lambda0: f64) -> Option<(f64, f64)> {
    let pairs: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| (p.0 - 1.0).abs() > 1e-9)
        .map(|&(n, x)| (n, (n * lambda0 / x - 1.0) / (n - 1.0)))
        .collect();
    if pairs.len() < 2 {
        return None;
    }
    let m = pairs.len() as f64;
    let mean_n = pairs.iter().map(|p| p.0).sum::<f64>() / m;
    let mean_z = pairs.iter().map(|p| p.1).sum::<f64>() / m;
    let sxx: f64 = pairs.iter().map(|p| (p.0 - mean_n).powi(2)).sum();
    let sxz: f64 = pairs.iter().map(|p| (p.0 - mean_n) * (p.1 - mean_z)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let kappa = sxz / sxx;
    let sigma = mean_z - kappa * mean_n;
    (sigma.is_finite() && kappa.is_finite()).then_some((sigma, kappa))
}

/// The least-squares problem handed to `rmpfit`, in scaled parameters.
struct UslProblem<'a> {
    points: &'a [(f64, f64)],
    lambda_scale: f64,
    kappa_scale: f64,
    bounds: [MPPar; 3],
}

impl<'a> UslProblem<'a> {
    fn new(points: &'a [(f64, f64)], lambda_scale: f64, kappa_scale: f64) -> Self {
        let non_negative = || MPPar {
            limited_low: true,
            limit_low: 0.0,
            ..MPPar::default()
        };
        Self {
            points,
            lambda_scale,
            kappa_scale,
            bounds: [non_negative(), non_negative(), non_negative()],
        }
    }
}

impl MPFitter for UslProblem<'_> {
    fn eval(&mut self, params: &[f64], deviates: &mut [f64]) -> MPResult<()> {
        let lambda = params[0] * self.lambda_scale;
        let sigma = params[1];
        let kappa = params[2] / self.kappa_scale;
        for (d, &(n, x)) in deviates.iter_mut().zip(self.points) {
            *d = (x - usl(lambda, sigma, kappa, n)) / x;
        }
        Ok(())
    }

    fn number_of_points(&self) -> usize {
        self.points.len()
    }

    fn config(&self) -> MPConfig {
        MPConfig {
            max_iter: 1000,
            ..MPConfig::default()
        }
    }

    fn parameters(&self) -> Option<&[MPPar]> {
        Some(&self.bounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_noise::Lcg;

    fn curve(sigma: f64, kappa: f64, lambda: f64, ns: &[f64]) -> Vec<(f64, f64)> {
        ns.iter()
            .map(|&n| (n, usl(lambda, sigma, kappa, n)))
            .collect()
    }

    /// Multiply each throughput by `1 + 0.02·u`, `u` uniform in [-1, 1).
    fn noisy(points: &[(f64, f64)], seed: u64) -> Vec<(f64, f64)> {
        let mut lcg = Lcg::new(seed);
        points
            .iter()
            .map(|&(n, x)| (n, x * (1.0 + 0.02 * lcg.next_signed())))
            .collect()
    }

    fn rel(got: f64, want: f64) -> f64 {
        ((got - want) / want).abs()
    }

    fn doubling() -> Vec<f64> {
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    }

    fn one_to_eight() -> Vec<f64> {
        (1..=8).map(f64::from).collect()
    }

    fn step_three() -> Vec<f64> {
        (0..14).map(|i| f64::from(1 + 3 * i)).collect()
    }

    fn check_coherency_case(fit: &UslFit, sigma: f64, kappa: f64, lambda: f64) {
        assert!(rel(fit.sigma, sigma) < 0.05, "{fit:?}");
        assert!(rel(fit.kappa, kappa) < 0.05, "{fit:?}");
        assert!(rel(fit.lambda, lambda) < 0.05, "{fit:?}");
        let n_star = ((1.0 - sigma) / kappa).sqrt();
        assert!(rel(fit.n_star.unwrap(), n_star) < 0.05, "{fit:?}");
        let peak = usl(lambda, sigma, kappa, n_star);
        assert!(rel(fit.peak_throughput.unwrap(), peak) < 0.05, "{fit:?}");
        assert_eq!(fit.regime, Regime::CoherencyBound, "{fit:?}");
    }

    fn check_contention_case(fit: &UslFit) {
        assert!(rel(fit.sigma, 0.1) < 0.05, "{fit:?}");
        assert!(fit.kappa.abs() < 1e-4, "{fit:?}");
        assert!(rel(fit.lambda, 500.0) < 0.05, "{fit:?}");
        assert_eq!(fit.n_star, None, "{fit:?}");
        assert_eq!(fit.peak_throughput, None, "{fit:?}");
        assert_eq!(fit.regime, Regime::ContentionBound, "{fit:?}");
    }

    #[test]
    fn exact_coherency_doubling_sweep() {
        let fit = fit(&curve(0.05, 0.001, 1000.0, &doubling())).unwrap();
        check_coherency_case(&fit, 0.05, 0.001, 1000.0);
        assert!(
            rel(fit.sigma, 0.05) < 1e-6 && rel(fit.kappa, 0.001) < 1e-6,
            "{fit:?}"
        );
        assert!(fit.r_squared > 0.999_999, "{fit:?}");
        assert_eq!(fit.max_n, 64.0);
    }

    #[test]
    fn exact_contention_one_to_eight() {
        let fit = fit(&curve(0.1, 0.0, 500.0, &one_to_eight())).unwrap();
        check_contention_case(&fit);
        assert!(fit.kappa < 1e-8, "{fit:?}");
        assert!(fit.r_squared > 0.999_999, "{fit:?}");
    }

    #[test]
    fn exact_coherency_step_three() {
        let fit = fit(&curve(0.02, 0.0005, 200.0, &step_three())).unwrap();
        check_coherency_case(&fit, 0.02, 0.0005, 200.0);
    }

    #[test]
    fn noisy_coherency_doubling_sweep() {
        let points = noisy(&curve(0.05, 0.001, 1000.0, &doubling()), 11);
        let fit = fit(&points).unwrap();
        check_coherency_case(&fit, 0.05, 0.001, 1000.0);
        assert!(fit.r_squared > 0.99, "{fit:?}");
    }

    #[test]
    fn noisy_contention_one_to_eight() {
        let points = noisy(&curve(0.1, 0.0, 500.0, &one_to_eight()), 12);
        let fit = fit(&points).unwrap();
        check_contention_case(&fit);
    }

    /// With ±2% noise a small σ (0.02) moves by more than 5% of itself
    /// between noise draws (its absolute error stays under 0.003), so this
    /// case checks σ absolutely and the rest as the noise-free cases do.
    #[test]
    fn noisy_coherency_step_three() {
        let points = noisy(&curve(0.02, 0.0005, 200.0, &step_three()), 13);
        let fit = fit(&points).unwrap();
        assert!((fit.sigma - 0.02).abs() < 0.003, "{fit:?}");
        assert!(rel(fit.kappa, 0.0005) < 0.1, "{fit:?}");
        assert!(rel(fit.lambda, 200.0) < 0.05, "{fit:?}");
        let n_star = (0.98f64 / 0.0005).sqrt();
        assert!(rel(fit.n_star.unwrap(), n_star) < 0.05, "{fit:?}");
        assert_eq!(fit.regime, Regime::CoherencyBound, "{fit:?}");
    }

    #[test]
    fn linear_scaling_is_linear() {
        let ns: Vec<f64> = (1..=10).map(f64::from).collect();
        for sigma in [0.0, 0.005] {
            let fit = fit(&curve(sigma, 0.0, 100.0, &ns)).unwrap();
            assert_eq!(fit.regime, Regime::Linear, "{fit:?}");
            assert_eq!(fit.n_star, None, "{fit:?}");
            assert!(rel(fit.lambda, 100.0) < 1e-6, "{fit:?}");
        }
    }

    #[test]
    fn far_peak_reads_as_contention() {
        // N* = sqrt(0.99 / 1e-4) ≈ 99.5, far beyond a sweep that stops at 16,
        // yet κ already costs ~2.4 % and σ ~15 % at N = 16.
        let ns: Vec<f64> = (1..=16).map(f64::from).collect();
        let fit = fit(&curve(0.01, 1e-4, 300.0, &ns)).unwrap();
        assert!(fit.n_star.unwrap() > 2.0 * 16.0, "{fit:?}");
        assert_eq!(fit.regime, Regime::ContentionBound, "{fit:?}");
    }

    #[test]
    fn no_unit_point_uses_best_ratio_start() {
        let ns = [2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0];
        let fit = fit(&curve(0.05, 0.001, 1000.0, &ns)).unwrap();
        check_coherency_case(&fit, 0.05, 0.001, 1000.0);
    }

    #[test]
    fn repeated_measurements_are_allowed() {
        let mut points = noisy(&curve(0.05, 0.001, 1000.0, &doubling()), 21);
        points.extend(noisy(&curve(0.05, 0.001, 1000.0, &doubling()), 22));
        let fit = fit(&points).unwrap();
        check_coherency_case(&fit, 0.05, 0.001, 1000.0);
    }

    #[test]
    fn predict_follows_the_formula() {
        let fit = fit(&curve(0.05, 0.001, 1000.0, &doubling())).unwrap();
        for n in [1.0, 3.0, 30.0, 100.0] {
            assert!(rel(fit.predict(n), usl(1000.0, 0.05, 0.001, n)) < 1e-5);
        }
        let peak = fit.peak_throughput.unwrap();
        let n_star = fit.n_star.unwrap();
        assert!(fit.predict(n_star * 0.9) < peak && fit.predict(n_star * 1.1) < peak);
    }

    #[test]
    fn too_few_points_refused() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert_eq!(
            fit(&curve(0.05, 0.001, 1000.0, &ns)),
            Err(UslError::TooFewPoints { got: 5, need: 6 })
        );
        // Six points but only five distinct N.
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 16.0];
        assert_eq!(
            fit(&curve(0.05, 0.001, 1000.0, &ns)),
            Err(UslError::TooFewPoints { got: 5, need: 6 })
        );
        assert_eq!(fit(&[]), Err(UslError::TooFewPoints { got: 0, need: 6 }));
    }

    #[test]
    fn invalid_points_refused() {
        let mut points = curve(0.05, 0.001, 1000.0, &doubling());
        points[3].1 = f64::NAN;
        assert!(matches!(
            fit(&points),
            Err(UslError::NotFinite { index: 3, .. })
        ));
        points[3].1 = 0.0;
        assert!(matches!(
            fit(&points),
            Err(UslError::NotPositive { index: 3, .. })
        ));
        points[3] = (-1.0, 10.0);
        assert!(matches!(
            fit(&points),
            Err(UslError::NotPositive { index: 3, .. })
        ));
        points[3] = (f64::INFINITY, 10.0);
        assert!(matches!(
            fit(&points),
            Err(UslError::NotFinite { index: 3, .. })
        ));
    }

    #[test]
    fn regime_words() {
        assert!(
            Regime::ContentionBound
                .describe()
                .starts_with("contention-bound")
        );
        assert!(
            Regime::CoherencyBound
                .describe()
                .starts_with("coherency-bound")
        );
        assert!(Regime::Linear.describe().contains("linearly"));
        let e = UslError::TooFewPoints { got: 5, need: 6 };
        assert_eq!(
            e.to_string(),
            "a USL fit needs at least 6 distinct worker counts, got 5"
        );
    }
}
