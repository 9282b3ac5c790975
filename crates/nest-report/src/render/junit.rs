//! `--junit FILE`: the verdict as JUnit XML, so that CI systems (GitHub, GitLab, Jenkins) show it natively.
//!
//! One test suite `nest` holds a test case per threshold, then one per request name (classname `requests`) that
//! fails when the name had more failures than its thresholds allow: the `error_rate` thresholds that select it
//! if there are any, else the global ones, else any failure at all. A request's test case time is its mean
//! response time; the suite's is the run's duration. Then one test case per check of the script (classname
//! `checks`), judged the same way: by the `check "name"` thresholds that name it, else by the `checks` ones applied
//! to its own pass rate, else it fails on any failed result.
//!
//! The XML is written by hand: the document is small and fixed, and [`xml`] escapes every text and attribute
//! (dropping the control characters XML 1.0 cannot hold), which is all a writer library would add here.

use std::fmt::Write as _;

use nest_core::stats::{CheckRow, RequestRow};

use super::escape as xml;
use crate::model::Report;
use crate::thresholds::Threshold;

/// How many failure reasons a failed request test case lists.
const TOP_REASONS: usize = 5;

/// A test case: its name, class, time and failure (message, details), if it failed.
struct Case {
    classname: &'static str,
    name: String,
    time_s: f64,
    failure: Option<(String, String)>,
}

/// The verdict of one request name.
fn request_case(report: &Report, thresholds: &[Threshold], row: &RequestRow) -> Case {
    let (method, name, requests, failures) = (row.method.as_str(), row.name.as_str(), row.requests, row.failures);
    let checks: Vec<(bool, bool, &str)> = thresholds
        .iter()
        .filter_map(|t| {
            t.error_rate_check(method, name, failures, requests).map(|(own, ok)| (own, ok, t.expr.as_str()))
        })
        .collect();
    // A name's own error_rate thresholds override the global ones.
    let own = checks.iter().any(|c| c.0);
    let broken: Vec<&str> = checks.iter().filter(|c| c.0 == own && !c.1).map(|c| c.2).collect();
    let pct = if requests > 0 { 100.0 * failures as f64 / requests as f64 } else { 0.0 };
    let failed = if checks.is_empty() { failures > 0 } else { !broken.is_empty() };
    let failure = failed.then(|| {
        let limit = if checks.is_empty() {
            "no error_rate threshold applies, so any failure fails".to_owned()
        } else {
            format!("above `{}`", broken.join("`, `"))
        };
        let message = format!("{failures} of {requests} requests failed ({pct:.2}%): {limit}");
        let mut details = format!("{message}\nTop reasons:\n");
        let reasons = report.summary.failures.iter().filter(|f| f.method == method && f.name == name);
        for f in reasons.take(TOP_REASONS) {
            let _ = writeln!(details, "{:>8}  {}", f.count, f.reason);
        }
        (message, details)
    });
    Case { classname: "requests", name: format!("{method} {name}"), time_s: row.latency_ms.mean / 1000.0, failure }
}

/// The verdict of one check of the script.
fn check_case(thresholds: &[Threshold], row: &CheckRow) -> Case {
    let judged: Vec<(bool, bool, &str)> = thresholds
        .iter()
        .filter_map(|t| {
            t.check_rate_check(&row.name, row.passes, row.fails).map(|(own, ok)| (own, ok, t.expr.as_str()))
        })
        .collect();
    let own = judged.iter().any(|c| c.0);
    let broken: Vec<&str> = judged.iter().filter(|c| c.0 == own && !c.1).map(|c| c.2).collect();
    let failed = if judged.is_empty() { row.fails > 0 } else { !broken.is_empty() };
    let total = row.passes + row.fails;
    let failure = failed.then(|| {
        let pct = if total > 0 { 100.0 * row.passes as f64 / total as f64 } else { 0.0 };
        let limit = if judged.is_empty() {
            "no checks threshold applies, so any failed check fails".to_owned()
        } else {
            format!("below `{}`", broken.join("`, `"))
        };
        let message = format!("{} of {total} checks passed ({pct:.2}%): {limit}", row.passes);
        (message.clone(), message)
    });
    Case { classname: "checks", name: row.name.clone(), time_s: 0.0, failure }
}

/// Writes [`render`]'s text to `out` (a file, a socket, a test's buffer).
pub fn write<W: std::io::Write>(mut out: W, report: &Report) -> std::io::Result<()> {
    out.write_all(render(report).as_bytes())
}

/// The whole document.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut cases: Vec<Case> = report
        .thresholds
        .iter()
        .map(|v| Case {
            classname: "thresholds",
            name: v.expr.clone(),
            time_s: 0.0,
            failure: (!v.passed).then(|| {
                let mut details = format!("{}: {}", v.expr, v.message);
                if let Some(at) = v.aborted_at_s {
                    let _ = write!(details, "\nThe run was stopped at {at:.0}s.");
                }
                (v.message.clone(), details)
            }),
        })
        .collect();
    // The verdicts keep the expressions, which parsed before the run, so they parse again.
    let thresholds: Vec<Threshold> = report.thresholds.iter().filter_map(|v| Threshold::parse(&v.expr).ok()).collect();
    cases.extend(s.requests.iter().map(|r| request_case(report, &thresholds, r)));
    cases.extend(s.checks.iter().map(|c| check_case(&thresholds, c)));
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    let counts = format!("tests=\"{}\" failures=\"{failed}\" errors=\"0\"", cases.len());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"nest\" {counts} time=\"{:.3}\">", s.duration_s);
    let _ = writeln!(
        out,
        "  <testsuite name=\"nest\" {counts} skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        s.duration_s,
        super::utc_datetime(s.started_at),
        xml(&report.run.host)
    );
    out.push_str("    <properties>\n");
    let properties = [
        ("nest_version", report.run.nest_version.as_str()),
        ("command", report.run.command.as_str()),
        ("host", report.run.host.as_str()),
        ("load", report.run.load.as_str()),
    ];
    for (name, value) in properties {
        let _ = writeln!(out, "      <property name=\"{name}\" value=\"{}\"/>", xml(value));
    }
    out.push_str("    </properties>\n");
    for c in &cases {
        let head =
            format!("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.6}\"", c.classname, xml(&c.name), c.time_s);
        match &c.failure {
            None => {
                let _ = writeln!(out, "{head}/>");
            }
            Some((message, details)) => {
                let _ = writeln!(
                    out,
                    "{head}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                    xml(message),
                    if c.classname == "thresholds" { "threshold" } else { "failures" },
                    xml(details)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
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
            observed: Some(1.0),
            unit: "%".into(),
            abort: false,
            aborted_at_s: (!passed).then_some(7.0),
            message: "all requests: 1 %".into(),
            default_gate: false,
        }
    }

    /// (name, failure message) of every test case, in order.
    fn cases(xml: &str) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for part in xml.split("<testcase ").skip(1) {
            let name = part.split(" name=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            let end = part.find("</testcase>").unwrap_or(part.len());
            let failure =
                part[..end].split("<failure message=\"").nth(1).map(|m| m.split('"').next().unwrap().to_owned());
            out.push((name, failure));
        }
        out
    }

    #[test]
    fn escapes_and_drops_what_xml_cannot_hold() {
        assert_eq!(xml("a<b & \"c\" 'd'\n\u{1}"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&#10;");
    }

    #[test]
    fn without_thresholds_any_failure_fails_a_request() {
        let doc = render(&sample_report(false, Vec::new()));
        assert!(doc.contains(r#"<testsuite name="nest" tests="3" failures="2" errors="0""#), "{doc}");
        let c = cases(&doc);
        assert_eq!(c[0], ("GET /a".into(), None));
        assert_eq!(c[1].0, "GET /b");
        let message = c[1].1.as_deref().unwrap();
        assert!(message.starts_with("15 of 30 requests failed (50.00%): no error_rate threshold"), "{message}");
        assert!(doc.contains("Top reasons:&#10;      15  HTTP 500"), "{doc}");
        assert!(doc.contains(r#"timestamp="2026-01-01T00:00:00""#) && doc.contains(r#"time="3.000""#));
    }

    #[test]
    fn error_rate_thresholds_set_the_limit_and_a_names_own_wins() {
        // /b fails 50%: the global limit breaks it, its own looser limit lets it pass.
        let global = vec![verdict("error_rate < 10%", false), verdict("p95 < 1s", true)];
        let c = cases(&render(&sample_report(false, global)));
        assert_eq!(c.len(), 5, "2 thresholds, 2 request names, 1 check");
        assert_eq!(c[0], ("error_rate &lt; 10%".into(), Some("all requests: 1 %".into())));
        assert_eq!(c[1], ("p95 &lt; 1s".into(), None));
        assert_eq!(c[2], ("GET /a".into(), None));
        assert!(
            c[3].1.as_deref().unwrap().ends_with("above `error_rate < 10%`".replace('<', "&lt;").as_str()),
            "{c:?}"
        );

        let own = vec![verdict("error_rate < 10%", false), verdict("GET /b: error_rate <= 50%", true)];
        let doc = render(&sample_report(false, own));
        let c = cases(&doc);
        assert_eq!(c[3], ("GET /b".into(), None), "{doc}");
        assert!(doc.contains("The run was stopped at 7s."));
    }

    #[test]
    fn a_check_is_judged_by_its_own_threshold_else_by_checks_else_by_any_fail() {
        // The sample's one check, `is <200>`, passed 27 of 30 times (90%).
        let check = |verdicts: Vec<Verdict>| cases(&render(&sample_report(false, verdicts))).pop().unwrap();
        let (name, failure) = check(Vec::new());
        assert_eq!(name, "is &lt;200&gt;");
        assert!(failure.unwrap().starts_with("27 of 30 checks passed (90.00%): no checks threshold applies"));
        assert_eq!(check(vec![verdict("checks > 80%", true)]).1, None);
        let broken = check(vec![verdict("checks > 95%", false)]).1.unwrap();
        assert!(broken.ends_with("below `checks &gt; 95%`"), "{broken}");
        let own = vec![verdict("checks > 95%", false), verdict("check \"is <200>\" >= 90%", true)];
        assert_eq!(check(own).1, None, "a check's own threshold wins over `checks`");
    }
}
