//! The JSON report: the run's summary plus what was run and the threshold verdicts.
//!
//! `--json` writes a [`Report`]; `nest report` reads one back to render it again. The summary keys are flattened
//! to the top level, so the keys of the engine's summary (`totals`, `requests[]`, ...) stay where tools expect
//! them; `run` and `thresholds` sit beside them. The shape is pinned by `docs/report.schema.json`.

use serde::{Deserialize, Serialize};

use nest_core::stats::Summary;

use crate::mix::MixRow;
use crate::thresholds::Verdict;

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
