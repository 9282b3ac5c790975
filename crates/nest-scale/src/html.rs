//! The self-contained HTML page of `nest scale --html` and `nest scale history --html`: nest-report's style sheet
//! and its inline-SVG charts (drawn over a load axis instead of time), no script, nothing to fetch.
//!
//! Charts: throughput against the USL's N (the measured steps as dots, the fitted curve, the SLO boundary), and the
//! latency percentiles against the offered load; for the history, Capacity@SLO and N* over commits.

use std::fmt::Write as _;

use nest_report::render::escape as esc;
use nest_report::render::html::STYLE;
use nest_report::render::svg::{Chart, PALETTE, Series, XAxis};

use crate::doc::ScaleDoc;
use crate::history::Entry;
use crate::spec::Load;

/// The page of one `nest scale` run.
pub fn render(doc: &ScaleDoc) -> String {
    let mut page = head("nest scalability index");
    let verdict_class = if doc.capacity.throughput_rps.is_some() { "pass" } else { "fail" };
    let _ = write!(
        page,
        "<header>\n<h1>Scalability index</h1>\n<p class=\"sub\">{} · {} model · {} steps of {} s after {} s settle · \
         plan {}</p>\n<span class=\"verdict {verdict_class}\" data-capacity=\"{}\">{}</span>\n<p>{}</p>\n</header>\n",
        esc(&doc.target),
        esc(&doc.model),
        doc.steps.len(),
        doc.step_time_s,
        doc.settle_s,
        esc(doc.plan_hash.trim_start_matches("sha256:").get(..12).unwrap_or("")),
        doc.capacity.throughput_rps.map_or(String::new(), |x| format!("{x}")),
        esc(&doc.capacity.headline()),
        esc(&doc.scalability.verdict),
    );
    page.push_str("<section id=\"charts\">\n<h2>Throughput and latency against load</h2>\n<div class=\"charts\">\n");
    figure(&mut page, "Throughput against concurrency", &throughput_chart(doc));
    figure(&mut page, "Latency against load", &latency_chart(doc));
    page.push_str("</div>\n</section>\n");
    steps_table(&mut page, doc);
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

/// The USL's N of a step: the users, or the measured concurrency in the open model.
fn n_of(s: &crate::step::StepResult) -> f64 {
    match s.load {
        Load::Users(n) => n as f64,
        Load::Rate(_) => s.concurrency,
    }
}

fn throughput_chart(doc: &ScaleDoc) -> (String, Vec<(String, &'static str)>) {
    let measured: Vec<(f64, f64)> = doc.steps.iter().map(|s| (n_of(s), s.throughput_rps)).collect();
    let n_max = measured.iter().map(|p| p.0).fold(1.0, f64::max);
    // The fitted curve first, so that the measured dots are drawn over it.
    let mut series = Vec::new();
    if let Some(fit) = &doc.scalability.fit {
        let curve = (0..=100).map(|i| n_max * i as f64 / 100.0).map(|n| (n, fit.model.throughput(n))).collect();
        series.push(Series { label: "USL fit".into(), color: PALETTE[1], points: curve });
    }
    let dots = vec![series.len()];
    series.push(Series { label: "measured".into(), color: PALETTE[0], points: measured });
    let mut marks = Vec::new();
    if let Some(step) = doc.capacity.step.and_then(|i| doc.steps.iter().find(|s| s.step == i)) {
        marks.push(("SLO boundary".to_owned(), n_of(step)));
    }
    let unit = if doc.model == "open" { "in flight (X·R)" } else { "users" };
    draw(
        "throughput",
        "Throughput against concurrency",
        "req/s",
        n_max,
        series,
        XAxis { unit, dots, marks, labels: Vec::new() },
    )
}

fn latency_chart(doc: &ScaleDoc) -> (String, Vec<(String, &'static str)>) {
    let load_max = doc.steps.iter().map(|s| s.load.value()).fold(1.0, f64::max);
    let line = |label: &str, color, f: fn(&crate::step::StepResult) -> f64| Series {
        label: label.to_owned(),
        color,
        points: doc.steps.iter().map(|s| (s.load.value(), f(s))).collect(),
    };
    let series = vec![
        line("p50", PALETTE[2], |s| s.latency_ms.p50),
        line("p95", PALETTE[1], |s| s.latency_ms.p95),
        line("p99", PALETTE[3], |s| s.latency_ms.p99),
    ];
    let marks = doc.capacity.load.map(|l| ("SLO boundary".to_owned(), l.value())).into_iter().collect();
    let unit = doc.steps.first().map_or("users", |s| s.load.unit());
    draw(
        "latency",
        "Latency percentiles against load",
        "ms",
        load_max,
        series,
        XAxis { unit, dots: Vec::new(), marks, labels: Vec::new() },
    )
}

/// The SVG and its legend.
fn draw(
    id: &str,
    title: &str,
    unit: &str,
    x_max: f64,
    series: Vec<Series>,
    axis: XAxis<'_>,
) -> (String, Vec<(String, &'static str)>) {
    let legend = series.iter().map(|s| (s.label.clone(), s.color)).collect();
    let chart = Chart { id, title, unit, t_max: x_max, series };
    (chart.render_over(Some(&axis)), legend)
}

fn figure(page: &mut String, caption: &str, (svg, legend): &(String, Vec<(String, &'static str)>)) {
    let _ = write!(page, "<figure><figcaption>{}</figcaption>{svg}<ul class=\"legend\">", esc(caption));
    for (label, color) in legend {
        let _ = write!(page, "<li><i style=\"background:{color}\"></i>{}</li>", esc(label));
    }
    page.push_str("</ul></figure>\n");
}

fn steps_table(page: &mut String, doc: &ScaleDoc) {
    page.push_str(
        "<section id=\"steps\">\n<h2>Steps</h2>\n<table>\n<tr><th>step</th><th>load</th><th class=\"n\">req/s</th>\
         <th class=\"n\">tasks/s</th><th class=\"n\">p50 ms</th><th class=\"n\">p95 ms</th><th class=\"n\">p99 ms</th>\
         <th class=\"n\">errors</th><th class=\"n\">X·R</th><th class=\"n\">nest CPU</th><th>SLO</th><th>flags</th></tr>\n",
    );
    for s in &doc.steps {
        let slo = if s.slos.is_empty() {
            "-"
        } else if s.meets_slos {
            "met"
        } else {
            "failed"
        };
        let class = if s.slos.is_empty() {
            ""
        } else if s.meets_slos {
            "pass"
        } else {
            "fail"
        };
        let flags = s.flags.iter().map(|f| f.words()).collect::<Vec<_>>().join("; ");
        let _ = writeln!(
            page,
            "<tr data-step=\"{}\"><td>{}</td><td>{}</td><td class=\"n\" data-metric=\"throughput_rps\" data-value=\"{}\">{:.1}</td>\
             <td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{:.2}%</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.0}%</td>\
             <td><span class=\"badge {class}\">{slo}</span></td><td>{}</td></tr>",
            s.step,
            s.step,
            esc(&s.load.to_string()),
            s.throughput_rps,
            s.throughput_rps,
            s.tasks_per_s,
            s.latency_ms.p50,
            s.latency_ms.p95,
            s.latency_ms.p99,
            s.error_pct,
            s.concurrency,
            s.cpu.pct(),
            esc(&flags)
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(title)
    )
}

/// The page of the history: Capacity@SLO and N* over commits, labelled with short hashes.
pub fn render_history(entries: &[Entry]) -> String {
    let mut page = head("nest scalability history");
    let _ = writeln!(
        page,
        "<header>\n<h1>Scalability history</h1>\n<p class=\"sub\">{} runs</p>\n</header>",
        entries.len()
    );
    let labels: Vec<(f64, String)> =
        entries.iter().enumerate().map(|(i, e)| (i as f64, e.short_commit().to_owned())).collect();
    let x_max = (entries.len().max(2) - 1) as f64;
    let over = |f: fn(&Entry) -> Option<f64>| {
        entries.iter().enumerate().filter_map(|(i, e)| f(e).map(|v| (i as f64, v))).collect()
    };
    page.push_str("<section id=\"charts\">\n<div class=\"charts\">\n");
    let capacity = Series { label: "Capacity@SLO".into(), color: PALETTE[0], points: over(|e| e.capacity_rps) };
    let axis = |labels: Vec<(f64, String)>| XAxis { unit: "commit", dots: vec![0], marks: Vec::new(), labels };
    figure(
        &mut page,
        "Capacity@SLO over commits",
        &draw("capacity", "Capacity@SLO over commits", "req/s", x_max, vec![capacity], axis(labels.clone())),
    );
    let n_star = Series { label: "N*".into(), color: PALETTE[1], points: over(|e| e.n_star) };
    figure(
        &mut page,
        "N* over commits",
        &draw("n_star", "N* over commits", "users", x_max, vec![n_star], axis(labels)),
    );
    page.push_str("</div>\n</section>\n<section id=\"runs\">\n<h2>Runs</h2>\n<table>\n<tr><th>commit</th><th>branch</th>\
                   <th class=\"n\">Capacity@SLO req/s</th><th class=\"n\">σ</th><th class=\"n\">κ</th><th class=\"n\">N*</th></tr>\n");
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.4}"));
    for e in entries {
        let _ = writeln!(
            page,
            "<tr data-commit=\"{}\"><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(e.short_commit()),
            esc(e.short_commit()),
            esc(e.git.as_ref().map_or("-", |g| g.branch.as_str())),
            e.capacity_rps.map_or("-".to_owned(), |v| format!("{v:.0}")),
            opt(e.sigma),
            e.kappa.map_or("-".to_owned(), |v| format!("{v:.2e}")),
            e.n_star.map_or("-".to_owned(), |v| format!("{v:.1}")),
        );
    }
    page.push_str("</table>\n</section>\n</main>\n</body>\n</html>\n");
    page
}
