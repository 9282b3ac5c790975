//! From the steps to the index: Capacity@SLO (the headline number) and the USL model that explains it, in numbers
//! and in words, or an honest "not enough steps" / "poor fit" / "N* not determinable" instead of invented numbers.

use serde::{Deserialize, Serialize};

use crate::spec::Load;
use crate::step::StepResult;
use crate::usl::{self, Fit, Point};

/// A fit with R² below this is "poor": σ and κ are not reported.
pub const POOR_FIT: f64 = 0.9;
/// κ is "not determinable" when its estimate lies within this many standard errors of 0.
pub const KAPPA_SIGMAS: f64 = 2.0;
/// N* beyond this many times the largest step is "not determinable": the steps cannot tell where a peak that far
/// out would be.
pub const FAR_PEAK: f64 = 10.0;

/// The highest throughput of a step that meets every SLO, and the step above it that does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The SLOs, joined with ` and `; empty when none was given.
    pub slo: String,
    /// The step (from 1) of the capacity; absent when no step met the SLOs.
    pub step: Option<usize>,
    /// Its load.
    pub load: Option<Load>,
    /// Its throughput, requests per second: Capacity@SLO.
    pub throughput_rps: Option<f64>,
    /// The first step above it that breaks an SLO: the limit lies between the two.
    pub next_step: Option<usize>,
    /// Its load.
    pub next_load: Option<Load>,
    /// Its throughput.
    pub next_throughput_rps: Option<f64>,
}

impl Capacity {
    /// The headline: `scalability index: 412 req/s at p95 < 300ms`.
    pub fn headline(&self) -> String {
        let at = if self.slo.is_empty() {
            "(no SLO given: the highest throughput)".to_owned()
        } else {
            format!("at {}", self.slo)
        };
        let Some(x) = self.throughput_rps else {
            return format!(
                "scalability index: no step met {}",
                if self.slo.is_empty() { "its SLOs" } else { &self.slo }
            );
        };
        let mut text = format!("scalability index: {x:.0} req/s {at}");
        if let (Some(load), Some(next), Some(nx)) = (self.load, self.next_load, self.next_throughput_rps) {
            text.push_str(&format!(" (the limit lies between {load}, {x:.0} req/s, and {next}, {nx:.0} req/s)"));
        }
        text
    }
}

/// Capacity@SLO of `steps`.
pub fn capacity(steps: &[StepResult], slo: String) -> Capacity {
    let best = steps.iter().filter(|s| s.meets_slos).max_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps));
    let Some(best) = best else {
        return Capacity { slo, ..Capacity::default() };
    };
    let next = steps.iter().find(|s| s.step > best.step && !s.meets_slos);
    Capacity {
        slo,
        step: Some(best.step),
        load: Some(best.load),
        throughput_rps: Some(best.throughput_rps),
        next_step: next.map(|s| s.step),
        next_load: next.map(|s| s.load),
        next_throughput_rps: next.map(|s| s.throughput_rps),
    }
}

/// How far the model could go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStatus {
    /// σ, κ, λ, N* and X_max are all reported.
    Ok,
    /// σ and λ are reported, κ is indistinguishable from 0: no N*.
    PeakNotDeterminable,
    /// Fewer than four usable steps.
    TooFewSteps,
    /// The steps do not follow the USL (R² below 0.9).
    PoorFit,
}

/// The USL model of the steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scalability {
    /// What could be reported.
    pub status: FitStatus,
    /// The steps (from 1) the fit used: the unflagged ones.
    pub usable_steps: Vec<usize>,
    /// The fit (absent unless the status is `ok` or `peak_not_determinable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    /// The peak concurrency N* = √((1−σ)/κ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_star: Option<f64>,
    /// The peak throughput X(N*) (or the asymptote λ/σ when N* is not determinable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_max: Option<f64>,
    /// What the model says, in words.
    pub verdict: String,
}

/// Fits the USL to the unflagged steps: N is the users (closed model) or the measured concurrency X·R (open).
pub fn scalability(steps: &[StepResult]) -> Scalability {
    let usable: Vec<&StepResult> = steps.iter().filter(|s| s.flags.is_empty() && s.throughput_rps > 0.0).collect();
    let usable_steps: Vec<usize> = usable.iter().map(|s| s.step).collect();
    let points: Vec<Point> = usable
        .iter()
        .map(|s| Point {
            n: match s.load {
                Load::Users(n) => n as f64,
                Load::Rate(_) => s.concurrency,
            },
            x: s.throughput_rps,
        })
        .collect();
    let none = |status, verdict| Scalability {
        status,
        usable_steps: usable_steps.clone(),
        fit: None,
        n_star: None,
        x_max: None,
        verdict,
    };
    let fit = match usl::fit(&points) {
        Ok(fit) => fit,
        Err(e) => {
            let flagged = steps.len() - usable.len();
            let why = match flagged {
                0 => String::new(),
                n => format!(" ({n} of {} steps flagged and left out)", steps.len()),
            };
            let verdict = format!("no USL fit: {e}{why}. Give at least 4 steps, better 6, one of them a single user");
            return none(FitStatus::TooFewSteps, verdict);
        }
    };
    if fit.r_squared < POOR_FIT {
        return none(
            FitStatus::PoorFit,
            format!(
                "poor USL fit (R² = {:.2}): the steps do not follow the law (a noisy target, warm-up, or the generator's \
                 own limit?); σ and κ are not reported",
                fit.r_squared
            ),
        );
    }
    let m = fit.model;
    let n_max = points.iter().map(|p| p.n).fold(0.0, f64::max);
    // A κ within its error of 0, or an N* far past every step, is not a peak the steps can tell.
    let kappa_known = m.kappa > 0.0
        && fit.kappa_se.is_none_or(|se| m.kappa > KAPPA_SIGMAS * se)
        && m.peak_concurrency().is_some_and(|n| n <= FAR_PEAK * n_max);
    let dominates = if m.sigma >= m.kappa {
        format!("contention dominates: {:.1}% serialised (σ = {:.4})", 100.0 * m.sigma, m.sigma)
    } else {
        format!("coherency dominates: κ = {:.2e} (σ = {:.4}, {:.1}% serialised)", m.kappa, m.sigma, 100.0 * m.sigma)
    };
    if !kappa_known {
        let x_max = m.max_throughput();
        let ceiling =
            x_max.map_or("no ceiling in sight".to_owned(), |x| format!("throughput levels off towards {x:.0} req/s"));
        return Scalability {
            status: FitStatus::PeakNotDeterminable,
            usable_steps,
            fit: Some(fit),
            n_star: None,
            x_max,
            verdict: format!(
                "{dominates}; κ is not distinguishable from 0, so N* is not determinable: {ceiling} (step past the knee \
                 to see where it turns down)"
            ),
        };
    }
    let n_star = m.peak_concurrency();
    let x_max = m.max_throughput();
    let unit = steps.first().map_or("users", |s| s.load.unit());
    let unit = if unit == "users" { "users" } else { "in flight" };
    let beyond = if n_star.is_some_and(|n| n > 1.5 * n_max) { ", beyond the largest step: extrapolated" } else { "" };
    Scalability {
        status: FitStatus::Ok,
        usable_steps,
        fit: Some(fit),
        n_star,
        x_max,
        verdict: format!(
            "{dominates}; throughput peaks at N* ≈ {:.0} {unit}, X_max ≈ {:.0} req/s{beyond} (R² = {:.3})",
            n_star.unwrap_or_default(),
            x_max.unwrap_or_default(),
            fit.r_squared
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::step;

    #[test]
    fn capacity_is_the_best_step_meeting_every_slo_and_names_the_next() {
        let steps = vec![
            step(1, 1, 100.0, true),
            step(2, 4, 340.0, true),
            step(3, 16, 800.0, false),
            step(4, 32, 900.0, false),
        ];
        let c = capacity(&steps, "p95 < 28ms".into());
        assert_eq!((c.step, c.throughput_rps, c.next_step), (Some(2), Some(340.0), Some(3)));
        assert_eq!(
            c.headline(),
            "scalability index: 340 req/s at p95 < 28ms (the limit lies between 4 users, 340 req/s, and 16 users, 800 req/s)"
        );
        let none = capacity(&steps[2..], "p95 < 28ms".into());
        assert_eq!(none.step, None);
        assert_eq!(none.headline(), "scalability index: no step met p95 < 28ms");
    }

    #[test]
    fn the_fit_needs_four_clean_steps_and_explains_itself() {
        let truth = crate::usl::Usl { sigma: 0.05, kappa: 0.001, lambda: 100.0 };
        let ns = [1u64, 4, 8, 16, 32, 64];
        let steps: Vec<_> =
            ns.iter().enumerate().map(|(i, &n)| step(i + 1, n, truth.throughput(n as f64), true)).collect();
        let s = scalability(&steps);
        assert_eq!(s.status, FitStatus::Ok, "{s:?}");
        assert!((s.n_star.unwrap() - 30.8).abs() < 0.5, "{s:?}");
        assert!(s.verdict.starts_with("contention dominates: 5.0% serialised"), "{}", s.verdict);
        let mut flagged = steps.clone();
        for s in &mut flagged[..3] {
            s.flags.push(crate::step::Flag::NestSaturated);
        }
        let few = scalability(&flagged);
        assert_eq!((few.status, few.fit), (FitStatus::TooFewSteps, None));
        assert!(
            few.verdict.contains("3 usable steps, at least 4 are needed for a fit (3 of 6 steps flagged and left out)"),
            "{}",
            few.verdict
        );
        let amdahl = crate::usl::Usl { kappa: 0.0, ..truth };
        let flat: Vec<_> =
            ns.iter().enumerate().map(|(i, &n)| step(i + 1, n, amdahl.throughput(n as f64), true)).collect();
        let s = scalability(&flat);
        assert_eq!((s.status, s.n_star), (FitStatus::PeakNotDeterminable, None), "{s:?}");
        assert!(s.verdict.contains("N* is not determinable"), "{}", s.verdict);
        let noise: Vec<_> = [500.0, 100.0, 900.0, 50.0, 700.0, 80.0]
            .iter()
            .enumerate()
            .map(|(i, &x)| step(i + 1, ns[i], x, true))
            .collect();
        assert_eq!(scalability(&noise).status, FitStatus::PoorFit);
    }
}
