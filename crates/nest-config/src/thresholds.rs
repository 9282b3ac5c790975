//! Thresholds as the command line and `nest.yaml` give them: an expression, or a map with `abort` and `delay`.
//!
//! The language and its evaluation live in `nest_report::thresholds`; this module only knows where a threshold was
//! written, so that a malformed one is a usage error naming its place (`--threshold`, `NEST_THRESHOLDS` or
//! `nest.yaml:7:5`) before any load.

use std::time::Duration;

use nest_report::thresholds::Threshold;
use serde::Deserialize;

use crate::parse::UsageError;

/// A threshold as written in `nest.yaml`: an expression, or a map with `abort` and `delay`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    /// Just the expression.
    Expr(String),
    /// The expression with options.
    Full {
        /// The expression.
        expr: String,
        /// Stop the run as soon as it is breached (after `delay`).
        #[serde(default)]
        abort: bool,
        /// Warm-up before an abort threshold is checked.
        #[serde(default, deserialize_with = "crate::parse::optional_duration")]
        delay: Option<Duration>,
    },
}

impl ThresholdSpec {
    /// Parses the spec; errors name `place` (`--threshold` or `nest.yaml:7:5`) and the column in the expression.
    pub fn parse(&self, place: &str) -> Result<Threshold, UsageError> {
        let (expr, abort, delay) = match self {
            ThresholdSpec::Expr(e) => (e.as_str(), false, None),
            ThresholdSpec::Full { expr, abort, delay } => (expr.as_str(), *abort, *delay),
        };
        Threshold::parse(expr)
            .map(|t| t.with_abort(abort, delay.unwrap_or_default()))
            .map_err(|e| UsageError(format!("{place}: {e}")))
    }
}
