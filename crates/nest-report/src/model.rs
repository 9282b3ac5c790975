//! The JSON report: the run's summary plus what was run and the threshold verdicts.
//!
//! `--json` writes a [`Report`]; `nest report` reads one back to render it again. The summary keys are flattened
//! to the top level, so the keys of the engine's summary (`totals`, `requests[]`, ...) stay where tools expect
//! them; `run` and `thresholds` sit beside them. The shape is pinned by `docs/report.schema.json`.

use serde::{Deserialize, Serialize};

use nest_core::stats::Summary;

use crate::thresholds::{Threshold, Verdict, evaluate, gate_verdict};

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// nest's version.
    pub nest_version: String,
    /// The command line.
    pub command: String,
    /// The target.
    pub host: String,
    /// The load, in words (model, users or rate).
    pub load: String,
    /// Worker threads.
    pub workers: usize,
    /// The planned run time, if any.
    pub run_time_s: Option<f64>,
    /// The planned number of tasks, if any.
    pub iterations: Option<u64>,
    /// The load mix.
    pub mix: Vec<MixRow>,
    /// Which run and segment this is, where and when it started (absent in reports of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::identity::RunIdentity>,
    /// A merged report: the segments it holds, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<crate::identity::SegmentRow>,
    /// A merged report that lacks segments: which, and the share of the plan missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<crate::identity::Incomplete>,
    /// The statistics were reset during the run: from when they count (absent otherwise). [`Report::new`] fills
    /// it from the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_reset: Option<StatsReset>,
}

/// When the statistics of a run were reset (its latest reset): the report counts from then.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatsReset {
    /// Wall-clock time, in seconds since the Unix epoch.
    pub at: f64,
    /// Seconds since the load's start (the timeline's `t`).
    pub offset_s: f64,
}

/// The whole JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The results.
    #[serde(flatten)]
    pub summary: Summary,
    /// What was run.
    pub run: RunInfo,
    /// The threshold verdicts, in the order they were given.
    #[serde(default)]
    pub thresholds: Vec<Verdict>,
}

impl Report {
    /// The report of a finished run, in one step: its summary, what was run, and the verdicts of `thresholds` on
    /// the summary (`aborted`: those an `abort` threshold breached during the run, with the second it was), then,
    /// when `gate` is on, the default gate's verdict.
    pub fn new(
        summary: Summary,
        run: RunInfo,
        thresholds: &[Threshold],
        aborted: &[(usize, f64)],
        gate: bool,
    ) -> Report {
        let mut run = run;
        run.stats_reset =
            summary.counted_from_s.map(|offset_s| StatsReset { at: summary.started_at + offset_s, offset_s });
        let mut verdicts = evaluate(thresholds, &summary, aborted);
        if gate {
            verdicts.push(gate_verdict(&summary));
        }
        Report { summary, run, thresholds: verdicts }
    }
}

/// Where a taskset's weight came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `tasksets:` in the config file.
    Config,
    /// The script's `weight(n)` (or 1 when it declares none), because the config does not list it.
    FromScript,
    /// The script's weight, because `use_script_weights` is on.
    Script,
    /// The weight given on the web UI's Start form (`nest run --web`), which differs from the configured one.
    Web,
}

impl Source {
    /// The word the mix table shows.
    pub fn label(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::FromScript => "from script",
            Source::Script => "script",
            Source::Web => "web UI",
        }
    }
}

/// One taskset row of the mix, as printed and as `nest list --json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixRow {
    /// Taskset name.
    pub name: String,
    /// Effective weight.
    pub weight: u32,
    /// Share of VUs picking it, in percent.
    pub share_pct: f64,
    /// Where the weight came from.
    pub source: Source,
    /// Think time.
    pub wait: String,
    /// Whether it has `on_start` / `on_stop`.
    pub on_start: bool,
    /// See `on_start`.
    pub on_stop: bool,
    /// Its tasks.
    pub tasks: Vec<MixTask>,
    /// Closed model: how many of the configured users start in it (VU `j` starts in the taskset a smooth weighted
    /// round-robin gives `j`, so this is exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// The tasksets that use it as a nested task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested_in: Vec<String>,
}

/// One task of a mix row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixTask {
    /// Function name.
    pub name: String,
    /// Weight within the taskset.
    pub weight: u32,
    /// Share within the taskset, in percent.
    pub share_pct: f64,
    /// The task is a nested taskset (of this name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nested: bool,
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn each_source_has_its_json_name_and_its_label() {
        let all = [Source::Config, Source::FromScript, Source::Script, Source::Web];
        let names: Vec<String> =
            all.iter().map(|s| serde_json::to_value(s).unwrap().as_str().unwrap().into()).collect();
        assert_eq!(names, ["config", "from_script", "script", "web"]);
        let labels: Vec<&str> = all.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["config", "from script", "script", "web UI"]);
        assert_eq!(serde_json::from_str::<Source>("\"web\"").unwrap(), Source::Web);
    }
}
