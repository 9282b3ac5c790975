//! What the page shows, as JSON: pure functions of a [`Snapshot`], so that what the page says can be tested
//! without a browser.
//!
//! The page receives a [`View`] over Server-Sent Events each time the run publishes a snapshot (about once a
//! second) and each time its state changes (started, finished, segments). The charts' points are sent once in
//! full when a page connects, then the newest few with each view: a page that skipped a view (a slow tab) still
//! gets every point.

use std::time::Duration;

use serde::Serialize;

use nest_core::LoadTarget;
use nest_core::snapshot::{RunPhase, Snapshot};
use nest_core::stats::TOTAL_QUANTILES;
use nest_report::thresholds::Verdict;

use crate::setup::Setup;

/// The points each view repeats, so that a page that skipped a few views misses none.
pub const RECENT_POINTS: usize = 5;

/// Where the page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Compiled, waiting for Start.
    Waiting,
    /// Running.
    Running,
    /// Over: the final report is on the page.
    Finished,
}

/// The whole state of the page.
#[derive(Debug, Clone, Serialize)]
pub struct View<'a> {
    /// Where the page is.
    pub phase: Phase,
    /// The setup form's values.
    pub setup: &'a Setup,
    /// The run's figures, once it runs.
    pub live: Option<&'a Live>,
    /// The newest chart points.
    pub points: &'a [Point],
    /// The thresholds' verdicts: live while running, final after.
    pub verdicts: &'a [Verdict],
    /// What the run is asked to do now (users or rate), when the page may change it (not with stages or a shape).
    pub target: Option<Target>,
    /// A coordinator's segments.
    pub segments: Option<&'a Segments>,
    /// The statistics can be reset from the page (while the run goes on).
    pub can_reset: bool,
}

/// The load the run is asked for now.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Target {
    /// Closed model.
    Closed {
        /// Users asked for.
        users: u64,
        /// Users started (or retired) per second.
        spawn_rate: Option<f64>,
    },
    /// Open model.
    Open {
        /// Tasks started per second.
        rate: f64,
    },
}

/// The run's figures at one snapshot.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Live {
    /// `ready`, `setup`, `load`, `teardown` or `drain`.
    pub run_phase: &'static str,
    /// Seconds since the load started.
    pub elapsed_s: f64,
    /// Seconds left of the run time, if it has one.
    pub remaining_s: Option<f64>,
    /// Seconds into the run from which the figures count (0 unless the statistics were reset).
    pub counted_from_s: f64,
    /// Active users.
    pub users: u64,
    /// Requests per second in the newest second.
    pub rps: f64,
    /// Failed requests per second in the newest second.
    pub fps: f64,
    /// Requests so far.
    pub requests: u64,
    /// Failed requests so far.
    pub failures: u64,
    /// One row per request name.
    pub rows: Vec<StatRow>,
    /// Failed requests by reason.
    pub failed: Vec<FailedRow>,
    /// Script errors, with their `file:line:col`.
    pub errors: Vec<ErrorRow>,
}

/// One request name's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StatRow {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request's name.
    pub name: String,
    /// Requests so far.
    pub requests: u64,
    /// Of which failed.
    pub fails: u64,
    /// Requests per second in the newest second.
    pub rps: f64,
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Slowest, ms.
    pub max: f64,
}

/// Failed requests of one reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailedRow {
    /// The request's method.
    pub method: String,
    /// The request's name.
    pub name: String,
    /// Why it failed.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// One script error.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorRow {
    /// `file:line:col`.
    pub location: String,
    /// The message.
    pub message: String,
    /// How many times.
    pub count: u64,
}

/// One second of the charts.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Point {
    /// Seconds since the load started (the end of the second).
    pub t: f64,
    /// Requests per second.
    pub rps: f64,
    /// Failures per second.
    pub fps: f64,
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Active users.
    pub users: u64,
}

/// A coordinator's segments, for the segments tab.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Segments {
    /// By index.
    pub rows: Vec<SegmentRow>,
}

/// One segment, as the coordinator knows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SegmentRow {
    /// Its index.
    pub index: u64,
    /// The machine it runs on.
    pub host: String,
    /// `waiting`, `registered`, `ready`, `running`, `load done`, `handed in` or `lost`.
    pub state: String,
    /// Its active VUs, as it last said.
    pub users: u64,
    /// Its load's start minus the common start, ms (known once its load started).
    pub start_skew_ms: Option<f64>,
    /// Seconds since the coordinator last heard from it.
    pub last_seen_s: Option<f64>,
}

/// The figures of `snapshot`; `run_time` gives the remaining time.
pub fn live(snapshot: &Snapshot, run_time: Option<Duration>) -> Live {
    let per_second = |n: u64, seconds: u64| if seconds > 0 { n as f64 / seconds as f64 } else { 0.0 };
    let last = snapshot.last.as_ref();
    let (rps, fps) = last
        .and_then(|l| l.total.as_ref().map(|t| (per_second(t.count, l.seconds), per_second(t.failures, l.seconds))))
        .unwrap_or_default();
    let rows = snapshot
        .totals
        .requests
        .iter()
        .map(|((name, method), c)| {
            let current = last
                .and_then(|l| l.rows.iter().find(|r| &r.name == name && &r.method == method).map(|r| (r, l.seconds)))
                .map_or(0.0, |(r, seconds)| per_second(r.count, seconds));
            let ms = |q: f64| c.latency.quantile_us(q) as f64 / 1000.0;
            StatRow {
                method: method.clone(),
                name: name.clone(),
                requests: c.count,
                fails: c.failures,
                rps: current,
                p50: ms(0.5),
                p95: ms(0.95),
                p99: ms(0.99),
                max: c.latency.max_us as f64 / 1000.0,
            }
        })
        .collect();
    let failed = snapshot
        .totals
        .failures
        .iter()
        .map(|((method, name, reason), (_, count))| FailedRow {
            method: method.clone(),
            name: name.clone(),
            reason: reason.clone(),
            count: *count,
        })
        .collect();
    let mut errors: Vec<ErrorRow> = snapshot
        .totals
        .errors
        .iter()
        .map(|((location, message), count)| ErrorRow {
            location: location.clone(),
            message: message.clone(),
            count: *count,
        })
        .collect();
    errors.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.location.cmp(&b.location)));
    let total = snapshot.totals.total();
    let elapsed_s = snapshot.elapsed.as_secs_f64();
    let remaining_s = match snapshot.phase {
        RunPhase::Drain => Some(0.0),
        _ => run_time.map(|t| (t.as_secs_f64() - elapsed_s).max(0.0)),
    };
    Live {
        run_phase: snapshot.phase.name(),
        elapsed_s,
        remaining_s,
        counted_from_s: counted_from(snapshot),
        users: snapshot.users,
        rps,
        fps,
        requests: total.count,
        failures: total.failures,
        rows,
        failed,
        errors,
    }
}

/// Seconds from which the statistics count.
fn counted_from(snapshot: &Snapshot) -> f64 {
    snapshot.counted_from.as_secs_f64()
}

/// What the run is steered to, as the page shows it.
pub fn target(snapshot: &Snapshot) -> Option<Target> {
    Some(match snapshot.target.as_ref()? {
        LoadTarget::Users { users, spawn_rate } => Target::Closed { users: *users, spawn_rate: *spawn_rate },
        LoadTarget::Rate { per_second } => Target::Open { rate: *per_second },
    })
}

/// The chart point of the newest sealed second, if there is one.
pub fn point(snapshot: &Snapshot) -> Option<Point> {
    let last = snapshot.last.as_ref()?;
    let seconds = last.seconds.max(1) as f64;
    let total = last.total.as_ref();
    let quantile = |q: f64| {
        let i = TOTAL_QUANTILES.iter().position(|&x| x == q)?;
        total.and_then(|t| t.percentiles.get(i).copied())
    };
    Some(Point {
        t: (last.start + last.seconds) as f64,
        rps: total.map_or(0.0, |t| t.count as f64 / seconds),
        fps: total.map_or(0.0, |t| t.failures as f64 / seconds),
        p50: quantile(0.5).unwrap_or(0.0),
        p95: quantile(0.95).unwrap_or(0.0),
        p99: quantile(0.99).unwrap_or(0.0),
        users: last.users,
    })
}

/// The chart point of a snapshot without a sealed second (a coordinator's merged figures), from the totals'
/// growth since the `previous` snapshot's `(elapsed, requests, failures)`; its percentiles are those of the
/// totals so far.
pub fn point_between(
    previous: Option<(Duration, u64, u64)>,
    now: (Duration, u64, u64),
    snapshot: &Snapshot,
) -> Option<Point> {
    let (before, count, failures) = previous?;
    let seconds = now.0.saturating_sub(before).as_secs_f64();
    if seconds <= 0.0 || snapshot.phase != RunPhase::Load {
        return None;
    }
    let total = snapshot.totals.total();
    let ms = |q: f64| total.latency.quantile_us(q) as f64 / 1000.0;
    Some(Point {
        t: now.0.as_secs_f64().round(),
        rps: now.1.saturating_sub(count) as f64 / seconds,
        fps: now.2.saturating_sub(failures) as f64 / seconds,
        p50: ms(0.5),
        p95: ms(0.95),
        p99: ms(0.99),
        users: snapshot.users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::Aggregate;

    #[test]
    fn an_empty_snapshot_shows_zeros_and_the_time_left() {
        let snapshot = Snapshot { phase: RunPhase::Load, elapsed: Duration::from_secs(3), ..Snapshot::default() };
        let live = live(&snapshot, Some(Duration::from_secs(10)));
        assert_eq!(live.run_phase, "load");
        assert_eq!(live.remaining_s, Some(7.0));
        assert_eq!((live.requests, live.rps, live.rows.len()), (0, 0.0, 0));
        assert_eq!(point(&snapshot), None);
    }

    #[test]
    fn rows_and_errors_come_from_the_totals() {
        let mut totals = Aggregate::default();
        totals.errors.insert(("shop.rhai:3:5".into(), "boom".into()), 2);
        totals.errors.insert(("shop.rhai:9:1".into(), "bang".into()), 7);
        let snapshot = Snapshot { phase: RunPhase::Drain, totals, ..Snapshot::default() };
        let live = live(&snapshot, None);
        assert_eq!(live.remaining_s, Some(0.0));
        assert_eq!(live.errors[0].location, "shop.rhai:9:1");
        assert_eq!(live.errors[1].count, 2);
    }
}
