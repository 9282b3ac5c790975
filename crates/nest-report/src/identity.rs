//! Which run a report belongs to: the run id, the plan hash, the segment, where and when it started; and, for a
//! merged report, its segments and what is missing.
//!
//! The N processes of a split run (`--segment I/N`) each write one report. To add them up safely, `nest merge` (and
//! the coordinator) must know that they ran the same plan (the [`PlanHasher`]'s hash of the scripts, the mix and the
//! load settings, never the host, the segment or a secret), belong to one run (the run id), and cover every
//! segment once. A set with a segment missing is still merged, but marked [`Incomplete`] with the share of the plan
//! that is missing ([`mark_incomplete`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use nest_core::Segment;

use crate::model::Report;

/// Who and when: recorded in every report of `nest run` (`run.identity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The run's id: `--run-id` or `NEST_RUN_ID`; else derived from the plan hash and `--start-at`; else a fresh
    /// UUID v4. The segments of one run share it.
    pub run_id: String,
    /// SHA-256 (hex) of the scripts (paths relative to the taskset folder, sources), the resolved mix and the load
    /// settings: equal inputs give an equal hash on any machine.
    pub plan_hash: String,
    /// The share of the plan this report holds.
    pub segment: SegmentId,
    /// Closed model: the plan's users (all segments together); open model: its VU pool limit. The base of the share
    /// an incomplete set misses.
    pub plan_users: u64,
    /// The machine's host name.
    pub host_name: String,
    /// When the load was meant to start (`--start-at`, or when the process was ready), in Unix seconds.
    pub intended_start: f64,
    /// When it started, in Unix seconds.
    pub actual_start: f64,
    /// `actual_start - intended_start`, in milliseconds.
    pub start_skew_ms: f64,
}

impl RunIdentity {
    /// The identity of a run of `segment` that was meant to start at `intended` and started at `actual`.
    pub fn new(
        run_id: String,
        plan_hash: String,
        segment: Segment,
        plan_users: u64,
        intended: std::time::SystemTime,
        actual: std::time::SystemTime,
    ) -> RunIdentity {
        let (intended_start, actual_start) = (unix_seconds(intended), unix_seconds(actual));
        RunIdentity {
            run_id,
            plan_hash,
            segment: SegmentId { index: segment.index, count: segment.count },
            plan_users,
            host_name: host_name(),
            intended_start,
            actual_start,
            start_skew_ms: (actual_start - intended_start) * 1e3,
        }
    }
}

/// A segment `index/count`, as reports write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentId {
    /// From 0.
    pub index: u32,
    /// How many segments the plan is split into.
    pub count: u32,
}

impl std::fmt::Display for SegmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One segment of a merged report (`run.segments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRow {
    /// The segment's index.
    pub index: u32,
    /// Where it ran.
    pub host_name: String,
    /// When it was meant to start, in Unix seconds.
    pub intended_start: f64,
    /// When it started, in Unix seconds.
    pub actual_start: f64,
    /// Its start skew, in milliseconds.
    pub start_skew_ms: f64,
}

impl From<&RunIdentity> for SegmentRow {
    fn from(id: &RunIdentity) -> SegmentRow {
        SegmentRow {
            index: id.segment.index,
            host_name: id.host_name.clone(),
            intended_start: id.intended_start,
            actual_start: id.actual_start,
            start_skew_ms: id.start_skew_ms,
        }
    }
}

/// Why a segment's share is not in a merged report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingReason {
    /// No result of it was given (or it never registered).
    Missing,
    /// It started but stopped reporting, or exited early.
    Lost,
}

/// A segment whose share is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingSegment {
    /// The segment's index.
    pub index: u32,
    /// Why.
    pub reason: MissingReason,
    /// When it was found missing or lost, in Unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}

/// What a merged report lacks (`run.incomplete`): its figures are those of the segments it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incomplete {
    /// The segments missing, by index.
    pub missing: Vec<MissingSegment>,
    /// What the share is of: `users` (closed model: the missing segments' global VUs) or `arrivals` (open model:
    /// each segment runs 1/N of the arrivals).
    pub share_of: String,
    /// The share of the plan missing, in percent.
    pub missing_pct: f64,
    /// Closed model: how many of the plan's users were in the missing segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_users: Option<u64>,
}

/// Marks `report` (a merge of some of the `segments` segments of one plan) incomplete: `missing` are not in it.
/// The share is derived from the plan's lanes, as the segments split it (see [`nest_core::segment_share`]), over
/// `run.identity.plan_users`. Does nothing when nothing is missing; without an identity, the users share is unknown
/// (then only the open model's share, 1/N per segment, is given).
pub fn mark_incomplete(report: &mut Report, segments: u32, mut missing: Vec<MissingSegment>) {
    if missing.is_empty() {
        return;
    }
    missing.sort_by_key(|m| m.index);
    missing.dedup_by_key(|m| m.index);
    let plan_users = report.run.identity.as_ref().map_or(0, |id| id.plan_users);
    let count = segments.max(1);
    let (share_of, missing_pct, missing_users) = if report.summary.model == "open" {
        ("arrivals", 100.0 * missing.len() as f64 / f64::from(count), None)
    } else {
        let users: u64 = missing
            .iter()
            .filter_map(|m| Segment::new(m.index, count))
            .map(|s| nest_core::segment_share(plan_users, s))
            .sum();
        let pct = if plan_users == 0 { 0.0 } else { 100.0 * users as f64 / plan_users as f64 };
        ("users", pct, Some(users))
    };
    report.run.incomplete = Some(Incomplete { missing, share_of: share_of.into(), missing_pct, missing_users });
}

/// Hashes what makes a plan: feed it every part with [`PlanHasher::part`], in a fixed order.
#[derive(Debug, Clone, Default)]
pub struct PlanHasher(Sha256);

impl PlanHasher {
    /// An empty hasher.
    pub fn new() -> PlanHasher {
        PlanHasher::default()
    }
    /// Adds one labelled part (its label and length are hashed too, so parts cannot run into each other).
    pub fn part(&mut self, label: &str, bytes: &[u8]) -> &mut PlanHasher {
        for piece in [label.as_bytes(), bytes] {
            self.0.update((piece.len() as u64).to_le_bytes());
            self.0.update(piece);
        }
        self
    }
    /// The hash, in lowercase hex.
    pub fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a plan hash is made of.
#[derive(Debug, Clone, Copy)]
pub struct PlanParts<'a> {
    /// The scripts: `(name, source)`, names relative to the taskset folder.
    pub scripts: &'a [(&'a str, &'a str)],
    /// The data pools: `(name, rows)`, all the rows (not a segment's share).
    pub data: &'a [(&'a str, usize)],
    /// The resolved mix.
    pub mix: &'a [crate::model::MixRow],
    /// The plan, for its load settings.
    pub plan: &'a nest_core::Plan,
    /// Whether the seed was given (a derived seed is not part of the plan).
    pub explicit_seed: bool,
}

/// The plan hash of a run: the scripts, the data pools' sizes, the resolved mix, and the load settings of the plan
/// (model, users or rate, stages, run time, iterations, stop timeout, tasksets; the seed when given). Not the host,
/// the segment, the worker count or anything secret.
pub fn plan_hash(parts: PlanParts<'_>) -> String {
    let PlanParts { scripts, data, mix, plan, explicit_seed } = parts;
    let mut hasher = PlanHasher::new();
    hasher.part("nest", env!("CARGO_PKG_VERSION").as_bytes());
    for (name, source) in scripts {
        hasher.part("script", name.as_bytes()).part("source", source.as_bytes());
    }
    for (name, rows) in data {
        hasher.part("data", name.as_bytes()).part("rows", &(*rows as u64).to_le_bytes());
    }
    hasher.part("mix", &serde_json::to_vec(mix).expect("the mix serialises"));
    let load = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        plan.model, plan.tasksets, plan.run_time, plan.iterations, plan.stop_timeout
    );
    hasher.part("load", load.as_bytes());
    if explicit_seed {
        hasher.part("seed", &plan.seed.to_le_bytes());
    }
    hasher.finish()
}

/// A run id the segments of one run agree on without being told: derived from the plan hash and the common start
/// (a UUID of version 8, from the SHA-256 of both).
pub fn derived_run_id(plan_hash: &str, start_at: std::time::SystemTime) -> String {
    let mut hasher = PlanHasher::new();
    hasher.part("plan", plan_hash.as_bytes()).part("start_at", format!("{:.6}", unix_seconds(start_at)).as_bytes());
    let digest = Sha256::digest(hasher.finish().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// A fresh run id: a UUID v4.
pub fn fresh_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A seed every segment of run `run_id` derives alike, for a split plan given no `--seed`.
pub fn seed_of_run(run_id: &str) -> u64 {
    let digest = Sha256::digest(run_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// This machine's host name (empty if it cannot be told).
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_hash_is_stable_and_parts_do_not_run_together() {
        let hash = |parts: &[(&str, &str)]| {
            let mut h = PlanHasher::new();
            for (l, b) in parts {
                h.part(l, b.as_bytes());
            }
            h.finish()
        };
        assert_eq!(hash(&[("a", "bc")]), hash(&[("a", "bc")]));
        assert_ne!(hash(&[("a", "bc")]), hash(&[("ab", "c")]));
        assert_eq!(hash(&[]).len(), 64);
        // The SHA-256 of nothing framed: pinned, so the hash does not change between versions by accident.
        assert_eq!(hash(&[]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn the_plan_hash_covers_the_load_but_not_the_segment_or_the_workers() {
        use nest_core::{Plan, TaskSpec, TasksetSpec};
        let plan = |users: u64, workers: usize, segment: Segment| {
            let t =
                TasksetSpec { name: "t".into(), weight: 1, tasks: vec![TaskSpec::new("a", 1)], ..Default::default() };
            Plan::builder(vec![t]).users(users).workers(workers).segment(segment).seed(1).build().unwrap()
        };
        let hash = |plan: &Plan, source: &str, rows: usize, explicit_seed: bool| {
            let scripts = [("t", source)];
            let data = [("accounts", rows)];
            plan_hash(PlanParts { scripts: &scripts, data: &data, mix: &[], plan, explicit_seed })
        };
        let whole = hash(&plan(6, 1, Segment::WHOLE), "task(1, a);", 10, false);
        assert_eq!(whole, hash(&plan(6, 4, Segment::new(2, 3).unwrap()), "task(1, a);", 10, false));
        assert_ne!(whole, hash(&plan(7, 1, Segment::WHOLE), "task(1, a);", 10, false), "users");
        assert_ne!(whole, hash(&plan(6, 1, Segment::WHOLE), "task(2, a);", 10, false), "script");
        assert_ne!(whole, hash(&plan(6, 1, Segment::WHOLE), "task(1, a);", 11, false), "data rows");
        assert_ne!(whole, hash(&plan(6, 1, Segment::WHOLE), "task(1, a);", 10, true), "a given seed");
    }

    #[test]
    fn a_derived_run_id_depends_on_the_plan_and_the_start_only() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let id = derived_run_id("abc", at);
        assert_eq!(id, derived_run_id("abc", at));
        assert_ne!(id, derived_run_id("abd", at));
        assert_ne!(id, derived_run_id("abc", at + std::time::Duration::from_millis(1)));
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 8);
        assert_ne!(fresh_run_id(), fresh_run_id());
    }
}
