//! Exact merge: several reports of one plan (the segments of a scaled-out run, run side by side) into one.
//!
//! Counts, sums, minima and maxima add up; histograms are added bucket for bucket, raw and corrected, and every
//! percentile is computed again from the merged histograms, never averaged. The result is the report that one
//! process recording every sample would have written. Reports of different plans are refused with a
//! [`MergeError`] naming the inputs. The verdicts are evaluated again on the merged figures.
//!
//! Three figures are not sums of the inputs and are documented as such: a gauge's last value (the input that
//! ended last gives it), a pool's `max_held` (the sum of the inputs' peaks, an upper bound, since the peaks need
//! not coincide), and a timeline point's users (the sum of each input's most users in the point).
//!
//! Timelines merge point by point: points are aligned by their start second relative to each report's start, and
//! points of a finer width (`seconds`) are first coarsened to the coarsest width of the inputs. Each point's rows
//! carry their counts and histograms, so the merged points are exact too. Timelines of older reports, whose rows
//! carry no histograms, cannot be combined: the merged report then has no timeline.

mod metrics;
mod rows;
mod segments;
mod timeline;

use std::collections::BTreeMap;

use nest_core::stats::{RequestCounts, Summary};

use crate::model::{Report, RunInfo};
use crate::thresholds::observed::counts_of;
use crate::thresholds::{Threshold, Verdict, evaluate, gate_verdict};
use rows::{checks, errors, failures, pools, request_row, tasks, totals_counts, totals_row};

pub use segments::{Merged, merge_segments};

/// Why reports cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No report was given.
    #[error("no report to merge")]
    Empty,
    /// Two reports come from different plans.
    #[error("{other} was not run with the same plan as {first}: the {what} differ")]
    DifferentPlan {
        /// The first report.
        first: String,
        /// The report that differs from it.
        other: String,
        /// What differs (`hosts`, `mixes`, ...).
        what: &'static str,
    },
    /// The same run was given twice.
    #[error("{other} is the same run as {first}")]
    Duplicate {
        /// The first report.
        first: String,
        /// Its copy.
        other: String,
    },
    /// Two reports are segments of different runs (their run ids differ).
    #[error(
        "{other} is not from the same run as {first}: run ids {other_id} and {first_id} (give every segment the \
         same --run-id or NEST_RUN_ID, or the same --start-at)"
    )]
    DifferentRun {
        /// The first report.
        first: String,
        /// The report that differs from it.
        other: String,
        /// The first report's run id.
        first_id: String,
        /// The other's.
        other_id: String,
    },
    /// Two different reports hold the same segment: their loads overlap.
    #[error("{other} and {first} both hold segment {segment}, with different results: one of them is from another run")]
    SameSegment {
        /// The first report of the segment.
        first: String,
        /// The second.
        other: String,
        /// The segment, `I/N`.
        segment: String,
    },
    /// A report without a run identity (written before segments existed) given with reports that have one.
    #[error("{input} has no run identity (an older nest wrote it): it cannot be merged with {other}")]
    NoIdentity {
        /// The report without one.
        input: String,
        /// A report with one.
        other: String,
    },
    /// A histogram of a report does not decode.
    #[error("{input}: {place}: a broken histogram: {reason}")]
    BrokenHistogram {
        /// The report.
        input: String,
        /// Which row.
        place: String,
        /// The decoder's reason.
        reason: String,
    },
    /// A timeline point does not fit in one point of the merged width.
    #[error("{input}: timeline point at {t} s ({seconds} s wide) does not align with points of {width} s")]
    Unaligned {
        /// The report.
        input: String,
        /// The point's start second.
        t: u64,
        /// The point's width.
        seconds: u64,
        /// The merged points' width.
        width: u64,
    },
}

impl Report {
    /// Merges reports of one plan; errors name them `report 1`, `report 2`, ... (see [`merge_named`]).
    pub fn merge(reports: &[Report]) -> Result<Report, MergeError> {
        let names: Vec<String> = (1..=reports.len()).map(|i| format!("report {i}")).collect();
        merge_named(&names.iter().map(String::as_str).zip(reports).collect::<Vec<_>>())
    }
}

/// A report's request counts by (name, method), rebuilt exactly from its rows (the histograms decode; see
/// [`Report::merge`]): for figures built from the reports handed in, such as a coordinator's final live figures.
pub fn request_counts(summary: &Summary) -> Result<BTreeMap<(String, String), RequestCounts>, String> {
    let mut counts: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
    for row in &summary.requests {
        counts.entry((row.name.clone(), row.method.clone())).or_default().merge(&counts_of(row)?);
    }
    Ok(counts)
}

/// Merges reports of one plan, each with the name errors give it (its file, usually).
pub fn merge_named(inputs: &[(&str, &Report)]) -> Result<Report, MergeError> {
    let (&(first_name, first), rest) = inputs.split_first().ok_or(MergeError::Empty)?;
    for (i, &(name, report)) in rest.iter().enumerate() {
        if let Some(what) = plan_difference(first, report) {
            return Err(MergeError::DifferentPlan { first: first_name.into(), other: name.into(), what });
        }
        if let Some(&(earlier, _)) = inputs[..=i].iter().find(|(_, r)| *r == report) {
            return Err(MergeError::Duplicate { first: earlier.into(), other: name.into() });
        }
    }
    let summary = merge_summaries(inputs)?;
    let run = RunInfo { workers: inputs.iter().map(|(_, r)| r.run.workers).sum(), ..first.run.clone() };
    let thresholds = verdicts(inputs, &summary);
    Ok(Report { summary, run, thresholds })
}

/// What makes two reports of different plans, if anything.
fn plan_difference(a: &Report, b: &Report) -> Option<&'static str> {
    let exprs = |r: &Report| r.thresholds.iter().map(|v| (v.expr.clone(), v.abort)).collect::<Vec<_>>();
    // The plan hash covers the load (the load line also names the worker count, which may differ between machines).
    let hashes = |r: &Report| r.run.identity.as_ref().map(|id| id.plan_hash.clone());
    let loads_differ = match (hashes(a), hashes(b)) {
        (Some(a), Some(b)) => a != b,
        _ => a.run.load != b.run.load,
    };
    [
        (a.run.host != b.run.host, "hosts"),
        (loads_differ, "loads"),
        (a.run.run_time_s != b.run.run_time_s, "run times"),
        (a.run.iterations != b.run.iterations, "iteration budgets"),
        (a.run.mix != b.run.mix, "mixes"),
        (a.summary.model != b.summary.model, "load models"),
        (exprs(a) != exprs(b), "thresholds"),
    ]
    .into_iter()
    .find_map(|(differs, what)| differs.then_some(what))
}

fn merge_summaries(inputs: &[(&str, &Report)]) -> Result<Summary, MergeError> {
    let summaries: Vec<&Summary> = inputs.iter().map(|(_, r)| &r.summary).collect();
    let duration_s = summaries.iter().map(|s| s.duration_s).fold(0.0, f64::max);
    let broken = |input: &str, place: String| {
        let input = input.to_owned();
        move |reason: String| MergeError::BrokenHistogram { input, place, reason }
    };
    let mut requests: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
    let mut total = RequestCounts::default();
    for &(name, report) in inputs {
        for (i, row) in report.summary.requests.iter().enumerate() {
            let counts = counts_of(row).map_err(broken(name, format!("requests[{i}]")))?;
            requests.entry((row.name.clone(), row.method.clone())).or_default().merge(&counts);
        }
        total.merge(&totals_counts(&report.summary.totals).map_err(broken(name, "totals".into()))?);
    }
    let first = summaries[0];
    Ok(Summary {
        duration_s,
        users: summaries.iter().map(|s| s.users).sum(),
        started_at: summaries.iter().map(|s| s.started_at).fold(f64::INFINITY, f64::min),
        model: first.model.clone(),
        dropped_iterations: summaries.iter().map(|s| s.dropped_iterations).sum(),
        totals: totals_row(&total, duration_s),
        requests: requests.iter().map(|((name, method), c)| request_row(method, name, c, duration_s)).collect(),
        tasks: tasks(&inputs[0].1.run, &summaries),
        failures: failures(&summaries),
        errors: errors(&summaries),
        timeline: timeline::timeline(inputs)?,
        pools: pools(&summaries),
        stopped_in: summaries.iter().find_map(|s| s.stopped_in.clone()),
        checks: checks(&summaries),
        metrics: metrics::metrics(inputs, duration_s)?,
        // (A coordinator resets every segment from one instant.)
        counted_from_s: summaries.iter().filter_map(|s| s.counted_from_s).reduce(f64::max),
    })
}

/// The verdicts again, on the merged figures: the default gate, or each threshold (failed when it aborted any
/// input, at the earliest second).
fn verdicts(inputs: &[(&str, &Report)], summary: &Summary) -> Vec<Verdict> {
    inputs[0]
        .1
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.default_gate {
                return gate_verdict(summary);
            }
            let aborted = inputs.iter().filter_map(|(_, r)| r.thresholds.get(i)?.aborted_at_s).reduce(f64::min);
            match Threshold::parse(&v.expr) {
                Ok(t) => {
                    let t = t.with_abort(v.abort, std::time::Duration::ZERO);
                    let at: Vec<(usize, f64)> = aborted.map(|at| (0, at)).into_iter().collect();
                    evaluate(std::slice::from_ref(&t), summary, &at).remove(0)
                }
                Err(_) => Verdict { passed: false, ..v.clone() },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample_report;
    use nest_core::stats::{
        Aggregate, Failure, FailureKind, Recorder, RequestRow, Sample, SummaryParts, TimelineLatency, TimelinePoint,
        TimelineRow, Totals, decode_histogram, seal_rows,
    };
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::time::Duration;

    /// One random request.
    struct Draw {
        method: &'static str,
        name: &'static str,
        latency_us: u64,
        corrected_us: u64,
        failed: bool,
        check: bool,
        second: u64,
    }

    fn draw(rng: &mut SmallRng) -> Draw {
        // Spread over seven decades, so that the histograms use many buckets.
        let mut us = || 10u64.pow(rng.random_range(0..7)) * rng.random_range(1..10) + rng.random_range(0..10);
        let (latency_us, extra) = (us(), us());
        Draw {
            method: ["GET", "POST"][rng.random_range(0..2)],
            name: ["/a", "/b", "/items/:id"][rng.random_range(0..3)],
            latency_us,
            corrected_us: latency_us + extra,
            failed: rng.random_bool(0.1),
            check: rng.random_bool(0.9),
            second: rng.random_range(0..6),
        }
    }

    fn record(draws: &[&Draw]) -> Report {
        let r = Recorder::new();
        let mut agg = Aggregate::default();
        for second in 0..6 {
            for d in draws.iter().filter(|d| d.second == second) {
                record_one(&r, d);
            }
            let mut delta = r.take();
            (delta.second, delta.users) = (second, 1);
            agg.merge(delta);
        }
        agg.seal_before(u64::MAX);
        let summary =
            Summary::new(&agg, SummaryParts { duration_s: 10.0, users: 1, open: true, ..SummaryParts::default() });
        Report { summary, run: sample_report(true, Vec::new()).run, thresholds: Vec::new() }
    }

    fn record_one(r: &Recorder, d: &Draw) {
        {
            let failure = d.failed.then_some(Failure { kind: FailureKind::Status, reason: "HTTP 500" });
            let sample = Sample {
                latency: Duration::from_micros(d.latency_us),
                corrected: Some(Duration::from_micros(d.corrected_us)),
                bytes: 7,
                failure,
                ..Default::default()
            };
            r.request(d.method, d.name, sample);
            r.check("ok", d.check).unwrap();
        }
    }

    /// A timeline row's figures and buckets, without the encodings (see [`figures`]).
    type Buckets = Vec<(u64, u64)>;

    fn row_figures(row: &TimelineRow) -> (TimelineRow, Buckets, Buckets) {
        let buckets_of = |l: &Option<TimelineLatency>| l.as_ref().map_or(Vec::new(), |l| buckets(&l.histogram));
        let strip = |l: &Option<TimelineLatency>| l.clone().map(|l| TimelineLatency { histogram: String::new(), ..l });
        let figures = TimelineRow { latency: strip(&row.latency), corrected: strip(&row.corrected), ..row.clone() };
        (figures, buckets_of(&row.latency), buckets_of(&row.corrected))
    }

    fn assert_same_timeline(merged: &[TimelinePoint], all: &[TimelinePoint], parts: &[Report], seed: u64) {
        assert_eq!(merged.len(), all.len(), "seed {seed}: one point per second");
        for (m, a) in merged.iter().zip(all) {
            assert_eq!((m.t, m.seconds, m.dropped, &m.total), (a.t, a.seconds, a.dropped, &a.total), "seed {seed}");
            let m_rows: Vec<_> = m.requests.iter().map(row_figures).collect();
            assert_eq!(m_rows, a.requests.iter().map(row_figures).collect::<Vec<_>>(), "seed {seed}, {} s", m.t);
            let users = parts.iter().filter(|p| p.summary.timeline.iter().any(|q| q.t == m.t)).count() as u64;
            assert_eq!(m.users, users, "seed {seed}: each part ran one user");
        }
    }

    /// Rows without their encoded histograms: the encoding's header holds the histogram's trackable range, which
    /// auto-resizing sets from the order values came in, so equal histograms may encode differently. Their buckets
    /// are compared one by one instead.
    fn figures(mut rows: Vec<RequestRow>) -> Vec<RequestRow> {
        for r in &mut rows {
            r.histogram.clear();
            r.corrected_histogram = None;
        }
        rows
    }

    fn totals_figures(t: &Totals) -> Totals {
        Totals { histogram: String::new(), corrected_histogram: None, ..t.clone() }
    }

    fn buckets(encoded: &str) -> Vec<(u64, u64)> {
        let h = decode_histogram(encoded).unwrap();
        h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }

    #[test]
    fn merging_parts_equals_recording_everything_at_once() {
        for seed in 0..16u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let draws: Vec<Draw> = (0..rng.random_range(50..400)).map(|_| draw(&mut rng)).collect();
            let k = rng.random_range(1..=5);
            // The first k draws start the k parts, so that no part is empty (two empty parts would be duplicates).
            let part: Vec<usize> = (0..draws.len()).map(|i| if i < k { i } else { rng.random_range(0..k) }).collect();
            let parts: Vec<Report> = (0..k)
                .map(|p| record(&draws.iter().zip(&part).filter(|(_, q)| **q == p).map(|(d, _)| d).collect::<Vec<_>>()))
                .collect();
            let whole = record(&draws.iter().collect::<Vec<_>>());
            let merged = Report::merge(&parts).unwrap().summary;
            let all = &whole.summary;
            assert_eq!(totals_figures(&merged.totals), totals_figures(&all.totals), "seed {seed}, {k} parts");
            assert_eq!(figures(merged.requests.clone()), figures(all.requests.clone()), "seed {seed}, {k} parts");
            assert_eq!(merged.failures, all.failures, "seed {seed}");
            assert_eq!(merged.checks, all.checks, "seed {seed}");
            assert_eq!(merged.users, k as u64, "each part ran one user");
            for (m, a) in merged.requests.iter().zip(&all.requests) {
                assert_eq!(buckets(&m.histogram), buckets(&a.histogram), "seed {seed}: {}", m.name);
                let (mc, ac) = (m.corrected_histogram.as_deref().unwrap(), a.corrected_histogram.as_deref().unwrap());
                assert_eq!(buckets(mc), buckets(ac), "seed {seed}: {}", m.name);
            }
            let (mt, at) = (&merged.totals, &all.totals);
            assert_eq!(buckets(&mt.histogram), buckets(&at.histogram), "seed {seed}");
            let corrected = |t: &Totals| buckets(t.corrected_histogram.as_deref().unwrap());
            assert_eq!(corrected(mt), corrected(at), "seed {seed}");
            assert_same_timeline(&merged.timeline, &all.timeline, &parts, seed);
        }
    }

    /// The timeline at points of two seconds, as a run longer than 24 minutes folds it.
    fn coarsen(report: &mut Report) {
        let mut pairs: BTreeMap<u64, Vec<TimelinePoint>> = BTreeMap::new();
        for p in std::mem::take(&mut report.summary.timeline) {
            pairs.entry(p.t / 2 * 2).or_default().push(p);
        }
        for (t, points) in pairs {
            let mut counts: BTreeMap<(String, String), RequestCounts> = BTreeMap::new();
            for row in points.iter().flat_map(|p| &p.requests) {
                counts.entry((row.name.clone(), row.method.clone())).or_default().merge(&row.counts().unwrap());
            }
            let (requests, total) = seal_rows(&counts);
            let (users, dropped) = (points.iter().map(|p| p.users).max().unwrap(), 0);
            let seconds = points.iter().map(|p| p.t + p.seconds).max().unwrap() - t;
            report.summary.timeline.push(TimelinePoint { t, seconds, users, dropped, requests, total });
        }
    }

    #[test]
    fn timelines_of_different_widths_merge_at_the_coarser_width() {
        for seed in 0..8u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let draws: Vec<Draw> = (0..rng.random_range(50..200)).map(|_| draw(&mut rng)).collect();
            let (a, b): (Vec<&Draw>, Vec<&Draw>) = draws.iter().partition(|_| rng.random_bool(0.5));
            let (a, mut b) = (record(&a), record(&b));
            coarsen(&mut b);
            let mut whole = record(&draws.iter().collect::<Vec<_>>());
            coarsen(&mut whole);
            let merged = Report::merge(&[a.clone(), b.clone()]).unwrap().summary.timeline;
            assert!(merged.iter().all(|p| p.t % 2 == 0 && p.seconds == 2), "seed {seed}: {merged:?}");
            let rows = |ps: &[TimelinePoint]| {
                ps.iter()
                    .map(|p| (p.t, p.requests.iter().map(row_figures).collect::<Vec<_>>(), p.total.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(rows(&merged), rows(&whole.summary.timeline), "seed {seed}");
            assert!(merged.iter().all(|p| p.users == 2), "seed {seed}: one user in each part, at the same time");
        }
    }

    /// A report of `draws` over `seconds` seconds, recorded by an aggregate that keeps at most `max_points`
    /// points (so a long enough run compacts its timeline as a day-long one does).
    fn record_long(draws: &[(u64, &Draw)], seconds: u64, max_points: usize) -> Report {
        let r = Recorder::new();
        let mut agg = Aggregate::with_max_points(max_points);
        for second in 0..seconds {
            for (_, d) in draws.iter().filter(|(s, _)| *s == second) {
                record_one(&r, d);
            }
            let mut delta = r.take();
            (delta.second, delta.users) = (second, 1);
            agg.merge(delta);
            agg.seal_before(second);
        }
        agg.seal_before(u64::MAX);
        let parts = SummaryParts { duration_s: seconds as f64, users: 1, open: true, ..SummaryParts::default() };
        Report { summary: Summary::new(&agg, parts), run: sample_report(true, Vec::new()).run, thresholds: Vec::new() }
    }

    #[test]
    fn a_compacted_timeline_merges_with_an_uncompacted_one_exactly() {
        for seed in 0..6u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let seconds = rng.random_range(20..48);
            let draws: Vec<(u64, Draw)> =
                (0..rng.random_range(60..200)).map(|_| (rng.random_range(0..seconds), draw(&mut rng))).collect();
            let (a, b): (Vec<_>, Vec<_>) = draws.iter().map(|(s, d)| (*s, d)).partition(|_| rng.random_bool(0.5));
            let (compacted, plain) = (record_long(&a, seconds, 6), record_long(&b, seconds, 1000));
            let width = compacted.summary.timeline[0].seconds;
            assert!(width >= 4 && plain.summary.timeline.iter().all(|p| p.seconds == 1), "seed {seed}: {width}");
            let whole = record_long(&draws.iter().map(|(s, d)| (*s, d)).collect::<Vec<_>>(), seconds, 6);
            let merged = Report::merge(&[compacted, plain]).unwrap().summary.timeline;
            // Figures, then every bucket of every row (`row_figures`), point by point.
            let rows = |ps: &[TimelinePoint]| {
                let rows = |p: &TimelinePoint| p.requests.iter().map(row_figures).collect::<Vec<_>>();
                ps.iter().map(|p| (p.t, p.seconds, rows(p), p.total.clone())).collect::<Vec<_>>()
            };
            assert_eq!(rows(&merged), rows(&whole.summary.timeline), "seed {seed}: at the compacted width");
            assert!(merged.iter().all(|p| p.users == 2), "seed {seed}: one user in each part, at the same time");
        }
    }

    #[test]
    fn a_point_that_straddles_the_merged_width_is_refused_by_name() {
        let (mut a, mut b) = (sample_report(true, Vec::new()), sample_report(true, Vec::new()));
        b.summary.started_at += 1.0;
        let mut point = TimelinePoint { t: 0, seconds: 4, users: 1, dropped: 0, requests: Vec::new(), total: None };
        a.summary.timeline = vec![point.clone()];
        (point.t, point.seconds) = (2, 3);
        b.summary.timeline = vec![point];
        let err = merge_named(&[("a.json", &a), ("b.json", &b)]).unwrap_err();
        assert_eq!(err, MergeError::Unaligned { input: "b.json".into(), t: 2, seconds: 3, width: 4 });
        assert_eq!(err.to_string(), "b.json: timeline point at 2 s (3 s wide) does not align with points of 4 s");
    }

    #[test]
    fn a_merged_report_round_trips_through_json_byte_for_byte() {
        let (a, mut b) = (sample_report(true, Vec::new()), sample_report(true, Vec::new()));
        b.summary.started_at += 1.0;
        let merged = Report::merge(&[a, b]).unwrap();
        let json = serde_json::to_vec_pretty(&merged).unwrap();
        let back: Report = serde_json::from_slice(&json).unwrap();
        assert_eq!(serde_json::to_vec_pretty(&back).unwrap(), json);
        assert_eq!(back, merged);
    }

    #[test]
    fn custom_metrics_checks_and_verdicts_are_merged() {
        let verdict = crate::thresholds::evaluate(
            &[Threshold::parse("counter \"looked\" > 70").unwrap()],
            &sample_report(true, Vec::new()).summary,
            &[],
        );
        let (a, mut b) = (sample_report(true, verdict.clone()), sample_report(true, verdict));
        b.summary.started_at += 1.0;
        assert!(!a.thresholds[0].passed, "60 looks in one report: {:?}", a.thresholds[0]);
        let merged = Report::merge(&[a.clone(), b]).unwrap();
        let looked = merged.summary.metrics.iter().find(|m| m.name == "looked").unwrap();
        assert_eq!((looked.value, looked.count), (120.0, 60));
        let cart = merged.summary.metrics.iter().find(|m| m.name == "cart").unwrap();
        let one = a.summary.metrics.iter().find(|m| m.name == "cart").unwrap();
        assert_eq!(cart.count, 2 * one.count);
        assert_eq!(cart.trend_ms.map(|t| (t.p50, t.max)), one.trend_ms.map(|t| (t.p50, t.max)), "same samples twice");
        assert_eq!(merged.summary.checks[0].passes, 2 * a.summary.checks[0].passes);
        assert!(merged.thresholds[0].passed, "120 looks together: {:?}", merged.thresholds[0]);
        assert_eq!(merged.summary.errors[0].count, 2 * a.summary.errors[0].count);
    }

    #[test]
    fn reports_of_different_plans_or_the_same_run_twice_are_refused_by_name() {
        let a = sample_report(true, Vec::new());
        let mut other = a.clone();
        other.run.host = "http://127.0.0.1:10/".into();
        let e = merge_named(&[("a.json", &a), ("b.json", &other)]).unwrap_err();
        assert_eq!(e.to_string(), "b.json was not run with the same plan as a.json: the hosts differ");
        let e = merge_named(&[("a.json", &a), ("c.json", &a.clone())]).unwrap_err();
        assert_eq!(e, MergeError::Duplicate { first: "a.json".into(), other: "c.json".into() });
        assert_eq!(Report::merge(&[]).unwrap_err(), MergeError::Empty);
        let mut closed = a.clone();
        closed.summary.model = "closed".into();
        closed.summary.started_at += 1.0;
        assert!(matches!(Report::merge(&[a, closed]), Err(MergeError::DifferentPlan { what: "load models", .. })));
    }
}
