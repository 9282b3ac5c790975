//! The page before the run: what will run (the mix, the load, the host) and what the user may change before
//! pressing Start.
//!
//! The UI edits numbers only: taskset weights, users and spawn rate (closed model) or the rate (open model), and
//! the run time. Never a script, never the host. A [`StartRequest`] is checked here as the config's values are
//! (a weight is a whole number, at least one is above 0, users are at least 1, rates are positive), so that a
//! bad form gets a clear 400 message; the caller then builds the plan, which may still refuse it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use nest_report::model::MixRow;

/// What the page shows before the run.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// The mix, as `nest list` shows it.
    pub mix: Vec<MixRow>,
    /// The load's numbers.
    pub load: LoadSetup,
    /// The target (redacted), read-only.
    pub host: String,
    /// The configured run time, seconds.
    pub run_time_s: Option<f64>,
    /// The configured number of tasks, if any.
    pub iterations: Option<u64>,
}

/// The load the page offers to edit.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum LoadSetup {
    /// Closed model: users and the spawn rate.
    Closed {
        /// Users.
        users: u64,
        /// Users started per second (all at once when absent).
        spawn_rate: Option<f64>,
    },
    /// Open model: tasks started per second.
    Open {
        /// Tasks per second.
        rate: f64,
    },
    /// Stages or a load shape: the numbers are the script's or the config's, not editable here.
    Fixed {
        /// The load, in words.
        description: String,
    },
}

/// The form the Start button sends.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// New weights by taskset name (those not listed keep theirs).
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// Closed model: users.
    pub users: Option<u64>,
    /// Closed model: users started per second.
    pub spawn_rate: Option<f64>,
    /// Open model: tasks started per second.
    pub rate: Option<f64>,
    /// Run time, seconds (absent: the configured one).
    pub run_time_s: Option<f64>,
}

impl Setup {
    /// Checks a form against what may be changed; the message says what is wrong.
    pub fn check(&self, request: &StartRequest) -> Result<(), String> {
        for name in request.weights.keys() {
            if !self.mix.iter().any(|row| &row.name == name) {
                return Err(format!("no taskset named `{name}`: weights are for the tasksets listed"));
            }
        }
        let weight = |row: &MixRow| request.weights.get(&row.name).copied().unwrap_or(row.weight);
        if !self.mix.iter().any(|row| weight(row) > 0) {
            return Err("every taskset has weight 0: give at least one a weight of 1 or more".into());
        }
        let positive = |what: &str, v: Option<f64>| match v {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(format!("{what} must be a positive number, not {v}")),
            _ => Ok(()),
        };
        match &self.load {
            LoadSetup::Closed { .. } => {
                if request.rate.is_some() {
                    return Err("this run uses the closed model (users): it has no rate".into());
                }
                if request.users == Some(0) {
                    return Err("users must be at least 1".into());
                }
                positive("the spawn rate", request.spawn_rate)?;
            }
            LoadSetup::Open { .. } => {
                if request.users.is_some() || request.spawn_rate.is_some() {
                    return Err("this run uses the open model (a rate): it has no users or spawn rate".into());
                }
                positive("the rate", request.rate)?;
            }
            LoadSetup::Fixed { description } => {
                if request.users.is_some() || request.spawn_rate.is_some() || request.rate.is_some() {
                    return Err(format!("the load is set by stages or a load shape ({description}), not here"));
                }
            }
        }
        positive("the run time", request.run_time_s)
    }
}

/// A valid Start: the caller builds the plan and answers.
#[derive(Debug)]
pub struct StartOrder {
    /// The form.
    pub request: StartRequest,
    pub(crate) reply: oneshot::Sender<Result<(), String>>,
}

impl StartOrder {
    /// The run starts: the page is told so.
    pub fn accept(self) {
        let _ = self.reply.send(Ok(()));
    }

    /// The plan could not be built from the form: the page shows `why` (a 400) and waits for another Start.
    pub fn refuse(self, why: String) {
        let _ = self.reply.send(Err(why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(load: LoadSetup) -> Setup {
        let row = |name: &str, weight| MixRow {
            name: name.into(),
            weight,
            share_pct: 50.0,
            source: nest_report::model::Source::FromScript,
            wait: String::new(),
            on_start: false,
            on_stop: false,
            tasks: Vec::new(),
            users: None,
            nested_in: Default::default(),
        };
        Setup { mix: vec![row("a", 1), row("b", 1)], load, host: "http://x".into(), run_time_s: None, iterations: None }
    }

    fn req(json: &str) -> StartRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn closed_forms() {
        let s = setup(LoadSetup::Closed { users: 1, spawn_rate: None });
        assert_eq!(s.check(&req(r#"{"users": 5, "spawn_rate": 2, "weights": {"a": 3}}"#)), Ok(()));
        assert!(s.check(&req(r#"{"users": 0}"#)).unwrap_err().contains("at least 1"));
        assert!(s.check(&req(r#"{"spawn_rate": -1}"#)).unwrap_err().contains("positive"));
        assert!(s.check(&req(r#"{"rate": 3}"#)).unwrap_err().contains("closed model"));
        assert!(s.check(&req(r#"{"weights": {"a": 0, "b": 0}}"#)).unwrap_err().contains("weight 0"));
        assert!(s.check(&req(r#"{"weights": {"zz": 1}}"#)).unwrap_err().contains("`zz`"));
        assert!(s.check(&req(r#"{"run_time_s": 0}"#)).is_err());
    }

    #[test]
    fn open_and_fixed_forms() {
        let open = setup(LoadSetup::Open { rate: 5.0 });
        assert_eq!(open.check(&req(r#"{"rate": 9.5}"#)), Ok(()));
        assert!(open.check(&req(r#"{"users": 2}"#)).is_err());
        let fixed = setup(LoadSetup::Fixed { description: "stages".into() });
        assert!(fixed.check(&req(r#"{"users": 2}"#)).unwrap_err().contains("stages"));
        assert_eq!(fixed.check(&req(r#"{"weights": {"b": 4}}"#)), Ok(()));
    }

    #[test]
    fn unknown_fields_and_negative_weights_do_not_parse() {
        assert!(serde_json::from_str::<StartRequest>(r#"{"host": "http://elsewhere"}"#).is_err());
        assert!(serde_json::from_str::<StartRequest>(r#"{"weights": {"a": -1}}"#).is_err());
    }
}
