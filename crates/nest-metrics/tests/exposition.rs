//! The series a snapshot becomes, read back from the exposition text and from the remote-write message: values,
//! labels and escaping, counters across a reset, the name cap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nest_core::snapshot::{RunPhase, Snapshot};
use nest_core::stats::{Aggregate, Failure, FailureKind, Recorder, Sample};
use nest_core::{TaskSpec, TasksetSpec};
use nest_metrics::remote::{WriteRequest, encode, write_request};
use nest_metrics::{OTHER, Series, SeriesOptions};
use prost::Message as _;

type Labels = BTreeMap<String, String>;

/// Parses OpenMetrics text strictly enough to catch a malformed line: `name{k="v",...} value`, escapes undone.
fn parse(text: &str) -> BTreeMap<(String, Labels), f64> {
    assert!(text.ends_with("# EOF\n"), "ends with # EOF: {text}");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, rest) = line.split_at(line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}")));
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "name {name:?}");
        let mut labels = Labels::new();
        let mut chars = rest.chars().peekable();
        if chars.peek() == Some(&'{') {
            chars.next();
            while chars.peek() != Some(&'}') {
                let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().unwrap_or_else(|| panic!("unterminated: {line}")) {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            other => panic!("bad escape {other:?} in {line}"),
                        },
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_owned(), value);
                if chars.peek() == Some(&',') {
                    chars.next();
                }
            }
            chars.next();
        }
        let value: String = chars.collect();
        let value: f64 = value.trim().parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        assert!(out.insert((name.to_owned(), labels), value).is_none(), "duplicate series {line}");
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sum(series: &BTreeMap<(String, Labels), f64>, name: &str) -> f64 {
    series.iter().filter(|((n, _), _)| n == name).map(|(_, v)| v).sum()
}

fn snapshot(recorder: &Recorder, agg: &mut Aggregate, phase: RunPhase) -> Snapshot {
    agg.merge(recorder.take());
    Snapshot { phase, users: 3, elapsed: Duration::from_secs(2), totals: agg.without_timeline(), ..Snapshot::default() }
}

fn ok(ms: u64, status: u16) -> Sample<'static> {
    Sample { latency: Duration::from_millis(ms), status, ..Default::default() }
}

fn scrape(series: &mut Series, snapshot: &Snapshot) -> BTreeMap<(String, Labels), f64> {
    let (families, _) = series.observe(snapshot);
    parse(&nest_metrics::text::encode(&Arc::new(families)))
}

#[test]
fn a_snapshot_becomes_every_series_with_escaped_labels() {
    let r = Recorder::new();
    let tricky = "/q?a=\"x\"\\y\nz";
    r.request("GET", "/a", ok(4, 200));
    r.request("GET", "/a", ok(40, 200));
    let failure = Some(Failure { kind: FailureKind::Status, reason: "HTTP 503" });
    r.request("GET", "/a", Sample { failure, ..ok(2, 503) });
    let failure = Some(Failure { kind: FailureKind::Transport, reason: "connection refused" });
    r.request("POST", tricky, Sample { failure, ..ok(1, 0) });
    r.slot(0, 0, None);
    r.slot(0, 0, Some(("t.rhai:3:1", "boom")));
    r.slot(0, 1, None);
    r.dropped();
    let ts = TasksetSpec {
        name: "shop".into(),
        weight: 1,
        tasks: vec![TaskSpec::new("browse", 1)],
        has_on_start: true,
        ..Default::default()
    };
    let thresholds = ["p95 < 1s", "error_rate < 1%"].map(|t| nest_report::thresholds::Threshold::parse(t).unwrap());
    let mut series =
        Series::new(SeriesOptions { tasksets: vec![ts], thresholds: thresholds.to_vec(), ..Default::default() });
    let got = scrape(&mut series, &snapshot(&r, &mut Aggregate::default(), RunPhase::Load));
    let at = |name: &str, pairs: &[(&str, &str)]| got.get(&(name.to_owned(), labels(pairs))).copied();
    assert_eq!(at("nest_requests_total", &[("method", "GET"), ("name", "/a"), ("status", "200")]), Some(2.0));
    assert_eq!(at("nest_requests_total", &[("method", "GET"), ("name", "/a"), ("status", "503")]), Some(1.0));
    assert_eq!(at("nest_requests_total", &[("method", "POST"), ("name", tricky), ("status", "0")]), Some(1.0));
    let failures =
        |name, kind| at("nest_request_failures_total", &[("method", "GET"), ("name", name), ("reason_kind", kind)]);
    assert_eq!(failures("/a", "status"), Some(1.0));
    assert_eq!(
        at("nest_request_failures_total", &[("method", "POST"), ("name", tricky), ("reason_kind", "transport")]),
        Some(1.0)
    );
    let bucket = |le| at("nest_request_duration_seconds_bucket", &[("method", "GET"), ("name", "/a"), ("le", le)]);
    assert_eq!(
        (bucket("0.002"), bucket("0.005"), bucket("0.03"), bucket("0.05"), bucket("+Inf")),
        (Some(1.0), Some(2.0), Some(2.0), Some(3.0), Some(3.0))
    );
    assert_eq!(at("nest_request_duration_seconds_count", &[("method", "GET"), ("name", "/a")]), Some(3.0));
    assert_eq!(at("nest_request_duration_seconds_sum", &[("method", "GET"), ("name", "/a")]), Some(0.046));
    assert_eq!(at("nest_users", &[]), Some(3.0));
    assert_eq!(at("nest_tasks_total", &[("taskset", "shop"), ("task", "browse")]), Some(2.0));
    assert_eq!(at("nest_tasks_total", &[("taskset", "shop"), ("task", "on_start")]), Some(1.0));
    assert_eq!(at("nest_task_errors_total", &[("taskset", "shop"), ("task", "browse")]), Some(1.0));
    assert_eq!(at("nest_dropped_iterations_total", &[]), Some(1.0));
    assert_eq!(at("nest_threshold_ok", &[("expr", "p95 < 1s")]), Some(1.0));
    assert_eq!(at("nest_threshold_ok", &[("expr", "error_rate < 1%")]), Some(0.0), "2 of 4 failed");
    assert_eq!(at("nest_run_finished", &[]), Some(0.0));
}

#[test]
fn counters_never_go_down_when_the_statistics_restart() {
    let r = Recorder::new();
    let mut series = Series::new(SeriesOptions::default());
    let mut agg = Aggregate::default();
    for _ in 0..5 {
        r.request("GET", "/a", ok(3, 200));
    }
    r.request("GET", "/b", ok(3, 200));
    let before = scrape(&mut series, &snapshot(&r, &mut agg, RunPhase::Load));
    assert_eq!(sum(&before, "nest_requests_total"), 6.0);
    // Reset stats: the totals restart from zero; `/b` sees no request after it.
    let mut agg = Aggregate::default();
    r.request("GET", "/a", ok(300, 200));
    r.request("GET", "/a", ok(300, 200));
    let after = scrape(&mut series, &snapshot(&r, &mut agg, RunPhase::Load));
    for ((name, labels), value) in &before {
        if name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_count") || name.ends_with("_sum") {
            let now = after[&(name.clone(), labels.clone())];
            assert!(now >= *value, "{name}{labels:?} went from {value} to {now}");
        }
    }
    assert_eq!(sum(&after, "nest_requests_total"), 8.0);
    let count = |s: &BTreeMap<_, _>| {
        s[&("nest_request_duration_seconds_count".to_owned(), labels(&[("method", "GET"), ("name", "/a")]))]
    };
    assert_eq!(count(&after), 7.0);
    let last = scrape(&mut series, &snapshot(&r, &mut agg, RunPhase::Drain));
    assert_eq!(sum(&last, "nest_requests_total"), 8.0, "the same snapshot twice counts nothing twice");
    assert_eq!(last[&("nest_run_finished".to_owned(), Labels::new())], 1.0);
}

#[test]
fn names_beyond_the_cap_fold_into_other_with_one_warning() {
    let r = Recorder::new();
    let mut agg = Aggregate::default();
    let mut series = Series::new(SeriesOptions { name_cap: 3, ..Default::default() });
    for i in 0..3 {
        r.request("GET", &format!("/item/{i}"), ok(1, 200));
    }
    let (_, warning) = series.observe(&snapshot(&r, &mut agg, RunPhase::Load));
    assert_eq!(warning, None, "3 names fit a cap of 3");
    for i in 0..50 {
        r.request("GET", &format!("/user/{i}"), ok(1, 200));
        r.request("GET", "/item/0", ok(1, 200));
    }
    let (families, warning) = series.observe(&snapshot(&r, &mut agg, RunPhase::Load));
    let warning = warning.expect("a warning when names are folded");
    assert!(warning.contains("more than 3 request names") && warning.contains(OTHER), "{warning}");
    let got = parse(&nest_metrics::text::encode(&Arc::new(families)));
    let names: std::collections::BTreeSet<&str> =
        got.keys().filter_map(|(_, l)| l.get("name").map(String::as_str)).collect();
    assert_eq!(names, ["(other)", "/item/0", "/item/1", "/item/2"].into_iter().collect());
    let other = ("nest_requests_total".to_owned(), labels(&[("method", "GET"), ("name", OTHER), ("status", "200")]));
    assert_eq!(got[&other], 50.0);
    assert_eq!(sum(&got, "nest_requests_total"), 103.0, "nothing lost by folding");
    r.request("GET", "/user/99", ok(1, 200));
    let (_, again) = series.observe(&snapshot(&r, &mut agg, RunPhase::Load));
    assert_eq!(again, None, "warned once");
}

#[test]
fn remote_write_carries_the_same_samples_snappy_compressed() {
    let r = Recorder::new();
    r.request("GET", "/a", ok(4, 200));
    r.request("GET", "/a", ok(9, 500));
    let mut series = Series::new(SeriesOptions::default());
    let (families, _) = series.observe(&snapshot(&r, &mut Aggregate::default(), RunPhase::Load));
    let scraped = parse(&nest_metrics::text::encode(&Arc::new(families.clone())));
    let body = encode(&write_request(&families, 1_700_000_000_000));
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let request = WriteRequest::decode(raw.as_slice()).unwrap();
    let mut pushed = BTreeMap::new();
    for ts in &request.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "labels sorted by name: {names:?}");
        let mut labels: Labels = ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        let name = labels.remove("__name__").unwrap();
        assert_eq!(ts.samples.len(), 1);
        assert_eq!(ts.samples[0].timestamp, 1_700_000_000_000);
        pushed.insert((name, labels), ts.samples[0].value);
    }
    // The same series and values (bucket bounds may be spelt differently: compare them as numbers).
    let normal = |m: BTreeMap<(String, Labels), f64>| -> BTreeMap<(String, Labels), f64> {
        m.into_iter()
            .map(|((n, mut l), v)| {
                if let Some(le) = l.get_mut("le").filter(|le| *le != "+Inf") {
                    *le = le.parse::<f64>().unwrap().to_string();
                }
                ((n, l), v)
            })
            .collect()
    };
    assert_eq!(normal(pushed), normal(scraped));
}
