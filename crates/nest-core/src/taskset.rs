//! What the scheduler knows about a taskset: names, weights and think time, and nothing about the script language.
//!
//! The binding crate compiles each script into a [`TasksetSpec`]; the scheduler only needs the weights to pick,
//! the wait time to pace, and indices to hand back to the [`Behaviour`](crate::Behaviour) that runs the code.

use std::time::Duration;

use rand::Rng;

/// One taskset: a weighted group of tasks with optional `on_start`/`on_stop` hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct TasksetSpec {
    /// The taskset's name: its path under the taskset folder without the extension (`shop/browse`).
    pub name: String,
    /// The taskset's weight in the mix; 0 disables it.
    pub weight: u32,
    /// The tasks, in declaration order.
    pub tasks: Vec<TaskSpec>,
    /// Think time between two tasks of a VU in this taskset.
    pub wait: WaitTime,
    /// Whether the taskset defines `on_start`.
    pub has_on_start: bool,
    /// Whether the taskset defines `on_stop`.
    pub has_on_stop: bool,
}

/// One task of a taskset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The task's name (its function's name).
    pub name: String,
    /// Its weight within the taskset, at least 1.
    pub weight: u32,
}

/// Think time between tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum WaitTime {
    /// Always the same pause.
    Constant(Duration),
    /// A pause drawn uniformly from `[min, max]`.
    Between(Duration, Duration),
}

impl Default for WaitTime {
    fn default() -> Self {
        WaitTime::Constant(Duration::ZERO)
    }
}

impl WaitTime {
    /// The pause before the next task.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            WaitTime::Constant(d) => d,
            WaitTime::Between(min, max) if max > min => {
                Duration::from_secs_f64(rng.random_range(min.as_secs_f64()..=max.as_secs_f64()))
            }
            WaitTime::Between(min, _) => min,
        }
    }
}

impl std::fmt::Display for WaitTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitTime::Constant(d) => write!(f, "constant({})", d.as_secs_f64()),
            WaitTime::Between(a, b) => {
                write!(f, "between({}, {})", a.as_secs_f64(), b.as_secs_f64())
            }
        }
    }
}

/// Which piece of a taskset a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The `on_start` hook.
    OnStart,
    /// The task at this index of [`TasksetSpec::tasks`].
    Task(usize),
    /// The `on_stop` hook.
    OnStop,
}

impl Slot {
    /// The name this slot is reported under.
    pub fn name<'a>(&self, taskset: &'a TasksetSpec) -> &'a str {
        match *self {
            Slot::OnStart => "on_start",
            Slot::Task(i) => &taskset.tasks[i].name,
            Slot::OnStop => "on_stop",
        }
    }

    /// A dense index for per-slot counters: tasks first, then `on_start`, then `on_stop`.
    pub fn index(&self, taskset: &TasksetSpec) -> usize {
        match *self {
            Slot::Task(i) => i,
            Slot::OnStart => taskset.tasks.len(),
            Slot::OnStop => taskset.tasks.len() + 1,
        }
    }

    /// The slot at a dense index (the inverse of [`Slot::index`]).
    pub fn from_index(index: usize, taskset: &TasksetSpec) -> Slot {
        let n = taskset.tasks.len();
        match index {
            i if i < n => Slot::Task(i),
            i if i == n => Slot::OnStart,
            _ => Slot::OnStop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    #[test]
    fn between_stays_in_range_and_constant_is_constant() {
        let mut rng = SmallRng::seed_from_u64(1);
        let w = WaitTime::Between(Duration::from_millis(500), Duration::from_secs(2));
        for _ in 0..1000 {
            let d = w.sample(&mut rng);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(2));
        }
        assert_eq!(
            WaitTime::Constant(Duration::from_secs(1)).sample(&mut rng),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn slot_indices_round_trip() {
        let ts = TasksetSpec {
            name: "a".into(),
            weight: 1,
            tasks: vec![
                TaskSpec {
                    name: "t".into(),
                    weight: 1
                };
                3
            ],
            wait: WaitTime::default(),
            has_on_start: true,
            has_on_stop: true,
        };
        for slot in [Slot::Task(0), Slot::Task(2), Slot::OnStart, Slot::OnStop] {
            assert_eq!(Slot::from_index(slot.index(&ts), &ts), slot);
        }
    }
}
