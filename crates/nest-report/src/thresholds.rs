//! Thresholds: the pass/fail criteria that decide a run's exit code.
//!
//! A threshold is a small expression, `[METHOD] [NAME:] metric op value`: `p95 < 300ms`, `error_rate < 1%`,
//! `rps > 50`, `GET /items/:id: p99 < 800ms`; or a run-wide one: `checks > 99%`, `check "has token" > 99%`,
//! `script_errors == 0`, `counter "looked" > 10`, `trend "cart_value": p95 < 300` (see `thresholds/custom.rs`). Rates take
//! `%`: a bare number there is refused with a suggestion, since `error_rate < 1` once silently meant 100%.
//! Expressions are parsed before any load ([`Threshold::parse`]); a malformed one is a [`ThresholdError`] with the
//! column where it goes wrong. They are evaluated on the final report (exit code 99 when one fails, the k6
//! convention) and, for those marked `abort`, on the live statistics once their `delay` has passed, to stop a run
//! that is already lost. Both go through one measure over one input, [`Observed`] ([`evaluate_observed`],
//! [`breached`]), so the live check and the final verdict cannot disagree on the same data.

use std::time::Duration;

use nest_core::stats::{Aggregate, LatencyMs, Summary};
use serde::{Deserialize, Serialize};

mod custom;
mod gate;
pub(crate) mod observed;
mod parse;
mod print;

pub use gate::{DEFAULT_EXIT_CODE, GateFailed, gate_verdict};
pub use observed::{Observed, RequestEntry};
use parse::{parse, stat};
pub use print::{print_verdict_line, print_verdicts};

/// What a threshold measures.
#[derive(Debug, Clone, PartialEq)]
enum Metric {
    /// A latency statistic (index into [`LatencyMs`] fields), raw or corrected.
    Latency {
        stat: Stat,
        corrected: bool,
    },
    Rps,
    ErrorRate,
    Failures,
    Requests,
    /// The pass rate of all the script's `check()`s (`checks` without a request name).
    Checks,
    /// The share of the selected requests' responses that passed their status and `expect` checks and any
    /// `fail()` (`GET /a: checks > 99%`, the meaning `checks` had before script checks existed).
    ResponseChecks,
    /// The pass rate of one named check.
    Check(String),
    /// Script errors (a count).
    ScriptErrors,
    /// A custom metric of the script.
    Custom {
        kind: nest_core::stats::MetricKind,
        name: String,
        field: custom::Field,
    },
}

impl Metric {
    /// Whether it belongs to the whole run rather than to requests (so it takes no request selector).
    fn is_run_wide(&self) -> bool {
        custom::unit_of(self).is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
}

impl Stat {
    fn of(self, l: &LatencyMs) -> f64 {
        match self {
            Stat::Min => l.min,
            Stat::Mean => l.mean,
            Stat::P50 => l.p50,
            Stat::P90 => l.p90,
            Stat::P95 => l.p95,
            Stat::P99 => l.p99,
            Stat::P999 => l.p999,
            Stat::Max => l.max,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
            Op::Eq => observed == limit,
            Op::Ne => observed != limit,
        }
    }
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    method: Option<String>,
    name: Option<String>,
    metric: Metric,
    op: Op,
    /// The limit in the metric's unit: ms for latencies, a fraction for rates, a plain number otherwise.
    limit: f64,
    /// Stop the run once breached.
    pub abort: bool,
    /// Warm-up before an abort threshold is checked.
    pub delay: Duration,
}

/// The verdict of one threshold, as reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The expression.
    pub expr: String,
    /// Whether it held.
    pub passed: bool,
    /// The value seen, in the metric's display unit (ms, %, req/s, count); absent when nothing matched.
    pub observed: Option<f64>,
    /// The display unit of `observed`.
    pub unit: String,
    /// Whether the threshold aborts the run when breached.
    pub abort: bool,
    /// Seconds into the run at which it aborted the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at_s: Option<f64>,
    /// A one-line explanation.
    pub message: String,
    /// This is the default gate (no threshold was configured), not a threshold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_gate: bool,
}

/// A threshold expression that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold `{expr}`: {message} (at column {column})")]
pub struct ThresholdError {
    /// The expression as written.
    pub expr: String,
    /// The 1-based column where it goes wrong.
    pub column: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Threshold {
    /// Parses an expression (not an abort threshold; see [`Threshold::with_abort`]).
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        parse(expr).map_err(|(column, message)| ThresholdError { expr: expr.to_owned(), column, message })
    }

    /// The same threshold, stopping the run once breached after `delay` when `abort` is set.
    pub fn with_abort(self, abort: bool, delay: Duration) -> Threshold {
        Threshold { abort, delay, ..self }
    }

    /// How far `verdict` (of this threshold) lies beyond the limit, as a ratio in the metric's unit: observed /
    /// limit for `<` and `<=`, limit / observed for `>` and `>=`; above 1 when breached. `None` for `==`, `!=`, a
    /// zero limit or no observed value. `nest scale` stops at a step breaching an SLO "by far" with it.
    pub fn excess(&self, verdict: &Verdict) -> Option<f64> {
        let observed = verdict.observed? / if verdict.unit == "%" { 100.0 } else { 1.0 };
        let ratio = match self.op {
            Op::Lt | Op::Le if self.limit > 0.0 => observed / self.limit,
            Op::Gt | Op::Ge if observed > 0.0 => self.limit / observed,
            _ => return None,
        };
        ratio.is_finite().then_some(ratio)
    }
}

/// At least one threshold failed: exit code 99.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} thresholds failed")]
pub struct ThresholdsFailed {
    /// How many failed.
    pub failed: usize,
    /// How many there were.
    pub total: usize,
}

impl Threshold {
    fn matches(&self, method: &str, name: &str) -> bool {
        self.name.as_deref().is_none_or(|n| n == name) && self.method.as_deref().is_none_or(|m| m == method)
    }

    /// For an `error_rate` threshold that applies to `method name`: whether it selects that request (rather than
    /// all requests), and whether `failures` of `requests` meet it. `None` for other thresholds. (JUnit's
    /// per-request test cases use it.)
    pub fn error_rate_check(&self, method: &str, name: &str, failures: u64, requests: u64) -> Option<(bool, bool)> {
        if self.metric != Metric::ErrorRate || !self.matches(method, name) {
            return None;
        }
        let rate = if requests == 0 { 0.0 } else { failures as f64 / requests as f64 };
        Some((self.name.is_some() || self.method.is_some(), self.op.holds(rate, self.limit)))
    }

    /// For a `checks` or `check "name"` threshold: whether it names `check` (rather than all checks), and whether
    /// that check's own pass rate meets it. `None` for other thresholds. (JUnit's per-check test cases use it.)
    pub fn check_rate_check(&self, check: &str, passes: u64, fails: u64) -> Option<(bool, bool)> {
        let own = match &self.metric {
            Metric::Checks => false,
            Metric::Check(name) if name == check => true,
            _ => return None,
        };
        let rate = if passes + fails == 0 { 1.0 } else { passes as f64 / (passes + fails) as f64 };
        Some((own, self.op.holds(rate, self.limit)))
    }

    fn selector(&self) -> String {
        if let Some(what) = custom::describe(&self.metric) {
            return what;
        }
        match (&self.method, &self.name) {
            (Some(m), Some(n)) => format!("{m} {n}"),
            (None, Some(n)) => n.clone(),
            _ => "all requests".into(),
        }
    }

    /// The value to compare, in base units, and its display value and unit; `None` when there is no data. The
    /// one measure behind both the live abort check and the final verdict.
    fn measure(&self, observed: &Observed<'_>) -> Option<(f64, f64, &'static str)> {
        if self.metric.is_run_wide() {
            return custom::measure(&self.metric, &observed.run_wide());
        }
        let any = self.name.is_some() || self.method.is_some();
        let o = observed.select(any, |method, name| self.matches(method, name))?;
        let rate = |num: u64, den: u64| if den == 0 { None } else { Some(num as f64 / den as f64) };
        match &self.metric {
            &Metric::Latency { stat, corrected: false } => {
                Some(stat.of(&o.latency)).filter(|_| o.requests > 0).map(|v| (v, v, "ms"))
            }
            &Metric::Latency { stat, corrected: true } => {
                o.corrected.as_ref().map(|l| stat.of(l)).map(|v| (v, v, "ms"))
            }
            Metric::Rps => Some((o.rps, o.rps, "req/s")),
            Metric::ErrorRate => rate(o.failures, o.requests).map(|r| (r, r * 100.0, "%")),
            Metric::Failures => Some((o.failures as f64, o.failures as f64, "")),
            Metric::Requests => Some((o.requests as f64, o.requests as f64, "")),
            Metric::ResponseChecks => {
                rate(o.requests - o.failures, o.requests - o.transport_failures).map(|r| (r, r * 100.0, "%"))
            }
            // Run-wide metrics are measured by `custom::measure`.
            _ => None,
        }
    }

    fn verdict(&self, measured: Option<(f64, f64, &'static str)>, aborted_at_s: Option<f64>) -> Verdict {
        let (passed, shown, unit, message) = match measured {
            // As in k6, a check pass rate with no check at all holds: there is nothing to fall short. Said in words
            // so a script whose checks never ran is noticed.
            None if self.metric == Metric::Checks && aborted_at_s.is_none() => {
                (true, None, "", "no check() was recorded, so there is nothing to fail".to_owned())
            }
            Some((value, shown, unit)) => {
                let passed = self.op.holds(value, self.limit) && aborted_at_s.is_none();
                let what = format!("{} {}", fmt_value(shown), unit).trim_end().to_owned();
                let message = match aborted_at_s {
                    Some(at) => format!("breached at {at:.0}s ({what}): the run was stopped"),
                    None => format!("{}: {what}", self.selector()),
                };
                (passed, Some(shown), unit, message)
            }
            None => (false, None, "", format!("no data for {}", self.selector())),
        };
        Verdict {
            expr: self.expr.clone(),
            passed,
            observed: shown,
            unit: unit.to_owned(),
            abort: self.abort,
            aborted_at_s,
            message,
            default_gate: false,
        }
    }
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// Evaluates thresholds on a finished run's report (see [`evaluate_observed`]).
pub fn evaluate(thresholds: &[Threshold], summary: &Summary, aborted: &[(usize, f64)]) -> Vec<Verdict> {
    evaluate_observed(thresholds, &Observed::from_summary(summary), aborted)
}

/// The verdicts of `thresholds` on `observed`. `aborted` lists the abort thresholds that stopped the run, with
/// the second at which they did: those fail whatever the final figures say.
pub fn evaluate_observed(thresholds: &[Threshold], observed: &Observed<'_>, aborted: &[(usize, f64)]) -> Vec<Verdict> {
    thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let aborted_at = aborted.iter().find(|(j, _)| *j == i).map(|(_, at)| *at);
            t.verdict(t.measure(observed), aborted_at)
        })
        .collect()
}

/// Checks the abort thresholds against live statistics; returns the indices breached now (see [`breached`]).
pub fn breached_now(thresholds: &[Threshold], aggregate: &Aggregate, elapsed: Duration) -> Vec<usize> {
    if !thresholds.iter().any(|t| t.abort && elapsed >= t.delay) {
        return Vec::new();
    }
    breached(thresholds, &Observed::from_aggregate(aggregate, elapsed))
}

/// The abort thresholds past their `delay` that `observed` breaches, by index. A request threshold is not judged
/// before a request it selects has completed.
pub fn breached(thresholds: &[Threshold], observed: &Observed<'_>) -> Vec<usize> {
    thresholds
        .iter()
        .enumerate()
        .filter(|(_, t)| t.abort && observed.elapsed_s >= t.delay.as_secs_f64())
        .filter(|(_, t)| t.metric.is_run_wide() || observed_requests(t, observed) > 0)
        .filter(|(_, t)| t.measure(observed).is_some_and(|(v, _, _)| !t.op.holds(v, t.limit)))
        .map(|(i, _)| i)
        .collect()
}

/// How many requests a threshold's selector matches.
fn observed_requests(t: &Threshold, observed: &Observed<'_>) -> u64 {
    observed
        .requests
        .iter()
        .filter(|e| t.matches(e.method, e.name))
        .filter_map(|e| e.counts.as_ref().map(|c| c.count))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Failure, FailureKind, Recorder, Sample, SummaryParts};

    fn p(expr: &str) -> Threshold {
        parse(expr).unwrap_or_else(|e| panic!("{expr}: {e:?}"))
    }

    fn err(expr: &str) -> String {
        format!("--threshold: {}", Threshold::parse(expr).unwrap_err())
    }

    #[test]
    fn parses_every_form() {
        let t = p("p95 < 300ms");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Latency { stat: Stat::P95, corrected: false }, Op::Lt, 300.0));
        assert_eq!(p("p99 < 2s").limit, 2000.0);
        assert_eq!(p("error_rate < 1%").limit, 0.01);
        assert_eq!(p("error_rate <= 0.5%").limit, 0.005);
        assert_eq!(p("script_errors == 0").metric, Metric::ScriptErrors);
        assert_eq!(p("rps > 50").op, Op::Gt);
        assert_eq!(p("checks > 99%").limit, 0.99);
        assert_eq!(p("corrected_p99 < 1s").metric, Metric::Latency { stat: Stat::P99, corrected: true });
        let t = p("GET /items/:id: p99 < 800ms");
        assert_eq!((t.method.as_deref(), t.name.as_deref(), t.limit), (Some("GET"), Some("/items/:id"), 800.0));
        let t = p("/items/:id: p99.9 >= 1");
        assert_eq!((t.method, t.name.as_deref()), (None, Some("/items/:id")));
    }

    #[test]
    fn excess_is_how_far_a_verdict_lies_beyond_its_limit() {
        let verdict = |observed: Option<f64>, unit: &str| Verdict {
            expr: String::new(),
            passed: false,
            observed,
            unit: unit.to_owned(),
            abort: false,
            aborted_at_s: None,
            message: String::new(),
            default_gate: false,
        };
        assert_eq!(p("p95 < 300ms").excess(&verdict(Some(600.0), "ms")), Some(2.0));
        assert_eq!(p("error_rate < 1%").excess(&verdict(Some(4.0), "%")), Some(4.0));
        assert_eq!(p("rps > 100").excess(&verdict(Some(25.0), "req/s")), Some(4.0));
        assert_eq!(p("script_errors == 0").excess(&verdict(Some(3.0), "")), None);
        assert_eq!(p("p95 < 300ms").excess(&verdict(None, "ms")), None);
    }

    #[test]
    fn errors_name_the_column() {
        assert_eq!(
            err("p95 < 300xs"),
            "--threshold: threshold `p95 < 300xs`: unknown unit `xs` for a latency: use ms or s (at column 7)"
        );
        assert!(err("p96 < 3ms").contains("unknown metric `p96`") && err("p96 < 3ms").contains("column 1"));
        assert!(err("p95 ~ 3ms").contains("expected an operator") && err("p95 ~ 3ms").contains("column 5"));
        assert!(err("p95 <").contains("expected a value"));
        assert_eq!(
            err("error_rate < 1"),
            "--threshold: threshold `error_rate < 1`: a rate takes a percentage: did you mean `error_rate < 1%`? \
             (at column 14)"
        );
        assert!(err("error_rate <= 0.05").contains("`error_rate <= 0.05%` or, as a fraction, `error_rate <= 5%`?"));
        assert!(err("checks > 0.99").contains("`checks > 99%`"));
        assert!(err("GET /a: script_errors == 0").contains("takes no request name"));
        assert!(err("GET /a: rps > 1s").contains("plain number"));
    }

    fn summary() -> Summary {
        let r = Recorder::new();
        for i in 0..100u64 {
            let failure = match i {
                0..=4 => Some(Failure { kind: FailureKind::Status, reason: "HTTP 500" }),
                5 => Some(Failure { kind: FailureKind::Transport, reason: "connection refused" }),
                _ => None,
            };
            let name = if i % 2 == 0 { "/a" } else { "/b" };
            r.request("GET", name, Sample { latency: Duration::from_millis(i + 1), failure, ..Default::default() });
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        agg.seal_before(u64::MAX);
        Summary::new(&agg, SummaryParts { duration_s: 10.0, users: 1, ..SummaryParts::default() })
    }

    #[test]
    fn evaluates_against_the_report() {
        let s = summary();
        let ts: Vec<Threshold> =
            ["p95 < 300ms", "error_rate < 1%", "rps > 5", "checks > 99%", "GET /a: max <= 99ms", "/nope: p50 < 1s"]
                .iter()
                .map(|e| p(e))
                .collect();
        let mut s = s;
        s.checks = vec![nest_core::stats::CheckRow { name: "is 200".into(), passes: 94, fails: 5 }];
        let v = evaluate(&ts, &s, &[]);
        assert!(v[0].passed, "{:?}", v[0]);
        assert!(!v[1].passed && v[1].observed == Some(6.0) && v[1].unit == "%", "{:?}", v[1]);
        assert!(v[2].passed);
        // 5 failed checks out of 99.
        assert!(!v[3].passed && (v[3].observed.unwrap() - 100.0 * 94.0 / 99.0).abs() < 1e-9, "{:?}", v[3]);
        assert!(v[4].passed, "{:?}", v[4]);
        assert!(!v[5].passed && v[5].message.contains("no data"));
        let aborted = evaluate(&ts[..1], &s, &[(0, 12.0)]);
        assert!(!aborted[0].passed && aborted[0].message.contains("breached at 12s"));
    }

    /// `checks` keeps its first meaning with a request name: the share of that request's responses that passed
    /// their status checks (a request with no response had nothing to check). Bare `checks` is about check() calls,
    /// and holds, in words, when there were none.
    #[test]
    fn checks_of_a_request_are_its_responses_that_passed() {
        let s = summary();
        assert_eq!(p("GET /a: checks > 99%").metric, Metric::ResponseChecks);
        let ts: Vec<Threshold> =
            ["GET /a: checks >= 94%", "GET /a: checks > 94%", "/b: checks > 95.9%", "/b: checks > 96%", "checks > 99%"]
                .iter()
                .map(|e| p(e))
                .collect();
        let v = evaluate(&ts, &s, &[]);
        // /a: 3 of 50 got HTTP 500. /b: 2 of the 49 that got a response did, and one got none.
        assert!(v[0].passed && v[0].observed == Some(94.0) && v[0].unit == "%", "{:?}", v[0]);
        assert!(!v[1].passed, "{:?}", v[1]);
        assert!(v[2].passed && (v[2].observed.unwrap() - 100.0 * 47.0 / 49.0).abs() < 1e-9, "{:?}", v[2]);
        assert!(!v[3].passed, "{:?}", v[3]);
        assert!(v[4].passed && v[4].observed.is_none(), "{:?}", v[4]);
        assert!(v[4].message.contains("no check() was recorded"), "{:?}", v[4]);
    }

    #[test]
    fn abort_thresholds_on_a_requests_checks_see_its_responses_live() {
        let r = Recorder::new();
        let failed = Some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
        r.request("GET", "/a", Sample { failure: failed, ..Default::default() });
        r.request("GET", "/a", Sample::default());
        r.request("GET", "/b", Sample::default());
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let abort = |e: &str| Threshold { abort: true, ..p(e) };
        let ts = [abort("GET /a: checks > 60%"), abort("GET /b: checks > 99%"), abort("GET /a: checks >= 50%")];
        assert_eq!(breached_now(&ts, &agg, Duration::from_secs(1)), vec![0]);
    }

    #[test]
    fn abort_thresholds_wait_for_their_delay() {
        let r = Recorder::new();
        r.request("GET", "/a", Sample { latency: Duration::from_secs(3), ..Default::default() });
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let t = Threshold { abort: true, delay: Duration::from_secs(30), ..p("p99 < 2s") };
        assert!(breached_now(std::slice::from_ref(&t), &agg, Duration::from_secs(10)).is_empty());
        assert_eq!(breached_now(&[t], &agg, Duration::from_secs(31)), vec![0]);
    }

    #[test]
    fn abort_thresholds_see_checks_and_custom_metrics_live() {
        let r = Recorder::new();
        r.check("is 200", true).unwrap();
        r.check("is 200", false).unwrap();
        r.metric("looked", nest_core::stats::MetricKind::Counter, |m| m.add(3.0)).unwrap();
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let abort = |e: &str| Threshold { abort: true, ..p(e) };
        let ts = [
            abort("checks > 99%"),
            abort("check \"is 200\" >= 50%"),
            abort("counter \"looked\" < 3"),
            abort("script_errors == 0"),
        ];
        assert_eq!(breached_now(&ts, &agg, Duration::from_secs(1)), vec![0, 2]);
    }

    /// An open-model run: one name under two methods, with corrected latency, some failures, a check.
    fn open_aggregate() -> Aggregate {
        let r = Recorder::new();
        for i in 0..300u64 {
            let method = if i % 3 == 0 { "POST" } else { "GET" };
            let failure = (i % 17 == 0).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 503" });
            let sample = Sample {
                latency: Duration::from_micros(700 + i * i * 13),
                corrected: Some(Duration::from_micros(900 + i * i * 29)),
                failure,
                ..Default::default()
            };
            r.request(method, if i % 5 == 0 { "/other" } else { "/x" }, sample);
            r.check("ok", i % 11 != 0).unwrap();
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        agg.seal_before(u64::MAX);
        agg
    }

    #[test]
    fn a_name_under_several_methods_keeps_its_corrected_latency_and_exact_mean() {
        let agg = open_aggregate();
        let s = Summary::new(&agg, SummaryParts { duration_s: 10.0, users: 0, open: true, ..SummaryParts::default() });
        let mut x = nest_core::stats::RequestCounts::default();
        for ((name, _), c) in &agg.requests {
            if name == "/x" {
                x.merge(c);
            }
        }
        let v = evaluate(&[p("/x: corrected_p99 < 10s"), p("/x: mean < 10s")], &s, &[]);
        let corrected = LatencyMs::of(x.corrected.as_ref().unwrap());
        assert!(v[0].passed && v[0].observed == Some(corrected.p99), "{:?}", v[0]);
        assert_eq!(v[1].observed, Some(LatencyMs::of(&x.latency).mean), "{:?}", v[1]);
    }

    #[test]
    fn the_live_check_and_the_final_verdict_measure_the_same() {
        let agg = open_aggregate();
        let s = Summary::new(&agg, SummaryParts { duration_s: 10.0, users: 0, open: true, ..SummaryParts::default() });
        let (live, last) = (Observed::from_aggregate(&agg, Duration::from_secs(10)), Observed::from_summary(&s));
        for expr in [
            "p50 < 1s",
            "p99.9 < 1s",
            "corrected_p95 < 1s",
            "corrected_max < 1s",
            "mean < 1s",
            "min > 0ms",
            "rps > 1",
            "error_rate < 1%",
            "failures == 0",
            "requests > 0",
            "/x: corrected_p99 < 1s",
            "/x: mean < 1s",
            "/x: rps > 1",
            "/x: error_rate < 1%",
            "GET /x: corrected_p90 < 1s",
            "POST /other: p95 < 1s",
            "/nope: p95 < 1s",
            "checks > 99%",
            "check \"ok\" > 99%",
            "script_errors == 0",
        ] {
            let t = p(expr);
            assert_eq!(t.measure(&live), t.measure(&last), "{expr}");
            assert!(expr.starts_with("/nope") || t.measure(&live).is_some(), "{expr}");
        }
    }
}
