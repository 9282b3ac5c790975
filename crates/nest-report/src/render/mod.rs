//! The report files other tools read, rendered from a finished run's [`Report`]: Locust-compatible CSV, JUnit XML
//! and one self-contained HTML page.
//!
//! Rendering is a pure function of the report, with no clock and no environment, so `nest report RESULT.json`
//! rebuilds byte for byte the files `nest run` wrote. (`serde_json` parses floats with `float_roundtrip`, so a
//! report read back holds the very numbers it was written from.) Each format lives in its own module; this one
//! knows which files a set of options asks for and writes them atomically.

pub mod csv;
pub mod html;
pub mod junit;
pub mod svg;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::model::Report;
use crate::output::write_atomic;

/// Why a report file could not be rendered or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A request row (or the totals) has no histogram: old or hand-made JSON.
    #[error("{place}: the report has no histogram, which Locust's percentiles need")]
    NoHistogram {
        /// Which row: `requests[3] (GET /items)` or `totals`.
        place: String,
    },
    /// A histogram does not decode.
    #[error("{place}: a broken histogram: {reason}")]
    BrokenHistogram {
        /// Which row, as for [`RenderError::NoHistogram`].
        place: String,
        /// The decoder's reason.
        reason: String,
    },
    /// The CSV writer failed.
    #[error("could not render CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// The CSV writer could not hand its bytes back.
    #[error("could not render CSV: {0}")]
    Flush(String),
    /// A writer given to a renderer failed.
    #[error("could not write a report: {0}")]
    Io(std::io::Error),
    /// A rendered file could not be written.
    #[error("could not write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl RenderError {
    /// The same error, naming the row it is about.
    fn at(self, place: String) -> RenderError {
        match self {
            RenderError::NoHistogram { .. } => RenderError::NoHistogram { place },
            RenderError::BrokenHistogram { reason, .. } => RenderError::BrokenHistogram { place, reason },
            other => other,
        }
    }
}

type Result<T> = std::result::Result<T, RenderError>;

/// The report files asked for, by `nest run` or `nest report`.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--csv PREFIX`: the four Locust CSV files.
    pub csv: Option<PathBuf>,
    /// `--html FILE`.
    pub html: Option<PathBuf>,
    /// `--junit FILE`.
    pub junit: Option<PathBuf>,
}

impl Outputs {
    /// Whether no file is asked for.
    pub fn is_empty(&self) -> bool {
        self.csv.is_none() && self.html.is_none() && self.junit.is_none()
    }

    /// Every file these options write, in a fixed order.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some(prefix) = &self.csv {
            paths.extend(csv::FILES.iter().map(|suffix| with_suffix(prefix, suffix)));
        }
        paths.extend(self.html.iter().cloned());
        paths.extend(self.junit.iter().cloned());
        paths
    }

    /// Renders every file asked for: (path, contents), in the order of [`Outputs::paths`].
    pub fn render(&self, report: &Report) -> Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut files = Vec::new();
        if let Some(prefix) = &self.csv {
            let rendered = csv::render(report)?;
            files.extend(csv::FILES.iter().zip(rendered).map(|(suffix, bytes)| (with_suffix(prefix, suffix), bytes)));
        }
        if let Some(path) = &self.html {
            files.push((path.clone(), html::render(report).into_bytes()));
        }
        if let Some(path) = &self.junit {
            files.push((path.clone(), junit::render(report).into_bytes()));
        }
        Ok(files)
    }

    /// Renders and writes every file asked for, each atomically; returns the paths written.
    pub fn write(&self, report: &Report) -> Result<Vec<PathBuf>> {
        let files = self.render(report)?;
        for (path, bytes) in &files {
            write_atomic(path, bytes).map_err(|source| RenderError::Write { path: path.clone(), source })?;
        }
        Ok(files.into_iter().map(|(path, _)| path).collect())
    }
}

/// `PREFIX` + `_stats.csv`, without assuming the prefix is UTF-8.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Escapes text for XML and HTML content and attribute values (HTML5 knows `&apos;` too).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Line breaks in attributes would be normalised to spaces by parsers: keep them.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A millisecond figure as the terminal table shows it.
pub use crate::table::ms as fmt_ms;

/// A Unix time as `YYYY-MM-DDTHH:MM:SS` in UTC (whole seconds, truncated).
pub fn utc_datetime(unix_s: f64) -> String {
    let secs = if unix_s.is_finite() && unix_s > 0.0 { unix_s.floor() as i64 } else { 0 };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::RunInfo;
    use crate::model::{MixRow, MixTask, Source};
    use crate::thresholds::Verdict;
    use nest_core::stats::{Aggregate, Failure, FailureKind, Recorder, Sample, Summary, SummaryParts};
    use std::time::Duration;

    /// A small report: two names over three seconds, some 500s, a script error, and the given verdicts.
    pub fn sample_report(open: bool, thresholds: Vec<Verdict>) -> Report {
        let mut agg = Aggregate::default();
        for second in 0..3u64 {
            let r = Recorder::new();
            for i in 0..40u64 {
                let (name, ms) = if i % 4 == 0 { ("/b", 20 + i + second) } else { ("/a", 2 + i % 7) };
                let failure =
                    (name == "/b" && i % 8 == 0).then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
                let corrected = open.then(|| Duration::from_millis(ms * 2));
                r.request(
                    "GET",
                    name,
                    Sample { latency: Duration::from_millis(ms), corrected, bytes: 10, failure, ..Default::default() },
                );
            }
            r.error("t/a.rhai:3:9", "boom <&>");
            use nest_core::stats::MetricKind;
            for i in 0..10u32 {
                r.check("is <200>", i != 0).unwrap();
                r.metric("looked", MetricKind::Counter, |m| m.add(2.0)).unwrap();
                r.metric("cart", MetricKind::Trend, |m| m.add(f64::from(i) + 0.5)).unwrap();
                r.metric("hit", MetricKind::Rate, |m| m.add_bool(i % 2 == 0)).unwrap();
                r.metric("queue", MetricKind::Gauge, |m| m.set(f64::from(i))).unwrap();
            }
            let mut delta = r.take();
            delta.second = second;
            delta.users = 4;
            agg.merge(delta);
        }
        agg.seal_before(u64::MAX);
        let parts =
            SummaryParts { duration_s: 3.0, started_at: 1_767_225_600.25, users: 4, open, ..SummaryParts::default() };
        let summary = Summary::new(&agg, parts);
        let run = RunInfo {
            nest_version: "0.1.0".into(),
            command: "nest run --html r.html".into(),
            host: "http://127.0.0.1:9/".into(),
            load: "closed model: 4 users at most, on 1 worker".into(),
            workers: 1,
            run_time_s: Some(3.0),
            iterations: None,
            mix: vec![MixRow {
                name: "t".into(),
                weight: 1,
                share_pct: 100.0,
                source: Source::FromScript,
                wait: "constant(0)".into(),
                on_start: false,
                on_stop: false,
                tasks: vec![MixTask { name: "hit".into(), weight: 1, share_pct: 100.0, nested: false }],
                users: Some(4),
                nested_in: Vec::new(),
            }],
            // A merged report with a segment missing: every identity key is in the schema too.
            identity: Some(crate::identity::RunIdentity {
                run_id: "7d1f0d2e-0000-8000-8000-000000000000".into(),
                plan_hash: "ab".repeat(32),
                segment: crate::identity::SegmentId { index: 0, count: 1 },
                plan_users: 4,
                host_name: "load-1".into(),
                intended_start: 1_700_000_000.0,
                actual_start: 1_700_000_000.001_5,
                start_skew_ms: 1.5,
            }),
            segments: vec![crate::identity::SegmentRow {
                index: 0,
                host_name: "load-1".into(),
                intended_start: 1_700_000_000.0,
                actual_start: 1_700_000_000.001_5,
                start_skew_ms: 1.5,
            }],
            incomplete: Some(crate::identity::Incomplete {
                missing: vec![crate::identity::MissingSegment {
                    index: 1,
                    reason: crate::identity::MissingReason::Lost,
                    at: Some(1_700_000_001.0),
                }],
                share_of: "users".into(),
                missing_pct: 50.0,
                missing_users: Some(2),
            }),
            stats_reset: None,
        };
        Report { summary, run, thresholds }
    }

    #[test]
    fn the_schema_describes_every_key_of_an_open_model_report() {
        // The integration tests validate a real (closed model) run; this covers the open model's extra keys and an
        // aborted threshold.
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/report.schema.json")).unwrap();
        let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
        let aborted = Verdict {
            expr: "p99 < 2s".into(),
            passed: false,
            observed: Some(2500.0),
            unit: "ms".into(),
            abort: true,
            aborted_at_s: Some(31.0),
            message: "breached at 31s (2500 ms): the run was stopped".into(),
            default_gate: false,
        };
        let mut report = sample_report(true, vec![aborted]);
        // Statistics reset 1 s into the load.
        report.summary.counted_from_s = Some(1.0);
        let at = report.summary.started_at + 1.0;
        report.run.stats_reset = Some(crate::model::StatsReset { at, offset_s: 1.0 });
        let report = serde_json::to_value(report).unwrap();
        assert!(report["totals"]["corrected_histogram"].is_string() && report["thresholds"][0]["aborted_at_s"] == 31.0);
        assert_eq!(report["metrics"].as_array().map(Vec::len), Some(4), "every kind of metric is checked");
        assert_eq!(report["checks"][0]["fails"], 3);
        let errors: Vec<String> =
            validator.iter_errors(&report).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let mut extra = report.clone();
        extra["requests"][0]["surprise"] = 1.into();
        assert!(!validator.is_valid(&extra), "unknown keys are caught, so the schema keeps up with the code");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_datetime(0.0), "1970-01-01T00:00:00");
        assert_eq!(utc_datetime(1_767_225_600.25), "2026-01-01T00:00:00");
        assert_eq!(utc_datetime(951_827_696.0), "2000-02-29T12:34:56");
    }

    #[test]
    fn csv_prefixes_name_five_files() {
        let outputs = Outputs { csv: Some("out/run".into()), junit: Some("j.xml".into()), ..Outputs::default() };
        let paths: Vec<String> = outputs.paths().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "out/run_stats.csv",
                "out/run_stats_history.csv",
                "out/run_failures.csv",
                "out/run_exceptions.csv",
                "out/run_checks.csv",
                "j.xml"
            ]
        );
    }

    #[test]
    fn rendering_is_deterministic_and_survives_a_json_round_trip() {
        let report = sample_report(true, Vec::new());
        let outputs = Outputs { csv: Some("p".into()), html: Some("r.html".into()), junit: Some("j.xml".into()) };
        let back: Report = serde_json::from_slice(&serde_json::to_vec_pretty(&report).unwrap()).unwrap();
        assert_eq!(back, report, "floats survive the round trip exactly");
        assert_eq!(outputs.render(&report).unwrap(), outputs.render(&back).unwrap());
    }

    #[test]
    fn the_writers_write_what_render_renders() {
        let report = sample_report(true, Vec::new());
        let mut page = Vec::new();
        html::write(&mut page, &report).unwrap();
        assert_eq!(page, html::render(&report).into_bytes());
        let mut xml = Vec::new();
        junit::write(&mut xml, &report).unwrap();
        assert_eq!(xml, junit::render(&report).into_bytes());
        let mut files: [Vec<u8>; csv::FILES.len()] = Default::default();
        csv::write(files.each_mut(), &report).unwrap();
        assert_eq!(files.to_vec(), csv::render(&report).unwrap());
        assert!(files.iter().all(|f| !f.is_empty()));
    }
}
