//! The result of `nest scale` as one JSON document (`--json`), pinned by `docs/scale.schema.json`: what was run,
//! every step with its full run report embedded (so a step's histograms stay mergeable with `nest merge`), the
//! capacity and the model.

use serde::{Deserialize, Serialize};

use crate::analysis::{Capacity, Scalability};
use crate::history::GitInfo;
use crate::step::StepResult;

/// The whole `nest scale` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleDoc {
    /// nest's version.
    pub nest_version: String,
    /// When the first step started, in seconds since the Unix epoch.
    pub started_at: f64,
    /// `closed` (user steps) or `open` (rate steps).
    pub model: String,
    /// Measured seconds per step.
    pub step_time_s: u64,
    /// Unmeasured seconds before each step's measurement.
    pub settle_s: u64,
    /// The SLOs as written.
    pub slos: Vec<String>,
    /// The plan hash: the scripts, the mix and the load settings.
    pub plan_hash: String,
    /// The machine nest ran on.
    pub host: String,
    /// The target (credentials redacted).
    pub target: String,
    /// The git state of the working directory, when it is a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// Why the steps stopped before the last one, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The steps that ran, in order.
    pub steps: Vec<StepResult>,
    /// Capacity@SLO.
    pub capacity: Capacity,
    /// The USL model.
    pub scalability: Scalability,
}
