//! The regression gate: this run against the median of the last N comparable history entries (same plan hash,
//! same machine, other commits). It fails when Capacity@SLO dropped by more than the tolerance, or when an SLO that
//! held at the baseline's capacity step now fails there. σ, κ, N* and X_max are shown for context, never judged:
//! one noisy fit must not block a push.

use std::io::Write;

use crate::history::{Entry, short};
use crate::spec::GateSpec;

/// The verdict of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowVerdict {
    /// Within bounds.
    Pass,
    /// A regression.
    Fail,
    /// Shown, not judged.
    Info,
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is compared.
    pub what: String,
    /// The baseline's value, in words.
    pub baseline: String,
    /// This run's value, in words.
    pub now: String,
    /// The change, in words.
    pub change: String,
    /// The verdict.
    pub verdict: RowVerdict,
}

/// This run against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The baseline entries' short commits, oldest first (empty: no baseline yet).
    pub baseline: Vec<String>,
    /// This run's short commit.
    pub now: String,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Whether any row failed.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == RowVerdict::Fail)
    }
}

/// The entries `now` is compared with: same plan hash and host, another commit (any, when `now` has none), the
/// last `n` of them.
pub fn comparable<'a>(history: &'a [Entry], now: &Entry, n: usize) -> Vec<&'a Entry> {
    let commit = now.git.as_ref().map(|g| g.commit.as_str());
    let mut found: Vec<&Entry> = history
        .iter()
        .filter(|e| e.plan_hash == now.plan_hash && e.host == now.host)
        .filter(|e| commit.is_none() || e.git.as_ref().map(|g| g.commit.as_str()) != commit)
        .collect();
    let skip = found.len().saturating_sub(n);
    found.drain(..skip);
    found
}

/// The median of `values` (`None` when empty).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Compares `now` with the median of its comparable entries in `history`.
pub fn compare(history: &[Entry], now: &Entry, spec: &GateSpec) -> Comparison {
    let base = comparable(history, now, spec.baseline);
    let mut rows = Vec::new();
    let capacity = |e: &Entry| e.capacity_rps.unwrap_or(0.0);
    if let Some(b) = median(base.iter().map(|e| capacity(e)).collect()) {
        let n = capacity(now);
        let dropped = b > 0.0 && n < b * (1.0 - spec.tolerance);
        rows.push(Row {
            what: "Capacity@SLO".into(),
            baseline: format!("{b:.0} req/s"),
            now: format!("{n:.0} req/s"),
            change: change(b, n),
            verdict: if dropped { RowVerdict::Fail } else { RowVerdict::Pass },
        });
        rows.extend(slo_rows(&base, now));
    }
    for (what, get) in [
        ("σ (contention)", (|e: &Entry| e.sigma) as fn(&Entry) -> Option<f64>),
        ("κ (coherency)", |e| e.kappa),
        ("N*", |e| e.n_star),
        ("X_max", |e| e.x_max),
    ] {
        let b = median(base.iter().filter_map(|e| get(e)).collect());
        if let (Some(b), Some(n)) = (b, get(now)) {
            let fmt = |v: f64| if v.abs() < 0.01 { format!("{v:.2e}") } else { format!("{v:.4}") };
            rows.push(Row {
                what: what.into(),
                baseline: fmt(b),
                now: fmt(n),
                change: change(b, n),
                verdict: RowVerdict::Info,
            });
        }
    }
    Comparison {
        baseline: base.iter().map(|e| e.short_commit().to_owned()).collect(),
        now: now.short_commit().to_owned(),
        rows,
    }
}

/// The SLOs that held at the baseline's capacity step (the median entry's) and how they fare now at that load.
fn slo_rows(base: &[&Entry], now: &Entry) -> Vec<Row> {
    let mut sorted: Vec<&&Entry> = base.iter().collect();
    sorted.sort_by(|a, b| a.capacity_rps.unwrap_or(0.0).total_cmp(&b.capacity_rps.unwrap_or(0.0)));
    let Some(median_entry) = sorted.get((sorted.len().saturating_sub(1)) / 2) else {
        return Vec::new();
    };
    let Some(load) = median_entry.capacity_load else {
        return Vec::new();
    };
    let Some(then) = median_entry.steps.iter().find(|s| s.load == load) else {
        return Vec::new();
    };
    let step_now = now.steps.iter().find(|s| s.load == load);
    median_entry
        .slos
        .iter()
        .filter(|slo| !then.failed_slos.contains(slo))
        .map(|slo| {
            let (text, failed) = match step_now {
                None => ("not reached".to_owned(), true),
                Some(s) if s.failed_slos.contains(slo) => ("fails".to_owned(), true),
                Some(_) => ("holds".to_owned(), false),
            };
            Row {
                what: format!("`{slo}` at {load}"),
                baseline: "holds".into(),
                now: text,
                change: String::new(),
                verdict: if failed { RowVerdict::Fail } else { RowVerdict::Pass },
            }
        })
        .collect()
}

fn change(baseline: f64, now: f64) -> String {
    if baseline == 0.0 { "-".to_owned() } else { format!("{:+.1}%", 100.0 * (now - baseline) / baseline) }
}

/// Prints the comparison table and its conclusion.
pub fn print(out: &mut dyn Write, c: &Comparison, spec: &GateSpec) -> std::io::Result<()> {
    if c.baseline.is_empty() {
        return writeln!(
            out,
            "gate: no baseline yet (no earlier entry of this plan on this machine from another commit): passed"
        );
    }
    writeln!(
        out,
        "gate: {} against the median of {} run(s) at {} (tolerance {:.0}%)",
        c.now,
        c.baseline.len(),
        c.baseline.join(", "),
        spec.tolerance * 100.0
    )?;
    let rows: Vec<[String; 5]> = c
        .rows
        .iter()
        .map(|r| {
            let v = match r.verdict {
                RowVerdict::Pass => "pass",
                RowVerdict::Fail => "REGRESSED",
                RowVerdict::Info => "",
            };
            [r.what.clone(), r.baseline.clone(), r.now.clone(), r.change.clone(), v.to_owned()]
        })
        .collect();
    crate::table::print_rows(out, &["", "baseline", "now", "change", "verdict"], &rows)?;
    let base = c.baseline.iter().map(|b| short(b)).collect::<Vec<_>>().join(", ");
    if c.regressed() {
        writeln!(out, "scalability regressed: {} is worse than the baseline at {base}", c.now)
    } else {
        writeln!(out, "gate passed: {} holds the baseline of {base}", c.now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::entry;

    const SPEC: GateSpec = GateSpec { tolerance: 0.1, baseline: 5 };

    #[test]
    fn the_baseline_is_the_last_n_comparable_entries_of_other_commits() {
        let mut other_plan = entry("p", 1.0);
        other_plan.plan_hash = "sha256:y".into();
        let mut other_host = entry("h", 1.0);
        other_host.host = "elsewhere".into();
        let history = vec![entry("a1", 800.0), other_plan, other_host, entry("a2", 810.0), entry("now", 5.0)];
        let now = entry("now", 790.0);
        let picked: Vec<&str> = comparable(&history, &now, 5).iter().map(|e| e.short_commit()).collect();
        assert_eq!(picked, ["a1", "a2"]);
        assert_eq!(comparable(&history, &now, 1).len(), 1);
    }

    #[test]
    fn a_capacity_drop_beyond_the_tolerance_regresses_and_a_small_one_passes() {
        let history = vec![entry("a1", 800.0), entry("a2", 820.0), entry("a3", 700.0)];
        let ok = compare(&history, &entry("b", 750.0), &SPEC);
        assert!(!ok.regressed(), "{ok:?}");
        assert_eq!(ok.rows[0].baseline, "800 req/s");
        let bad = compare(&history, &entry("b", 600.0), &SPEC);
        assert!(bad.regressed(), "{bad:?}");
        assert_eq!(bad.rows[0].change, "-25.0%");
        let mut out = Vec::new();
        print(&mut out, &bad, &SPEC).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("scalability regressed: b is worse than the baseline at a1, a2, a3"), "{text}");
        assert!(text.contains("REGRESSED"), "{text}");
    }

    #[test]
    fn an_slo_that_held_at_the_baseline_capacity_must_still_hold() {
        let history = vec![entry("a1", 800.0)];
        let mut now = entry("b", 800.0);
        now.steps[0].meets_slos = false;
        now.steps[0].failed_slos = vec!["p95 < 28ms".into()];
        let c = compare(&history, &now, &SPEC);
        assert!(c.regressed(), "{c:?}");
        assert_eq!(c.rows[1].what, "`p95 < 28ms` at 16 users");
        now.steps.clear();
        assert_eq!(compare(&history, &now, &SPEC).rows[1].now, "not reached");
    }

    #[test]
    fn no_baseline_passes_and_says_so() {
        let c = compare(&[], &entry("b", 1.0), &SPEC);
        assert!(!c.regressed() && c.baseline.is_empty());
        let mut out = Vec::new();
        print(&mut out, &c, &SPEC).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("no baseline yet"));
    }
}
