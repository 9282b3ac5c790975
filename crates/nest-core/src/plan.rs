//! A validated description of one run: which tasksets, how many users, how fast, for how long.
//!
//! Raw options (flags, config, environment) are resolved by the caller; the [`PlanBuilder`] checks what only makes
//! sense together, so that every problem is reported before a single request is sent.

use std::time::Duration;

use crate::error::Error;
use crate::fiber::FiberPool;
use crate::taskset::TasksetSpec;
use crate::weights::WeightedTable;

/// A runnable plan. Build it with [`Plan::builder`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every discovered taskset, enabled or not (indices are stable).
    pub tasksets: Vec<TasksetSpec>,
    /// Number of virtual users.
    pub users: u64,
    /// Users started per second; `None` starts them all at once.
    pub spawn_rate: Option<f64>,
    /// How long the load runs; `None` runs until stopped.
    pub run_time: Option<Duration>,
    /// Worker threads.
    pub workers: usize,
    /// How long a stop waits for calls in flight before cancelling them.
    pub stop_timeout: Duration,
    /// Seed of every VU's random choices (VU `i` uses a stream derived from `seed` and `i`).
    pub seed: u64,
    /// Reserved size of each fiber stack, in bytes.
    pub stack_size: usize,
}

impl Plan {
    /// Starts a plan over these tasksets.
    pub fn builder(tasksets: Vec<TasksetSpec>) -> PlanBuilder {
        PlanBuilder {
            plan: Plan {
                tasksets,
                users: 1,
                spawn_rate: None,
                run_time: None,
                workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                stop_timeout: Duration::from_secs(10),
                seed: rand::random(),
                stack_size: FiberPool::default_stack_size(),
            },
        }
    }

    /// The taskset table weighted by the plan's weights.
    pub fn taskset_table(&self) -> WeightedTable {
        let weights: Vec<u32> = self.tasksets.iter().map(|t| t.weight).collect();
        WeightedTable::new(&weights)
            .unwrap_or_else(|| unreachable!("a built plan has an enabled taskset"))
    }
}

/// Builds and validates a [`Plan`].
#[derive(Debug, Clone)]
pub struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    /// Number of virtual users (at least 1).
    pub fn users(mut self, users: u64) -> Self {
        self.plan.users = users;
        self
    }
    /// Users started per second; `None` starts all at once.
    pub fn spawn_rate(mut self, rate: Option<f64>) -> Self {
        self.plan.spawn_rate = rate;
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

    /// Checks the plan and returns it.
    pub fn build(self) -> Result<Plan, Error> {
        let p = self.plan;
        let invalid = |m: String| Err(Error::InvalidPlan(m));
        if p.users == 0 {
            return invalid("the number of users must be at least 1".into());
        }
        if p.workers == 0 {
            return invalid("the number of workers must be at least 1".into());
        }
        if let Some(rate) = p.spawn_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(format!(
                "the spawn rate must be a positive number of users per second, not {rate}"
            ));
        }
        if p.run_time == Some(Duration::ZERO) {
            return invalid("the run time must be longer than zero".into());
        }
        if !p.tasksets.iter().any(|t| t.weight > 0) {
            return invalid(if p.tasksets.is_empty() {
                "there is no taskset to run".into()
            } else {
                "every taskset has weight 0: enable at least one".into()
            });
        }
        for ts in p.tasksets.iter().filter(|t| t.weight > 0) {
            if ts.tasks.is_empty() || ts.tasks.iter().any(|t| t.weight == 0) {
                return invalid(format!(
                    "taskset {} needs at least one task, each with weight >= 1",
                    ts.name
                ));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskset::{TaskSpec, WaitTime};

    fn ts(name: &str, weight: u32) -> TasksetSpec {
        TasksetSpec {
            name: name.into(),
            weight,
            tasks: vec![TaskSpec {
                name: "t".into(),
                weight: 1,
            }],
            wait: WaitTime::default(),
            has_on_start: false,
            has_on_stop: false,
        }
    }

    #[test]
    fn rejects_what_cannot_run() {
        assert!(Plan::builder(vec![ts("a", 1)]).users(0).build().is_err());
        assert!(
            Plan::builder(vec![ts("a", 0)])
                .build()
                .unwrap_err()
                .to_string()
                .contains("every taskset has weight 0")
        );
        assert!(Plan::builder(vec![]).build().is_err());
        assert!(
            Plan::builder(vec![ts("a", 1)])
                .spawn_rate(Some(0.0))
                .build()
                .is_err()
        );
        assert!(
            Plan::builder(vec![ts("a", 1)])
                .spawn_rate(Some(f64::NAN))
                .build()
                .is_err()
        );
        assert!(
            Plan::builder(vec![ts("a", 1)])
                .run_time(Some(Duration::ZERO))
                .build()
                .is_err()
        );
        let ok = Plan::builder(vec![ts("a", 2), ts("b", 0)])
            .users(3)
            .build()
            .unwrap();
        assert_eq!(ok.taskset_table().share(0), 1.0);
    }
}
