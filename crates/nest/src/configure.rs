//! `nest configure`: write the load mix (and optionally the run settings) into `nest.yaml`.
//!
//! Interactively it walks through every taskset with its tasks and current weight, then shows the resulting mix
//! and asks before saving. With `--set NAME=WEIGHT` (and `--host`, `--users`, ...) it updates the file without a
//! question, for scripts and CI. Without a terminal and without such flags it refuses at once instead of waiting
//! for input. Keys it was not asked about are kept; the file is written atomically.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use nest_core::TasksetSpec;

use crate::cli::ConfigureArgs;
use nest_config::config::edit::{Changes, render};
use nest_config::config::{DEFAULT_FILE, LoadedConfig};
use nest_config::mix::{self, Source};
use nest_config::parse::{UsageError, parse_duration, parse_host};
use nest_config::plan::DEFAULT_TASKSET_DIR;
use nest_report::output::write_atomic;

/// Runs `nest configure`.
pub fn run(args: ConfigureArgs) -> Result<()> {
    let path = args.source.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    let existing = if path.is_file() { Some(LoadedConfig::load(&path)?) } else { None };
    // The taskset folder by the usual precedence: flag, environment, the file, the default.
    let env = nest_config::settings::Settings::from_env(|k| std::env::var(k).ok())?;
    let file = existing.as_ref().map(LoadedConfig::settings).transpose()?.unwrap_or_default();
    let cli = args.source.settings()?;
    let settings = nest_config::settings::Settings::layered(cli, env, file);
    let dir = settings.taskset_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_TASKSET_DIR));
    let options = settings.load_options();
    let options = nest_rhai::LoadOptions {
        confine: Some(nest_config::plan::confine(args.source.no_confine, &dir, existing.as_ref())),
        ..options
    };
    let catalog =
        nest_rhai::Catalog::load_with(&dir, options).map_err(|e| UsageError(format!("cannot configure:\n{e}")))?;
    for warning in &catalog.warnings {
        eprintln!("warning: {warning}");
    }
    let mut specs = catalog.specs();
    // Names in the file that no longer match a taskset are dropped with a warning, so configure can repair them.
    let known: Vec<String> = specs.iter().map(|t| t.name.clone()).collect();
    let mut sources = vec![Source::FromScript; specs.len()];
    if let Some(config) = &existing {
        for (name, weight) in &config.file.tasksets {
            match known.iter().position(|k| k == name) {
                Some(i) => {
                    specs[i].weight = weight.0;
                    sources[i] = Source::Config;
                }
                None => eprintln!(
                    "warning: {}: no taskset named `{name}`: it will be removed",
                    config.locate(Some("tasksets"), name)
                ),
            }
        }
    }

    let scripted = !args.set.is_empty()
        || args.host.is_some()
        || args.users.is_some()
        || args.spawn_rate.is_some()
        || args.run_time.is_some()
        || args.use_script_weights.is_some();
    let changes = if scripted {
        changes_from_flags(&args, &known)?
    } else if std::io::stdin().is_terminal() {
        match ask(&specs, &sources) {
            Ok(Some(changes)) => changes,
            Ok(None) => {
                eprintln!("nothing saved");
                return Ok(());
            }
            // Esc or Ctrl-C at a question: nothing was done, and a script must be able to tell (exit 1).
            Err(e)
                if matches!(
                    e.downcast_ref::<inquire::InquireError>(),
                    Some(inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted)
                ) =>
            {
                anyhow::bail!("cancelled: nothing saved");
            }
            Err(e) => return Err(e),
        }
    } else {
        return Err(UsageError(
            "nest configure asks its questions on a terminal, and stdin is not one. In scripts and CI, pass the \
             changes instead: --set NAME=WEIGHT (repeatable), --host, --users, --spawn-rate, --run-time"
                .into(),
        )
        .into());
    };

    let text = render(existing.as_ref().map(|c| c.text.as_str()), &changes, &known)?;
    // The result must load as a config and leave something to run.
    let parsed = nest_config::config::parse(&text)
        .map_err(|e| anyhow::anyhow!("internal error: wrote an invalid config ({e})"))?;
    for t in specs.iter_mut() {
        if let Some(w) = parsed.tasksets.get(&t.name) {
            t.weight = w.0;
        }
    }
    if !parsed.use_script_weights.unwrap_or(false) && !specs.iter().any(|t| t.weight > 0) {
        return Err(UsageError("every taskset would have weight 0: nothing saved".into()).into());
    }
    write_atomic(&path, text.as_bytes()).with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("saved {}", path.display());
    Ok(())
}

fn changes_from_flags(args: &ConfigureArgs, known: &[String]) -> Result<Changes, UsageError> {
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut weights = Vec::new();
    for set in &args.set {
        let (name, weight) = set
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--set {set}: expected NAME=WEIGHT, e.g. --set shop/browse=6")))?;
        let name = name.trim();
        if !names.contains(&name) {
            return Err(UsageError(format!("--set {set}: no taskset named `{name}`{}", mix::suggest(name, &names))));
        }
        let weight: u32 =
            weight.trim().parse().map_err(|_| UsageError(format!("--set {set}: a weight is a whole number >= 0")))?;
        weights.push((name.to_owned(), weight));
    }
    if let Some(host) = &args.host {
        parse_host(host)?;
    }
    if args.users == Some(0) {
        return Err(UsageError("--users must be at least 1".into()));
    }
    if let Some(rate) = args.spawn_rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(UsageError("--spawn-rate must be a number above 0".into()));
    }
    if args.run_time == Some(Duration::ZERO) {
        return Err(UsageError("--run-time must be longer than zero".into()));
    }
    Ok(Changes {
        weights,
        host: args.host.clone(),
        users: args.users,
        spawn_rate: args.spawn_rate,
        run_time: args.run_time,
        use_script_weights: args.use_script_weights,
    })
}

/// The interactive flow. `None` when the user chose not to save.
fn ask(specs: &[TasksetSpec], sources: &[Source]) -> Result<Option<Changes>> {
    use inquire::{Confirm, CustomType, Text};
    let mut err = std::io::stderr().lock();
    writeln!(err, "Tasksets found:\n")?;
    mix::print(&mut err, &mix::rows(specs, sources))?;
    writeln!(err)?;
    drop(err);

    let mut changes = Changes::default();
    let mut proposed = specs.to_vec();
    for (spec, source) in proposed.iter_mut().zip(sources) {
        let tasks: Vec<String> = spec.tasks.iter().map(|t| format!("{}×{}", t.name, t.weight)).collect();
        let weight = CustomType::<u32>::new(&format!("Weight of {}", spec.name))
            .with_default(spec.weight)
            .with_help_message(&format!("tasks: {}; 0 disables it", tasks.join(", ")))
            .with_error_message("a weight is a whole number >= 0")
            .prompt()?;
        if weight != spec.weight || *source == Source::Config {
            changes.weights.push((spec.name.clone(), weight));
        }
        spec.weight = weight;
    }
    if Confirm::new("Also set the host, users, spawn rate and run time?").with_default(false).prompt()? {
        let host = Text::new("Host (empty: keep)")
            .with_validator(|s: &str| {
                Ok(if s.is_empty() || parse_host(s).is_ok() {
                    inquire::validator::Validation::Valid
                } else {
                    inquire::validator::Validation::Invalid(
                        "an http:// or https:// URL, e.g. http://127.0.0.1:8080".into(),
                    )
                })
            })
            .prompt()?;
        changes.host = (!host.is_empty()).then_some(host);
        changes.users =
            optional("Users (empty: keep)", "a whole number >= 1", |s| s.parse::<u64>().ok().filter(|n| *n >= 1))?;
        changes.spawn_rate = optional("Spawn rate, users per second (empty: keep)", "a number above 0", |s| {
            s.parse::<f64>().ok().filter(|r| *r > 0.0 && r.is_finite())
        })?;
        let run_time = Text::new("Run time, e.g. 30s, 5m (empty: keep)")
            .with_validator(|s: &str| {
                Ok(match parse_duration(s) {
                    _ if s.is_empty() => inquire::validator::Validation::Valid,
                    Ok(d) if !d.is_zero() => inquire::validator::Validation::Valid,
                    _ => inquire::validator::Validation::Invalid("a duration like 30s, 5m or 1h30m".into()),
                })
            })
            .prompt()?;
        changes.run_time = (!run_time.is_empty()).then(|| parse_duration(&run_time).unwrap_or_default());
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "\nThe resulting mix:\n")?;
    let shown: Vec<Source> = proposed
        .iter()
        .zip(sources)
        .map(|(t, s)| if changes.weights.iter().any(|(n, _)| n == &t.name) { Source::Config } else { *s })
        .collect();
    if !proposed.iter().any(|t| t.weight > 0) {
        writeln!(err, "every taskset has weight 0: nothing would run")?;
        return Ok(None);
    }
    mix::print(&mut err, &mix::rows(&proposed, &shown))?;
    writeln!(err)?;
    drop(err);
    Ok(Confirm::new("Save?").with_default(true).prompt()?.then_some(changes))
}

/// Asks for an optional value: empty keeps the current one, anything else must parse.
fn optional<T>(question: &str, expected: &'static str, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    use inquire::validator::Validation;
    let answer = inquire::Text::new(question)
        .with_validator(move |s: &str| {
            Ok(if s.trim().is_empty() || parse(s.trim()).is_some() {
                Validation::Valid
            } else {
                Validation::Invalid(expected.into())
            })
        })
        .prompt()?;
    Ok(parse(answer.trim()))
}
