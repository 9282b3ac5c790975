//! Choosing the load model from layered settings.
//!
//! Four settings each imply a model: `rate` (open), `shape` (scripted users), `stages` (users over time) and
//! `users`/`spawn_rate` (a fixed number of users). The highest layer (command line, then environment, then
//! `nest.yaml`) that names any of them chooses the model, by the same precedence as every other setting. Within
//! one layer a contradiction (`--rate` with `--users`) is an error; a lower layer's settings for another model
//! give way, with a warning, so a command-line `-u 5` can override a file's `rate: 20`.

use crate::parse::UsageError;
use crate::settings::Settings;

/// The load model of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// A fixed number of users (with a spawn rate).
    Users,
    /// Users over time, by stages.
    Stages,
    /// Users driven by a shape script.
    Shape,
    /// Tasks started at a rate (stages, if any, are over the rate).
    Open,
}

fn choice_of(s: &Settings) -> Option<Choice> {
    if s.rate.is_some() {
        Some(Choice::Open)
    } else if s.shape.is_some() {
        Some(Choice::Shape)
    } else if s.stages.is_some() {
        Some(Choice::Stages)
    } else if s.users.is_some() || s.spawn_rate.is_some() {
        Some(Choice::Users)
    } else {
        None
    }
}

/// Refuses a layer that contradicts itself.
fn check_layer(layer: &str, s: &Settings) -> Result<(), UsageError> {
    let users = s.users.is_some() || s.spawn_rate.is_some();
    let clash = if s.rate.is_some() && users {
        Some("rate (the open model sizes its pool with max_users) and users/spawn_rate")
    } else if s.rate.is_some() && s.shape.is_some() {
        Some("rate and shape")
    } else if s.shape.is_some() && (users || s.stages.is_some()) {
        Some("shape (which sets the users) and users/spawn_rate/stages")
    } else if s.stages.is_some() && users {
        Some("stages (which set the users over time) and users/spawn_rate")
    } else {
        None
    };
    match clash {
        Some(what) => Err(UsageError(format!("{layer}: {what} cannot be used together"))),
        None => Ok(()),
    }
}

/// The chosen model, whether stages apply to it, and warnings about settings it ignores.
pub struct Chosen {
    /// The model.
    pub choice: Choice,
    /// Use the stages (over users, or over the rate in the open model).
    pub use_stages: bool,
    /// Settings of lower layers that gave way.
    pub warnings: Vec<String>,
}

/// Chooses the model from `layers` (highest first, each with its name) and the merged `settings`.
pub fn choose(layers: &[(&str, &Settings)], s: &Settings) -> Result<Chosen, UsageError> {
    for (name, layer) in layers {
        check_layer(name, layer)?;
    }
    let deciding = layers.iter().position(|(_, l)| choice_of(l).is_some());
    let choice = deciding.and_then(|i| choice_of(layers[i].1)).unwrap_or(Choice::Users);
    let highest = |f: fn(&Settings) -> bool| layers.iter().position(|(_, l)| f(l));
    let stages_at = highest(|l| l.stages.is_some());
    // Stages go with the open model only when they sit at or above the layer that set the rate.
    let use_stages = match choice {
        Choice::Stages => true,
        Choice::Open => stages_at.is_some_and(|at| Some(at) <= deciding),
        Choice::Users | Choice::Shape => false,
    };
    let mut warnings = Vec::new();
    let mut ignored = |what: &str, present: bool, why: &str| {
        if present {
            warnings.push(format!("{what} from a lower layer (environment or nest.yaml) is ignored: {why}"));
        }
    };
    let users = s.users.is_some() || s.spawn_rate.is_some();
    match choice {
        Choice::Open => {
            ignored("users/spawn_rate", users, "the open model (rate) sizes its pool with max_users");
            ignored("shape", s.shape.is_some(), "the open model (rate) was chosen above it");
            ignored("stages", s.stages.is_some() && !use_stages, "they were given for users, below the rate");
        }
        Choice::Shape => {
            ignored("users/spawn_rate/stages", users || s.stages.is_some(), "the shape script sets the users");
        }
        Choice::Stages => ignored("users/spawn_rate", users, "the stages set the users over time"),
        Choice::Users => {
            ignored("stages", s.stages.is_some(), "users/spawn_rate were given above them");
            ignored("shape", s.shape.is_some(), "users/spawn_rate were given above it");
            ignored("rate", s.rate.is_some(), "users/spawn_rate were given above it");
        }
    }
    if choice != Choice::Open {
        ignored("max_users/max_delay", s.max_users.is_some() || s.max_delay.is_some(), "they belong to the open model");
    }
    Ok(Chosen { choice, use_stages, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn users(n: u64) -> Settings {
        Settings { users: Some(n), ..Default::default() }
    }
    fn rate(r: f64) -> Settings {
        Settings { rate: Some(r), ..Default::default() }
    }
    fn stages() -> Settings {
        let stage = nest_core::Stage { duration: Duration::from_secs(1), target: 5.0 };
        Settings { stages: Some(vec![stage]), ..Default::default() }
    }

    fn merged(layers: &[(&str, &Settings)]) -> Settings {
        layers.iter().fold(Settings::default(), |acc, (_, l)| acc.over((*l).clone()))
    }

    fn pick(layers: &[(&str, &Settings)]) -> Result<Chosen, UsageError> {
        choose(layers, &merged(layers))
    }

    #[test]
    fn the_highest_layer_chooses_and_lower_ones_give_way() {
        let (cli, file) = (users(5), rate(20.0));
        let c = pick(&[("command line", &cli), ("nest.yaml", &file)]).unwrap();
        assert_eq!(c.choice, Choice::Users);
        assert!(c.warnings[0].starts_with("rate from a lower layer"), "{:?}", c.warnings);
        let (cli, file) = (rate(20.0), users(5));
        let c = pick(&[("command line", &cli), ("nest.yaml", &file)]).unwrap();
        assert_eq!(c.choice, Choice::Open);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn a_layer_cannot_contradict_itself() {
        let both = Settings { rate: Some(2.0), users: Some(3), ..Default::default() };
        let e = pick(&[("command line", &both)]).err().unwrap().0;
        assert!(e.starts_with("command line: rate"), "{e}");
    }

    #[test]
    fn stages_follow_the_rate_only_from_its_layer_or_above() {
        let same = Settings { rate: Some(10.0), ..stages() };
        assert!(pick(&[("nest.yaml", &same)]).unwrap().use_stages);
        let (cli, file) = (rate(10.0), stages());
        let c = pick(&[("command line", &cli), ("nest.yaml", &file)]).unwrap();
        assert!(!c.use_stages && c.warnings[0].starts_with("stages"), "{:?}", c.warnings);
        let (cli, file) = (stages(), rate(10.0));
        let c = pick(&[("command line", &cli), ("nest.yaml", &file)]).unwrap();
        assert_eq!(c.choice, Choice::Stages);
    }
}
