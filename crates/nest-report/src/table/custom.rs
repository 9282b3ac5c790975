//! The script's checks and custom metrics as people read them, in the terminal summary (and in words shared with
//! the HTML report): k6's ✓/✗ per check with its pass rate, then one line per metric in its own terms.

use std::io::{self, Write};

use nest_core::stats::{CheckRow, MetricKind, MetricRow};

use super::{clip, ms};

/// The share of passes of a check, in %, or `None` when it never ran.
pub(crate) fn pass_pct(passes: u64, fails: u64) -> Option<f64> {
    (passes + fails > 0).then(|| 100.0 * passes as f64 / (passes + fails) as f64)
}

/// All checks together: (passes, fails).
pub(crate) fn all_checks(checks: &[CheckRow]) -> (u64, u64) {
    checks.iter().fold((0, 0), |(p, f), c| (p + c.passes, f + c.fails))
}

/// A metric's figures in one phrase: `12 (1.20/s)`, `75.00% true (150 of 200)`, `n=50 mean 1.20 p95 3.00 ms`.
pub(crate) fn describe(m: &MetricRow) -> String {
    let num = |v: f64| if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.2}") };
    match m.kind {
        MetricKind::Counter => format!("{} ({}/s, {} adds)", num(m.value), num(m.per_second.unwrap_or(0.0)), m.count),
        MetricKind::Rate => match m.count {
            0 => "no value".to_owned(),
            n => format!("{:.2}% true ({} of {n})", 100.0 * m.value, m.passes.unwrap_or(0)),
        },
        MetricKind::Gauge => match (m.min, m.max) {
            (Some(lo), Some(hi)) => format!("{} (min {}, max {}, {} sets)", num(m.value), num(lo), num(hi), m.count),
            _ => "never set".to_owned(),
        },
        MetricKind::Trend => match m.trend_ms.filter(|_| m.count > 0) {
            None => "no value".to_owned(),
            Some(t) => format!(
                "n={} min {} mean {} p50 {} p90 {} p95 {} p99 {} max {} ms",
                m.count,
                ms(t.min),
                ms(t.mean),
                ms(t.p50),
                ms(t.p90),
                ms(t.p95),
                ms(t.p99),
                ms(t.max)
            ),
        },
    }
}

/// The "Checks" and "Custom metrics" tables (each only when there is something in it).
pub(crate) fn print(out: &mut impl Write, checks: &[CheckRow], metrics: &[MetricRow]) -> io::Result<()> {
    if !checks.is_empty() {
        let width = checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(0).clamp(10, 48);
        writeln!(out, "\nChecks")?;
        for c in checks {
            let mark = if c.fails == 0 { "✓" } else { "✗" };
            let pct = pass_pct(c.passes, c.fails).unwrap_or(0.0);
            let name = clip(&c.name, width);
            writeln!(out, "  {mark} {name:<width$} {pct:>7.2}%  {} passed, {} failed", c.passes, c.fails)?;
        }
        let (passes, fails) = all_checks(checks);
        let pct = pass_pct(passes, fails).unwrap_or(0.0);
        writeln!(out, "  all checks: {pct:.2}% ({passes} of {})", passes + fails)?;
    }
    if !metrics.is_empty() {
        let width = metrics.iter().map(|m| m.name.chars().count()).max().unwrap_or(0).clamp(10, 48);
        writeln!(out, "\nCustom metrics")?;
        for m in metrics {
            writeln!(out, "  {:<7} {:<width$}  {}", m.kind.word(), clip(&m.name, width), describe(m))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Aggregate, MetricKind, Recorder, metric_rows};

    #[test]
    fn prints_checks_with_marks_and_metrics_in_their_terms() {
        let r = Recorder::new();
        for i in 0..4u32 {
            r.check("is 200", true).unwrap();
            r.check("has token", i != 0).unwrap();
            r.metric("looked", MetricKind::Counter, |m| m.add(1.0)).unwrap();
            r.metric("hit", MetricKind::Rate, |m| m.add_bool(i % 2 == 0)).unwrap();
            r.metric("cart", MetricKind::Trend, |m| m.add(f64::from(i + 1))).unwrap();
        }
        r.metric("queue", MetricKind::Gauge, |_| Ok(())).unwrap();
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let checks = nest_core::stats::check_rows(&agg.checks);
        let mut out = Vec::new();
        print(&mut out, &checks, &metric_rows(&agg.metrics, 2.0)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("✓ is 200") && text.contains("100.00%  4 passed, 0 failed"), "{text}");
        assert!(text.contains("✗ has token") && text.contains("75.00%  3 passed, 1 failed"), "{text}");
        assert!(text.contains("all checks: 87.50% (7 of 8)"), "{text}");
        assert!(text.contains("counter looked") && text.contains("4 (2/s, 4 adds)"), "{text}");
        assert!(text.contains("50.00% true (2 of 4)"), "{text}");
        assert!(text.contains("n=4 min 1.00 mean 2.50") && text.contains("max 4.00 ms"), "{text}");
        assert!(text.contains("gauge   queue") && text.contains("never set"), "{text}");
    }
}
