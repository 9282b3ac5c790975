//! `--html FILE`: one page that holds the whole run and opens offline, anywhere: inline CSS, inline SVG charts, no
//! script, no font or image to fetch.
//!
//! The page reads top to bottom as people triage a run: the verdict and headline figures, the charts over time,
//! the thresholds, the statistics table (the same figures as the terminal's), failures and script errors, the
//! tasks, then what was run. Table cells carry `data-metric` and `data-value` (the exact JSON number) and rows
//! `data-method`/`data-name`, so tools and tests can read the page back.
mod charts;
mod run;

use std::fmt::Write as _;

use nest_core::stats::{LatencyMs, Summary};

pub use super::escape as esc;
use super::{fmt_ms, utc_datetime};
use crate::model::Report;
use crate::table::{Line, lines};
use charts::charts;
use run::run_info;

/// The page's style sheet, inlined: the report must open offline (the scalability page reuses it).
pub const STYLE: &str = include_str!("report.css");

/// Writes [`render`]'s text to `out` (a file, a socket, a test's buffer).
pub fn write<W: std::io::Write>(mut out: W, report: &Report) -> std::io::Result<()> {
    out.write_all(render(report).as_bytes())
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut page = String::with_capacity(64 * 1024);
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>nest report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        esc(&report.run.host)
    );
    header(&mut page, report);
    charts(&mut page, s);
    thresholds(&mut page, report);
    stats(&mut page, s);
    failures(&mut page, s);
    checks_and_metrics(&mut page, s);
    tasks(&mut page, s);
    pools(&mut page, s);
    run_info(&mut page, report);
    let _ = writeln!(
        page,
        "<footer>Written by nest {}.</footer>\n</main>\n</body>\n</html>",
        esc(&report.run.nest_version)
    );
    page
}

fn header(page: &mut String, report: &Report) {
    let s = &report.summary;
    let t = &s.totals;
    let failed = report.thresholds.iter().filter(|v| !v.passed).count();
    let gate = matches!(report.thresholds.as_slice(), [v] if v.default_gate);
    let (class, verdict) = match (report.thresholds.len(), failed) {
        (0, _) => ("none", "no thresholds".to_owned()),
        (_, 0) if gate => ("pass", "default gate passed".to_owned()),
        (_, _) if gate => ("fail", "default gate failed".to_owned()),
        (n, 0) => ("pass", format!("all {n} thresholds passed")),
        (n, f) => ("fail", format!("{f} of {n} thresholds failed")),
    };
    let _ = write!(
        page,
        "<header>\n<h1>nest load test report</h1>\n<p class=\"sub\">{} · started {} UTC · {:.1} s · {} model</p>\n\
         <span class=\"verdict {class}\" data-verdict=\"{class}\">{}</span>\n<ul class=\"kpis\">",
        esc(&report.run.host),
        utc_datetime(s.started_at).replace('T', " "),
        s.duration_s,
        esc(&s.model),
        esc(&verdict)
    );
    let pct = if t.requests > 0 { 100.0 * t.failures as f64 / t.requests as f64 } else { 0.0 };
    let kpis = [
        ("requests", t.requests.to_string(), "requests"),
        ("failures", format!("{} ({pct:.2}%)", t.failures), "failures"),
        ("rps", format!("{:.1}", t.rps), "requests/s"),
        ("p95", fmt_ms(t.latency_ms.p95), "p95 ms"),
        ("p99", fmt_ms(t.latency_ms.p99), "p99 ms"),
        ("users", s.users.to_string(), "users"),
    ];
    for (metric, value, label) in kpis {
        let _ = write!(page, "<li data-metric=\"{metric}\"><b>{}</b><span>{label}</span></li>", esc(&value));
    }
    page.push_str("</ul>\n</header>\n");
}
fn thresholds(page: &mut String, report: &Report) {
    page.push_str("<section id=\"thresholds\">\n<h2>Thresholds</h2>\n");
    if report.thresholds.is_empty() {
        page.push_str("<p class=\"note\">No thresholds were set.</p>\n</section>\n");
        return;
    }
    page.push_str("<table>\n<tr><th>Result</th><th>Threshold</th><th class=\"n\">Observed</th><th>Details</th></tr>\n");
    for v in &report.thresholds {
        let (class, word) = if v.passed { ("pass", "PASS") } else { ("fail", "FAIL") };
        let observed = v.observed.map_or("-".to_owned(), |o| format!("{o:.2} {}", v.unit).trim_end().to_owned());
        let abort = if v.abort { " (abort)" } else { "" };
        let _ = writeln!(
            page,
            "<tr data-threshold=\"{}\" data-passed=\"{}\"><td class=\"badge {class}\">{word}</td><td><code>{}</code>{abort}</td>\
             <td class=\"n\" data-metric=\"observed\" data-value=\"{}\">{}</td><td>{}</td></tr>",
            esc(&v.expr),
            v.passed,
            esc(&v.expr),
            v.observed.map_or(String::new(), |o| o.to_string()),
            esc(&observed),
            esc(&v.message)
        );
    }
    page.push_str("</table>\n</section>\n");
}

/// Picks one figure of a latency row.
type Field = fn(&LatencyMs) -> f64;

/// The latency columns: `data-metric` name, header, field.
const LATENCY: [(&str, &str, Field); 8] = [
    ("min", "Min", |l| l.min),
    ("mean", "Mean", |l| l.mean),
    ("p50", "p50", |l| l.p50),
    ("p90", "p90", |l| l.p90),
    ("p95", "p95", |l| l.p95),
    ("p99", "p99", |l| l.p99),
    ("p999", "p99.9", |l| l.p999),
    ("max", "Max", |l| l.max),
];

fn stats_table(page: &mut String, kind: &str, rows: &[Line<'_>], total: &Line<'_>) {
    let _ = write!(
        page,
        "<table class=\"stats\" data-table=\"{kind}\">\n<tr><th>Method</th><th>Name</th><th class=\"n\">Requests</th>\
         <th class=\"n\">Fails</th><th class=\"n\">req/s</th><th class=\"n\">Avg size</th>"
    );
    for (_, header, _) in LATENCY {
        let _ = write!(page, "<th class=\"n\">{header}</th>");
    }
    page.push_str("</tr>\n");
    let cell = |page: &mut String, metric: &str, value: String, shown: String| {
        let _ = write!(page, "<td class=\"n\" data-metric=\"{metric}\" data-value=\"{value}\">{shown}</td>");
    };
    for (i, r) in rows.iter().chain(std::iter::once(total)).enumerate() {
        let is_total = i == rows.len();
        let _ = write!(
            page,
            "<tr{} data-method=\"{}\" data-name=\"{}\"><td>{}</td><td class=\"name mono\">{}</td>",
            if is_total { " class=\"total\" data-row=\"total\"" } else { "" },
            esc(r.method),
            esc(r.name),
            esc(r.method),
            esc(r.name)
        );
        cell(page, "requests", r.requests.to_string(), r.requests.to_string());
        cell(page, "failures", r.failures.to_string(), r.failures.to_string());
        cell(page, "rps", r.rps.to_string(), format!("{:.2}", r.rps));
        let avg = if r.requests == 0 { 0.0 } else { r.bytes as f64 / r.requests as f64 };
        cell(page, "avg_size", avg.to_string(), crate::table::avg_size(r.bytes, r.requests));
        for (metric, _, field) in LATENCY {
            match r.latency {
                Some(l) => cell(page, metric, field(l).to_string(), fmt_ms(field(l))),
                None => cell(page, metric, String::new(), "-".to_owned()),
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
}

fn stats(page: &mut String, s: &Summary) {
    page.push_str("<section id=\"stats\">\n<h2>Statistics</h2>\n");
    let (rows, total) = lines(s, false);
    if s.model == "open" {
        page.push_str("<p class=\"note\">Service time, ms (raw: from sending each request to its last byte).</p>\n");
        stats_table(page, "raw", &rows, &total);
        page.push_str(
            "<p class=\"note\">Response time, ms (corrected: the first request of each task counts from the task's \
             scheduled start).</p>\n",
        );
        let (corrected, total) = lines(s, true);
        stats_table(page, "corrected", &corrected, &total);
    } else {
        page.push_str(
            "<p class=\"note\">Response time, ms. Closed model: every user waits for its responses, so no \
                       coordinated-omission correction applies.</p>\n",
        );
        stats_table(page, "raw", &rows, &total);
    }
    if s.dropped_iterations > 0 {
        let _ = writeln!(
            page,
            "<p class=\"note\" data-metric=\"dropped\">{} task starts were dropped: no VU was free within --max-delay.</p>",
            s.dropped_iterations
        );
    }
    page.push_str("</section>\n");
}

fn failures(page: &mut String, s: &Summary) {
    page.push_str("<section id=\"failures\">\n<h2>Failures</h2>\n");
    if s.failures.is_empty() {
        page.push_str("<p class=\"note\">No request failed.</p>\n");
    } else {
        page.push_str(
            "<table data-table=\"failures\">\n<tr><th class=\"n\">Count</th><th>Method</th><th>Name</th><th>Kind</th>\
             <th>Reason</th></tr>\n",
        );
        for f in &s.failures {
            let kind =
                serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let _ = writeln!(
                page,
                "<tr data-method=\"{}\" data-name=\"{}\"><td class=\"n\" data-metric=\"count\" data-value=\"{}\">{}</td>\
                 <td>{}</td><td class=\"name mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.method),
                esc(&f.name),
                f.count,
                f.count,
                esc(&f.method),
                esc(&f.name),
                esc(&kind),
                esc(&f.reason)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("<h2>Script errors</h2>\n");
    if s.errors.is_empty() {
        page.push_str("<p class=\"note\">No script error.</p>\n");
    } else {
        page.push_str(
            "<table data-table=\"errors\">\n<tr><th class=\"n\">Count</th><th>Location</th><th>Message</th></tr>\n",
        );
        for e in &s.errors {
            let _ = writeln!(
                page,
                "<tr><td class=\"n\" data-metric=\"count\" data-value=\"{}\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                e.count,
                e.count,
                esc(&e.location),
                esc(&e.message)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

fn tasks(page: &mut String, s: &Summary) {
    if s.tasks.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"tasks\">\n<h2>Tasks</h2>\n<table data-table=\"tasks\">\n<tr><th>Taskset</th><th>Task</th>\
         <th class=\"n\">Runs</th><th class=\"n\">Errors</th><th class=\"n\">Pacing missed</th></tr>\n",
    );
    for t in &s.tasks {
        let _ = writeln!(
            page,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            esc(&t.taskset),
            esc(&t.task),
            t.runs,
            t.errors,
            t.pacing_missed
        );
    }
    page.push_str("</table>\n</section>\n");
}

/// The script's checks (✓/✗ and pass rate) and custom metrics, each only when there are some.
fn checks_and_metrics(page: &mut String, s: &Summary) {
    use crate::table::custom::{all_checks, describe, pass_pct};
    if !s.checks.is_empty() {
        let (passes, fails) = all_checks(&s.checks);
        let _ = writeln!(
            page,
            "<section id=\"checks\">\n<h2>Checks</h2>\n<p>All checks: {:.2}% passed ({passes} of {}).</p>\n\
             <table data-table=\"checks\">\n<tr><th></th><th>Check</th><th class=\"n\">Passed</th>\
             <th class=\"n\">Failed</th><th class=\"n\">Pass rate</th></tr>",
            pass_pct(passes, fails).unwrap_or(0.0),
            passes + fails
        );
        for c in &s.checks {
            let (mark, class) = if c.fails == 0 { ("✓", "pass") } else { ("✗", "fail") };
            let _ = writeln!(
                page,
                "<tr data-check=\"{}\"><td class=\"badge {class}\">{mark}</td><td class=\"mono\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td></tr>",
                esc(&c.name),
                esc(&c.name),
                c.passes,
                c.fails,
                pass_pct(c.passes, c.fails).unwrap_or(0.0)
            );
        }
        page.push_str("</table>\n</section>\n");
    }
    if !s.metrics.is_empty() {
        page.push_str(
            "<section id=\"metrics\">\n<h2>Custom metrics</h2>\n<table data-table=\"metrics\">\n\
             <tr><th>Kind</th><th>Metric</th><th>Figures</th></tr>\n",
        );
        for m in &s.metrics {
            let _ = writeln!(
                page,
                "<tr data-metric-name=\"{}\" data-value=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                esc(&m.name),
                m.value,
                m.kind.word(),
                esc(&m.name),
                esc(&describe(m))
            );
        }
        page.push_str("</table>\n</section>\n");
    }
}

fn pools(page: &mut String, s: &Summary) {
    if s.pools.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"pools\">\n<h2>Test data pools</h2>\n<table data-table=\"pools\">\n<tr><th>Pool</th>\
         <th class=\"n\">Rows</th><th class=\"n\">Claims</th><th class=\"n\">Releases</th><th class=\"n\">Most held</th>\
         <th class=\"n\">Waits</th><th class=\"n\">Longest wait, ms</th><th class=\"n\">Timeouts</th></tr>\n",
    );
    for p in &s.pools {
        let _ = write!(page, "<tr><td class=\"mono\">{}</td>", esc(&p.name));
        for n in [p.rows, p.claims, p.releases, p.max_held, p.waits] {
            let _ = write!(page, "<td class=\"n\">{n}</td>");
        }
        let _ = writeln!(
            page,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            fmt_ms(p.longest_wait_ms),
            p.timeouts
        );
    }
    page.push_str("</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample_report;
    use crate::thresholds::Verdict;

    fn verdict(expr: &str, passed: bool) -> Verdict {
        Verdict {
            expr: expr.into(),
            passed,
            observed: Some(12.5),
            unit: "ms".into(),
            abort: false,
            aborted_at_s: None,
            message: format!("all requests: 12.50 ms <{passed}>"),
            default_gate: false,
        }
    }

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
    }

    #[test]
    fn the_page_holds_every_section_with_hooks() {
        let mut report = sample_report(false, vec![verdict("p95 < 300ms", true), verdict("GET /b: p99 < 1ms", false)]);
        report.summary.pools = vec![nest_core::stats::PoolRow {
            name: "users".into(),
            rows: 10,
            claims: 40,
            releases: 39,
            max_held: 4,
            waits: 2,
            longest_wait_ms: 12.5,
            timeouts: 1,
        }];
        let page = render(&report);
        for hook in [
            "data-chart=\"rps\"",
            "data-chart=\"failures\"",
            "data-chart=\"users\"",
            "data-chart=\"p50\"",
            "data-chart=\"p95\"",
            "data-chart=\"p99\"",
            "data-table=\"raw\"",
            "data-table=\"failures\"",
            "data-table=\"errors\"",
            "data-table=\"mix\"",
            "data-verdict=\"fail\"",
            "1 of 2 thresholds failed",
            "data-threshold=\"GET /b: p99 &lt; 1ms\" data-passed=\"false\"",
            "boom &lt;&amp;&gt;",
            "2026-01-01 00:00:00 UTC",
            "data-table=\"pools\"",
            "data-table=\"checks\"",
            "<tr data-check=\"is &lt;200&gt;\"><td class=\"badge fail\">✗</td>",
            "All checks: 90.00% passed (27 of 30).",
            "data-table=\"metrics\"",
            "<tr data-metric-name=\"looked\" data-value=\"60\"><td>counter</td>",
            "50.00% true (15 of 30)",
        ] {
            assert!(page.contains(hook), "missing {hook}");
        }
        assert!(!page.contains("data-chart=\"corrected_p99\"") && !page.contains("data-table=\"corrected\""));
        assert!(!page.contains("http://") || !page.contains("src=\"http"), "nothing is fetched");
        assert!(!page.contains("<script") && !page.contains("<link"));
        let a = report.summary.requests.iter().find(|r| r.name == "/a").unwrap();
        let cell = format!("data-metric=\"p95\" data-value=\"{}\">{}<", a.latency_ms.p95, fmt_ms(a.latency_ms.p95));
        assert!(page.contains(&cell), "{cell}");
    }

    #[test]
    fn the_open_model_adds_corrected_figures() {
        let page = render(&sample_report(true, Vec::new()));
        assert!(page.contains("data-chart=\"corrected_p99\"") && page.contains("data-table=\"corrected\""));
        assert!(page.contains("dropped starts/s") && page.contains("no thresholds"));
        let gate = crate::thresholds::gate_verdict(&sample_report(false, Vec::new()).summary);
        let gated = render(&sample_report(false, vec![gate]));
        assert!(gated.contains("default gate failed") && !gated.contains("thresholds failed"));
    }
}
