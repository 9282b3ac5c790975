//! The `slack:` and `notify:` sections of `nest.yaml`: the presets a `/nest` command may run, who may run them,
//! where results go and are kept.
//!
//! A preset's `settings:` take the very keys of the file's top level (the settings table), read and checked by the
//! same readers, so a wrong value in a preset is reported at its `file:line:col` like any other; `overrides:`
//! says what a command may change, up to which maximum. `nest run --preset NAME` runs a preset from a terminal,
//! exactly as `/nest run NAME` does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::config::{FileConfig, LoadedConfig};
use crate::parse::UsageError;
use crate::settings::Settings;

/// `slack:` in `nest.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    /// Preset name -> what it runs and allows.
    #[serde(default, deserialize_with = "presets")]
    pub presets: BTreeMap<String, Preset>,
    /// Slack user ids or names that may start and stop load (empty: anyone in the workspace).
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Channel ids or names load may be started from (empty: any).
    #[serde(default)]
    pub allowed_channels: Vec<String>,
    /// Where the results folder is served, e.g. `https://nest.example.com/reports/`: results link to their HTML
    /// report, and `nest slack serve` serves the folder.
    #[serde(default, deserialize_with = "base_url")]
    pub report_base_url: Option<url::Url>,
    /// The results folder (relative to the file) [default: `.nest/slack`].
    #[serde(default)]
    pub results: Option<PathBuf>,
    /// The hosts a command's `response_url` may point at [default: hooks.slack.com].
    #[serde(default)]
    pub response_url_hosts: Option<Vec<String>>,
}

/// One preset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// A line for `/nest help`.
    #[serde(default)]
    pub description: Option<String>,
    /// The settings it runs with: the keys of the file's top level (`users`, `run_time`, `host`, `thresholds`...).
    #[serde(default)]
    pub settings: FileConfig,
    /// What a command may change, each up to its maximum: `users`, `run_time`, `rate`.
    #[serde(default)]
    pub overrides: nest_slack::command::Limits,
}

/// A preset name: letters, digits, `-` and `_` (it becomes part of file names).
fn presets<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Preset>, D::Error> {
    let map = BTreeMap::<String, Preset>::deserialize(d)?;
    for (name, preset) in &map {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(de::Error::custom(format!(
                "slack.presets: `{name}` is not a preset name: use letters, digits, - and _"
            )));
        }
        let s = &preset.settings;
        if !s.tasksets.is_empty()
            || !s.data.is_empty()
            || s.scale.is_some()
            || s.slack.is_some()
            || !s.notify.is_empty()
        {
            return Err(de::Error::custom(format!(
                "slack.presets.{name}.settings: a preset holds run settings only (not tasksets, data, scale, slack or \
                 notify; those are the file's)"
            )));
        }
    }
    Ok(map)
}

fn base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let text = String::deserialize(d)?;
    let mut url = url::Url::parse(&text)
        .map_err(|e| de::Error::custom(format!("report_base_url: `{text}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(de::Error::custom(format!("report_base_url: `{text}` is not an http(s) URL")));
    }
    // A base without a trailing slash would lose its last segment when a file name is joined to it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(Some(url))
}

/// `notify:`: the URLs a run's result is posted to (`slack:URL` for Block Kit), each checked when read.
pub(crate) fn notify<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for item in &list {
        nest_slack::notify::Target::parse(item).map_err(|e| de::Error::custom(format!("notify: {e}")))?;
    }
    Ok(list)
}

impl LoadedConfig {
    /// The settings of preset `name`, with its paths relative to the file; an unknown name is a usage error.
    pub fn preset_settings(&self, name: &str) -> Result<Settings, UsageError> {
        let presets = self.file.slack.as_ref().map(|s| &s.presets);
        let Some(preset) = presets.and_then(|p| p.get(name)) else {
            let known: Vec<&str> = presets.into_iter().flat_map(|p| p.keys().map(String::as_str)).collect();
            let known = if known.is_empty() { "none is defined".to_owned() } else { known.join(", ") };
            return Err(UsageError(format!(
                "{}: no preset `{name}` under `slack: presets:` ({known})",
                self.path.display()
            )));
        };
        self.settings_of(&preset.settings)
    }
}
