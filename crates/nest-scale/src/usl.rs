//! The Universal Scalability Law and its least-squares fit, written here because the `usl` crate panics when its
//! fit fails and is no longer maintained.
//!
//! X(N) = λN / (1 + σ(N−1) + κN(N−1)). The fit is Levenberg–Marquardt on all three parameters, with the analytic
//! Jacobian, σ and κ kept in [0, 1) and λ > 0, started from Gunther's linearisation and two fixed guesses (the best
//! end wins). Pinning λ to a noisy X(1) biases σ, so λ is always fitted freely. The standard errors come from the
//! Gauss–Newton covariance s²(JᵀJ)⁻¹ at the optimum; they decide whether N* is determinable at all.

use serde::{Deserialize, Serialize};

/// One measured step: concurrency `n` and throughput `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Concurrency (users, or X·R in the open model).
    pub n: f64,
    /// Throughput (requests per second).
    pub x: f64,
}

/// The three USL parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usl {
    /// Contention: the serialised fraction.
    pub sigma: f64,
    /// Coherency: the pairwise crosstalk cost.
    pub kappa: f64,
    /// Throughput of one user.
    pub lambda: f64,
}

impl Usl {
    /// The denominator 1 + σ(N−1) + κN(N−1).
    fn denominator(&self, n: f64) -> f64 {
        1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0)
    }

    /// The modelled throughput at concurrency `n`.
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * n / self.denominator(n)
    }

    /// The peak concurrency N* = √((1−σ)/κ); `None` when κ = 0 (the curve never turns down).
    pub fn peak_concurrency(&self) -> Option<f64> {
        (self.kappa > 0.0).then(|| ((1.0 - self.sigma) / self.kappa).sqrt())
    }

    /// The throughput at N*, or the asymptote λ/σ when κ = 0 (`None` when both are 0: linear scaling).
    pub fn max_throughput(&self) -> Option<f64> {
        match self.peak_concurrency() {
            Some(n) => Some(self.throughput(n)),
            None => (self.sigma > 0.0).then(|| self.lambda / self.sigma),
        }
    }

    /// The partial derivatives of X(n) by σ, κ and λ.
    fn gradient(&self, n: f64) -> [f64; 3] {
        let d = self.denominator(n);
        let dx_dd = -self.lambda * n / (d * d);
        [dx_dd * (n - 1.0), dx_dd * n * (n - 1.0), n / d]
    }

    fn from_params(p: [f64; 3]) -> Usl {
        Usl { sigma: p[0], kappa: p[1], lambda: p[2] }
    }

    fn params(&self) -> [f64; 3] {
        [self.sigma, self.kappa, self.lambda]
    }
}

/// A fitted model and how good it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// The parameters.
    #[serde(flatten)]
    pub model: Usl,
    /// Standard errors of σ, κ and λ (absent with too few points to estimate them).
    pub sigma_se: Option<f64>,
    /// See `sigma_se`.
    pub kappa_se: Option<f64>,
    /// See `sigma_se`.
    pub lambda_se: Option<f64>,
    /// 1 − SSR/SST over the points.
    pub r_squared: f64,
    /// The residual standard deviation √(SSR/(m−3)), in throughput units.
    pub residual_sd: f64,
    /// How many points were fitted.
    pub points: usize,
}

/// Why no fit could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Three parameters need more points than this.
    #[error("{have} usable steps, at least {need} are needed for a fit")]
    TooFewPoints {
        /// Points given.
        have: usize,
        /// Points needed.
        need: usize,
    },
    /// A point is not a positive, finite measurement.
    #[error("step {index} has no positive, finite concurrency and throughput")]
    BadPoint {
        /// Its position.
        index: usize,
    },
}

/// The fewest points [`fit`] accepts.
pub const MIN_POINTS: usize = 4;

/// Fits the USL to `points` by least squares on the throughput, σ and κ in [0, 1), λ > 0.
pub fn fit(points: &[Point]) -> Result<Fit, FitError> {
    if points.len() < MIN_POINTS {
        return Err(FitError::TooFewPoints { have: points.len(), need: MIN_POINTS });
    }
    if let Some(index) = points.iter().position(|p| !(p.n > 0.0 && p.x > 0.0 && p.n.is_finite() && p.x.is_finite())) {
        return Err(FitError::BadPoint { index });
    }
    let lambda0 = points.iter().map(|p| p.x / p.n).fold(0.0, f64::max);
    let starts = [linearised(points, lambda0), [0.1, 0.01, lambda0], [0.01, 1e-4, lambda0]];
    let best = starts
        .into_iter()
        .map(|start| levenberg_marquardt(points, start))
        .min_by(|a, b| ssr(points, a).total_cmp(&ssr(points, b)))
        .expect("three starts");
    Ok(summarise(points, Usl::from_params(best)))
}

/// Gunther's linearisation: with C = X·(1/λ₀)/N⁻¹, N/C − 1 = (σ+κ)(N−1) + κ(N−1)², fitted through the origin.
fn linearised(points: &[Point], lambda0: f64) -> [f64; 3] {
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        let (u, y) = (p.n - 1.0, p.n * lambda0 / p.x - 1.0);
        let (a, b) = (u, u * u);
        s11 += a * a;
        s12 += a * b;
        s22 += b * b;
        s1y += a * y;
        s2y += b * y;
    }
    let det = s11 * s22 - s12 * s12;
    if det.abs() < 1e-300 {
        return [0.05, 1e-3, lambda0];
    }
    let sum = (s1y * s22 - s2y * s12) / det;
    let kappa = ((s11 * s2y - s12 * s1y) / det).clamp(0.0, 0.5);
    [(sum - kappa).clamp(0.0, 0.99), kappa, lambda0]
}

/// The sum of squared residuals of the parameters `p`.
fn ssr(points: &[Point], p: &[f64; 3]) -> f64 {
    let model = Usl::from_params(*p);
    points.iter().map(|pt| (pt.x - model.throughput(pt.n)).powi(2)).sum()
}

/// Keeps σ and κ in [0, 1) and λ positive.
fn clamp(p: [f64; 3]) -> [f64; 3] {
    const BELOW_ONE: f64 = 1.0 - 1e-9;
    [p[0].clamp(0.0, BELOW_ONE), p[1].clamp(0.0, BELOW_ONE), p[2].max(1e-12)]
}

/// JᵀJ and Jᵀr at `p`.
fn normal_equations(points: &[Point], p: &[f64; 3]) -> ([[f64; 3]; 3], [f64; 3]) {
    let model = Usl::from_params(*p);
    let (mut jtj, mut jtr) = ([[0.0; 3]; 3], [0.0; 3]);
    for pt in points {
        let g = model.gradient(pt.n);
        let r = pt.x - model.throughput(pt.n);
        for i in 0..3 {
            jtr[i] += g[i] * r;
            for j in 0..3 {
                jtj[i][j] += g[i] * g[j];
            }
        }
    }
    (jtj, jtr)
}

/// Bounded Levenberg–Marquardt from `start`: a step is kept only when it lowers the squared error.
fn levenberg_marquardt(points: &[Point], start: [f64; 3]) -> [f64; 3] {
    let mut p = clamp(start);
    let mut error = ssr(points, &p);
    let mut mu = 1e-3;
    for _ in 0..2000 {
        let (jtj, jtr) = normal_equations(points, &p);
        let mut a = jtj;
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += mu * jtj[i][i].max(1e-300);
        }
        let Some(step) = solve(a, jtr) else {
            mu *= 10.0;
            continue;
        };
        let next = clamp([p[0] + step[0], p[1] + step[1], p[2] + step[2]]);
        let next_error = ssr(points, &next);
        if next_error < error {
            let gain = (error - next_error) / error.max(1e-300);
            p = next;
            error = next_error;
            mu = (mu / 3.0).max(1e-12);
            if gain < 1e-14 {
                break;
            }
        } else {
            mu *= 4.0;
            if mu > 1e12 {
                break;
            }
        }
    }
    p
}

/// Solves the 3×3 system `a·x = b` (Cramer's rule); `None` when singular.
fn solve(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = det3(&a);
    if !det.is_finite() || det.abs() < 1e-300 {
        return None;
    }
    let mut x = [0.0; 3];
    for (col, value) in x.iter_mut().enumerate() {
        let mut m = a;
        for row in 0..3 {
            m[row][col] = b[row];
        }
        *value = det3(&m) / det;
    }
    Some(x)
}

fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The diagonal of (JᵀJ)⁻¹.
fn inverse_diagonal(m: [[f64; 3]; 3]) -> Option<[f64; 3]> {
    let mut diag = [0.0; 3];
    for (i, value) in diag.iter_mut().enumerate() {
        let mut unit = [0.0; 3];
        unit[i] = 1.0;
        *value = solve(m, unit)?[i];
    }
    Some(diag)
}

/// R², the residual deviation and the standard errors of a fitted model.
fn summarise(points: &[Point], model: Usl) -> Fit {
    let m = points.len();
    let error = ssr(points, &model.params());
    let mean = points.iter().map(|p| p.x).sum::<f64>() / m as f64;
    let total: f64 = points.iter().map(|p| (p.x - mean).powi(2)).sum();
    let r_squared = if total > 0.0 { 1.0 - error / total } else { 0.0 };
    let dof = m.saturating_sub(3);
    let variance = if dof > 0 { error / dof as f64 } else { f64::NAN };
    let (jtj, _) = normal_equations(points, &model.params());
    let se = inverse_diagonal(jtj)
        .filter(|_| dof > 0)
        .map(|d| d.map(|v| (v * variance).max(0.0).sqrt()))
        .filter(|se| se.iter().all(|v| v.is_finite()));
    Fit {
        model,
        sigma_se: se.map(|s| s[0]),
        kappa_se: se.map(|s| s[1]),
        lambda_se: se.map(|s| s[2]),
        r_squared,
        residual_sd: variance.sqrt(),
        points: m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The `usl` crate's reference data (from Schwartz, *Practical Scalability Analysis with the USL*).
    const REFERENCE: [(f64, f64); 32] = [
        (1.0, 955.16),
        (2.0, 1878.91),
        (3.0, 2688.01),
        (4.0, 3548.68),
        (5.0, 4315.54),
        (6.0, 5130.43),
        (7.0, 5931.37),
        (8.0, 6531.08),
        (9.0, 7219.8),
        (10.0, 7867.61),
        (11.0, 8278.71),
        (12.0, 8646.7),
        (13.0, 9047.84),
        (14.0, 9426.55),
        (15.0, 9645.37),
        (16.0, 9897.24),
        (17.0, 10097.6),
        (18.0, 10240.5),
        (19.0, 10532.39),
        (20.0, 10798.52),
        (21.0, 11151.43),
        (22.0, 11518.63),
        (23.0, 11806.0),
        (24.0, 12089.37),
        (25.0, 12075.41),
        (26.0, 12177.29),
        (27.0, 12211.41),
        (28.0, 12158.93),
        (29.0, 12155.27),
        (30.0, 12118.04),
        (31.0, 12140.4),
        (32.0, 12074.39),
    ];

    fn close(got: f64, want: f64, rel: f64) -> bool {
        ((got - want) / want).abs() <= rel
    }

    #[test]
    fn the_reference_dataset_gives_the_published_parameters() {
        let points: Vec<Point> = REFERENCE.iter().map(|&(n, x)| Point { n, x }).collect();
        let fit = fit(&points).unwrap();
        let m = fit.model;
        assert!(close(m.sigma, 0.02671591, 1e-3), "{fit:?}");
        assert!(close(m.kappa, 7.690945e-4, 1e-3), "{fit:?}");
        assert!(close(m.lambda, 995.6486, 1e-4), "{fit:?}");
        assert!(close(m.peak_concurrency().unwrap(), 35.6, 0.01), "{fit:?}");
        assert!(close(m.max_throughput().unwrap(), 12341.75, 1e-3), "{fit:?}");
        assert!(fit.r_squared > 0.99, "{fit:?}");
        assert!(fit.kappa_se.unwrap() < m.kappa / 5.0, "{fit:?}");
    }

    #[test]
    fn noisy_synthetic_data_recovers_its_parameters() {
        let truth = Usl { sigma: 0.05, kappa: 0.001, lambda: 100.0 };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20 {
            let points: Vec<Point> = [1.0, 4.0, 8.0, 16.0, 32.0, 64.0]
                .iter()
                .map(|&n| Point { n, x: truth.throughput(n) * (1.0 + rng.random_range(-0.02..0.02)) })
                .collect();
            let fit = fit(&points).unwrap();
            assert!(close(fit.model.sigma, 0.05, 0.25), "{fit:?}");
            assert!(close(fit.model.kappa, 0.001, 0.25), "{fit:?}");
            assert!(close(fit.model.peak_concurrency().unwrap(), 30.8, 0.15), "{fit:?}");
        }
    }

    #[test]
    fn linear_scaling_fits_zero_contention_and_coherency() {
        let points: Vec<Point> = (1..=6).map(|n| Point { n: n as f64, x: 50.0 * n as f64 }).collect();
        let fit = fit(&points).unwrap();
        assert!(fit.model.sigma < 1e-6 && fit.model.kappa < 1e-6, "{fit:?}");
        assert!(close(fit.model.lambda, 50.0, 1e-6), "{fit:?}");
    }

    #[test]
    fn too_few_or_bad_points_are_refused() {
        let three = [Point { n: 1.0, x: 1.0 }, Point { n: 2.0, x: 2.0 }, Point { n: 3.0, x: 3.0 }];
        assert_eq!(fit(&three), Err(FitError::TooFewPoints { have: 3, need: 4 }));
        let mut four = three.to_vec();
        four.push(Point { n: 4.0, x: 0.0 });
        assert_eq!(fit(&four), Err(FitError::BadPoint { index: 3 }));
    }

    #[test]
    fn the_model_has_its_closed_forms() {
        let m = Usl { sigma: 0.05, kappa: 0.001, lambda: 100.0 };
        assert!(close(m.peak_concurrency().unwrap(), (0.95f64 / 0.001).sqrt(), 1e-12));
        assert!(close(m.throughput(1.0), 100.0, 1e-12));
        let amdahl = Usl { kappa: 0.0, ..m };
        assert_eq!(amdahl.peak_concurrency(), None);
        assert!(close(amdahl.max_throughput().unwrap(), 2000.0, 1e-12));
    }
}
