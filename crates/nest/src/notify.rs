//! `--notify`: where a result is posted when a run ends, and the posting itself, which never changes the exit code.
//!
//! The targets are `--notify` (or `NEST_NOTIFY`), else `notify:` of the config; `--no-notify` turns them all off.
//! They are checked before any load (a bad one is a usage error), delivered by `nest_slack::notify` (timeout,
//! retries with backoff), and shown only redacted: a webhook URL embeds its token.

use std::io::Write;

use anyhow::Result;
use nest_config::config::LoadedConfig;
use nest_config::parse::UsageError;
use nest_report::model::Report;
use nest_slack::notify::{self, Outcome, Policy, Target};

use crate::cli::NotifyArgs;

/// The targets of a run: the flags (or `NEST_NOTIFY`), else the config's `notify:`.
pub fn targets(args: &NotifyArgs, config: Option<&LoadedConfig>) -> Result<Vec<Target>> {
    if args.no_notify {
        return Ok(Vec::new());
    }
    let given: Vec<&String> = args.notify.iter().filter(|u| !u.trim().is_empty()).collect();
    let list: Vec<&String> = match (given.is_empty(), config) {
        (false, _) => given,
        (true, Some(config)) => config.file.notify.iter().collect(),
        (true, None) => Vec::new(),
    };
    Ok(list
        .into_iter()
        .map(|u| Target::parse(u).map_err(|e| UsageError(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Posts a run's report to every target; a failure is a warning.
pub fn send(targets: &[Target], report: &Report, title: &str) {
    deliver(targets, Outcome::Run(report), title);
}

/// Posts `outcome` to every target; a failure is a warning.
pub fn deliver(targets: &[Target], outcome: Outcome<'_>, title: &str) {
    for delivered in notify::deliver_all(targets, outcome, title, Policy::default()) {
        let line = match delivered {
            Ok((shown, 1)) => format!("notified {shown}"),
            Ok((shown, n)) => format!("notified {shown} (after {n} attempts)"),
            Err(e) => format!("warning: {e}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// The words of a command line with the value of every `--notify` redacted, for the report's "command".
pub fn redact_args(words: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut after_flag = false;
    words
        .into_iter()
        .map(|word| {
            let shown = if after_flag {
                shown(&word)
            } else if let Some(value) = word.strip_prefix("--notify=") {
                format!("--notify={}", shown(value))
            } else {
                word
            };
            after_flag = shown == "--notify";
            shown
        })
        .collect()
}

fn shown(value: &str) -> String {
    match Target::parse(value) {
        Ok(target) if target.format == notify::Format::Slack && value.starts_with("slack:") => {
            format!("slack:{}", target.shown())
        }
        Ok(target) => target.shown(),
        Err(_) => "<redacted>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_values_never_reach_the_report_whole() {
        let words =
            ["nest", "run", "--notify", "slack:https://h.example/services/T/B/secret", "--notify=http://a/b/tok"];
        let shown = redact_args(words.iter().map(|w| w.to_string())).join(" ");
        assert_eq!(shown, "nest run --notify slack:https://h.example/services/… --notify=http://a/b/…");
    }
}
