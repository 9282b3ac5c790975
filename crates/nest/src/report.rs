//! The final summary as people read it: Locust-like tables, written to any `Write` so tests can capture them.

use std::io::{self, Write};

use nest_core::stats::{LatencyMs, Summary};

const LATENCY_HEADERS: [&str; 8] = ["Min", "Mean", "p50", "p90", "p95", "p99", "p99.9", "Max"];

fn latencies(l: &LatencyMs) -> [f64; 8] {
    [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
}

/// Formats a millisecond figure with 3 significant digits where it matters.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn clip(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_owned()
    } else {
        let kept: String = name.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// Prints the whole summary.
pub fn print_summary(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let name_width = s
        .requests
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10, 48);
    writeln!(out)?;
    write!(
        out,
        "{:<7} {:<name_width$} {:>9} {:>8} {:>9}",
        "Method", "Name", "Requests", "Fails", "req/s"
    )?;
    for h in LATENCY_HEADERS {
        write!(out, " {h:>7}")?;
    }
    writeln!(out, "   (ms)")?;
    let rule = "-".repeat(7 + 1 + name_width + 10 + 9 + 10 + 8 * 8);
    writeln!(out, "{rule}")?;
    for r in &s.requests {
        write!(
            out,
            "{:<7} {:<name_width$} {:>9} {:>8} {:>9.2}",
            r.method,
            clip(&r.name, name_width),
            r.requests,
            r.failures,
            r.rps
        )?;
        for v in latencies(&r.latency_ms) {
            write!(out, " {:>7}", ms(v))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{rule}")?;
    let t = &s.totals;
    write!(
        out,
        "{:<7} {:<name_width$} {:>9} {:>8} {:>9.2}",
        "", "Total", t.requests, t.failures, t.rps
    )?;
    for v in latencies(&t.latency_ms) {
        write!(out, " {:>7}", ms(v))?;
    }
    writeln!(out)?;
    let pct = if t.requests > 0 {
        100.0 * t.failures as f64 / t.requests as f64
    } else {
        0.0
    };
    writeln!(
        out,
        "\n{} requests in {:.1}s, {} failed ({pct:.2}%), {} users",
        t.requests, s.duration_s, t.failures, s.users
    )?;

    if !s.failures.is_empty() {
        writeln!(out, "\nFailures")?;
        writeln!(
            out,
            "{:>8}  {:<7} {:<name_width$}  Reason",
            "Count", "Method", "Name"
        )?;
        for f in &s.failures {
            writeln!(
                out,
                "{:>8}  {:<7} {:<name_width$}  {}",
                f.count,
                f.method,
                clip(&f.name, name_width),
                f.reason
            )?;
        }
    }
    if !s.errors.is_empty() {
        writeln!(out, "\nScript errors")?;
        writeln!(out, "{:>8}  Location: message", "Count")?;
        for e in &s.errors {
            writeln!(out, "{:>8}  {}: {}", e.count, e.location, e.message)?;
        }
    }
    if !s.tasks.is_empty() {
        let width = s
            .tasks
            .iter()
            .map(|t| t.taskset.len() + t.task.len() + 1)
            .max()
            .unwrap_or(0)
            .max(12);
        writeln!(out, "\n{:<width$} {:>9} {:>8}", "Task", "Runs", "Errors")?;
        for t in &s.tasks {
            writeln!(
                out,
                "{:<width$} {:>9} {:>8}",
                format!("{}/{}", t.taskset, t.task),
                t.runs,
                t.errors
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Aggregate, Recorder};
    use std::time::Duration;

    #[test]
    fn prints_every_table() {
        let r = Recorder::new();
        r.request("GET", "/items/:id", Duration::from_millis(3), None);
        r.request(
            "GET",
            "/items/:id",
            Duration::from_millis(5),
            Some("HTTP 500"),
        );
        r.error("t/a.rhai:3:9", "boom");
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let s = Summary::new(&agg, &[], 2.0, 3);
        let mut out = Vec::new();
        print_summary(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("/items/:id"), "{text}");
        assert!(text.contains("HTTP 500"));
        assert!(text.contains("t/a.rhai:3:9: boom"));
        assert!(text.contains("2 requests in 2.0s, 1 failed (50.00%), 3 users"));
    }
}
