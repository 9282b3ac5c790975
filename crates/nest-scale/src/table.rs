//! The terminal tables of `nest scale` and `nest scale history`, written to any [`Write`] so tests capture them.

use std::io::{self, Write};

use crate::analysis::FitStatus;
use crate::doc::ScaleDoc;
use crate::history::Entry;
use crate::step::StepResult;

/// Prints `rows` under `head`, columns padded; the first column left-aligned, the others right-aligned.
pub fn print_rows(out: &mut dyn Write, head: &[&str], rows: &[[String; 5]]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    print_table(out, head, &rows)
}

/// The same for any number of columns.
fn print_table(out: &mut dyn Write, head: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str("  ");
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// One step as a table row.
fn step_row(s: &StepResult) -> Vec<String> {
    let slo = if s.slos.is_empty() {
        "-".to_owned()
    } else if s.meets_slos {
        "met".to_owned()
    } else {
        format!("FAILED{}", if s.far_breach { " (far)" } else { "" })
    };
    let little = s.little.and_then(|l| l.off_pct).map_or("-".to_owned(), |o| format!("{o:+.0}%"));
    let corrected = s.corrected_latency_ms.map_or(String::new(), |c| format!(" ({:.1})", c.p99));
    vec![
        s.step.to_string(),
        s.load.to_string(),
        format!("{:.1}", s.throughput_rps),
        format!("{:.1}", s.tasks_per_s),
        format!("{:.1}", s.latency_ms.p50),
        format!("{:.1}", s.latency_ms.p95),
        format!("{:.1}{corrected}", s.latency_ms.p99),
        format!("{:.2}%", s.error_pct),
        s.dropped.to_string(),
        format!("{:.1}", s.concurrency),
        little,
        format!("{:.0}%", s.cpu.pct()),
        slo,
        s.flags.iter().map(|f| f.words()).collect::<Vec<_>>().join("; "),
    ]
}

const STEP_HEAD: [&str; 14] = [
    "step", "load", "req/s", "tasks/s", "p50 ms", "p95 ms", "p99 ms", "errors", "dropped", "X·R", "Little", "nest CPU",
    "SLO", "flags",
];

/// The step table, the index and the model.
pub fn print_doc(out: &mut dyn Write, doc: &ScaleDoc) -> io::Result<()> {
    let rows: Vec<Vec<String>> = doc.steps.iter().map(step_row).collect();
    print_table(out, &STEP_HEAD, &rows)?;
    if doc.model == "open" {
        writeln!(out, "(p99 in brackets: corrected for coordinated omission, from each task's scheduled start)")?;
    }
    if let Some(why) = &doc.stopped {
        writeln!(out, "stopped early: {why}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", doc.capacity.headline())?;
    let s = &doc.scalability;
    if let (Some(fit), FitStatus::Ok | FitStatus::PeakNotDeterminable) = (&s.fit, s.status) {
        let m = fit.model;
        let se = |v: Option<f64>| v.map_or(String::new(), |v| format!(" ± {v:.2e}"));
        writeln!(
            out,
            "USL fit over {} steps: σ = {:.4}{}, κ = {:.3e}{}, λ = {:.1} req/s per user, R² = {:.3}",
            fit.points,
            m.sigma,
            se(fit.sigma_se),
            m.kappa,
            se(fit.kappa_se),
            m.lambda,
            fit.r_squared
        )?;
        let n_star = s.n_star.map_or("not determinable".to_owned(), |n| format!("{n:.1}"));
        let x_max = s.x_max.map_or("-".to_owned(), |x| format!("{x:.0} req/s"));
        writeln!(out, "N* = {n_star}, X_max = {x_max}")?;
    }
    writeln!(out, "{}", s.verdict)
}

/// The history as a table, oldest first.
pub fn print_history(out: &mut dyn Write, entries: &[Entry]) -> io::Result<()> {
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("-".to_owned(), f);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let git = e.git.as_ref();
            vec![
                nest_report::render::utc_datetime(e.time).replace('T', " "),
                format!("{}{}", e.short_commit(), if git.is_some_and(|g| g.dirty) { "+dirty" } else { "" }),
                git.map_or("-".to_owned(), |g| g.branch.clone()),
                opt(e.capacity_rps, |v| format!("{v:.0}")),
                e.capacity_load.map_or("-".to_owned(), |l| l.to_string()),
                opt(e.sigma, |v| format!("{v:.4}")),
                opt(e.kappa, |v| format!("{v:.2e}")),
                opt(e.n_star, |v| format!("{v:.1}")),
                opt(e.x_max, |v| format!("{v:.0}")),
                e.plan_hash.trim_start_matches("sha256:").chars().take(8).collect(),
                e.host.clone(),
            ]
        })
        .collect();
    let head = ["time (UTC)", "commit", "branch", "Capacity@SLO req/s", "at", "σ", "κ", "N*", "X_max", "plan", "host"];
    print_table(out, &head, &rows)
}
