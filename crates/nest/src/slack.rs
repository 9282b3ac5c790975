//! `nest slack serve`: reads the signing secret and the presets, checks every preset as `nest run --preset`
//! would, and hands the service to `nest_slack::server`.
//!
//! The secret comes from `SLACK_SIGNING_SECRET` or `--signing-secret-file`, never from a flag's value (command
//! lines are visible to every user of the machine); without one the service refuses to start.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nest_config::config::LoadedConfig;
use nest_config::parse::UsageError;
use nest_config::settings::Settings;
use nest_slack::command::Presets;
use nest_slack::jobs::{Jobs, Launch};
use nest_slack::server::{Access, Service};

/// Options of `nest slack`.
#[derive(Debug, Args)]
pub struct SlackArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SlackCommand,
}

/// The subcommands of `nest slack`.
#[derive(Debug, Subcommand)]
pub enum SlackCommand {
    /// Serve the `/nest` slash command (POST /slack/commands): signed requests only, presets only, one run at a
    /// time, results posted back to Slack. The signing secret comes from SLACK_SIGNING_SECRET or
    /// --signing-secret-file.
    Serve(ServeArgs),
}

/// Options of `nest slack serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; put a TLS proxy in front of it for Slack.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// A file holding the signing secret (instead of SLACK_SIGNING_SECRET).
    #[arg(long, value_name = "FILE")]
    pub signing_secret_file: Option<PathBuf>,
    /// Config file with the `slack:` section [default: nest.yaml in the current directory].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `nest slack ...`.
pub fn run(args: SlackArgs) -> Result<()> {
    match args.command {
        SlackCommand::Serve(serve) => self::serve(serve),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let secret = signing_secret(args.signing_secret_file.as_deref())?;
    let config = LoadedConfig::find(args.config.as_deref())?.ok_or_else(|| {
        UsageError("no config file: nest slack serve needs nest.yaml (or --config) with `slack:`".into())
    })?;
    let Some(slack) = &config.file.slack else {
        return Err(UsageError(format!("{}: no `slack:` section, so no preset to serve", config.path.display())).into());
    };
    let config_path =
        std::fs::canonicalize(&config.path).with_context(|| format!("cannot resolve {}", config.path.display()))?;
    for name in slack.presets.keys() {
        check_preset(&config_path, name)?;
    }
    let presets: Presets = slack.presets.iter().map(|(name, p)| (name.clone(), p.overrides)).collect();
    let results = config.dir().join(slack.results.clone().unwrap_or_else(|| PathBuf::from(".nest/slack")));
    std::fs::create_dir_all(&results).with_context(|| format!("cannot create {}", results.display()))?;
    let results = std::fs::canonicalize(&results)?;
    let mut env_remove: Vec<String> = Settings::ENV.iter().map(|(_, var)| (*var).to_owned()).collect();
    env_remove.push("NEST_NOTIFY".into());
    let history = config
        .file
        .scale
        .as_ref()
        .and_then(|s| s.history.clone())
        .unwrap_or_else(|| PathBuf::from(nest_scale::spec::DEFAULT_HISTORY));
    let launch = Launch {
        program: std::env::current_exe().context("cannot find the nest binary")?,
        config: config_path,
        results: results.clone(),
        env_remove,
        report_base_url: slack.report_base_url.clone(),
        history,
        policy: nest_slack::notify::Policy::default(),
    };
    let access = Access {
        allowed_users: slack.allowed_users.clone(),
        allowed_channels: slack.allowed_channels.clone(),
        response_url_hosts: slack
            .response_url_hosts
            .clone()
            .unwrap_or_else(|| vec![nest_slack::notify::SLACK_WEBHOOK_HOST.to_owned()]),
    };
    let service = Arc::new(Service {
        verifier: nest_slack::verify::Verifier::new(vec![secret]),
        presets,
        access,
        jobs: Jobs::new(launch),
        reports: slack.report_base_url.is_some().then_some(results),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr()?;
        let names: Vec<&String> = service.presets.keys().collect();
        let _ = writeln!(
            std::io::stderr(),
            "nest slack serve: listening on http://{addr}/slack/commands; presets: {}",
            names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        );
        nest_slack::server::serve(listener, service, shutdown()).await?;
        let _ = writeln!(std::io::stderr(), "nest slack serve: stopped");
        Ok(())
    })
}

/// The signing secret: `--signing-secret-file`, else `SLACK_SIGNING_SECRET`; refused when absent or empty.
fn signing_secret(file: Option<&Path>) -> Result<Vec<u8>> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read the signing secret file {}: {e}", path.display())))?,
        None => std::env::var("SLACK_SIGNING_SECRET").unwrap_or_default(),
    };
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(UsageError(
            "no signing secret: set SLACK_SIGNING_SECRET or give --signing-secret-file FILE (the app's Basic \
             Information page in Slack shows it); nest slack serve does not run unsigned"
                .into(),
        )
        .into());
    }
    Ok(secret.as_bytes().to_vec())
}

/// A preset must load as `nest run --preset NAME` would, with a target and an end: every problem before serving.
fn check_preset(config: &Path, name: &str) -> Result<()> {
    let source = nest_config::plan::Source {
        config: Some(config.to_path_buf()),
        no_confine: false,
        preset: Some(name.to_owned()),
        settings: Settings::default(),
        // The children run without the service's NEST_* variables: so is the check.
        env: |_| None,
        warn: |_| {},
    };
    let mix = nest_config::plan::load_mix(Checked(source), Settings::default())
        .map_err(|e| UsageError(format!("preset `{name}`: {e}")))?;
    let s = &mix.settings;
    if s.host.is_none() {
        return Err(UsageError(format!("preset `{name}` has no host: give it `host:` (or the file one)")).into());
    }
    if s.run_time.is_none() && s.iterations.is_none() && s.stages.is_none() && s.shape.is_none() {
        return Err(UsageError(format!(
            "preset `{name}` has no end: give it a `run_time:` (or `iterations:`), so a run from Slack stops on its own"
        ))
        .into());
    }
    Ok(())
}

/// A source built here, for `load_mix` (which takes what converts into one).
struct Checked(nest_config::plan::Source);

impl TryFrom<Checked> for nest_config::plan::Source {
    type Error = UsageError;
    fn try_from(checked: Checked) -> Result<Self, UsageError> {
        Ok(checked.0)
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
