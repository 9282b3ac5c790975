//! `--csv PREFIX`: the four files Locust 2.x writes, with its column names and its number conventions, so that
//! dashboards and scripts built for Locust read nest's results unchanged.
//!
//! Locust keeps response times in a dict keyed by a rounded time (whole ms under 100 ms, then two significant
//! digits) and takes percentiles and the median from that dict; the percentiles are written as integers. nest
//! rebuilds that dict from each group's HdrHistogram and applies the same algorithms, so a column means what it
//! means in Locust. Other numbers are written as Python's `csv` module writes them (`repr` of a float, CRLF line
//! ends). One difference: the percentile columns of `_stats_history.csv` are those of each second, where Locust's
//! default history repeats the running percentiles; the `Total ...` columns are running totals, as in Locust.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use nest_core::stats::{LatencyMs, TimelineTotal, decode_histogram};

use super::RenderError;
use crate::model::Report;

type Result<T> = std::result::Result<T, RenderError>;

/// The files, as suffixes of the prefix, in the order [`render`] returns them. Locust's four, then nest's own
/// `_checks.csv` (the script's checks and custom metrics, which Locust has no file for).
pub const FILES: [&str; 5] = ["_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", "_checks.csv"];

/// The columns of `_checks.csv`: one row per check, then one per custom metric.
const CHECKS_HEAD: [&str; 14] = [
    "Type",
    "Name",
    "Count",
    "Passes",
    "Fails",
    "Value",
    "Per Second",
    "Min",
    "Mean",
    "Median",
    "90%",
    "95%",
    "99%",
    "Max",
];

/// Locust's `PERCENTILES_TO_REPORT`, and the headers it gives them.
const PERCENTILES: [(f64, &str); 11] = [
    (0.5, "50%"),
    (0.66, "66%"),
    (0.75, "75%"),
    (0.8, "80%"),
    (0.9, "90%"),
    (0.95, "95%"),
    (0.98, "98%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (1.0, "100%"),
];

const STATS_HEAD: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];

const HISTORY_HEAD: [&str; 6] = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"];

const HISTORY_TOTALS: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

/// Writes the files of [`render`] to `outs`, one writer per file in the order of [`FILES`].
pub fn write<W: std::io::Write>(outs: [W; FILES.len()], report: &Report) -> Result<()> {
    for (mut out, bytes) in outs.into_iter().zip(render(report)?) {
        out.write_all(&bytes).map_err(RenderError::Io)?;
    }
    Ok(())
}

/// The five files' contents, in the order of [`FILES`].
pub fn render(report: &Report) -> Result<Vec<Vec<u8>>> {
    let s = &report.summary;
    let mut stats = writer();
    stats.write_record(STATS_HEAD.iter().copied().chain(PERCENTILES.iter().map(|p| p.1)))?;
    let mut rows: Vec<_> = s.requests.iter().collect();
    rows.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
    for (i, r) in rows.iter().enumerate() {
        let group = Group::new(r.requests, r.failures, r.bytes, &r.latency_ms, &r.histogram)
            .map_err(|e| e.at(format!("requests[{i}] ({} {})", r.method, r.name)))?;
        stats.write_record(group.stats_row(&r.method, &r.name, s.duration_s))?;
    }
    let t = &s.totals;
    let total =
        Group::new(t.requests, t.failures, t.bytes, &t.latency_ms, &t.histogram).map_err(|e| e.at("totals".into()))?;
    stats.write_record(total.stats_row("", "Aggregated", s.duration_s))?;

    let mut history = writer();
    history.write_record(
        HISTORY_HEAD.iter().copied().chain(PERCENTILES.iter().map(|p| p.1)).chain(HISTORY_TOTALS.iter().copied()),
    )?;
    for row in history_rows(report, &total) {
        history.write_record(row)?;
    }

    let mut failures = writer();
    failures.write_record(["Method", "Name", "Error", "Occurrences"])?;
    for f in &s.failures {
        failures.write_record([f.method.clone(), f.name.clone(), f.reason.clone(), f.count.to_string()])?;
    }

    let mut exceptions = writer();
    exceptions.write_record(["Count", "Message", "Traceback", "Nodes"])?;
    for e in &s.errors {
        let message = format!("{}: {}", e.location, e.message);
        exceptions.write_record([e.count.to_string(), message, e.location.clone(), "local".to_owned()])?;
    }

    let checks = checks_file(s)?;
    [stats, history, failures, exceptions, checks]
        .into_iter()
        .map(|w| w.into_inner().map_err(|e| RenderError::Flush(e.error().to_string())))
        .collect()
}

/// `_checks.csv`: each check (Type `check`, its passes and fails, Value its pass rate 0 to 1), then each custom
/// metric (Type its kind, Value as in the JSON report's `metrics[].value`); empty cells where a figure does not
/// apply.
fn checks_file(s: &nest_core::stats::Summary) -> Result<csv::Writer<Vec<u8>>> {
    let mut w = writer();
    w.write_record(CHECKS_HEAD)?;
    let num = |v: f64| py_float(v);
    let blank = String::new;
    for c in &s.checks {
        let total = c.passes + c.fails;
        let rate = if total == 0 { 0.0 } else { c.passes as f64 / total as f64 };
        let mut row = vec!["check".to_owned(), c.name.clone(), total.to_string(), c.passes.to_string()];
        row.extend([c.fails.to_string(), num(rate)]);
        row.resize(CHECKS_HEAD.len(), blank());
        w.write_record(&row)?;
    }
    for m in &s.metrics {
        let fails = m.passes.map(|p| (m.count - p).to_string());
        let mut row = vec![m.kind.word().to_owned(), m.name.clone(), m.count.to_string()];
        row.push(m.passes.map_or_else(blank, |p| p.to_string()));
        row.push(fails.unwrap_or_default());
        row.push(num(m.value));
        row.push(m.per_second.map_or_else(blank, num));
        match m.trend_ms {
            Some(t) => row.extend([t.min, t.mean, t.p50, t.p90, t.p95, t.p99, t.max].map(num)),
            None => {
                row.extend([m.min.map_or_else(blank, num), blank(), blank(), blank(), blank(), blank()]);
                row.push(m.max.map_or_else(blank, num));
            }
        }
        w.write_record(&row)?;
    }
    Ok(w)
}

/// Python's `csv.writer` dialect: minimal quoting, CRLF line ends.
fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new())
}

/// A number as Python writes it: an `int`, or a `float` in `repr` form.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Py {
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Py {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Py::Int(i) => write!(f, "{i}"),
            Py::Float(v) => f.write_str(&py_float(v)),
        }
    }
}

/// Python's `repr(float)`: the shortest digits that read back exactly, `.0` on whole numbers, and exponent form
/// (`1e-05`, `1e+16`) outside [1e-4, 1e16).
fn py_float(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if (1e-4..1e16).contains(&v.abs()) {
        return format!("{v:?}");
    }
    let text = format!("{v:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Python's `x or 0` on a float: a zero becomes the int 0.
fn or_zero(v: f64) -> Py {
    if v == 0.0 { Py::Int(0) } else { Py::Float(v) }
}

/// Locust's response-time key: whole ms below 100 ms (an int), then two significant digits (a float), rounding
/// half to even as Python's `round` does.
fn bucket(ms: f64) -> Py {
    let to = |unit: f64| Py::Float((ms / unit).round_ties_even() * unit);
    if ms < 100.0 {
        Py::Int(ms.round_ties_even() as i64)
    } else if ms < 1000.0 {
        to(10.0)
    } else if ms < 10_000.0 {
        to(100.0)
    } else {
        to(1000.0)
    }
}

fn value(p: Py) -> f64 {
    match p {
        Py::Int(i) => i as f64,
        Py::Float(v) => v,
    }
}

/// Locust's response-time dict of one group: rounded time → count, in ascending order.
struct Times {
    keys: Vec<(Py, u64)>,
}

impl Times {
    /// From a histogram in µs, each bucket taken at the value HdrHistogram reports for it, clamped to the exact
    /// min and max as the JSON's percentiles are.
    fn from_histogram(h: &Histogram<u64>, min_us: u64, max_us: u64) -> Times {
        let mut keys: BTreeMap<u64, (Py, u64)> = BTreeMap::new();
        for v in h.iter_recorded() {
            let us = v.value_iterated_to().clamp(min_us, max_us.max(min_us));
            let key = bucket(us as f64 / 1000.0);
            // Keyed by the value in µs (exact for every bucket) so that ordering needs no float comparison.
            keys.entry((value(key) * 1000.0).round() as u64).or_insert((key, 0)).1 += v.count_since_last_iteration();
        }
        Times { keys: keys.into_values().collect() }
    }

    /// `calculate_response_time_percentile`: the time `percent` of the requests finished within.
    fn percentile(&self, requests: u64, percent: f64) -> i64 {
        let wanted = (requests as f64 * percent) as u64;
        let mut processed = 0;
        for &(key, count) in self.keys.iter().rev() {
            processed += count;
            if requests.saturating_sub(processed) <= wanted {
                return value(key) as i64;
            }
        }
        0
    }

    /// `median_from_dict`, then clamped to the exact min and max as `StatsEntry.median_response_time` does.
    fn median(&self, requests: u64, min: f64, max: f64) -> Py {
        let Some(&(last, _)) = self.keys.last() else { return Py::Int(0) };
        let mut pos = (requests as f64 - 1.0) / 2.0;
        let mut median = last;
        for &(key, count) in &self.keys {
            if pos < count as f64 {
                median = key;
                break;
            }
            pos -= count as f64;
        }
        if value(median) > max {
            Py::Float(max)
        } else if value(median) < min {
            or_zero(min)
        } else {
            median
        }
    }
}

/// One row's figures: a request group or all requests.
struct Group<'a> {
    requests: u64,
    failures: u64,
    bytes: u64,
    latency: &'a LatencyMs,
    times: Times,
}

impl<'a> Group<'a> {
    fn new(requests: u64, failures: u64, bytes: u64, latency: &'a LatencyMs, histogram: &str) -> Result<Group<'a>> {
        let times = if requests == 0 {
            Times { keys: Vec::new() }
        } else if histogram.is_empty() {
            return Err(RenderError::NoHistogram { place: String::new() });
        } else {
            let h = decode_histogram(histogram)
                .map_err(|e| RenderError::BrokenHistogram { place: String::new(), reason: e.to_string() })?;
            let us = |ms: f64| (ms * 1000.0).round() as u64;
            Times::from_histogram(&h, us(latency.min), us(latency.max))
        };
        Ok(Group { requests, failures, bytes, latency, times })
    }

    fn median(&self) -> Py {
        self.times.median(self.requests, self.latency.min, self.latency.max)
    }

    fn percentiles(&self) -> Vec<String> {
        PERCENTILES
            .iter()
            .map(|&(p, _)| {
                if self.requests == 0 { "N/A".to_owned() } else { self.times.percentile(self.requests, p).to_string() }
            })
            .collect()
    }

    fn stats_row(&self, method: &str, name: &str, duration_s: f64) -> Vec<String> {
        let per_s = |n: u64| if duration_s > 0.0 { n as f64 / duration_s } else { 0.0 };
        let empty = self.requests == 0;
        let fields = [
            Py::Int(self.requests as i64),
            Py::Int(self.failures as i64),
            self.median(),
            Py::Float(if empty { 0.0 } else { self.latency.mean }),
            if empty { Py::Int(0) } else { or_zero(self.latency.min) },
            if empty { Py::Int(0) } else { Py::Float(self.latency.max) },
            average_size(self.bytes, self.requests),
            Py::Float(per_s(self.requests)),
            Py::Float(per_s(self.failures)),
        ];
        [method.to_owned(), name.to_owned()]
            .into_iter()
            .chain(fields.iter().map(Py::to_string))
            .chain(self.percentiles())
            .collect()
    }
}

/// `total_content_length / num_requests`, or the int 0 with no requests.
fn average_size(bytes: u64, requests: u64) -> Py {
    if requests == 0 { Py::Int(0) } else { Py::Float(bytes as f64 / requests as f64) }
}

/// One `Aggregated` row per second of the timeline: that second's rates and percentiles, then running totals.
fn history_rows(report: &Report, total: &Group<'_>) -> Vec<Vec<String>> {
    let s = &report.summary;
    let mut rows = Vec::new();
    let (mut count, mut failures, mut bytes, mut sum_ms) = (0u64, 0u64, 0u64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, 0.0f64);
    let mut running = nest_core::stats::new_histogram();
    for (i, point) in s.timeline.iter().enumerate() {
        let second = point.total.as_ref();
        if let Some(t) = second {
            count += t.count;
            failures += t.failures;
            bytes += t.bytes;
            sum_ms += t.mean * t.count as f64;
            min = min.min(t.min);
            max = max.max(t.max);
            add_estimate(&mut running, t);
        }
        let last = i + 1 == s.timeline.len();
        let median = if count == 0 {
            Py::Int(0)
        } else if last && count == s.totals.requests {
            // The last row covers the whole run: give the exact figure of `_stats.csv`.
            total.median()
        } else {
            let estimate = bucket(running.value_at_quantile(0.5) as f64 / 1000.0);
            if value(estimate) > max {
                Py::Float(max)
            } else if value(estimate) < min {
                or_zero(min)
            } else {
                estimate
            }
        };
        let timestamp = (s.started_at + point.t as f64).floor() as i64;
        let mut row = vec![
            timestamp.to_string(),
            point.users.to_string(),
            String::new(),
            "Aggregated".to_owned(),
            // Per second, also for a point of a long run that covers several.
            format!("{:.6}", second.map_or(0, |t| t.count) as f64 / point.seconds.max(1) as f64),
            format!("{:.6}", second.map_or(0, |t| t.failures) as f64 / point.seconds.max(1) as f64),
        ];
        row.extend((0..PERCENTILES.len()).map(|q| match second.and_then(|t| t.percentiles.get(q)) {
            Some(&ms) if second.is_some_and(|t| t.count > 0) => (value(bucket(ms)) as i64).to_string(),
            _ => "N/A".to_owned(),
        }));
        let fields = [
            Py::Int(count as i64),
            Py::Int(failures as i64),
            median,
            Py::Float(if count == 0 { 0.0 } else { sum_ms / count as f64 }),
            if count == 0 { Py::Int(0) } else { or_zero(min) },
            if count == 0 { Py::Int(0) } else { Py::Float(max) },
            average_size(bytes, count),
        ];
        row.extend(fields.iter().map(Py::to_string));
        rows.push(row);
    }
    rows
}

/// Adds one second to a running distribution, for the running median of the history file.
///
/// A second keeps only its min, max and a few percentiles, so the running median is estimated: each interval
/// between two known quantiles holds its share of the second's requests, placed at its upper end (as a quantile
/// is the highest value below it), so that a single second's estimate is its own median.
fn add_estimate(running: &mut Histogram<u64>, t: &TimelineTotal) {
    let mut points = vec![(0.0, t.min)];
    points.extend(nest_core::stats::TOTAL_QUANTILES.iter().copied().zip(t.percentiles.iter().copied()));
    for pair in points.windows(2) {
        let ((q0, _), (q1, v1)) = (pair[0], pair[1]);
        // Thousandths of a request, so that small shares still count.
        let weight = ((q1 - q0) * t.count as f64 * 1000.0).round() as u64;
        let us = (v1 * 1000.0).round().max(1.0) as u64;
        // `record_n` grows the histogram as needed (`saturating_record_n` would clamp to its current range).
        if weight > 0 && running.record_n(us, weight).is_err() {
            running.saturating_record_n(us, weight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample_report;

    fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn python_number_forms() {
        assert_eq!(py_float(5.0), "5.0");
        assert_eq!(py_float(0.552), "0.552");
        assert_eq!(py_float(1e15), "1000000000000000.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(5e-5), "5e-05");
        assert_eq!(py_float(1.25e-7), "1.25e-07");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(or_zero(0.0).to_string(), "0");
        assert_eq!(bucket(4.5), Py::Int(4), "half to even");
        assert_eq!(bucket(5.5), Py::Int(6));
        assert_eq!(bucket(147.0), Py::Float(150.0));
        assert_eq!(bucket(3432.0), Py::Float(3400.0));
        assert_eq!(bucket(58_760.0), Py::Float(59_000.0));
        assert_eq!(Py::Float(150.0).to_string(), "150.0");
    }

    #[test]
    fn locust_percentiles_and_median() {
        // 1..=100 ms, one request each: Locust's own algorithms on its own dict.
        let mut h = nest_core::stats::new_histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1000).unwrap();
        }
        let times = Times::from_histogram(&h, 1000, 100_000);
        assert_eq!(times.percentile(100, 0.5), 51);
        assert_eq!(times.percentile(100, 0.95), 96);
        assert_eq!(times.percentile(100, 1.0), 100);
        assert_eq!(times.median(100, 1.0, 100.0), Py::Int(50));
        // A median above the max is the max itself.
        let mut h = nest_core::stats::new_histogram();
        h.record(149_000).unwrap();
        let times = Times::from_histogram(&h, 149_000, 149_000);
        assert_eq!(times.median(1, 149.0, 149.0), Py::Float(149.0));
        assert_eq!(times.percentile(1, 0.5), 150, "percentiles are Locust's rounded keys, never clamped");
    }

    #[test]
    fn the_files_have_locusts_columns_and_checks_their_own() {
        let report = sample_report(false, Vec::new());
        let files = render(&report).unwrap();
        let text = String::from_utf8(files[0].clone()).unwrap();
        assert!(text.ends_with("\r\n") && text.matches("\r\n").count() == text.matches('\n').count(), "CRLF");
        let stats = parse(&files[0]);
        assert_eq!(
            stats[0].join(","),
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
             Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,\
             99.99%,100%"
        );
        assert_eq!(stats.len(), 4, "two groups and Aggregated");
        assert_eq!(&stats[1][..4], ["GET", "/a", "90", "0"]);
        assert_eq!(&stats[2][..4], ["GET", "/b", "30", "15"]);
        assert_eq!(&stats[3][..4], ["", "Aggregated", "120", "15"]);
        assert_eq!(stats[3][8], "10.0", "average content size");
        assert_eq!(stats[3][9], "40.0", "requests per second");
        assert_eq!(stats[3][10], "5.0");

        let history = parse(&files[1]);
        assert_eq!(history[0].len(), 6 + 11 + 7);
        assert_eq!(history.len(), 4, "a row per second");
        assert_eq!(history[1][..6], ["1767225600", "4", "", "Aggregated", "40.000000", "5.000000"]);
        assert_eq!(history[3][0], "1767225602");
        let running: Vec<&str> = history.iter().skip(1).map(|r| r[17].as_str()).collect();
        assert_eq!(running, ["40", "80", "120"]);
        assert_eq!(history[3][19], stats[3][4], "the last running median is the exact one");

        assert_eq!(
            parse(&files[2]),
            [vec!["Method", "Name", "Error", "Occurrences"], vec!["GET", "/b", "HTTP 500", "15"]]
        );
        assert_eq!(
            parse(&files[3]),
            [
                vec!["Count", "Message", "Traceback", "Nodes"],
                vec!["3", "t/a.rhai:3:9: boom <&>", "t/a.rhai:3:9", "local"]
            ]
        );

        let checks = parse(&files[4]);
        assert_eq!(checks[0], CHECKS_HEAD);
        assert_eq!(checks[1][..6], ["check", "is <200>", "30", "27", "3", "0.9"]);
        let kinds: Vec<&str> = checks.iter().skip(2).map(|r| r[0].as_str()).collect();
        assert_eq!(kinds, ["trend", "rate", "counter", "gauge"], "metrics by name: cart, hit, looked, queue");
        assert_eq!(checks[2][..3], ["trend", "cart", "30"]);
        assert_eq!((checks[2][7].as_str(), checks[2][13].as_str()), ("0.5", "9.5"), "trend min and max, ms");
        assert_eq!(checks[3][2..6], ["30", "15", "15", "0.5"]);
        assert_eq!(checks[4][2..7], ["30", "", "", "60.0", "20.0"], "a counter's sum and rate");
        assert_eq!((checks[5][5].as_str(), checks[5][7].as_str(), checks[5][13].as_str()), ("9.0", "0.0", "9.0"));
        assert!(checks.iter().all(|r| r.len() == CHECKS_HEAD.len()));
    }

    #[test]
    fn a_run_without_requests_writes_na() {
        let mut report = sample_report(false, Vec::new());
        let s = &mut report.summary;
        s.requests.clear();
        s.timeline.clear();
        s.totals = Default::default();
        let stats = parse(&render(&report).unwrap()[0]);
        assert_eq!(stats[1][..11], ["", "Aggregated", "0", "0", "0", "0.0", "0", "0", "0", "0.0", "0.0"]);
        assert!(stats[1][11..].iter().all(|c| c == "N/A"));
    }
}
