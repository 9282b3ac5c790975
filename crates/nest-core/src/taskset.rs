//! What the scheduler knows about a taskset: names, weights and think time, and nothing about the script language.
//!
//! The binding crate compiles each script into a [`TasksetSpec`]; the scheduler only needs the weights to pick,
//! the wait time to pace, and indices to hand back to the [`Behaviour`](crate::Behaviour) that runs the code.

use std::time::Duration;

use rand::Rng;

/// One taskset: a weighted group of tasks with optional `on_start`/`on_stop` hooks.
#[derive(Debug, Clone, PartialEq, Default)]
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
    /// Run the tasks in declaration order (a weight of n runs a task n times in a row) instead of at random.
    pub sequential: bool,
    /// Labels of the whole taskset, for `--tags` / `--exclude-tags`.
    pub tags: Vec<String>,
}

/// One task of a taskset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskSpec {
    /// The task's name (its function's name).
    pub name: String,
    /// Its weight within the taskset, at least 1 (0 once a tag selection excludes it).
    pub weight: u32,
    /// Labels of this task (its taskset's labels apply too).
    pub tags: Vec<String>,
    /// A nested taskset: this task enters the taskset of this name (its `on_start`, its tasks by its own weights
    /// with its own wait time, until it interrupts) instead of calling a function.
    pub nested: Option<String>,
}

impl TaskSpec {
    /// A task with no tags.
    pub fn new(name: impl Into<String>, weight: u32) -> TaskSpec {
        TaskSpec { name: name.into(), weight, tags: Vec::new(), nested: None }
    }

    /// A task that enters the nested taskset `taskset`; it is reported under that name.
    pub fn nested(taskset: impl Into<String>, weight: u32) -> TaskSpec {
        let taskset = taskset.into();
        TaskSpec { name: taskset.clone(), weight, tags: Vec::new(), nested: Some(taskset) }
    }
}

impl TasksetSpec {
    /// Applies a tag selection with Locust's rules: with `include` non-empty, only tasks carrying one of those tags
    /// (their own or their taskset's) stay; then tasks carrying any `exclude` tag go. Excluded tasks keep their
    /// place with weight 0; a taskset left with no task gets weight 0.
    pub fn select_tags(&mut self, include: &[String], exclude: &[String]) {
        let has =
            |task: &TaskSpec, wanted: &[String]| wanted.iter().any(|w| self.tags.contains(w) || task.tags.contains(w));
        let keep: Vec<bool> =
            self.tasks.iter().map(|t| (include.is_empty() || has(t, include)) && !has(t, exclude)).collect();
        for (task, keep) in self.tasks.iter_mut().zip(keep) {
            if !keep {
                task.weight = 0;
            }
        }
        if self.tasks.iter().all(|t| t.weight == 0) {
            self.weight = 0;
        }
    }
}

/// The longest duration a script or the config may give: one year. Longer pauses and timeouts are mistakes (a
/// `1e300` typed for `1e-3`), and this bound keeps every later addition of times far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A number of seconds that is not a usable duration: not finite, below zero, or above [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0:?} is not a duration: give a number of seconds from 0 to {max} ({days} days)", max = MAX_DURATION.as_secs(), days = MAX_DURATION.as_secs() / 86_400)]
pub struct BadDuration(pub f64);

/// The one checked conversion of seconds (from a script or a config) into a [`Duration`]: finite, >= 0 and at most
/// [`MAX_DURATION`], or an error (never a panic, unlike `Duration::from_secs_f64`).
pub fn duration_from_secs(secs: f64) -> Result<Duration, BadDuration> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(BadDuration(secs)),
    }
}

/// Think time between tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum WaitTime {
    /// Always the same pause.
    Constant(Duration),
    /// A pause drawn uniformly from `[min, max]`.
    Between(Duration, Duration),
    /// Each task starts this long after the previous one started (the pause shrinks by the task's duration).
    ConstantPacing(Duration),
    /// This many tasks per second per VU: pacing of `1 / n` seconds.
    ConstantThroughput(f64),
    /// The script computes each pause (`wait_time(|| ...)`): the scheduler asks the
    /// [`Behaviour`](crate::Behaviour) through [`Behaviour::wait_time`](crate::Behaviour::wait_time).
    Custom,
}

/// The pause before the next task, and whether the pacing was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pause {
    /// How long to wait.
    pub wait: Duration,
    /// The task took longer than its pacing interval: the next one starts late.
    pub missed: bool,
}

impl Default for WaitTime {
    fn default() -> Self {
        WaitTime::Constant(Duration::ZERO)
    }
}

impl WaitTime {
    /// Whether [`WaitTime::pause`] depends on how long the task took (pacing): otherwise no clock is read for it.
    pub fn paces(&self) -> bool {
        matches!(self, WaitTime::ConstantPacing(_) | WaitTime::ConstantThroughput(_))
    }

    /// The pause before the next task, given how long the task that just ended took.
    pub fn pause<R: Rng + ?Sized>(&self, rng: &mut R, task_took: Duration) -> Pause {
        let interval = match *self {
            WaitTime::Constant(d) => return Pause { wait: d, missed: false },
            WaitTime::Between(min, max) if max > min => {
                let secs = rng.random_range(min.as_secs_f64()..=max.as_secs_f64());
                // Both bounds are durations, so the draw is one; rounding can only step just past `max`.
                let wait = Duration::try_from_secs_f64(secs).unwrap_or(max).clamp(min, max);
                return Pause { wait, missed: false };
            }
            WaitTime::Between(min, _) => return Pause { wait: min, missed: false },
            // The scheduler asks the behaviour for a custom pause; on its own it does not wait.
            WaitTime::Custom => return Pause { wait: Duration::ZERO, missed: false },
            WaitTime::ConstantPacing(d) => d,
            // Scripts check the rate (see `throughput_interval`); a rate built elsewhere is bounded the same way.
            WaitTime::ConstantThroughput(n) => throughput_interval(n).unwrap_or(MAX_DURATION),
        };
        match interval.checked_sub(task_took) {
            Some(wait) => Pause { wait, missed: false },
            None => Pause { wait: Duration::ZERO, missed: true },
        }
    }
}

/// The pacing interval of `constant_throughput(n)`: `1 / n` seconds, for a rate `n` above 0 whose interval is a
/// valid duration (so `n >= 1 / MAX_DURATION`).
pub fn throughput_interval(n: f64) -> Result<Duration, BadDuration> {
    if n > 0.0 { duration_from_secs(1.0 / n) } else { Err(BadDuration(f64::INFINITY)) }
}

impl std::fmt::Display for WaitTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitTime::Constant(d) => write!(f, "constant({})", d.as_secs_f64()),
            WaitTime::Between(a, b) => write!(f, "between({}, {})", a.as_secs_f64(), b.as_secs_f64()),
            WaitTime::ConstantPacing(d) => write!(f, "constant_pacing({})", d.as_secs_f64()),
            WaitTime::ConstantThroughput(n) => write!(f, "constant_throughput({n})"),
            WaitTime::Custom => write!(f, "custom"),
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn between_stays_in_range_and_constant_is_constant() {
        let mut rng = SmallRng::seed_from_u64(1);
        let w = WaitTime::Between(ms(500), ms(2000));
        for _ in 0..1000 {
            let p = w.pause(&mut rng, ms(10));
            assert!(p.wait >= ms(500) && p.wait <= ms(2000) && !p.missed);
        }
        assert_eq!(WaitTime::Constant(ms(1000)).pause(&mut rng, ms(3000)), Pause { wait: ms(1000), missed: false });
    }

    #[test]
    fn pacing_subtracts_the_task_time_and_counts_misses() {
        let mut rng = SmallRng::seed_from_u64(1);
        let pacing = WaitTime::ConstantPacing(ms(1000));
        assert_eq!(pacing.pause(&mut rng, ms(300)), Pause { wait: ms(700), missed: false });
        assert_eq!(pacing.pause(&mut rng, ms(1000)), Pause { wait: ms(0), missed: false });
        assert_eq!(pacing.pause(&mut rng, ms(1500)), Pause { wait: ms(0), missed: true });
        let throughput = WaitTime::ConstantThroughput(4.0);
        assert_eq!(throughput.pause(&mut rng, ms(50)), Pause { wait: ms(200), missed: false });
    }

    #[test]
    fn durations_are_checked_not_panicking() {
        assert_eq!(duration_from_secs(1.5), Ok(ms(1500)));
        assert_eq!(duration_from_secs(0.0), Ok(Duration::ZERO));
        assert_eq!(duration_from_secs(MAX_DURATION.as_secs_f64()), Ok(MAX_DURATION));
        for bad in [1e300, -1.0, f64::NAN, f64::INFINITY, MAX_DURATION.as_secs_f64() + 1.0] {
            assert!(duration_from_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(
            BadDuration(1e300).to_string(),
            "1e300 is not a duration: give a number of seconds from 0 to 31536000 (365 days)"
        );
        assert!(throughput_interval(1e-300).is_err() && throughput_interval(0.0).is_err());
        assert_eq!(throughput_interval(4.0), Ok(ms(250)));
        // A rate too low for a duration, built outside a script, paces at the longest interval instead of panicking.
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(WaitTime::ConstantThroughput(1e-300).pause(&mut rng, ms(1)).wait, MAX_DURATION - ms(1));
    }

    #[test]
    fn tag_selection_follows_locust() {
        let tagged = |name: &str, tags: &[&str]| TaskSpec {
            name: name.into(),
            weight: 1,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            nested: None,
        };
        let base = TasksetSpec {
            name: "a".into(),
            weight: 1,
            tasks: vec![tagged("x", &["slow"]), tagged("y", &[]), tagged("z", &["checkout", "slow"])],
            tags: vec!["shop".into()],
            ..Default::default()
        };
        let weights = |inc: &[&str], exc: &[&str]| {
            let mut t = base.clone();
            let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            t.select_tags(&v(inc), &v(exc));
            (t.weight, t.tasks.iter().map(|t| t.weight).collect::<Vec<_>>())
        };
        assert_eq!(weights(&["slow"], &[]), (1, vec![1, 0, 1]));
        assert_eq!(weights(&["shop"], &["checkout"]), (1, vec![1, 1, 0]));
        assert_eq!(weights(&[], &["slow"]), (1, vec![0, 1, 0]));
        assert_eq!(weights(&["none"], &[]), (0, vec![0, 0, 0]));
        assert_eq!(weights(&[], &["shop"]), (0, vec![0, 0, 0]));
    }

    #[test]
    fn slot_indices_round_trip() {
        let ts = TasksetSpec {
            name: "a".into(),
            weight: 1,
            tasks: vec![TaskSpec::new("t", 1); 3],
            has_on_start: true,
            has_on_stop: true,
            ..Default::default()
        };
        for slot in [Slot::Task(0), Slot::Task(2), Slot::OnStart, Slot::OnStop] {
            assert_eq!(Slot::from_index(slot.index(&ts), &ts), slot);
        }
    }
}
