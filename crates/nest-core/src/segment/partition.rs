//! The partition of a plan into segments, checked as properties over random plans: the union of the segments'
//! plans is the whole plan, with each VU, each arrival and each iteration exactly once, at its global time.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Lane, Segment, vu_seed};
use crate::closed::wanted;
use crate::plan::{Model, Plan, PlanBuilder};
use crate::taskset::{TaskSpec, TasksetSpec};
use crate::{Error, Stage};

/// Random cases per property; each case also draws N from 1 to 8 and the workers from 1 to 4.
const CASES: u64 = 300;

fn tasksets() -> Vec<TasksetSpec> {
    let ts = |name: &str, weight| TasksetSpec {
        name: name.into(),
        weight,
        tasks: vec![TaskSpec::new("t", 1)],
        ..Default::default()
    };
    vec![ts("a", 3), ts("off", 0), ts("b", 2)]
}

fn random_stages(rng: &mut SmallRng, max_target: f64) -> Vec<Stage> {
    let mut stages: Vec<Stage> = (0..rng.random_range(1..=4))
        .map(|_| Stage {
            duration: Duration::from_millis(rng.random_range(0..=8_000)),
            target: rng.random_range(0.0..=max_target).round(),
        })
        .collect();
    stages[0].duration += Duration::from_millis(1);
    // The closed model needs a user at some point.
    stages[0].target = stages[0].target.max(1.0);
    stages
}

/// A random closed-model plan: fixed users with or without a spawn rate, or stages; maybe an iterations budget.
fn random_closed(rng: &mut SmallRng) -> PlanBuilder {
    let builder = Plan::builder(tasksets()).seed(rng.random());
    let builder = match rng.random_range(0..3) {
        0 => builder.users(rng.random_range(1..=60)),
        1 => builder.users(rng.random_range(1..=60)).spawn_rate(Some(rng.random_range(0.5..50.0))),
        _ => builder.stages(Some(random_stages(rng, 40.0))),
    };
    builder.iterations(rng.random_bool(0.5).then(|| rng.random_range(1..=500)))
}

/// A random open-model plan: a constant rate or stages over it; maybe an iterations budget.
fn random_open(rng: &mut SmallRng) -> PlanBuilder {
    let rate = rng.random_range(1.0..200.0);
    let max_users = rng.random_range(8..=80);
    let builder = Plan::builder(tasksets()).seed(rng.random()).open(rate, max_users, Duration::from_secs(5));
    let builder = if rng.random_bool(0.5) { builder.stages(Some(random_stages(rng, 200.0))) } else { builder };
    builder.iterations(rng.random_bool(0.5).then(|| rng.random_range(1..=500)))
}

/// The whole plan (one process, one worker) and the plans of its `n` segments with `workers` workers each.
fn split(builder: PlanBuilder, n: u32, workers: usize) -> Result<(Plan, Vec<Plan>), Error> {
    let whole = builder.clone().workers(1).build()?;
    let segments = (0..n)
        .map(|i| builder.clone().workers(workers).segment(Segment::new(i, n).unwrap()).build())
        .collect::<Result<Vec<_>, _>>()?;
    for segment in &segments {
        assert_eq!(segment.model, whole.model, "every segment follows the global schedule");
        assert_eq!((segment.seed, segment.iterations), (whole.seed, whole.iterations));
        assert!(segment.workers >= 1);
    }
    Ok((whole, segments))
}

/// Every worker lane of every segment, with its plan.
fn lanes(segments: &[Plan]) -> Vec<(&Plan, Lane)> {
    segments.iter().flat_map(|p| (0..p.workers).map(move |w| (p, p.lane(w)))).collect()
}

/// The times at which a worker's loop wakes up to follow the closed model's curve, from 0. A real clock is always
/// a little past the instant it slept until; rounding can put a change a hair after it, so this clock moves on by
/// at least 1 µs each time.
fn change_times(plan: &Plan) -> Vec<Duration> {
    let Model::Closed { users, .. } = &plan.model else { unreachable!("closed") };
    let mut times = vec![Duration::ZERO];
    while let Some(next) = users.next_change_after(*times.last().unwrap()) {
        assert!(times.len() < 100_000, "the curve keeps changing");
        times.push(next.max(*times.last().unwrap() + Duration::from_micros(1)));
    }
    times
}

#[test]
fn closed_model_each_global_vu_runs_once_in_segment_j_mod_n_at_its_global_time() {
    for case in 0..CASES {
        let mut rng = SmallRng::seed_from_u64(case);
        let (n, workers) = (rng.random_range(1..=8), rng.random_range(1..=4));
        let (whole, segments) = split(random_closed(&mut rng), n, workers).unwrap();
        let Model::Closed { users: curve, .. } = &whole.model else { unreachable!("closed") };
        let times = change_times(&whole);
        let mut started: BTreeMap<u64, Duration> = BTreeMap::new();
        for &at in &times {
            let global = wanted(curve, whole.lane(0), at, false);
            assert_eq!(global, curve.count_at(at), "case {case}: the whole plan runs VUs 0..count");
            let mut active = vec![0u32; global as usize];
            for (plan, lane) in lanes(&segments) {
                let Model::Closed { users: own, .. } = &plan.model else { unreachable!("closed") };
                for id in (0..wanted(own, lane, at, false)).map(|v| lane.id(v)) {
                    let index = u64::from(plan.segment.index);
                    assert_eq!(id % u64::from(n), index, "case {case}: VU {id} is in segment j mod {n}");
                    active[id as usize] += 1;
                    started.entry(id).or_insert(at);
                }
            }
            assert!(active.iter().all(|&a| a == 1), "case {case}, {n} segments at {at:?}: {active:?}");
        }
        // A VU starts when the global count first exceeds its id, whichever segment runs it.
        for (&id, &at) in &started {
            let first = times.iter().find(|&&t| curve.count_at(t) > id).copied();
            assert_eq!(Some(at), first, "case {case}: VU {id} starts at the global schedule's time");
        }
        assert_eq!(started.len() as u64, whole.users(), "case {case}: every VU of the plan ran");
        let peak: u64 = segments.iter().map(Plan::segment_users).sum();
        assert_eq!(peak, whole.users(), "case {case}: the segments' peaks add up to the plan's");
        // An exhausted budget stops every VU of every segment.
        assert!(lanes(&segments).iter().all(|(_, lane)| wanted(curve, *lane, times[0], true) == 0));
    }
}

#[test]
fn open_model_arrival_k_runs_once_in_segment_k_mod_n_at_its_global_time() {
    const HORIZON: u64 = 2_000;
    for case in 0..CASES {
        let mut rng = SmallRng::seed_from_u64(1_000 + case);
        let (n, workers) = (rng.random_range(1..=8), rng.random_range(1..=4));
        let (whole, segments) = split(random_open(&mut rng), n, workers).unwrap();
        let Model::Open { arrivals, max_users, .. } = &whole.model else { unreachable!("open") };
        let limit = whole.iterations.unwrap_or(u64::MAX).min(HORIZON);
        let expected: Vec<(u64, Duration)> = (0..limit).map_while(|k| arrivals.arrival(k).map(|at| (k, at))).collect();
        let mut seen: Vec<(u64, Duration)> = Vec::new();
        let mut pool = vec![0u32; *max_users as usize];
        for (plan, lane) in lanes(&segments) {
            let Model::Open { arrivals, .. } = &plan.model else { unreachable!("open") };
            let index = u64::from(plan.segment.index);
            // As `open::run` walks its lane: the v-th start of the lane is global arrival k.
            for k in (0..).map(|v| lane.id(v)).take_while(|&k| k < limit) {
                let Some(at) = arrivals.arrival(k) else { break };
                assert_eq!(k % u64::from(n), index, "case {case}: arrival {k} is in segment k mod {n}");
                seen.push((k, at));
            }
            for id in (0..lane.count_below(*max_users)).map(|v| lane.id(v)) {
                assert_eq!(id % u64::from(n), index, "case {case}: pooled VU {id} is in segment j mod {n}");
                pool[id as usize] += 1;
            }
        }
        seen.sort();
        assert_eq!(seen, expected, "case {case}, {n} segments: every arrival once, at its global time");
        assert!(pool.iter().all(|&c| c == 1), "case {case}: the pools' VU ids cover --max-users once: {pool:?}");
    }
}

#[test]
fn an_iterations_budget_splits_exactly_and_each_global_iteration_has_one_owner() {
    for case in 0..CASES {
        let mut rng = SmallRng::seed_from_u64(2_000 + case);
        let total = rng.random_range(1..=1_000);
        let n = rng.random_range(1..=8);
        let builder = random_closed(&mut rng).iterations(Some(total));
        let (whole, segments) = split(builder, n, rng.random_range(1..=4)).unwrap();
        assert_eq!(whole.segment_iterations(), Some(total));
        let shares: Vec<u64> = segments.iter().map(|p| p.segment_iterations().unwrap()).collect();
        assert_eq!(shares.iter().sum::<u64>(), total, "case {case}: {shares:?} over {n} segments");
        assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1, "case {case}: {shares:?}");
        let mut owner = vec![0u32; total as usize];
        for (plan, share) in segments.iter().zip(&shares) {
            // The segment's t-th task is global iteration i + t * N.
            let lane = Lane::of_segment(plan.segment);
            (0..*share).for_each(|t| owner[lane.id(t) as usize] += 1);
        }
        assert!(owner.iter().all(|&o| o == 1), "case {case}: {owner:?}");
    }
}

#[test]
fn data_pools_and_seeds_follow_the_plans_segment() {
    for case in 0..CASES {
        let mut rng = SmallRng::seed_from_u64(3_000 + case);
        let (len, n) = (rng.random_range(0..=300usize), rng.random_range(1..=8));
        let (whole, segments) = split(random_closed(&mut rng), n, rng.random_range(1..=4)).unwrap();
        let mut rows = vec![0u32; len];
        for plan in &segments {
            nest_data::partition(len, plan.segment).for_each(|r| rows[r] += 1);
        }
        assert!(rows.iter().all(|&r| r == 1), "case {case}: {len} rows over {n} segments: {rows:?}");
        // Each VU's random stream and first taskset come from its global id and the plan's seed alone.
        let first = whole.first_tasksets();
        for (plan, lane) in lanes(&segments) {
            for id in (0..lane.count_below(whole.users())).map(|v| lane.id(v)) {
                assert_eq!(vu_seed(plan.seed, id), vu_seed(whole.seed, id), "case {case}: VU {id}'s seed");
                assert_eq!(plan.first_tasksets().at(id), first.at(id), "case {case}: VU {id}'s first taskset");
            }
        }
    }
    let seeds: std::collections::BTreeSet<u64> = (0..1_000).map(|id| vu_seed(7, id)).collect();
    assert_eq!(seeds.len(), 1_000, "every VU has its own stream");
}

#[test]
fn a_segment_must_exist_and_an_open_segment_needs_a_vu() {
    let bad = Plan::builder(tasksets()).segment(Segment { index: 3, count: 3 }).build().unwrap_err();
    assert!(bad.to_string().contains("segment 3/3 does not exist"), "{bad}");
    assert!(Plan::builder(tasksets()).segment(Segment { index: 0, count: 0 }).build().is_err());
    let open = |i| Plan::builder(tasksets()).open(10.0, 2, Duration::from_secs(1)).segment(Segment::new(i, 3).unwrap());
    assert!(open(1).build().is_ok());
    let e = open(2).build().unwrap_err().to_string();
    assert!(e.contains("--max-users 2 leaves segment 2/3 without a VU: give at least 3"), "{e}");
    // A closed segment with no user of its own keeps one worker, and runs nothing.
    let idle = Plan::builder(tasksets()).users(2).workers(4).segment(Segment::new(2, 3).unwrap()).build().unwrap();
    assert_eq!((idle.workers, idle.segment_users()), (1, 0));
    assert_eq!(Plan::builder(tasksets()).build().unwrap().segment, Segment::WHOLE);
}
