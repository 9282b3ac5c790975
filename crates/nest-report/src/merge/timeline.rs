//! The timelines of several reports merged point by point, exactly.
//!
//! A timeline is the one part of a report that is not merged row by row: its points must first be aligned (by their
//! start second relative to each report's start) and brought to one width (the coarsest among the inputs), and a
//! point that straddles two merged points is refused by name. It lives apart from the summary's rows for that reason.

use std::collections::BTreeMap;

use nest_core::stats::{RequestCounts, TimelinePoint, seal_rows};

use super::MergeError;
use crate::model::Report;

/// One merged timeline point being built: its end, users per input, dropped starts and counts by (name, method).
#[derive(Default)]
struct PointSum {
    end: u64,
    users: BTreeMap<usize, u64>,
    dropped: u64,
    counts: BTreeMap<(String, String), RequestCounts>,
}

/// The inputs' timelines merged point by point at the coarsest width among them (see the module docs).
pub(super) fn timeline(inputs: &[(&str, &Report)]) -> Result<Vec<TimelinePoint>, MergeError> {
    let points = || inputs.iter().flat_map(|(_, r)| &r.summary.timeline);
    if points().flat_map(|p| &p.requests).any(|row| row.latency.is_none()) {
        return Ok(Vec::new());
    }
    let width = points().map(|p| p.seconds.max(1)).max().unwrap_or(1);
    let mut merged: BTreeMap<u64, PointSum> = BTreeMap::new();
    for (i, &(input, report)) in inputs.iter().enumerate() {
        for (j, p) in report.summary.timeline.iter().enumerate() {
            let (start, end) = (p.t / width * width, p.t + p.seconds.max(1));
            if end > start + width {
                let (t, seconds) = (p.t, p.seconds);
                return Err(MergeError::Unaligned { input: input.to_owned(), t, seconds, width });
            }
            let sum = merged.entry(start).or_default();
            sum.end = sum.end.max(end);
            let users = sum.users.entry(i).or_default();
            *users = (*users).max(p.users);
            sum.dropped += p.dropped;
            for (k, row) in p.requests.iter().enumerate() {
                let place = format!("timeline[{j}].requests[{k}]");
                let broken = |reason| MergeError::BrokenHistogram { input: input.to_owned(), place, reason };
                let counts = row.counts().map_err(broken)?;
                sum.counts.entry((row.name.clone(), row.method.clone())).or_default().merge(&counts);
            }
        }
    }
    Ok(merged.into_iter().map(|(t, sum)| point(t, sum)).collect())
}

fn point(t: u64, sum: PointSum) -> TimelinePoint {
    let (requests, total) = seal_rows(&sum.counts);
    let (users, dropped, seconds) = (sum.users.values().sum(), sum.dropped, sum.end - t);
    TimelinePoint { t, seconds, users, dropped, requests, total }
}
