//! The threshold language's parser: `[METHOD] [NAME:] metric op value` (or a run-wide `KIND "name"[: field] op
//! value`, see `custom.rs`) into a [`Threshold`], with the 1-based column of the first mistake.
//!
//! It is kept apart from the evaluator because it is most of the language's rules (selectors, metric names, units,
//! the refusal of a bare number on a rate) and none of its measures.

use std::time::Duration;

use super::{Metric, Op, Stat, Threshold, custom, fmt_value};

const METRICS: &str = "p50, p90, p95, p99, p99.9, min, mean, max (or corrected_p99 etc.), rps, error_rate, \
                       failures, requests, checks, script_errors, or check/counter/trend/rate/gauge \"name\"";

/// Parses `[METHOD] [NAME:] metric op value` or `KIND "name"[: field] op value`. Errors carry the 1-based column.
pub(super) fn parse(expr: &str) -> Result<Threshold, (usize, String)> {
    let col = |part: &str| expr.len() - part.len() + 1;
    if let Some(named) = custom::parse_named(expr.trim_start()) {
        let (metric, rest) = named.map_err(|(at, m)| (at + expr.len() - expr.trim_start().len(), m))?;
        return finish(expr, None, None, metric, rest);
    }
    // The selector ends at the last ": " (names like `/items/:id` contain colons without a space).
    let (selector, rest) = match expr.rfind(": ") {
        Some(at) => (Some(expr[..at].trim()), &expr[at + 2..]),
        None => (None, expr),
    };
    let (method, name) = match selector {
        None => (None, None),
        Some(sel) => match sel.split_once(' ') {
            Some((m, n)) if m.chars().all(|c| c.is_ascii_uppercase()) && !n.trim().is_empty() => {
                (Some(m.to_owned()), Some(n.trim().to_owned()))
            }
            _ if sel.is_empty() => return Err((1, "an empty request name before `:`".into())),
            _ => (None, Some(sel.to_owned())),
        },
    };
    let rest_trim = rest.trim_start();
    let metric_len = rest_trim.find(|c: char| c.is_whitespace() || "<>=!".contains(c)).unwrap_or(rest_trim.len());
    let metric_text = &rest_trim[..metric_len];
    let metric = metric(metric_text)
        .ok_or_else(|| (col(rest_trim), format!("unknown metric `{metric_text}`; expected one of {METRICS}")))?;
    // With a request name, `checks` keeps its first meaning: that request's responses that passed.
    let metric = if metric == Metric::Checks && selector.is_some() { Metric::ResponseChecks } else { metric };
    if metric.is_run_wide() && selector.is_some() {
        return Err((1, format!("`{metric_text}` covers the whole run and takes no request name")));
    }
    finish(expr, method, name, metric, &rest_trim[metric_len..])
}

/// Parses the operator and value after the metric (`rest`) and builds the threshold.
fn finish(
    expr: &str,
    method: Option<String>,
    name: Option<String>,
    metric: Metric,
    rest: &str,
) -> Result<Threshold, (usize, String)> {
    let col = |part: &str| expr.len() - part.len() + 1;
    let after = rest.trim_start();
    let (op, op_len) = match after.get(..2) {
        Some("<=") => (Op::Le, 2),
        Some(">=") => (Op::Ge, 2),
        Some("==") => (Op::Eq, 2),
        Some("!=") => (Op::Ne, 2),
        _ => match after.chars().next() {
            Some('<') => (Op::Lt, 1),
            Some('>') => (Op::Gt, 1),
            _ => return Err((col(after), "expected an operator: <, <=, >, >=, == or !=".into())),
        },
    };
    let value_text = after[op_len..].trim();
    if value_text.is_empty() {
        return Err((expr.len() + 1, "expected a value after the operator".into()));
    }
    let value_col = col(after[op_len..].trim_start());
    let limit = value(&metric, value_text).map_err(|m| match m {
        ValueError::BareRate(n) => (value_col, bare_rate(expr, value_col, n)),
        ValueError::Other(m) => (value_col, m),
    })?;
    Ok(Threshold { expr: expr.to_owned(), method, name, metric, op, limit, abort: false, delay: Duration::ZERO })
}

/// A latency statistic by name.
pub(super) fn stat(text: &str) -> Option<Stat> {
    match text {
        "min" => Some(Stat::Min),
        "mean" | "avg" => Some(Stat::Mean),
        "p50" | "med" | "median" => Some(Stat::P50),
        "p90" => Some(Stat::P90),
        "p95" => Some(Stat::P95),
        "p99" => Some(Stat::P99),
        "p99.9" | "p999" => Some(Stat::P999),
        "max" => Some(Stat::Max),
        _ => None,
    }
}

fn metric(text: &str) -> Option<Metric> {
    let (corrected, stat_text) = match text.strip_prefix("corrected_") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if let Some(stat) = stat(stat_text) {
        return Some(Metric::Latency { stat, corrected });
    }
    if corrected {
        return None;
    }
    match text {
        "rps" => Some(Metric::Rps),
        "error_rate" => Some(Metric::ErrorRate),
        "failures" => Some(Metric::Failures),
        "requests" => Some(Metric::Requests),
        "checks" => Some(Metric::Checks),
        "script_errors" => Some(Metric::ScriptErrors),
        _ => None,
    }
}

/// Why a limit was refused.
enum ValueError {
    /// A rate given as a bare number: ambiguous, refused with a suggestion.
    BareRate(f64),
    Other(String),
}

impl From<String> for ValueError {
    fn from(text: String) -> ValueError {
        ValueError::Other(text)
    }
}

/// The message for a bare number on a rate, suggesting the expression with `%`.
fn bare_rate(expr: &str, value_col: usize, n: f64) -> String {
    let before = &expr[..value_col - 1];
    let mut text = format!("a rate takes a percentage: did you mean `{before}{n}%`");
    if n > 0.0 && n < 1.0 {
        text.push_str(&format!(" or, as a fraction, `{before}{}%`", fmt_value(n * 100.0)));
    }
    text.push('?');
    text
}

/// The limit in the metric's base unit.
fn value(metric: &Metric, text: &str) -> Result<f64, ValueError> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let n: f64 = number.parse().map_err(|_| format!("`{text}` is not a number"))?;
    let kind = match metric {
        Metric::Latency { .. } => custom::Unit::Ms,
        Metric::ErrorRate | Metric::ResponseChecks => custom::Unit::Rate,
        Metric::Rps | Metric::Failures | Metric::Requests => custom::Unit::Plain,
        other => custom::unit_of(other).unwrap_or(custom::Unit::Plain),
    };
    Ok(match kind {
        custom::Unit::Ms => match unit {
            "" | "ms" => Ok(n),
            "s" => Ok(n * 1000.0),
            "us" | "µs" => Ok(n / 1000.0),
            "m" => Ok(n * 60_000.0),
            other => Err(format!("unknown unit `{other}` for a latency: use ms or s")),
        }?,
        custom::Unit::Rate => match unit {
            "%" => n / 100.0,
            "" => return Err(ValueError::BareRate(n)),
            other => return Err(format!("unknown unit `{other}` for a rate: use %").into()),
        },
        custom::Unit::Plain => match unit {
            "" => n,
            other => return Err(format!("`{other}`: this metric takes a plain number").into()),
        },
    })
}
