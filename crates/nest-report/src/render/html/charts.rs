//! The HTML page's "Over time" section: requests, failures and users per second, then the latency of the busiest
//! request names, each an inline SVG chart (`svg.rs`) in a `<figure>` with its legend.
//!
//! The section picks what to draw (rates per second over points of any width, at most [`CHART_NAMES`] names, a
//! note on the names left out); the drawing itself is `svg.rs`'s.

use std::fmt::Write as _;

use nest_core::stats::Summary;

use super::esc;
use crate::render::svg::{Chart, PALETTE, Series};

/// How many request names the per-name charts draw (the busiest ones).
const CHART_NAMES: usize = 8;

fn figure(page: &mut String, chart: &Chart<'_>, legend: bool, note: Option<String>) {
    let _ = writeln!(page, "<figure>\n<figcaption>{}</figcaption>\n{}", esc(chart.title), chart.render());
    if legend {
        page.push_str("<ul class=\"legend\">");
        for s in &chart.series {
            let _ = write!(page, "<li><i style=\"background:{}\"></i>{}</li>", s.color, esc(&s.label));
        }
        page.push_str("</ul>\n");
    }
    if let Some(note) = note {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", esc(&note));
    }
    page.push_str("</figure>\n");
}
pub(super) fn charts(page: &mut String, s: &Summary) {
    page.push_str("<section id=\"charts\">\n<h2>Over time</h2>\n<div class=\"charts\">\n");
    let t_max = s.timeline.last().map_or(1.0, |p| p.t as f64);
    let per_second = |f: &dyn Fn(&nest_core::stats::TimelinePoint) -> f64| -> Vec<(f64, f64)> {
        s.timeline.iter().map(|p| (p.t as f64, f(p))).collect()
    };
    // A point of a long run may cover several seconds: rates are per second all the same.
    let secs = |p: &nest_core::stats::TimelinePoint| p.seconds.max(1) as f64;
    let count = |p: &nest_core::stats::TimelinePoint| p.total.as_ref().map_or(0.0, |t| t.count as f64 / secs(p));
    let fails = |p: &nest_core::stats::TimelinePoint| p.total.as_ref().map_or(0.0, |t| t.failures as f64 / secs(p));
    let series = |label: &str, color, points| Series { label: label.to_owned(), color, points };
    let rps = Chart {
        id: "rps",
        title: "Requests per second",
        unit: "req/s",
        t_max,
        series: vec![series("requests/s", PALETTE[0], per_second(&count))],
    };
    figure(page, &rps, false, None);
    let mut failure_series = vec![series("failures/s", PALETTE[3], per_second(&fails))];
    if s.model == "open" {
        failure_series.push(series("dropped starts/s", PALETTE[1], per_second(&|p| p.dropped as f64 / secs(p))));
    }
    let open = s.model == "open";
    let failures = Chart { id: "failures", title: "Failures per second", unit: "/s", t_max, series: failure_series };
    figure(page, &failures, open, None);
    let users = Chart {
        id: "users",
        title: "Users",
        unit: "users",
        t_max,
        series: vec![series("users", PALETTE[2], per_second(&|p| p.users as f64))],
    };
    figure(page, &users, false, None);

    let (names, others) = busiest_names(s);
    let note = match others {
        0 => None,
        1 => Some(format!("The {CHART_NAMES} busiest request names are drawn; 1 other is not.")),
        n => Some(format!("The {CHART_NAMES} busiest request names are drawn; {n} others are not.")),
    };
    let mut latency: Vec<(&str, &str, Pick)> = vec![
        ("p50", "Median (p50) response time by name", |r| Some(r.p50)),
        ("p95", "p95 response time by name", |r| Some(r.p95)),
        ("p99", "p99 response time by name", |r| Some(r.p99)),
    ];
    if open {
        latency.push(("corrected_p99", "Corrected p99 (from the scheduled start) by name", |r| r.corrected_p99));
    }
    for (id, title, pick) in latency {
        let series = names
            .iter()
            .enumerate()
            .map(|(i, (method, name))| Series {
                label: format!("{method} {name}"),
                color: PALETTE[i % PALETTE.len()],
                points: s
                    .timeline
                    .iter()
                    .filter_map(|p| {
                        let row = p.requests.iter().find(|r| &r.method == method && &r.name == name)?;
                        Some((p.t as f64, pick(row)?))
                    })
                    .collect(),
            })
            .collect();
        figure(page, &Chart { id, title, unit: "ms", t_max, series }, true, note.clone());
    }
    page.push_str("</div>\n</section>\n");
}

/// Picks one figure of a request's second.
type Pick = fn(&nest_core::stats::TimelineRow) -> Option<f64>;

fn busiest_names(s: &Summary) -> (Vec<(String, String)>, usize) {
    let mut rows: Vec<_> = s.requests.iter().map(|r| (r.requests, r.method.clone(), r.name.clone())).collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.2, &a.1).cmp(&(&b.2, &b.1))));
    let others = rows.len().saturating_sub(CHART_NAMES);
    (rows.into_iter().take(CHART_NAMES).map(|(_, m, n)| (m, n)).collect(), others)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html::render;
    use crate::render::tests::sample_report;

    #[test]
    fn only_the_busiest_names_are_charted() {
        let mut report = sample_report(false, Vec::new());
        let template = report.summary.requests[0].clone();
        report.summary.requests = (0..11u64)
            .map(|i| nest_core::stats::RequestRow { name: format!("/n{i:02}"), requests: i, ..template.clone() })
            .collect();
        let (names, others) = busiest_names(&report.summary);
        assert_eq!(names.len(), 8);
        assert_eq!(names[0].1, "/n10");
        assert_eq!(others, 3);
        assert!(render(&report).contains("The 8 busiest request names are drawn; 3 others are not."));
    }
}
