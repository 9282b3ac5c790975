//! The HTML page's last section, "What was run": the command, target, load and plan, the run's identity and
//! segments (and what an incomplete merge lacks), then the load mix table.
//!
//! It describes the run rather than its results, so it reads the report's `RunInfo` and little of its summary.

use std::fmt::Write as _;

use super::esc;
use crate::model::{Report, RunInfo};
use crate::render::utc_datetime;

/// The run's identity, its segments and what a merge lacks, for "What was run".
fn identity_items(run: &RunInfo) -> Vec<(&'static str, String)> {
    let mut items = Vec::new();
    if let Some(id) = &run.identity {
        items.push(("Run id", format!("<code>{}</code>", esc(&id.run_id))));
        items.push(("Plan hash", format!("<code>{}</code>", esc(&id.plan_hash))));
        if id.segment.count > 1 {
            items.push(("Segment", id.segment.to_string()));
        }
        items.push(("Host name", esc(&id.host_name)));
        items.push(("Start skew", format!("{:.1} ms", id.start_skew_ms)));
    }
    if !run.segments.is_empty() {
        let rows: Vec<String> = run
            .segments
            .iter()
            .map(|s| format!("{} on {} ({:.1} ms)", s.index, esc(&s.host_name), s.start_skew_ms))
            .collect();
        items.push(("Segments", rows.join(", ")));
    }
    if let Some(incomplete) = &run.incomplete {
        let missing: Vec<String> = incomplete.missing.iter().map(|m| m.index.to_string()).collect();
        let what = format!("{:.1}% of the {}", incomplete.missing_pct, esc(&incomplete.share_of));
        items.push(("Incomplete", format!("<strong>segment {} missing: {what}</strong>", missing.join(", "))));
    }
    items
}
pub(super) fn run_info(page: &mut String, report: &Report) {
    let (s, run) = (&report.summary, &report.run);
    page.push_str("<section id=\"run\">\n<h2>What was run</h2>\n<dl class=\"run\">\n");
    let optional = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let items = [
        ("Command", format!("<code>{}</code>", esc(&run.command))),
        ("Target", esc(&run.host)),
        ("Load", esc(&run.load)),
        ("Model", esc(&s.model)),
        ("Users (planned)", s.users.to_string()),
        ("Workers", run.workers.to_string()),
        ("Planned run time", optional(run.run_time_s.map(|t| format!("{t} s")))),
        ("Planned tasks", optional(run.iterations.map(|n| n.to_string()))),
        ("Started", format!("{} UTC", utc_datetime(s.started_at).replace('T', " "))),
        ("Duration", format!("{:.2} s", s.duration_s)),
        ("nest", esc(&run.nest_version)),
    ];
    for (term, value) in items.into_iter().chain(identity_items(run)) {
        let _ = writeln!(page, "<dt>{term}</dt><dd>{value}</dd>");
    }
    page.push_str("</dl>\n<h2>Load mix</h2>\n");
    page.push_str(
        "<table data-table=\"mix\">\n<tr><th>Taskset / task</th><th class=\"n\">Weight</th><th class=\"n\">Share</th>\
         <th>Weight from</th><th>Think time</th><th>Hooks</th></tr>\n",
    );
    for r in &run.mix {
        let share = if r.weight == 0 { "off".to_owned() } else { format!("{:.1}%", r.share_pct) };
        let hooks: Vec<&str> = [(r.on_start, "on_start"), (r.on_stop, "on_stop")]
            .into_iter()
            .filter_map(|(has, name)| has.then_some(name))
            .collect();
        let _ = writeln!(
            page,
            "<tr data-taskset=\"{}\"><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{share}</td>\
             <td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.name),
            r.weight,
            esc(r.source.label()),
            esc(&r.wait),
            hooks.join(", ")
        );
        for t in &r.tasks {
            let _ = writeln!(
                page,
                "<tr class=\"task\"><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td>\
                 <td></td><td></td><td></td></tr>",
                esc(&t.name),
                t.weight,
                t.share_pct
            );
        }
    }
    page.push_str("</table>\n</section>\n");
}
