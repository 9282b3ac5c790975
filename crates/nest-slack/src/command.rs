//! The text of a `/nest` slash command, parsed into what to do, and checked against the presets.
//!
//! A Slack user never passes a host, a script or a flag: `run` and `scale` name a preset from `nest.yaml`, and
//! `run` may change only what the preset allows (users, run time, rate), each up to its maximum. Everything is
//! checked here, before anything runs, and a refusal is a sentence for the user.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// What a command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `/nest run PRESET [users=N] [time=DUR] [rate=R]`.
    Run {
        /// The preset.
        preset: String,
        /// The overrides given.
        overrides: Overrides,
    },
    /// `/nest scale PRESET`.
    Scale {
        /// The preset.
        preset: String,
    },
    /// `/nest status`.
    Status,
    /// `/nest stop`.
    Stop,
    /// `/nest help` (or nothing).
    Help,
}

/// The settings a command changes, each checked against its preset's maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    /// `users=N`.
    pub users: Option<u64>,
    /// `time=DUR` (or `run_time=DUR`).
    pub run_time: Option<Duration>,
    /// `rate=R`: tasks started per second (open model).
    pub rate: Option<f64>,
}

/// What a preset lets a command change, and how far: the maximum of each override it accepts (an override not
/// listed is refused). In `nest.yaml`: `overrides: { users: 50, run_time: 5m, rate: 200 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most users a command may ask for.
    #[serde(default)]
    pub users: Option<u64>,
    /// The longest run time a command may ask for.
    #[serde(default, with = "humantime_serde_opt")]
    pub run_time: Option<Duration>,
    /// The highest rate a command may ask for.
    #[serde(default)]
    pub rate: Option<f64>,
}

/// The presets a command may name: name -> what it allows.
pub type Presets = BTreeMap<String, Limits>;

/// The help text of `/nest help`.
pub fn help(presets: &Presets) -> String {
    let mut text = String::from(
        "*nest* runs load tests from presets:\n\
         • `/nest run PRESET [users=N] [time=DUR] [rate=R]`: run a preset (overrides only as the preset allows)\n\
         • `/nest scale PRESET`: step the load up and measure Capacity@SLO\n\
         • `/nest status`: what is running\n\
         • `/nest stop`: stop the current run (its result is still posted)\n",
    );
    if presets.is_empty() {
        text.push_str("No preset is configured (`slack: presets:` in nest.yaml).");
    } else {
        text.push_str("Presets:");
        for (name, limits) in presets {
            text.push_str(&format!("\n• `{name}`{}", describe(limits)));
        }
    }
    text
}

fn describe(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = limits.users {
        parts.push(format!("users ≤ {n}"));
    }
    if let Some(t) = limits.run_time {
        parts.push(format!("time ≤ {}", humantime::format_duration(t)));
    }
    if let Some(r) = limits.rate {
        parts.push(format!("rate ≤ {r}"));
    }
    if parts.is_empty() { String::from(" (no overrides)") } else { format!(" ({})", parts.join(", ")) }
}

/// Parses the command's text (what follows `/nest`) and checks it against `presets`.
pub fn parse(text: &str, presets: &Presets) -> Result<Command, String> {
    let mut words = text.split_whitespace();
    let verb = words.next().unwrap_or("help").to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let no_more = |command: Command| match rest.as_slice() {
        [] => Ok(command),
        _ => Err(format!("`{verb}` takes nothing after it; see `/nest help`")),
    };
    match verb.as_str() {
        "help" => no_more(Command::Help),
        "status" => no_more(Command::Status),
        "stop" => no_more(Command::Stop),
        "run" | "scale" => {
            let Some((name, given)) = rest.split_first() else {
                return Err(format!("`/nest {verb}` needs a preset: {}", names(presets)));
            };
            let limits = presets
                .get(*name)
                .ok_or_else(|| format!("unknown preset `{name}`; the presets are: {}", names(presets)))?;
            if verb == "scale" {
                return match given {
                    [] => Ok(Command::Scale { preset: (*name).to_owned() }),
                    _ => Err("`/nest scale PRESET` takes no overrides: the preset's steps decide the load".into()),
                };
            }
            let overrides = overrides(name, given, limits)?;
            Ok(Command::Run { preset: (*name).to_owned(), overrides })
        }
        other => Err(format!("unknown command `{other}`; see `/nest help`")),
    }
}

fn names(presets: &Presets) -> String {
    if presets.is_empty() {
        return "none is configured".into();
    }
    presets.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Parses `key=value` words and checks each against the preset's limits.
fn overrides(preset: &str, words: &[&str], limits: &Limits) -> Result<Overrides, String> {
    let mut o = Overrides::default();
    for word in words {
        let (key, value) =
            word.split_once('=').ok_or_else(|| format!("`{word}` is not KEY=VALUE (e.g. users=10, time=2m)"))?;
        let refused = || format!("preset `{preset}` does not allow `{key}`{}", allowed(limits));
        let twice = || format!("`{key}` is given twice");
        match key.to_ascii_lowercase().as_str() {
            "users" => {
                let max = limits.users.ok_or_else(refused)?;
                let n: u64 = value.parse().map_err(|_| format!("users={value}: expected a whole number"))?;
                if n == 0 || n > max {
                    return Err(format!("users={n} is not allowed by preset `{preset}`: from 1 to {max}"));
                }
                if o.users.replace(n).is_some() {
                    return Err(twice());
                }
            }
            "time" | "run_time" => {
                let max = limits.run_time.ok_or_else(refused)?;
                let t = parse_duration(value).map_err(|e| format!("time={value}: {e}"))?;
                if t.is_zero() || t > max {
                    let max = humantime::format_duration(max);
                    return Err(format!("time={value} is not allowed by preset `{preset}`: at most {max}"));
                }
                if o.run_time.replace(t).is_some() {
                    return Err(twice());
                }
            }
            "rate" => {
                let max = limits.rate.ok_or_else(refused)?;
                let r: f64 = value.parse().map_err(|_| format!("rate={value}: expected a number"))?;
                if !(r > 0.0 && r <= max) {
                    return Err(format!("rate={value} is not allowed by preset `{preset}`: above 0, at most {max}"));
                }
                if o.rate.replace(r).is_some() {
                    return Err(twice());
                }
            }
            _ => return Err(refused()),
        }
    }
    Ok(o)
}

fn allowed(limits: &Limits) -> String {
    let d = describe(limits);
    if limits == &Limits::default() { " (it allows no override)".into() } else { format!("; it allows{d}") }
}

/// A duration: `90`, `90s`, `2m`, `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 2m, 1m30s)"))
}

/// `run_time: 5m` (or a number of seconds) in `nest.yaml`.
mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, de};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Some(Duration::from_secs(s))),
            Raw::Text(t) => super::parse_duration(&t).map(Some).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presets() -> Presets {
        let smoke = Limits { users: Some(50), run_time: Some(Duration::from_secs(300)), rate: None };
        Presets::from([("smoke".into(), smoke), ("fixed".into(), Limits::default())])
    }

    #[test]
    fn commands_parse() {
        let p = presets();
        assert_eq!(parse("", &p), Ok(Command::Help));
        assert_eq!(parse("status", &p), Ok(Command::Status));
        assert_eq!(parse("  STOP ", &p), Ok(Command::Stop));
        assert_eq!(parse("scale fixed", &p), Ok(Command::Scale { preset: "fixed".into() }));
        let run = parse("run smoke users=5 time=3s", &p).unwrap();
        let overrides = Overrides { users: Some(5), run_time: Some(Duration::from_secs(3)), rate: None };
        assert_eq!(run, Command::Run { preset: "smoke".into(), overrides });
        assert_eq!(
            parse("run fixed", &p),
            Ok(Command::Run { preset: "fixed".into(), overrides: Overrides::default() })
        );
    }

    #[test]
    fn what_a_preset_does_not_allow_is_refused_with_a_reason() {
        let p = presets();
        assert_eq!(parse("run nope", &p).unwrap_err(), "unknown preset `nope`; the presets are: `fixed`, `smoke`");
        assert!(parse("run smoke users=51", &p).unwrap_err().contains("from 1 to 50"));
        assert!(parse("run smoke users=0", &p).unwrap_err().contains("from 1 to 50"));
        assert!(parse("run smoke time=6m", &p).unwrap_err().contains("at most 5m"));
        assert!(parse("run smoke rate=5", &p).unwrap_err().contains("does not allow `rate`"));
        assert!(parse("run smoke host=http://evil", &p).unwrap_err().contains("does not allow `host`"));
        assert!(parse("run fixed users=1", &p).unwrap_err().contains("allows no override"));
        assert!(parse("run smoke users", &p).unwrap_err().contains("KEY=VALUE"));
        assert!(parse("run smoke users=1 users=2", &p).unwrap_err().contains("twice"));
        assert!(parse("run", &p).unwrap_err().contains("needs a preset"));
        assert!(parse("scale smoke users=2", &p).unwrap_err().contains("no overrides"));
        assert!(parse("deploy", &p).unwrap_err().contains("unknown command"));
        assert!(parse("stop now", &p).is_err());
    }

    #[test]
    fn limits_read_from_yaml_like_maps() {
        let l: Limits = serde_json::from_str(r#"{"users": 10, "run_time": "5m"}"#).unwrap();
        assert_eq!((l.users, l.run_time), (Some(10), Some(Duration::from_secs(300))));
        let l: Limits = serde_json::from_str(r#"{"run_time": 90}"#).unwrap();
        assert_eq!(l.run_time, Some(Duration::from_secs(90)));
        assert!(serde_json::from_str::<Limits>(r#"{"host": 1}"#).is_err());
        assert!(help(&presets()).contains("`smoke` (users ≤ 50, time ≤ 5m)"));
    }
}
