//! Merging the segments of one split run: the checks before the exact merge, and the merged report's identity.
//!
//! Reports that carry a [`RunIdentity`] (every `nest run` since segments exist) are checked as a set: one plan hash,
//! one run id, one segment count, each index once. An exact copy of a report given twice is dropped with a warning
//! (a file copied twice into the results folder); two different reports of the same index are refused. A set that
//! lacks indices is merged anyway and marked [`crate::identity::Incomplete`]. Older reports, without an identity,
//! merge as before.

use std::collections::BTreeMap;

use super::{MergeError, merge_named};
use crate::identity::{MissingReason, MissingSegment, RunIdentity, SegmentId, SegmentRow, mark_incomplete};
use crate::model::Report;

/// A merge of segment reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged report (marked incomplete if segments are missing).
    pub report: Report,
    /// What was ignored, as messages: exact duplicates.
    pub warnings: Vec<String>,
}

impl Merged {
    /// Whether segments are missing.
    pub fn is_incomplete(&self) -> bool {
        self.report.run.incomplete.is_some()
    }
}

/// Merges the reports of the segments of one run, each named (its file); see the module docs for the checks.
pub fn merge_segments(inputs: &[(&str, &Report)]) -> Result<Merged, MergeError> {
    let mut warnings = Vec::new();
    let mut kept: Vec<(&str, &Report)> = Vec::with_capacity(inputs.len());
    for &(name, report) in inputs {
        match kept.iter().find(|(_, r)| *r == report) {
            Some(&(earlier, _)) => warnings.push(format!("{name} is the same report as {earlier}: ignored")),
            None => kept.push((name, report)),
        }
    }
    let (&(first_name, first), _) = kept.split_first().ok_or(MergeError::Empty)?;
    let Some(id) = &first.run.identity else {
        if let Some(&(name, _)) = kept.iter().find(|(_, r)| r.run.identity.is_some()) {
            return Err(MergeError::NoIdentity { input: first_name.into(), other: name.into() });
        }
        return Ok(Merged { report: merge_named(&kept)?, warnings });
    };
    if id.segment.count == 1 {
        return side_by_side(first_name, id, &kept).map(|report| Merged { report, warnings });
    }
    let identities = check_set(first_name, id, &kept)?;
    let mut report = merge_named(&kept)?;
    report.run.identity = Some(merged_identity(&identities));
    report.run.segments = identities.iter().map(|id| SegmentRow::from(*id)).collect();
    report.run.segments.sort_by_key(|s| s.index);
    let present: Vec<u32> = report.run.segments.iter().map(|s| s.index).collect();
    let missing: Vec<MissingSegment> = (0..id.segment.count)
        .filter(|i| !present.contains(i))
        .map(|index| MissingSegment { index, reason: MissingReason::Missing, at: None })
        .collect();
    mark_incomplete(&mut report, id.segment.count, missing);
    Ok(Merged { report, warnings })
}

/// Whole runs of one plan run side by side (each segment `0/1`, each with its own run id): their plan hashes must
/// agree; there is no set to complete.
fn side_by_side(first_name: &str, first: &RunIdentity, kept: &[(&str, &Report)]) -> Result<Report, MergeError> {
    let mut identities = Vec::with_capacity(kept.len());
    for &(name, report) in kept {
        let id = report
            .run
            .identity
            .as_ref()
            .ok_or_else(|| MergeError::NoIdentity { input: name.into(), other: first_name.into() })?;
        let differs = |what| MergeError::DifferentPlan { first: first_name.into(), other: name.into(), what };
        if id.plan_hash != first.plan_hash {
            return Err(differs("plan hashes"));
        }
        if id.segment.count != 1 {
            return Err(differs("segment counts"));
        }
        identities.push(id);
    }
    let mut report = merge_named(kept)?;
    report.run.identity = Some(merged_identity(&identities));
    Ok(report)
}

/// Checks that the reports are distinct segments of one run of one plan; returns their identities.
fn check_set<'a>(
    first_name: &str,
    first: &RunIdentity,
    kept: &[(&str, &'a Report)],
) -> Result<Vec<&'a RunIdentity>, MergeError> {
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    let mut identities = Vec::with_capacity(kept.len());
    for &(name, report) in kept {
        let other = name.to_owned();
        let id = report
            .run
            .identity
            .as_ref()
            .ok_or_else(|| MergeError::NoIdentity { input: other.clone(), other: first_name.into() })?;
        let differs = |what| MergeError::DifferentPlan { first: first_name.into(), other: other.clone(), what };
        if id.plan_hash != first.plan_hash {
            return Err(differs("plan hashes"));
        }
        if id.segment.count != first.segment.count {
            return Err(differs("segment counts"));
        }
        if id.run_id != first.run_id {
            return Err(MergeError::DifferentRun {
                first: first_name.into(),
                other,
                first_id: first.run_id.clone(),
                other_id: id.run_id.clone(),
            });
        }
        if let Some(earlier) = by_index.insert(id.segment.index, name) {
            return Err(MergeError::SameSegment { first: earlier.into(), other, segment: id.segment.to_string() });
        }
        identities.push(id);
    }
    Ok(identities)
}

/// The identity of the merge: the run (or, for whole runs side by side, the runs) and plan of its parts, the whole
/// plan (segment 0/1), the earliest starts, the largest skew, and the host names of the parts.
fn merged_identity(parts: &[&RunIdentity]) -> RunIdentity {
    let first = parts[0];
    let distinct = |f: fn(&RunIdentity) -> &str| {
        let mut all: Vec<&str> = parts.iter().map(|p| f(p)).collect();
        all.sort_unstable();
        all.dedup();
        all.join(", ")
    };
    let min = |f: fn(&RunIdentity) -> f64| parts.iter().map(|p| f(p)).fold(f64::INFINITY, f64::min);
    RunIdentity {
        run_id: distinct(|p| &p.run_id),
        plan_hash: first.plan_hash.clone(),
        segment: SegmentId { index: 0, count: 1 },
        plan_users: first.plan_users,
        host_name: distinct(|p| &p.host_name),
        intended_start: min(|p| p.intended_start),
        actual_start: min(|p| p.actual_start),
        start_skew_ms: parts.iter().map(|p| p.start_skew_ms).fold(f64::NEG_INFINITY, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::sample_report;

    fn segment(index: u32, count: u32) -> Report {
        let mut report = sample_report(false, Vec::new());
        let mut id = report.run.identity.clone().expect("the sample has an identity");
        id.segment = SegmentId { index, count };
        id.host_name = format!("load-{index}");
        id.actual_start += f64::from(index) * 1e-3;
        id.start_skew_ms = f64::from(index);
        (report.run.identity, report.run.segments, report.run.incomplete) = (Some(id), Vec::new(), None);
        report.summary.started_at += f64::from(index) * 1e-3;
        report
    }

    #[test]
    fn a_complete_set_lists_its_segments_and_a_copy_is_ignored() {
        let (a, b, c) = (segment(0, 3), segment(1, 3), segment(2, 3));
        let merged = merge_segments(&[("a", &a), ("b", &b), ("b2", &b.clone()), ("c", &c)]).unwrap();
        assert_eq!(merged.warnings, ["b2 is the same report as b: ignored"]);
        assert!(!merged.is_incomplete());
        assert_eq!(merged.report.summary.totals.requests, 3 * a.summary.totals.requests);
        let indices: Vec<u32> = merged.report.run.segments.iter().map(|s| s.index).collect();
        assert_eq!(indices, [0, 1, 2]);
        let id = merged.report.run.identity.unwrap();
        assert_eq!((id.segment, id.start_skew_ms), (SegmentId { index: 0, count: 1 }, 2.0));
        assert_eq!(id.host_name, "load-0, load-1, load-2");
    }

    #[test]
    fn a_missing_segment_marks_the_merge_incomplete_with_its_share() {
        // The sample plan has 4 users: over 3 segments, segment 0 owns VUs 0 and 3.
        let (b, c) = (segment(1, 3), segment(2, 3));
        let merged = merge_segments(&[("b", &b), ("c", &c)]).unwrap();
        let incomplete = merged.report.run.incomplete.expect("segment 0 is missing");
        assert_eq!(incomplete.missing, [MissingSegment { index: 0, reason: MissingReason::Missing, at: None }]);
        assert_eq!((incomplete.share_of.as_str(), incomplete.missing_users), ("users", Some(2)));
        assert_eq!(incomplete.missing_pct, 50.0);
    }

    #[test]
    fn whole_runs_side_by_side_merge_when_their_plans_agree() {
        let (a, mut b) = (segment(0, 1), segment(0, 1));
        b.run.identity.as_mut().unwrap().run_id = "r2".into();
        let merged = merge_segments(&[("eu.json", &a), ("us.json", &b)]).unwrap();
        assert!(!merged.is_incomplete() && merged.report.run.segments.is_empty());
        let id = merged.report.run.identity.unwrap();
        assert_eq!(id.run_id, format!("{}, r2", a.run.identity.as_ref().unwrap().run_id));
        b.run.identity.as_mut().unwrap().plan_hash = "cd".repeat(32);
        let e = merge_segments(&[("eu.json", &a), ("us.json", &b)]).unwrap_err();
        assert_eq!(e.to_string(), "us.json was not run with the same plan as eu.json: the plan hashes differ");
    }

    #[test]
    fn mixed_plans_runs_and_overlapping_segments_are_refused_by_name() {
        let (a, b) = (segment(0, 2), segment(1, 2));
        let mut other_plan = b.clone();
        other_plan.run.identity.as_mut().unwrap().plan_hash = "cd".repeat(32);
        let e = merge_segments(&[("a.json", &a), ("b.json", &other_plan)]).unwrap_err();
        assert_eq!(e.to_string(), "b.json was not run with the same plan as a.json: the plan hashes differ");
        let mut other_run = b.clone();
        other_run.run.identity.as_mut().unwrap().run_id = "r2".into();
        let e = merge_segments(&[("a.json", &a), ("b.json", &other_run)]).unwrap_err();
        assert!(
            matches!(&e, MergeError::DifferentRun { other, other_id, .. } if other == "b.json" && other_id == "r2")
        );
        let mut again = a.clone();
        again.summary.totals.requests += 1;
        let e = merge_segments(&[("a.json", &a), ("b.json", &b), ("a2.json", &again)]).unwrap_err();
        assert_eq!(
            e,
            MergeError::SameSegment { first: "a.json".into(), other: "a2.json".into(), segment: "0/2".into() }
        );
        let mut old = b.clone();
        old.run.identity = None;
        let e = merge_segments(&[("a.json", &a), ("old.json", &old)]).unwrap_err();
        assert!(matches!(e, MergeError::NoIdentity { .. }), "{e}");
        let mut three = b;
        three.run.identity.as_mut().unwrap().segment = SegmentId { index: 1, count: 3 };
        let e = merge_segments(&[("a.json", &a), ("b.json", &three)]).unwrap_err();
        assert!(matches!(e, MergeError::DifferentPlan { what: "segment counts", .. }), "{e}");
    }
}
