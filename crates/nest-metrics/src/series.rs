//! The series: what a run's snapshot says, as Prometheus families with bounded labels and counters that never go
//! down.
//!
//! [`Series`] is fed every snapshot the exporter sees and keeps what must outlive one: the bases carried over a
//! reset of the statistics (see [`crate::monotonic`]) and the request names admitted under the label cap. Its
//! output, [`Families`], is a plain model that both encoders read: the text exposition (`text.rs`) and remote
//! write (`remote.rs`), so a scrape and a push always say the same.

use std::collections::{BTreeMap, BTreeSet};

use nest_core::Slot;
use nest_core::TasksetSpec;
use nest_core::snapshot::{RunPhase, Snapshot};
use nest_core::stats::FailureKind;
use nest_report::thresholds::{Observed, Threshold, evaluate_observed};

use crate::buckets::Buckets;
use crate::monotonic::Monotonic;

/// The request name that names beyond the cap are folded into.
pub const OTHER: &str = "(other)";

/// The default cap on distinct (method, name) pairs.
pub const DEFAULT_NAME_CAP: usize = 100;

/// What kind of family, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; exposed as `NAME_total`.
    Counter,
    /// Any value now.
    Gauge,
    /// Buckets, `_sum` and `_count`.
    Histogram,
}

/// One value of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's or gauge's value.
    Number(f64),
    /// A histogram (sums in microseconds; exposed in seconds).
    Histogram(Buckets),
}

/// A metric family: its name (without `_total`), help, kind, and its series by labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name, e.g. `nest_requests` (a counter is exposed as `nest_requests_total`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// The kind.
    pub kind: Kind,
    /// The series: label pairs (in this order) and value.
    pub series: Vec<(Vec<(&'static str, String)>, Value)>,
}

/// Every family of one moment of a run.
pub type Families = Vec<Family>;

/// How the series are built.
#[derive(Debug, Clone)]
pub struct SeriesOptions {
    /// At most this many distinct (method, name) pairs get their own series; later ones are folded into
    /// `name="(other)"`.
    pub name_cap: usize,
    /// The run's tasksets, to name the task counters (`taskset`, `task`); without them the labels are indices.
    pub tasksets: Vec<TasksetSpec>,
    /// The run's thresholds, evaluated on each snapshot for `nest_threshold_ok`.
    pub thresholds: Vec<Threshold>,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        SeriesOptions { name_cap: DEFAULT_NAME_CAP, tasksets: Vec::new(), thresholds: Vec::new() }
    }
}

/// The exporter's memory between snapshots.
#[derive(Debug, Default)]
pub struct Series {
    options: SeriesOptions,
    /// (method, name) pairs with their own series, in the order they appeared.
    admitted: BTreeSet<(String, String)>,
    /// Whether a name has been folded (the warning is given once).
    folded: bool,
    requests: Monotonic<(String, String, String), u64>,
    failures: Monotonic<(String, String, String), u64>,
    kinds: BTreeMap<(String, String, String), FailureKind>,
    durations: Monotonic<(String, String), Buckets>,
    tasks: Monotonic<(usize, usize), u64>,
    task_errors: Monotonic<(usize, usize), u64>,
    dropped: Monotonic<(), u64>,
}

impl Series {
    /// Series built as `options` say.
    pub fn new(options: SeriesOptions) -> Series {
        Series { options, ..Series::default() }
    }

    /// The families after `snapshot`, and a warning the first time a request name is folded.
    pub fn observe(&mut self, snapshot: &Snapshot) -> (Families, Option<String>) {
        let warning = self.admit(snapshot);
        let totals = &snapshot.totals;
        let mut requests = BTreeMap::new();
        let mut durations = BTreeMap::new();
        for ((name, method), c) in &totals.requests {
            let known: u64 = c.statuses.values().sum();
            for (&status, &n) in &c.statuses {
                requests.insert((method.clone(), name.clone(), status.to_string()), n);
            }
            if c.count > known {
                requests.insert((method.clone(), name.clone(), "unknown".to_owned()), c.count - known);
            }
            durations.insert((method.clone(), name.clone()), Buckets::of(&c.latency));
        }
        let mut failures = BTreeMap::new();
        for ((method, name, reason), &(kind, n)) in &totals.failures {
            let key = (method.clone(), name.clone(), reason.clone());
            self.kinds.insert(key.clone(), kind);
            failures.insert(key, n);
        }
        let (mut tasks, mut task_errors) = (BTreeMap::new(), BTreeMap::new());
        for (t, slots) in totals.slots.iter().enumerate() {
            for (s, c) in slots.iter().enumerate().filter(|(_, c)| c.runs > 0) {
                tasks.insert((t, s), c.runs);
                task_errors.insert((t, s), c.errors);
            }
        }
        let (tasks, task_errors) = self.task_families(tasks, task_errors);
        let dropped = self.dropped.update(BTreeMap::from([((), totals.dropped)])).into_values();
        let finished = f64::from(u8::from(snapshot.phase == RunPhase::Drain));
        let families = vec![
            self.requests_family(requests),
            self.failures_family(failures),
            self.durations_family(durations),
            gauge("nest_users", "Active virtual users.", vec![(vec![], snapshot.users as f64)]),
            tasks,
            task_errors,
            counter(
                "nest_dropped_iterations",
                "Open model: task starts dropped because no virtual user was free in time.",
                dropped.map(|n| (vec![], n as f64)).collect(),
            ),
            self.thresholds_family(snapshot),
            gauge(
                "nest_run_finished",
                "1 once the run is over: these are its final figures.",
                vec![(vec![], finished)],
            ),
        ];
        (families, warning)
    }

    /// Admits the snapshot's new (method, name) pairs under the cap; the warning, the first time one is folded.
    fn admit(&mut self, snapshot: &Snapshot) -> Option<String> {
        let mut warning = None;
        for (name, method) in snapshot.totals.requests.keys() {
            let key = (method.clone(), name.clone());
            if self.admitted.contains(&key) || name == OTHER {
                continue;
            }
            if self.admitted.len() < self.options.name_cap {
                self.admitted.insert(key);
            } else if !self.folded {
                self.folded = true;
                warning = Some(format!(
                    "more than {} request names: the metrics fold the others into name=\"{OTHER}\" (first folded: \
                     {method} {name}); group URLs with `name:` in the script",
                    self.options.name_cap
                ));
            }
        }
        warning
    }

    /// The name label of `(method, name)`: itself, or `(other)` beyond the cap.
    fn label<'a>(&self, method: &str, name: &'a str) -> &'a str {
        if self.admitted.contains(&(method.to_owned(), name.to_owned())) { name } else { OTHER }
    }

    fn requests_family(&mut self, now: BTreeMap<(String, String, String), u64>) -> Family {
        let mut folded: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for ((method, name, status), n) in self.requests.update(now) {
            let label = self.label(&method, &name).to_owned();
            *folded.entry((method, label, status)).or_default() += n;
        }
        let series = folded
            .into_iter()
            .map(|((method, name, status), n)| (vec![("method", method), ("name", name), ("status", status)], n as f64))
            .collect();
        counter("nest_requests", "Requests completed, by HTTP status (0: no response).", series)
    }

    fn failures_family(&mut self, now: BTreeMap<(String, String, String), u64>) -> Family {
        let mut folded: BTreeMap<(String, String, &'static str), u64> = BTreeMap::new();
        for (key, n) in self.failures.update(now) {
            let kind = kind_name(self.kinds.get(&key).copied().unwrap_or(FailureKind::Status));
            let (method, name, _) = key;
            let label = self.label(&method, &name).to_owned();
            *folded.entry((method, label, kind)).or_default() += n;
        }
        let series = folded
            .into_iter()
            .map(|((method, name, kind), n)| {
                (vec![("method", method), ("name", name), ("reason_kind", kind.to_owned())], n as f64)
            })
            .collect();
        counter("nest_request_failures", "Requests counted as failed: transport, status or check.", series)
    }

    fn durations_family(&mut self, now: BTreeMap<(String, String), Buckets>) -> Family {
        let mut folded: BTreeMap<(String, String), Buckets> = BTreeMap::new();
        for ((method, name), b) in self.durations.update(now) {
            let label = self.label(&method, &name).to_owned();
            folded.entry((method, label)).or_default().add(&b);
        }
        Family {
            name: "nest_request_duration_seconds",
            help: "Response time: from sending the request to the end of the response.",
            kind: Kind::Histogram,
            series: folded
                .into_iter()
                .map(|((method, name), b)| (vec![("method", method), ("name", name)], Value::Histogram(b)))
                .collect(),
        }
    }

    fn task_families(
        &mut self,
        runs: BTreeMap<(usize, usize), u64>,
        errors: BTreeMap<(usize, usize), u64>,
    ) -> (Family, Family) {
        let (runs, errors) = (self.tasks.update(runs), self.task_errors.update(errors));
        (
            counter("nest_tasks", "Task and hook calls that ran to an end.", self.slot_series(runs)),
            counter("nest_task_errors", "Task and hook calls that ended in a script error.", self.slot_series(errors)),
        )
    }

    fn slot_series(&self, values: BTreeMap<(usize, usize), u64>) -> Vec<(Vec<(&'static str, String)>, f64)> {
        values
            .into_iter()
            .map(|((t, s), n)| {
                let (taskset, task) = match self.options.tasksets.get(t) {
                    Some(ts) => (ts.name.clone(), Slot::from_index(s, ts).name(ts).to_owned()),
                    None => (t.to_string(), s.to_string()),
                };
                (vec![("taskset", taskset), ("task", task)], n as f64)
            })
            .collect()
    }

    fn thresholds_family(&self, snapshot: &Snapshot) -> Family {
        let thresholds = &self.options.thresholds;
        let observed = Observed::from_aggregate(&snapshot.totals, snapshot.elapsed);
        let series = evaluate_observed(thresholds, &observed, &[])
            .into_iter()
            .map(|v| (vec![("expr", v.expr)], f64::from(u8::from(v.passed))))
            .collect();
        gauge("nest_threshold_ok", "1 while the threshold holds on the figures so far, else 0.", series)
    }
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Transport => "transport",
        FailureKind::Status => "status",
        FailureKind::Check => "check",
    }
}

fn counter(name: &'static str, help: &'static str, series: Vec<(Vec<(&'static str, String)>, f64)>) -> Family {
    family(name, help, Kind::Counter, series)
}

fn gauge(name: &'static str, help: &'static str, series: Vec<(Vec<(&'static str, String)>, f64)>) -> Family {
    family(name, help, Kind::Gauge, series)
}

fn family(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    series: Vec<(Vec<(&'static str, String)>, f64)>,
) -> Family {
    Family { name, help, kind, series: series.into_iter().map(|(l, v)| (l, Value::Number(v))).collect() }
}
