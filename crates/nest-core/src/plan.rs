//! A validated description of one run: which tasksets, which load model, how long.
//!
//! Raw options (flags, config, environment) are resolved by the caller; the [`PlanBuilder`] checks what only makes
//! sense together, so that every problem is reported before a single request is sent.

use std::time::Duration;

use crate::curve::{ArrivalCurve, Stage, UserCurve};
use crate::error::Error;
use crate::fiber::FiberPool;
use crate::segment::{Lane, Segment};
use crate::taskset::TasksetSpec;
use crate::weights::{SmoothRoundRobin, WeightedTable};

/// How load is generated.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// A number of users over time, each running tasks with think time in between (Locust's model).
    Closed {
        /// Active users over time.
        users: UserCurve,
        /// The curve is driven at run time by a shape callback (`--shape`).
        shaped: bool,
    },
    /// Tasks start on a schedule, independent of response times (k6's arrival-rate executors).
    Open {
        /// When each task starts.
        arrivals: ArrivalCurve,
        /// The most VUs the pool may grow to.
        max_users: u64,
        /// A start that waited longer than this for a free VU is dropped and counted.
        max_delay: Duration,
    },
}

impl Model {
    /// Whether this is the open model.
    pub fn is_open(&self) -> bool {
        matches!(self, Model::Open { .. })
    }
}

/// A runnable plan. Build it with [`Plan::builder`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every discovered taskset, enabled or not (indices are stable).
    pub tasksets: Vec<TasksetSpec>,
    /// The load model.
    pub model: Model,
    /// How long the load runs; `None` runs until stopped (or until the iterations or the shape are done).
    pub run_time: Option<Duration>,
    /// Run exactly this many tasks in total, then stop.
    pub iterations: Option<u64>,
    /// Worker threads.
    pub workers: usize,
    /// How long a stop waits for calls in flight before cancelling them.
    pub stop_timeout: Duration,
    /// Seed of every VU's random choices (VU `i` uses a stream derived from `seed` and `i`).
    pub seed: u64,
    /// Reserved size of each fiber stack, in bytes.
    pub stack_size: usize,
    /// The share of the load this process runs: the global VUs, arrivals and iterations `j` with
    /// `j mod count == index` (see [`Segment`]); `0/1`, the whole load, by default.
    pub segment: Segment,
    /// Per taskset, per task: the index of the nested taskset the task enters (resolved by [`PlanBuilder::build`]).
    nested: Vec<Vec<Option<usize>>>,
    /// The load follows stages (`--stages`): they own the curve, so live changes are refused.
    staged: bool,
    /// A web UI or a coordinator may steer the load while it runs (see [`PlanBuilder::steered`]).
    steered: bool,
}

impl Plan {
    /// Starts a plan over these tasksets: 1 user, closed model, until stopped.
    pub fn builder(tasksets: Vec<TasksetSpec>) -> PlanBuilder {
        PlanBuilder {
            plan: Plan {
                tasksets,
                model: Model::Closed { users: UserCurve::fixed(1, None), shaped: false },
                run_time: None,
                iterations: None,
                workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                stop_timeout: Duration::from_secs(10),
                seed: rand::random(),
                stack_size: FiberPool::default_stack_size(),
                segment: Segment::WHOLE,
                nested: Vec::new(),
                staged: false,
                steered: false,
            },
            users: 1,
            spawn_rate: None,
            stages: None,
        }
    }

    /// The taskset table weighted by the plan's weights.
    pub fn taskset_table(&self) -> WeightedTable {
        let weights: Vec<u32> = self.tasksets.iter().map(|t| t.weight).collect();
        WeightedTable::new(&weights).unwrap_or_else(|| unreachable!("a built plan has an enabled taskset"))
    }

    /// The order in which VUs get their first taskset: VU `j` starts in `first_tasksets().at(j)`.
    pub fn first_tasksets(&self) -> SmoothRoundRobin {
        let weights: Vec<u32> = self.tasksets.iter().map(|t| t.weight).collect();
        SmoothRoundRobin::new(&weights).unwrap_or_else(|| unreachable!("a built plan has an enabled taskset"))
    }

    /// The nested taskset that task `task` of taskset `taskset` enters, if it is a nested-taskset task.
    pub fn nested_taskset(&self, taskset: usize, task: usize) -> Option<usize> {
        self.nested.get(taskset).and_then(|tasks| tasks.get(task).copied().flatten())
    }

    /// Whether the load follows stages (`--stages`), which own its curve.
    pub fn is_staged(&self) -> bool {
        self.staged
    }

    /// Whether the load may be changed while it runs ([`crate::RunHandle::set_users`], `set_rate`): neither stages
    /// nor a load shape own its curve.
    pub fn is_steerable(&self) -> bool {
        !self.staged && !matches!(self.model, Model::Closed { shaped: true, .. })
    }

    /// Whether a web UI or a coordinator may steer this run while it goes on ([`PlanBuilder::steered`]): it then
    /// keeps every worker asked for.
    pub fn is_steered(&self) -> bool {
        self.steered
    }

    /// The most users the plan may run at once (the pool limit in the open model), over all segments.
    pub fn users(&self) -> u64 {
        match &self.model {
            Model::Closed { users, .. } => users.peak(),
            Model::Open { max_users, .. } => *max_users,
        }
    }

    /// The most users this process's segment runs at once: its share of [`Plan::users`].
    pub fn segment_users(&self) -> u64 {
        Lane::of_segment(self.segment).count_below(self.users())
    }

    /// This segment's share of `--iterations`: segment `i/N` owns the global iterations `n` with `n mod N = i`
    /// below the total, so the shares of all segments add up to the total exactly. Its `t`-th task (from 0) is the
    /// global iteration `i + t * N`.
    pub fn segment_iterations(&self) -> Option<u64> {
        self.iterations.map(|n| Lane::of_segment(self.segment).count_below(n))
    }

    /// The global ids (VUs in the closed model; arrivals and pooled VUs in the open model) that worker `worker` of
    /// this segment owns.
    pub(crate) fn lane(&self, worker: usize) -> Lane {
        Lane::of_segment(self.segment).split(worker as u64, self.workers as u64)
    }
}

/// Builds and validates a [`Plan`].
#[derive(Debug, Clone)]
pub struct PlanBuilder {
    plan: Plan,
    users: u64,
    spawn_rate: Option<f64>,
    stages: Option<Vec<Stage>>,
}

impl PlanBuilder {
    /// Number of virtual users (closed model).
    pub fn users(mut self, users: u64) -> Self {
        self.users = users;
        self
    }
    /// Users started per second; `None` starts all at once (closed model).
    pub fn spawn_rate(mut self, rate: Option<f64>) -> Self {
        self.spawn_rate = rate;
        self
    }
    /// Stages over the users (closed model) or over the rate (open model). Sets the run time to their total
    /// unless one is given.
    pub fn stages(mut self, stages: Option<Vec<Stage>>) -> Self {
        self.stages = stages;
        self
    }
    /// The user count will be driven at run time by a shape callback.
    pub fn shaped(mut self) -> Self {
        self.plan.model = Model::Closed { users: UserCurve::default(), shaped: true };
        self
    }
    /// The open model: tasks start at `rate` per second (then follow the stages, if any), with a pool of at most
    /// `max_users` VUs, dropping starts that waited longer than `max_delay`.
    pub fn open(mut self, rate: f64, max_users: u64, max_delay: Duration) -> Self {
        self.plan.model = Model::Open { arrivals: ArrivalCurve::constant(rate), max_users, max_delay };
        self
    }
    /// Run exactly this many tasks in total.
    pub fn iterations(mut self, n: Option<u64>) -> Self {
        self.plan.iterations = n;
        self
    }
    /// Run time; `None` runs until stopped.
    pub fn run_time(mut self, run_time: Option<Duration>) -> Self {
        self.plan.run_time = run_time;
        self
    }
    /// Worker threads (at least 1); defaults to the number of cores.
    pub fn workers(mut self, workers: usize) -> Self {
        self.plan.workers = workers;
        self
    }
    /// Grace period for calls in flight when stopping.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.plan.stop_timeout = timeout;
        self
    }
    /// Seed for all random choices.
    pub fn seed(mut self, seed: u64) -> Self {
        self.plan.seed = seed;
        self
    }
    /// Reserved size of each fiber stack.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.plan.stack_size = bytes;
        self
    }
    /// Run only this segment of the load (see [`Plan::segment`]); the whole load, `0/1`, by default.
    pub fn segment(mut self, segment: Segment) -> Self {
        self.plan.segment = segment;
        self
    }

    /// A web UI or a coordinator may steer the load while it runs (`nest run --web`, a coordinated segment). The
    /// closed model then keeps every worker asked for (by default, one per core) instead of only as many as the
    /// plan's users need, so that users raised live spread over every core. Other runs, and plans whose curve
    /// stages own, are not changed by it.
    pub fn steered(mut self, steered: bool) -> Self {
        self.plan.steered = steered;
        self
    }

    /// Checks the plan and returns it.
    pub fn build(self) -> Result<Plan, Error> {
        let PlanBuilder { mut plan, users, spawn_rate, stages } = self;
        let invalid = |m: String| Err(Error::InvalidPlan(m));
        if plan.workers == 0 {
            return invalid("the number of workers must be at least 1".into());
        }
        if let Some(rate) = spawn_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(format!("the spawn rate must be a positive number of users per second, not {rate}"));
        }
        if plan.run_time == Some(Duration::ZERO) {
            return invalid("the run time must be longer than zero".into());
        }
        if plan.iterations == Some(0) {
            return invalid("the number of iterations must be at least 1".into());
        }
        let segment = plan.segment;
        if Segment::new(segment.index, segment.count).is_none() {
            return invalid(format!("segment {segment} does not exist: give I/N with 0 <= I < N"));
        }
        let lane = Lane::of_segment(segment);
        plan.staged = stages.is_some();
        // Users raised live may go past the plan's: a steered run keeps its workers for them.
        let keep_workers = plan.steered && !plan.staged;
        if let Some(stages) = &stages {
            let total: Duration = stages.iter().map(|s| s.duration).sum();
            plan.run_time = Some(plan.run_time.map_or(total, |t| t.min(total)));
        }
        match &mut plan.model {
            Model::Closed { shaped: true, .. } => {
                if stages.is_some() {
                    return invalid("a load shape script and stages cannot be used together".into());
                }
            }
            Model::Closed { users: curve, .. } => {
                *curve = match &stages {
                    Some(stages) => UserCurve::stages(stages),
                    None if users == 0 => return invalid("the number of users must be at least 1".into()),
                    None => UserCurve::fixed(users, spawn_rate),
                };
                if curve.peak() == 0 {
                    return invalid("the stages never start a user: give a target above 0".into());
                }
                // A worker that would never hold a VU is a thread for nothing (one stays, to end the run on time).
                let peak = lane.count_below(curve.peak()).max(1);
                if !keep_workers {
                    plan.workers = plan.workers.min(usize::try_from(peak).unwrap_or(usize::MAX));
                }
            }
            Model::Open { arrivals, max_users, max_delay } => {
                let rate = arrivals.peak_rate();
                if !(rate.is_finite() && rate >= 0.0) {
                    return invalid(format!("the rate must be a number of tasks per second >= 0, not {rate}"));
                }
                if let Some(stages) = &stages {
                    *arrivals = ArrivalCurve::stages(rate, stages);
                }
                if arrivals.peak_rate() <= 0.0 {
                    return invalid("the rate is 0 throughout: no task would ever start".into());
                }
                if *max_users == 0 {
                    return invalid("--max-users must be at least 1".into());
                }
                if max_delay.is_zero() {
                    return invalid("--max-delay must be longer than zero".into());
                }
                // Each worker owns a share of the pool; a worker with no VU could never start a task.
                let pool = lane.count_below(*max_users);
                if pool == 0 {
                    return invalid(format!(
                        "--max-users {max_users} leaves segment {segment} without a VU: give at least {}",
                        segment.count
                    ));
                }
                plan.workers = plan.workers.min(usize::try_from(pool).unwrap_or(usize::MAX));
            }
        }
        if !plan.tasksets.iter().any(|t| t.weight > 0) {
            return invalid(if plan.tasksets.is_empty() {
                "there is no taskset to run".into()
            } else {
                "every taskset has weight 0 (or no task left after the tag selection): enable at least one".into()
            });
        }
        plan.nested = graph::resolve(&plan.tasksets).map_err(Error::InvalidPlan)?;
        for i in graph::reachable(&plan.tasksets, &plan.nested) {
            let ts = &plan.tasksets[i];
            if !ts.tasks.iter().any(|t| t.weight > 0) {
                return invalid(format!("taskset {} needs at least one task with weight >= 1", ts.name));
            }
        }
        Ok(plan)
    }
}

/// A cycle among nested tasksets, as the chain of taskset indices `a, b, a`, if there is one. `nested[i][t]` is the
/// taskset that task `t` of taskset `i` enters.
pub fn nested_cycle(nested: &[Vec<Option<usize>>]) -> Option<Vec<usize>> {
    graph::find_cycle(nested)
}

/// The graph of nested tasksets: which task enters which taskset, checked for unknown names and cycles.
mod graph {
    use crate::taskset::TasksetSpec;

    /// Resolves every nested-taskset task to its taskset's index; an unknown name or a cycle is an error.
    pub(super) fn resolve(tasksets: &[TasksetSpec]) -> Result<Vec<Vec<Option<usize>>>, String> {
        let index = |name: &str| tasksets.iter().position(|t| t.name == name);
        let mut nested = Vec::with_capacity(tasksets.len());
        for ts in tasksets {
            let mut row = Vec::with_capacity(ts.tasks.len());
            for task in &ts.tasks {
                row.push(match &task.nested {
                    None => None,
                    Some(name) => Some(index(name).ok_or_else(|| {
                        format!("taskset {} uses the nested taskset `{name}`, which does not exist", ts.name)
                    })?),
                });
            }
            nested.push(row);
        }
        if let Some(cycle) = find_cycle(&nested) {
            let chain: Vec<&str> = cycle.iter().map(|&i| tasksets[i].name.as_str()).collect();
            return Err(format!("nested tasksets form a cycle: {}", chain.join(" -> ")));
        }
        Ok(nested)
    }

    /// A cycle of the graph as a chain that starts and ends at the same taskset, if there is one.
    pub fn find_cycle(nested: &[Vec<Option<usize>>]) -> Option<Vec<usize>> {
        // 0: not visited, 1: on the current path, 2: done.
        let mut state = vec![0u8; nested.len()];
        let mut path = Vec::new();
        fn visit(at: usize, nested: &[Vec<Option<usize>>], state: &mut [u8], path: &mut Vec<usize>) -> bool {
            state[at] = 1;
            path.push(at);
            for &next in nested[at].iter().flatten() {
                if state[next] == 1 {
                    let from = path.iter().position(|&p| p == next).unwrap_or(0);
                    path.drain(..from);
                    path.push(next);
                    return true;
                }
                if state[next] == 0 && visit(next, nested, state, path) {
                    return true;
                }
            }
            path.pop();
            state[at] = 2;
            false
        }
        (0..nested.len()).find(|&i| state[i] == 0 && visit(i, nested, &mut state, &mut path)).map(|_| path)
    }

    /// The tasksets a VU can be in: the enabled ones, and every nested taskset an enabled task leads to.
    pub(super) fn reachable(tasksets: &[TasksetSpec], nested: &[Vec<Option<usize>>]) -> Vec<usize> {
        let mut seen = vec![false; tasksets.len()];
        let mut stack: Vec<usize> = (0..tasksets.len()).filter(|&i| tasksets[i].weight > 0).collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let enabled = tasksets[i].tasks.iter().zip(&nested[i]).filter(|(t, _)| t.weight > 0);
            stack.extend(enabled.filter_map(|(_, n)| *n));
        }
        (0..tasksets.len()).filter(|&i| seen[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskset::TaskSpec;

    fn ts(name: &str, weight: u32) -> TasksetSpec {
        TasksetSpec { name: name.into(), weight, tasks: vec![TaskSpec::new("t", 1)], ..Default::default() }
    }

    #[test]
    fn rejects_what_cannot_run() {
        assert!(Plan::builder(vec![ts("a", 1)]).users(0).build().is_err());
        assert!(
            Plan::builder(vec![ts("a", 0)]).build().unwrap_err().to_string().contains("every taskset has weight 0")
        );
        assert!(Plan::builder(vec![]).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).spawn_rate(Some(0.0)).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).spawn_rate(Some(f64::NAN)).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).run_time(Some(Duration::ZERO)).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).iterations(Some(0)).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).open(0.0, 10, Duration::from_secs(5)).build().is_err());
        assert!(Plan::builder(vec![ts("a", 1)]).open(5.0, 0, Duration::from_secs(5)).build().is_err());
        let ok = Plan::builder(vec![ts("a", 2), ts("b", 0)]).users(3).build().unwrap();
        assert_eq!(ok.taskset_table().share(0), 1.0);
        assert_eq!(ok.users(), 3);
    }

    #[test]
    fn stages_set_the_run_time_and_the_peak() {
        let stages = vec![
            Stage { duration: Duration::from_secs(10), target: 40.0 },
            Stage { duration: Duration::from_secs(5), target: 0.0 },
        ];
        let p = Plan::builder(vec![ts("a", 1)]).stages(Some(stages.clone())).build().unwrap();
        assert_eq!(p.run_time, Some(Duration::from_secs(15)));
        assert_eq!(p.users(), 40);
        let open = Plan::builder(vec![ts("a", 1)])
            .open(10.0, 50, Duration::from_secs(5))
            .stages(Some(stages))
            .build()
            .unwrap();
        let Model::Open { arrivals, .. } = &open.model else { panic!("open") };
        assert_eq!(arrivals.peak_rate(), 40.0);
        assert_eq!(open.users(), 50);
    }

    fn with_tasks(name: &str, weight: u32, tasks: Vec<TaskSpec>) -> TasksetSpec {
        TasksetSpec { name: name.into(), weight, tasks, ..Default::default() }
    }

    #[test]
    fn nested_tasksets_resolve_and_cycles_are_refused() {
        let parent = with_tasks("p", 1, vec![TaskSpec::new("t", 1), TaskSpec::nested("shop/c", 3)]);
        let child = with_tasks("shop/c", 0, vec![TaskSpec::new("u", 1), TaskSpec::nested("leaf", 1)]);
        let plan = Plan::builder(vec![parent.clone(), child.clone(), ts("leaf", 0)]).build().unwrap();
        assert_eq!(plan.nested_taskset(0, 0), None);
        assert_eq!(plan.nested_taskset(0, 1), Some(1));
        assert_eq!(plan.nested_taskset(1, 1), Some(2));

        let unknown = with_tasks("p", 1, vec![TaskSpec::nested("nope", 1)]);
        let e = Plan::builder(vec![unknown]).build().unwrap_err().to_string();
        assert!(e.contains("`nope`, which does not exist"), "{e}");

        let a = with_tasks("a", 1, vec![TaskSpec::new("t", 1), TaskSpec::nested("b", 1)]);
        let b = with_tasks("b", 0, vec![TaskSpec::nested("c", 1)]);
        let c = with_tasks("c", 0, vec![TaskSpec::nested("b", 1)]);
        let e = Plan::builder(vec![a, b, c]).build().unwrap_err().to_string();
        assert!(e.ends_with("nested tasksets form a cycle: b -> c -> b"), "{e}");
        let own = with_tasks("a", 1, vec![TaskSpec::nested("a", 1)]);
        let e = Plan::builder(vec![own]).build().unwrap_err().to_string();
        assert!(e.ends_with("cycle: a -> a"), "{e}");

        // A nested taskset left without any task (tags) cannot be entered.
        let mut empty = child;
        empty.tasks.iter_mut().for_each(|t| t.weight = 0);
        let e = Plan::builder(vec![parent, empty, ts("leaf", 0)]).build().unwrap_err().to_string();
        assert!(e.contains("taskset shop/c needs at least one task"), "{e}");
    }

    #[test]
    fn a_steered_closed_plan_keeps_its_workers_and_others_need_a_vu_per_worker() {
        let build = |b: PlanBuilder| b.workers(8).build().unwrap().workers;
        assert_eq!(build(Plan::builder(vec![ts("a", 1)]).users(2)), 2, "a worker per VU at most");
        assert_eq!(build(Plan::builder(vec![ts("a", 1)]).users(2).steered(true)), 8);
        let segment = Segment::new(2, 3).unwrap();
        assert_eq!(build(Plan::builder(vec![ts("a", 1)]).users(2).segment(segment)), 1, "a segment with no VU");
        assert_eq!(build(Plan::builder(vec![ts("a", 1)]).users(2).segment(segment).steered(true)), 8);
        // Stages own the curve: no live change can raise the users, so the clamp stays.
        let stages = vec![Stage { duration: Duration::from_secs(5), target: 3.0 }];
        assert_eq!(build(Plan::builder(vec![ts("a", 1)]).stages(Some(stages)).steered(true)), 3);
        // The open model's pool is not changed live: a worker without a pooled VU could never start a task.
        let open = Plan::builder(vec![ts("a", 1)]).open(5.0, 2, Duration::from_secs(1)).steered(true);
        assert_eq!(build(open), 2);
    }

    #[test]
    fn first_tasksets_follow_the_weights_exactly() {
        let plan = Plan::builder(vec![ts("a", 3), ts("off", 0), ts("b", 1)]).build().unwrap();
        assert_eq!(plan.first_tasksets().counts(20), [15, 0, 5]);
    }
}
