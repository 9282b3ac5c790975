//! What `nest scale` runs: the steps, their timing, the SLOs, the history file and the gate, from the command line
//! over `scale:` in nest.yaml (one rule: a value on the command line wins, then the file, then the default).
//!
//! [`ScaleConfig`] is both: `scale:` deserialises into it (unknown keys refused, durations and percentages parsed
//! by serde so that a bad value is reported at its `file:line:col`), and the command line fills one too.

use std::path::PathBuf;
use std::time::Duration;

use nest_report::thresholds::Threshold;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ScaleError;

/// One step's offered load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// Closed model: this many users.
    Users(u64),
    /// Open model: tasks started per second.
    Rate(f64),
}

impl Load {
    /// The number on the load axis.
    pub fn value(&self) -> f64 {
        match *self {
            Load::Users(n) => n as f64,
            Load::Rate(r) => r,
        }
    }

    /// The load axis' unit.
    pub fn unit(&self) -> &'static str {
        match self {
            Load::Users(_) => "users",
            Load::Rate(_) => "tasks/s",
        }
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Load::Users(n) => write!(f, "{n} users"),
            Load::Rate(r) => write!(f, "{r} tasks/s"),
        }
    }
}

/// `scale:` in nest.yaml, and what the command line says in the same terms.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleConfig {
    /// Closed-model steps: users per step.
    pub steps: Option<Vec<u64>>,
    /// Open-model steps: tasks per second per step.
    pub rate_steps: Option<Vec<f64>>,
    /// How long each step is measured.
    #[serde(default, deserialize_with = "duration")]
    pub step_time: Option<Duration>,
    /// How long each step runs before it is measured.
    #[serde(default, deserialize_with = "duration")]
    pub settle: Option<Duration>,
    /// The SLOs, in the threshold language.
    pub slo: Option<Vec<String>>,
    /// Stop at the first step that breaches an SLO by far.
    pub stop_on_breach: Option<bool>,
    /// The history file.
    pub history: Option<PathBuf>,
    /// The gate's tolerance, as a fraction (`10%` in the file).
    #[serde(default, deserialize_with = "percent")]
    pub tolerance: Option<f64>,
    /// The gate's baseline: the last N comparable entries.
    pub baseline: Option<usize>,
}

/// The default step time.
pub const DEFAULT_STEP_TIME: Duration = Duration::from_secs(30);
/// The default settle time.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(5);
/// The default history file.
pub const DEFAULT_HISTORY: &str = ".nest/history.jsonl";
/// The default tolerance of the gate.
pub const DEFAULT_TOLERANCE: f64 = 0.10;
/// The default number of baseline entries.
pub const DEFAULT_BASELINE: usize = 5;

/// The regression gate's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSpec {
    /// A drop of Capacity@SLO beyond this fraction fails.
    pub tolerance: f64,
    /// How many comparable entries make the baseline.
    pub baseline: usize,
}

/// A checked `nest scale` run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The steps, in order.
    pub steps: Vec<Load>,
    /// Measured time per step.
    pub step_time: Duration,
    /// Unmeasured time before each step's measurement.
    pub settle: Duration,
    /// The SLOs.
    pub slos: Vec<Threshold>,
    /// Stop at the first step that breaches an SLO by far.
    pub stop_on_breach: bool,
    /// The history file.
    pub history: PathBuf,
    /// The gate, when asked for.
    pub gate: Option<GateSpec>,
}

impl Spec {
    /// Layers the command line over the file and checks the result; `gate` is `--gate`.
    pub fn layered(cli: &ScaleConfig, file: Option<&ScaleConfig>, gate: bool) -> Result<Spec, ScaleError> {
        let empty = ScaleConfig::default();
        let file = file.unwrap_or(&empty);
        let usage = |m: String| ScaleError::Usage(m);
        let from_cli = cli.steps.is_some() || cli.rate_steps.is_some();
        let (users, rates) = if from_cli { (&cli.steps, &cli.rate_steps) } else { (&file.steps, &file.rate_steps) };
        let steps: Vec<Load> = match (users, rates) {
            (Some(_), Some(_)) => {
                return Err(usage("give either --steps (users) or --rate-steps (tasks/s), not both".into()));
            }
            (Some(u), None) => u.iter().map(|&n| Load::Users(n)).collect(),
            (None, Some(r)) => r.iter().map(|&r| Load::Rate(r)).collect(),
            (None, None) => {
                return Err(usage(
                    "no steps: give --steps 8,16,32 (users), --rate-steps 100,200 (tasks/s), or `scale: steps:` in \
                     nest.yaml"
                        .into(),
                ));
            }
        };
        check_steps(&steps)?;
        let step_time = cli.step_time.or(file.step_time).unwrap_or(DEFAULT_STEP_TIME);
        let settle = cli.settle.or(file.settle).unwrap_or(DEFAULT_SETTLE);
        whole_seconds("--step-time", step_time, 1)?;
        whole_seconds("--settle", settle, 0)?;
        let (slo_texts, place) = match (&cli.slo, &file.slo) {
            (Some(s), _) => (s.clone(), "--slo"),
            (None, Some(s)) => (s.clone(), "scale.slo in nest.yaml"),
            (None, None) => (Vec::new(), ""),
        };
        let slos = slo_texts
            .iter()
            .map(|t| Threshold::parse(t).map_err(|e| usage(format!("{place}: {e}"))))
            .collect::<Result<_, _>>()?;
        let tolerance = cli.tolerance.or(file.tolerance).unwrap_or(DEFAULT_TOLERANCE);
        if !(0.0..1.0).contains(&tolerance) {
            return Err(usage(format!("--tolerance {}% must lie in [0%, 100%)", tolerance * 100.0)));
        }
        let baseline = cli.baseline.or(file.baseline).unwrap_or(DEFAULT_BASELINE);
        if baseline == 0 {
            return Err(usage("--baseline must be at least 1".into()));
        }
        Ok(Spec {
            steps,
            step_time,
            settle,
            slos,
            stop_on_breach: cli.stop_on_breach.or(file.stop_on_breach).unwrap_or(true),
            history: cli.history.clone().or(file.history.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_HISTORY)),
            gate: gate.then_some(GateSpec { tolerance, baseline }),
        })
    }

    /// The open model (rate steps).
    pub fn is_open(&self) -> bool {
        matches!(self.steps.first(), Some(Load::Rate(_)))
    }

    /// The settings that decide the load, for the plan hash.
    pub fn hash_settings(&self) -> serde_json::Value {
        serde_json::json!({
            "steps": self.steps,
            "step_time_s": self.step_time.as_secs(),
            "settle_s": self.settle.as_secs(),
            "slo": self.slos.iter().map(|t| t.expr.clone()).collect::<Vec<_>>(),
        })
    }
}

/// Steps must be positive and increasing: the stop on breach and the capacity read them in order.
fn check_steps(steps: &[Load]) -> Result<(), ScaleError> {
    if steps.is_empty() {
        return Err(ScaleError::Usage("the step list is empty".into()));
    }
    for (i, s) in steps.iter().enumerate() {
        if !(s.value() > 0.0 && s.value().is_finite()) {
            return Err(ScaleError::Usage(format!("step {} ({s}) must be above 0", i + 1)));
        }
        if i > 0 && s.value() <= steps[i - 1].value() {
            return Err(ScaleError::Usage(format!(
                "steps must increase: step {} ({s}) is not above step {} ({})",
                i + 1,
                i,
                steps[i - 1]
            )));
        }
    }
    Ok(())
}

/// The timeline counts whole seconds, so step and settle times are whole seconds.
fn whole_seconds(flag: &str, d: Duration, min: u64) -> Result<(), ScaleError> {
    if d.subsec_nanos() != 0 || d.as_secs() < min {
        let least = if min == 0 { "0s or more".to_owned() } else { format!("at least {min}s") };
        return Err(ScaleError::Usage(format!(
            "{flag} {} must be whole seconds, {least} (the measurement counts the timeline's seconds)",
            humantime::format_duration(d)
        )));
    }
    Ok(())
}

/// Parses `10%` (or `0.1`) into a fraction.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    number.parse::<f64>().map(|v| v / scale).map_err(|_| format!("`{text}` is not a percentage such as 10%"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration such as 30s ({e})")))
}

fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(Some(n)),
        Raw::Text(t) => parse_percent(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> ScaleConfig {
        ScaleConfig { steps: Some(vec![1, 4, 16]), ..ScaleConfig::default() }
    }

    #[test]
    fn the_command_line_wins_over_the_file_and_defaults_fill_the_rest() {
        let file = ScaleConfig {
            rate_steps: Some(vec![10.0, 20.0]),
            settle: Some(Duration::from_secs(2)),
            slo: Some(vec!["p95 < 300ms".into()]),
            tolerance: Some(0.2),
            ..ScaleConfig::default()
        };
        let spec = Spec::layered(&cli(), Some(&file), true).unwrap();
        assert_eq!(spec.steps, vec![Load::Users(1), Load::Users(4), Load::Users(16)]);
        assert_eq!((spec.step_time, spec.settle), (DEFAULT_STEP_TIME, Duration::from_secs(2)));
        assert_eq!(spec.slos[0].expr, "p95 < 300ms");
        assert_eq!(spec.gate, Some(GateSpec { tolerance: 0.2, baseline: DEFAULT_BASELINE }));
        assert!(spec.stop_on_breach);
        let from_file = Spec::layered(&ScaleConfig::default(), Some(&file), false).unwrap();
        assert!(from_file.is_open() && from_file.gate.is_none());
    }

    #[test]
    fn bad_steps_times_and_slos_are_usage_errors() {
        let err = |c: ScaleConfig| Spec::layered(&c, None, false).unwrap_err().to_string();
        assert!(err(ScaleConfig::default()).contains("no steps"));
        assert!(err(ScaleConfig { steps: Some(vec![4, 2]), ..cli() }).contains("steps must increase"));
        assert!(err(ScaleConfig { steps: Some(vec![0, 2]), ..cli() }).contains("must be above 0"));
        assert!(err(ScaleConfig { rate_steps: Some(vec![1.0]), ..cli() }).contains("not both"));
        let half = ScaleConfig { step_time: Some(Duration::from_millis(1500)), ..cli() };
        assert!(err(half).contains("whole seconds"));
        assert!(err(ScaleConfig { slo: Some(vec!["p95 <".into()]), ..cli() }).starts_with("--slo: threshold `p95 <`"));
        assert!(err(ScaleConfig { tolerance: Some(1.5), ..cli() }).contains("--tolerance"));
    }

    #[test]
    fn scale_config_parses_durations_and_percentages_and_refuses_unknown_keys() {
        let c: ScaleConfig =
            serde_json::from_str(r#"{"steps":[8,16],"step_time":"10s","settle":"1s","tolerance":"15%"}"#).unwrap();
        assert_eq!(
            (c.step_time, c.settle, c.tolerance),
            (Some(Duration::from_secs(10)), Some(Duration::from_secs(1)), Some(0.15))
        );
        let e = serde_json::from_str::<ScaleConfig>(r#"{"step_time":"soon"}"#).unwrap_err().to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
        let e = serde_json::from_str::<ScaleConfig>(r#"{"stepz":[1]}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `stepz`"), "{e}");
        assert_eq!(parse_percent("10%"), Ok(0.1));
        assert!(parse_percent("ten").is_err());
    }
}
