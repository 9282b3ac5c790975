//! The final summary as people read it: Locust-like tables, written to any `Write` so tests can capture them.
//!
//! In the open model the latency table is printed twice: service times (raw), then response times counted from each
//! task's scheduled start (corrected for coordinated omission), with the same rows, so the two read side by side.

use std::io::{self, Write};

use nest_core::stats::{LatencyMs, Summary};

pub(crate) mod custom;

const LATENCY_HEADERS: [&str; 8] = ["Min", "Mean", "p50", "p90", "p95", "p99", "p99.9", "Max"];

fn latencies(l: &LatencyMs) -> [f64; 8] {
    [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max]
}

/// Formats a millisecond figure with 3 significant digits where it matters (shared by every rendering).
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The average response body size of `requests` that received `bytes` in all (decoded, what scripts see), in the
/// units of every byte count nest shows: `830 B`, `12.4 KiB`, `3 MiB`; `-` with no request.
pub fn avg_size(bytes: u64, requests: u64) -> String {
    if requests == 0 {
        return "-".to_owned();
    }
    nest_http::fmt_bytes((bytes as f64 / requests as f64).round() as u64)
}

/// Shortens a name to `width` characters with an ellipsis.
pub fn clip(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_owned()
    } else {
        let kept: String = name.chars().take(width.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// One line of a latency table (the terminal's and the HTML report's).
#[derive(Clone, Copy)]
pub(crate) struct Line<'a> {
    pub method: &'a str,
    pub name: &'a str,
    pub requests: u64,
    pub failures: u64,
    pub rps: f64,
    /// Decoded response body bytes of all these requests.
    pub bytes: u64,
    /// `None` where there is no figure (a corrected table's row for a name used only in hooks).
    pub latency: Option<&'a LatencyMs>,
}

/// The rows of a latency table and its total row: service times, or (open model) the corrected response times.
pub(crate) fn lines(s: &Summary, corrected: bool) -> (Vec<Line<'_>>, Line<'_>) {
    fn pick<'a>(corrected: bool, raw: &'a LatencyMs, fixed: Option<&'a LatencyMs>) -> Option<&'a LatencyMs> {
        if corrected { fixed } else { Some(raw) }
    }
    let rows = s
        .requests
        .iter()
        .map(|r| Line {
            method: &r.method,
            name: &r.name,
            requests: r.requests,
            failures: r.failures,
            rps: r.rps,
            bytes: r.bytes,
            latency: pick(corrected, &r.latency_ms, r.corrected_latency_ms.as_ref()),
        })
        .collect();
    let t = &s.totals;
    let total = Line {
        method: "",
        name: "Total",
        requests: t.requests,
        failures: t.failures,
        rps: t.rps,
        bytes: t.bytes,
        latency: pick(corrected, &t.latency_ms, t.corrected_latency_ms.as_ref()),
    };
    (rows, total)
}

fn latency_table(out: &mut impl Write, title: &str, lines: &[Line<'_>], total: &Line<'_>) -> io::Result<()> {
    let width = lines.iter().map(|l| l.name.chars().count()).max().unwrap_or(0).clamp(10, 48);
    writeln!(out, "\n{title}")?;
    write!(
        out,
        "{:<7} {:<width$} {:>9} {:>8} {:>9} {:>9}",
        "Method", "Name", "Requests", "Fails", "req/s", "Avg size"
    )?;
    for h in LATENCY_HEADERS {
        write!(out, " {h:>7}")?;
    }
    writeln!(out)?;
    let rule = "-".repeat(7 + 1 + width + 10 + 9 + 10 + 10 + 8 * 8);
    writeln!(out, "{rule}")?;
    let row = |out: &mut dyn Write, l: &Line<'_>| -> io::Result<()> {
        write!(
            out,
            "{:<7} {:<width$} {:>9} {:>8} {:>9.2} {:>9}",
            l.method,
            clip(l.name, width),
            l.requests,
            l.failures,
            l.rps,
            avg_size(l.bytes, l.requests)
        )?;
        match l.latency {
            Some(lat) => {
                for v in latencies(lat) {
                    write!(out, " {:>7}", ms(v))?;
                }
            }
            None => write!(out, " {:>7}", "-")?,
        }
        writeln!(out)
    };
    for l in lines {
        row(out, l)?;
    }
    writeln!(out, "{rule}")?;
    row(out, total)
}

/// Prints the whole summary.
pub fn print_summary(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let t = &s.totals;
    let (raw, total) = lines(s, false);
    if s.model == "open" {
        latency_table(out, "Service time, ms (raw: from sending each request to its last byte)", &raw, &total)?;
        let (corrected, total) = lines(s, true);
        latency_table(
            out,
            "Response time, ms (corrected: the first request of each task counts from the task's scheduled start)",
            &corrected,
            &total,
        )?;
    } else {
        latency_table(out, "Response time, ms", &raw, &total)?;
        writeln!(
            out,
            "(closed model: every user waits for its responses, so no coordinated-omission correction applies)"
        )?;
    }
    let pct = if t.requests > 0 { 100.0 * t.failures as f64 / t.requests as f64 } else { 0.0 };
    writeln!(
        out,
        "\n{} requests in {:.1}s, {} failed ({pct:.2}%), {} users",
        t.requests, s.duration_s, t.failures, s.users
    )?;
    if let Some(from) = s.counted_from_s {
        writeln!(
            out,
            "(statistics counted from {from:.0}s into the load, after a reset: the figures and rates cover those {:.1}s)",
            s.duration_s
        )?;
    }
    if s.dropped_iterations > 0 {
        let seconds: Vec<String> =
            s.timeline.iter().filter(|p| p.dropped > 0).take(10).map(|p| format!("{}s: {}", p.t, p.dropped)).collect();
        writeln!(
            out,
            "{} task starts dropped: no VU was free within --max-delay (raise --max-users). By second: {}{}",
            s.dropped_iterations,
            seconds.join(", "),
            if s.timeline.iter().filter(|p| p.dropped > 0).count() > 10 { ", ..." } else { "" }
        )?;
    }

    if !s.failures.is_empty() {
        let width = s.failures.iter().map(|f| f.name.chars().count()).max().unwrap_or(0).clamp(10, 48);
        writeln!(out, "\nFailures")?;
        writeln!(out, "{:>8}  {:<7} {:<width$}  Reason", "Count", "Method", "Name")?;
        for f in &s.failures {
            writeln!(out, "{:>8}  {:<7} {:<width$}  {}", f.count, f.method, clip(&f.name, width), f.reason)?;
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
        let width = s.tasks.iter().map(|t| t.taskset.len() + t.task.len() + 1).max().unwrap_or(0).max(12);
        let paced = s.tasks.iter().any(|t| t.pacing_missed > 0);
        write!(out, "\n{:<width$} {:>9} {:>8}", "Task", "Runs", "Errors")?;
        writeln!(out, "{}", if paced { "  Pacing missed" } else { "" })?;
        for t in &s.tasks {
            write!(out, "{:<width$} {:>9} {:>8}", format!("{}/{}", t.taskset, t.task), t.runs, t.errors)?;
            writeln!(out, "{}", if paced { format!("  {:>13}", t.pacing_missed) } else { String::new() })?;
        }
    }
    print_pools(out, &s.pools)?;
    custom::print(out, &s.checks, &s.metrics)
}

/// The "Data pools" table: what happened to each test data pool (only when there are some).
fn print_pools(out: &mut impl Write, pools: &[nest_core::stats::PoolRow]) -> io::Result<()> {
    if pools.is_empty() {
        return Ok(());
    }
    let width = pools.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).clamp(10, 32);
    writeln!(out, "\nData pools")?;
    writeln!(
        out,
        "{:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13} {:>9}",
        "Pool", "Rows", "Claims", "Releases", "Max held", "Waits", "Longest wait", "Timeouts"
    )?;
    for p in pools {
        let wait = format!("{} ms", ms(p.longest_wait_ms));
        let (name, claims, releases, held) = (clip(&p.name, width), p.claims, p.releases, p.max_held);
        writeln!(
            out,
            "{name:<width$} {:>9} {claims:>9} {releases:>9} {held:>9} {:>9} {wait:>13} {:>9}",
            p.rows, p.waits, p.timeouts
        )?;
    }
    for p in pools.iter().filter(|p| p.timeouts > 0) {
        writeln!(out, "pool exhausted: {} claims of `{}` timed out with no row free", p.timeouts, p.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Aggregate, Failure, FailureKind, Recorder, Sample, SummaryParts};
    use std::time::Duration;

    fn summary(open: bool) -> String {
        let r = Recorder::new();
        let corrected = |ms| open.then(|| Duration::from_millis(ms));
        let ms = Duration::from_millis;
        r.request("GET", "/items/:id", Sample { latency: ms(3), corrected: corrected(40), ..Default::default() });
        let failure = Some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
        r.request(
            "GET",
            "/items/:id",
            Sample { latency: ms(5), corrected: corrected(5), failure, ..Default::default() },
        );
        r.error("t/a.rhai:3:9", "boom");
        r.pacing_missed(0, 0);
        if open {
            r.dropped();
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        agg.seal_before(u64::MAX);
        let s = Summary::new(&agg, SummaryParts { duration_s: 2.0, users: 3, open, ..SummaryParts::default() });
        let mut out = Vec::new();
        print_summary(&mut out, &s).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_reset_says_from_when_the_figures_count() {
        assert!(!summary(false).contains("statistics counted from"));
        let parts = SummaryParts { duration_s: 20.0, counted_from_s: Some(40.0), users: 3, ..SummaryParts::default() };
        let s = Summary::new(&Aggregate::default(), parts);
        let mut out = Vec::new();
        print_summary(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("statistics counted from 40s into the load, after a reset"), "{text}");
        assert!(text.contains("cover those 20.0s"), "{text}");
        // The report's `run` says it too, filled in from the summary.
        let run: crate::model::RunInfo = serde_json::from_value(serde_json::json!({
            "nest_version": "t", "command": "nest run", "host": "h", "load": "l", "workers": 1,
            "run_time_s": null, "iterations": null, "mix": []
        }))
        .unwrap();
        let s = Summary { started_at: 1000.0, ..s };
        let report = crate::model::Report::new(s, run, &[], &[], false);
        assert_eq!(report.run.stats_reset, Some(crate::model::StatsReset { at: 1040.0, offset_s: 40.0 }));
    }

    #[test]
    fn prints_every_table() {
        let text = summary(false);
        assert!(text.contains("/items/:id"), "{text}");
        assert!(text.contains("HTTP 500"));
        assert!(text.contains("t/a.rhai:3:9: boom"));
        assert!(text.contains("2 requests in 2.0s, 1 failed (50.00%), 3 users"));
        assert!(text.contains("no coordinated-omission correction applies"));
        assert!(!text.contains("corrected"));
    }

    #[test]
    fn the_open_model_shows_raw_and_corrected() {
        let text = summary(true);
        assert!(text.contains("Service time, ms (raw"), "{text}");
        assert!(text.contains("Response time, ms (corrected"));
        assert!(text.contains("1 task starts dropped"));
        let corrected_total = text.lines().filter(|l| l.trim_start().starts_with("Total")).nth(1).unwrap();
        assert!(corrected_total.trim_end().ends_with("40.0"), "{corrected_total}");
    }
}
