//! The run-wide metrics of thresholds: `checks`, `check "name"`, `script_errors` and the script's custom metrics
//! (`counter "looked" > 10`, `trend "cart_value": p95 < 300`, `rate "cache_hit" > 90%`, `gauge "queue" < 50`).
//!
//! These do not belong to a request, so they take no request selector; the name in quotes selects the check or
//! metric. They are measured on report rows ([`CheckRow`], [`MetricRow`]), which the final report has and the live
//! path builds from the aggregate (both through `Observed`), so the abort check and the final verdict read the same
//! figures.

use nest_core::stats::{CheckRow, LatencyMs, MetricKind, MetricRow};

use super::{Metric, Stat};

/// What a run-wide threshold reads of a custom metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Field {
    /// Counter: the sum. Gauge: the value set last. Rate: the share of true values.
    Value,
    /// Counter: the sum per second.
    PerSecond,
    /// Values recorded (adds, sets).
    Count,
    /// Gauge: the smallest value set.
    Min,
    /// Gauge: the largest value set.
    Max,
    /// Trend: a statistic in ms.
    Trend(Stat),
}

/// The run-wide figures thresholds look at.
pub(super) struct RunWide<'a> {
    pub checks: &'a [CheckRow],
    pub metrics: &'a [MetricRow],
    pub script_errors: u64,
}

const KINDS: [(&str, Option<MetricKind>); 5] = [
    ("check", None),
    ("counter", Some(MetricKind::Counter)),
    ("trend", Some(MetricKind::Trend)),
    ("rate", Some(MetricKind::Rate)),
    ("gauge", Some(MetricKind::Gauge)),
];

/// A parse error: the 1-based column and the message.
pub(super) type ParseError = (usize, String);

/// Parses `KIND "name"` and an optional `: field` at the start of `expr`. `None` when `expr` does not start with
/// a kind and a quote; else the metric and the rest of the text (the operator and value), or an error with its
/// 1-based column.
pub(super) fn parse_named(expr: &str) -> Option<Result<(Metric, &str), ParseError>> {
    let (kind, after_kind) = KINDS.iter().find_map(|(word, kind)| {
        let rest = expr.strip_prefix(word)?;
        rest.trim_start().starts_with('"').then_some((*kind, rest.trim_start()))
    })?;
    let col = |part: &str| expr.len() - part.len() + 1;
    let quoted = &after_kind[1..];
    let Some(end) = quoted.find('"') else {
        return Some(Err((col(after_kind), "a name opened with `\"` is not closed".into())));
    };
    let name = &quoted[..end];
    if name.is_empty() {
        return Some(Err((col(after_kind), "an empty name between the quotes".into())));
    }
    let rest = &quoted[end + 1..];
    let (field_text, rest) = match rest.trim_start().strip_prefix(':') {
        Some(after) => {
            let after = after.trim_start();
            let len = after.find(|c: char| c.is_whitespace() || "<>=!".contains(c)).unwrap_or(after.len());
            (Some((&after[..len], col(after))), &after[len..])
        }
        None => (None, rest),
    };
    let Some(kind) = kind else {
        return Some(match field_text {
            Some((_, at)) => Err((at, "a check takes no `: field`: write `check \"name\" > 99%`".into())),
            None => Ok((Metric::Check(name.to_owned()), rest)),
        });
    };
    let field = match field(kind, field_text.map(|(t, _)| t)) {
        Ok(field) => field,
        Err(message) => return Some(Err((field_text.map_or(col(rest), |(_, at)| at), message))),
    };
    Some(Ok((Metric::Custom { kind, name: name.to_owned(), field }, rest)))
}

fn field(kind: MetricKind, text: Option<&str>) -> Result<Field, String> {
    let stat = |t: &str| super::stat(t).map(Field::Trend);
    let found = match (kind, text) {
        (MetricKind::Trend, None) => {
            return Err("a trend needs a statistic: `trend \"name\": p95 < 300ms` (p50, p90, p95, p99, p99.9, min, \
                        mean, max or count)"
                .into());
        }
        (_, None) | (MetricKind::Counter | MetricKind::Gauge, Some("value")) => Some(Field::Value),
        (_, Some("count")) => Some(Field::Count),
        (MetricKind::Counter, Some("rate" | "per_second")) => Some(Field::PerSecond),
        (MetricKind::Gauge, Some("min")) => Some(Field::Min),
        (MetricKind::Gauge, Some("max")) => Some(Field::Max),
        (MetricKind::Trend, Some(t)) => stat(t),
        _ => None,
    };
    let expected = match kind {
        MetricKind::Counter => "value, rate or count",
        MetricKind::Trend => "p50, p90, p95, p99, p99.9, min, mean, max or count",
        MetricKind::Rate => "count (or nothing: `rate \"name\" > 90%`)",
        MetricKind::Gauge => "value, min, max or count",
    };
    found.ok_or_else(|| format!("a {} has no `{}`; expected {expected}", kind.word(), text.unwrap_or_default()))
}

/// Whether the limit of `metric` is a rate (a percentage), a duration (ms), or a plain number.
pub(super) fn unit_of(metric: &Metric) -> Option<Unit> {
    Some(match metric {
        Metric::Checks | Metric::Check(_) => Unit::Rate,
        Metric::ScriptErrors => Unit::Plain,
        Metric::Custom { field: Field::Trend(_), .. } => Unit::Ms,
        Metric::Custom { kind: MetricKind::Rate, field: Field::Value, .. } => Unit::Rate,
        Metric::Custom { .. } => Unit::Plain,
        _ => return None,
    })
}

/// The kinds of limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Rate,
    Ms,
    Plain,
}

/// The value to compare, its display value and unit, or `None` when there is no data.
pub(super) fn measure(metric: &Metric, run: &RunWide<'_>) -> Option<(f64, f64, &'static str)> {
    let rate = |passes: u64, total: u64| (total > 0).then(|| passes as f64 / total as f64).map(|r| (r, r * 100.0, "%"));
    match metric {
        Metric::ScriptErrors => Some((run.script_errors as f64, run.script_errors as f64, "")),
        Metric::Checks => {
            let passes = run.checks.iter().map(|c| c.passes).sum::<u64>();
            rate(passes, passes + run.checks.iter().map(|c| c.fails).sum::<u64>())
        }
        Metric::Check(name) => {
            run.checks.iter().find(|c| &c.name == name).and_then(|c| rate(c.passes, c.passes + c.fails))
        }
        Metric::Custom { kind, name, field } => {
            let row = run.metrics.iter().find(|m| &m.name == name && m.kind == *kind)?;
            let plain = |v: f64| Some((v, v, ""));
            match field {
                Field::Count => plain(row.count as f64),
                Field::Value if *kind == MetricKind::Rate => rate(row.passes.unwrap_or(0), row.count),
                Field::Value if *kind == MetricKind::Gauge && row.count == 0 => None,
                Field::Value => plain(row.value),
                Field::PerSecond => row.per_second.map(|v| (v, v, "/s")),
                Field::Min => row.min.and_then(plain),
                Field::Max => row.max.and_then(plain),
                Field::Trend(stat) => {
                    let ms: LatencyMs = row.trend_ms.filter(|_| row.count > 0)?;
                    let v = stat.of(&ms);
                    Some((v, v, "ms"))
                }
            }
        }
        _ => None,
    }
}

/// What a run-wide threshold is about, for its message.
pub(super) fn describe(metric: &Metric) -> Option<String> {
    Some(match metric {
        Metric::Checks => "all checks".into(),
        Metric::Check(name) => format!("check \"{name}\""),
        Metric::ScriptErrors => "script errors".into(),
        Metric::Custom { kind, name, .. } => format!("{} \"{name}\"", kind.word()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Metric, Stat, parse};
    use super::*;

    #[test]
    fn parses_named_metrics() {
        let m = |e: &str| parse(e).unwrap_or_else(|err| panic!("{e}: {err:?}")).metric;
        assert_eq!(m("check \"has token\" > 99%"), Metric::Check("has token".into()));
        assert_eq!(
            m("trend \"cart: value\": p95 < 300"),
            Metric::Custom { kind: MetricKind::Trend, name: "cart: value".into(), field: Field::Trend(Stat::P95) }
        );
        assert_eq!(
            m("counter \"looked\" > 10"),
            Metric::Custom { kind: MetricKind::Counter, name: "looked".into(), field: Field::Value }
        );
        assert_eq!(parse("trend \"t\": p95 < 1s").unwrap().limit, 1000.0);
        assert_eq!(parse("rate \"hit\" >= 90%").unwrap().limit, 0.9);
        assert_eq!(parse("gauge \"q\": max < -5").unwrap().limit, -5.0);
    }

    #[test]
    fn named_metric_errors_say_what_to_write() {
        let e = |expr: &str| parse(expr).unwrap_err();
        assert_eq!(e("check \"x > 1%").0, 7);
        assert!(e("trend \"t\" < 3").1.contains("needs a statistic"));
        assert!(e("counter \"c\": p95 < 3").1.contains("expected value, rate or count"));
        assert!(e("rate \"hit\" > 0.9").1.contains("`rate \"hit\" > 90%`"), "{:?}", e("rate \"hit\" > 0.9"));
        assert_eq!(e("check \"a\": p95 > 1%").0, 12);
    }

    #[test]
    fn measures_rows() {
        let checks =
            [CheckRow { name: "a".into(), passes: 3, fails: 1 }, CheckRow { name: "b".into(), passes: 0, fails: 4 }];
        let run = RunWide { checks: &checks, metrics: &[], script_errors: 2 };
        assert_eq!(measure(&Metric::Checks, &run), Some((3.0 / 8.0, 37.5, "%")));
        assert_eq!(measure(&Metric::Check("a".into()), &run), Some((0.75, 75.0, "%")));
        assert_eq!(measure(&Metric::Check("zzz".into()), &run), None, "an unknown check has no data");
        assert_eq!(measure(&Metric::ScriptErrors, &run), Some((2.0, 2.0, "")));
    }
}
