//! The second stage: the command line's settings, the environment and the config file into a validated run plan.
//!
//! Everything that can be wrong with the options, the config, the scripts or the machine's limits is found here,
//! before any load is sent, and reported as a [`UsageError`] (exit code 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nest_core::{Plan, TasksetSpec};
use nest_rhai::Catalog;
use url::Url;

use crate::config::LoadedConfig;
use crate::mix::{self, MixRow};
use crate::model::Choice;
use crate::parse::UsageError;
use crate::settings::Settings;

/// Users of `--demo` unless told otherwise.
const DEMO_USERS: u64 = 20;
/// Run time of `--demo` unless told otherwise.
const DEMO_RUN_TIME: Duration = Duration::from_secs(15);
/// The taskset folder when nobody says otherwise.
pub const DEFAULT_TASKSET_DIR: &str = "tasksets";

/// The tasksets with their effective weights, and where they came from.
pub struct Mix {
    /// The loaded tasksets.
    pub catalog: Catalog,
    /// Their specs with the effective weights.
    pub specs: Vec<TasksetSpec>,
    /// Where each taskset's weight came from.
    pub sources: Vec<mix::Source>,
    /// The rows of the mix table.
    pub rows: Vec<MixRow>,
    /// The config file, if one was used.
    pub config: Option<LoadedConfig>,
    /// All settings, layered.
    pub settings: Settings,
    /// What the command line, the environment and the config file said, in that order.
    pub layers: [Settings; 3],
    /// The test data pools, loaded and checked against the scripts.
    pub data: std::sync::Arc<nest_data::DataRegistry>,
}

/// Where the tasksets and the config come from, and the process around them: what the binary hands in.
#[derive(Debug, Clone)]
pub struct Source {
    /// The config file given (`--config`); `None` looks for `nest.yaml` in the current directory.
    pub config: Option<PathBuf>,
    /// Scripts may read outside the project and taskset folders (`--no-confine`).
    pub no_confine: bool,
    /// Run with the settings of this preset of `slack: presets:` (`--preset`): they take the place of the file's
    /// own, key by key.
    pub preset: Option<String>,
    /// What the source options say: the taskset folder, the strictness and limits of scripts.
    pub settings: Settings,
    /// Reads one `NEST_*` variable (the process environment, for the command line).
    pub env: fn(&str) -> Option<String>,
    /// Shows one warning of the scripts' static check (on stderr, for the command line).
    pub warn: fn(&str),
}

/// Loads the config, layers the settings over `cli`, compiles the tasksets and resolves the weights.
pub fn load_mix(source: impl TryInto<Source, Error = UsageError>, cli: Settings) -> Result<Mix, UsageError> {
    let source = source.try_into()?;
    let config = LoadedConfig::find(source.config.as_deref())?;
    let mut file = config.as_ref().map(LoadedConfig::settings).transpose()?.unwrap_or_default();
    if let Some(name) = &source.preset {
        let config = config.as_ref().ok_or_else(|| {
            UsageError(format!("--preset {name}: no config file (nest.yaml, or --config) holds `slack: presets:`"))
        })?;
        file = config.preset_settings(name)?.over(file);
    }
    let env = Settings::from_env(source.env)?;
    let cli = source.settings.clone().over(cli);
    let settings = Settings::layered(cli.clone(), env.clone(), file.clone());
    let dir = settings.taskset_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_TASKSET_DIR));
    let options = nest_rhai::LoadOptions {
        confine: Some(confine(source.no_confine, &dir, config.as_ref())),
        ..settings.load_options()
    };
    let catalog = Catalog::load_with(&dir, options).map_err(|errors| {
        let n = errors.0.len();
        let head = if n == 1 { "a taskset has an error".to_owned() } else { format!("{n} errors in tasksets") };
        UsageError(format!("{head}; nothing was run:\n{errors}"))
    })?;
    for warning in &catalog.warnings {
        (source.warn)(&warning.to_string());
    }
    let mut specs = catalog.specs();
    let sources = mix::resolve(&mut specs, config.as_ref(), settings.use_script_weights.unwrap_or(false))?;
    let rows = mix::rows(&specs, &sources);
    let data = crate::data::load(config.as_ref(), &catalog)?;
    Ok(Mix { catalog, specs, sources, rows, config, settings, layers: [cli, env, file], data })
}

/// Where scripts may read from: the project folder (the config file's, or the current one) and the taskset folder,
/// unless `--no-confine`.
pub fn confine(no_confine: bool, taskset_dir: &Path, config: Option<&LoadedConfig>) -> nest_rhai::Confine {
    if no_confine {
        return nest_rhai::Confine::off();
    }
    let project = config.map_or(Path::new("."), |c| c.dir());
    nest_rhai::Confine::within(&[project, taskset_dir])
}

/// A checked run, ready to start.
pub struct RunPlan {
    /// The tasksets and their mix.
    pub mix: Mix,
    /// The scheduler's plan.
    pub plan: Plan,
    /// The target; `None` when the demo target is to be started.
    pub host: Option<Url>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// `max_body`, when set.
    pub max_body: Option<u64>,
    /// `accept_encoding`, when set.
    pub accept_encoding: Option<String>,
    /// `source_addrs`: local addresses to connect from, round-robin by VU (empty: any).
    pub source_addrs: Vec<std::net::IpAddr>,
    /// Warnings about this machine's limits, or about ignored settings.
    pub warnings: Vec<String>,
    /// The load shape script, when `--shape` drives the users.
    pub shape: Option<nest_rhai::LoadShape>,
    /// Pass/fail criteria.
    pub thresholds: Vec<nest_report::thresholds::Threshold>,
    /// The exit code of the default gate when it applies: no threshold configured, and not turned off.
    pub gate: Option<u8>,
    /// Prometheus metrics: where to serve and push them.
    pub metrics: Metrics,
}

/// The settings of the Prometheus metrics (`prometheus`, `prometheus_remote_write`, `prometheus_linger`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Serve `/metrics` on this address.
    pub listen: Option<std::net::SocketAddr>,
    /// Push by remote write to this URL.
    pub remote_write: Option<String>,
    /// After the run, how long to wait for a scrape of the final figures.
    pub linger: std::time::Duration,
}

/// Checks the layered settings of `mix` (see [`load_mix`]) against its scripts; `demo` runs against the built-in
/// target; `segment` is this process's share of the plan.
pub fn build(mix: Mix, demo: bool, segment: nest_core::Segment) -> Result<RunPlan, UsageError> {
    build_with(mix, demo, segment, false)
}

/// As [`build`], for a run that a web UI or a coordinator steers while it goes on (`nest run --web`, a segment of
/// `nest coordinate`): its users may be raised past the plan's, so it keeps every worker (see
/// [`nest_core::PlanBuilder::steered`]).
pub fn build_steered(mix: Mix, demo: bool, segment: nest_core::Segment) -> Result<RunPlan, UsageError> {
    build_with(mix, demo, segment, true)
}

fn build_with(mut mix: Mix, demo: bool, segment: nest_core::Segment, steered: bool) -> Result<RunPlan, UsageError> {
    let s = &mix.settings;
    let mut warnings = Vec::new();
    let host = match (&s.host, demo) {
        (Some(host), true) => {
            let host = nest_http::redact_url(host.as_str());
            warnings.push(format!("--demo runs against the built-in target; the configured host {host} is ignored"));
            None
        }
        (Some(host), false) => Some(host.clone()),
        (None, true) => None,
        (None, false) => {
            return Err(UsageError(
                "no target: give --host URL (e.g. --host http://127.0.0.1:8080), NEST_HOST, `host:` in nest.yaml, \
                 or --demo"
                    .into(),
            ));
        }
    };
    let demo_time = demo && s.iterations.is_none() && s.shape.is_none();
    let run_time = s.run_time.or(if demo_time { Some(DEMO_RUN_TIME) } else { None });
    let mut specs = mix.specs.clone();
    select_tags(&mut specs, s)?;
    // The confirmation shows the mix that will run, after the tag selection.
    mix.rows = mix::rows(&specs, &mix.sources);
    let mut builder = Plan::builder(specs)
        .run_time(run_time)
        .iterations(s.iterations)
        .segment(segment)
        .steered(steered)
        .stop_timeout(s.stop_timeout.unwrap_or(Duration::from_secs(10)));
    let mut shape = None;
    let [cli, env, file] = &mix.layers;
    let chosen = crate::model::choose(&[("the command line", cli), ("the environment", env), ("nest.yaml", file)], s)?;
    warnings.extend(chosen.warnings);
    let stages = if chosen.use_stages { s.stages.clone() } else { None };
    match chosen.choice {
        Choice::Open => {
            let rate = s.rate.unwrap_or_default();
            let peak = stages.iter().flatten().map(|st| st.target).fold(rate, f64::max);
            let max_users = s.max_users.unwrap_or((peak.ceil() as u64).max(10));
            let max_delay = s.max_delay.unwrap_or(Duration::from_secs(5));
            builder = builder.open(rate, max_users, max_delay).stages(stages);
        }
        Choice::Shape => {
            let path = s.shape.as_ref().ok_or_else(|| UsageError("no shape file".into()))?;
            shape = Some(nest_rhai::LoadShape::load(path).map_err(|e| UsageError(e.to_string()))?);
            builder = builder.shaped();
        }
        Choice::Stages => builder = builder.stages(stages),
        Choice::Users => {
            let users = s.users.unwrap_or(if demo { DEMO_USERS } else { 1 });
            builder = builder.users(users).spawn_rate(s.spawn_rate);
        }
    }
    if chosen.choice != Choice::Open && (cli.max_users.is_some() || cli.max_delay.is_some()) {
        return Err(UsageError("--max-users and --max-delay belong to the open model: add --rate R".into()));
    }
    if let Some(workers) = s.workers {
        builder = builder.workers(workers);
    }
    if let Some(seed) = s.seed {
        builder = builder.seed(seed);
    }
    let plan = builder.build().map_err(|e| UsageError(e.to_string()))?;
    mix.data = crate::data::for_segment(&mix.data, &mix.catalog, plan.segment)?;
    if let nest_core::Model::Closed { shaped: false, .. } = plan.model {
        mix::assign_users(&mut mix.rows, plan.users());
    }
    let limits = nest_core::limits::check(plan.segment_users()).map_err(|e| UsageError(e.to_string()))?;
    warnings.extend(limits.warnings);
    let insecure = s.insecure.unwrap_or(false);
    let thresholds = s.thresholds.clone().unwrap_or_default();
    let (max_body, accept_encoding) = (s.max_body.map(|b| b.0), s.accept_encoding.clone());
    if let Some(codings) = &accept_encoding {
        nest_http::accept_encoding_value(codings).map_err(|e| UsageError(e.to_string()))?;
    }
    let source_addrs = s.source_addrs.clone().unwrap_or_default();
    for addr in &source_addrs {
        nest_http::check_source_addr(*addr).map_err(|e| UsageError(e.to_string()))?;
    }
    let gate = default_gate(s, thresholds.is_empty());
    let metrics = Metrics {
        listen: s.prometheus,
        remote_write: s.prometheus_remote_write.clone().filter(|u| !u.trim().is_empty()),
        linger: s.prometheus_linger.unwrap_or_default(),
    };
    Ok(RunPlan {
        mix,
        plan,
        host,
        insecure,
        max_body,
        accept_encoding,
        source_addrs,
        warnings,
        shape,
        thresholds,
        gate,
        metrics,
    })
}

/// The default gate's exit code, when it applies: configured thresholds replace it, `no_default_gate` or an
/// exit code of 0 turn it off.
fn default_gate(s: &Settings, no_thresholds: bool) -> Option<u8> {
    let code = s.exit_code_on_error.unwrap_or(nest_report::thresholds::DEFAULT_EXIT_CODE);
    (no_thresholds && s.no_default_gate != Some(true) && code != 0).then_some(code)
}

/// Applies `--tags` / `--exclude-tags`; a selection that leaves nothing to run is an error.
fn select_tags(specs: &mut [nest_core::TasksetSpec], s: &Settings) -> Result<(), UsageError> {
    let (include, exclude) = (s.tags.clone().unwrap_or_default(), s.exclude_tags.clone().unwrap_or_default());
    if include.is_empty() && exclude.is_empty() {
        return Ok(());
    }
    let disabled = selected_but_disabled(specs, &include, &exclude);
    for spec in specs.iter_mut() {
        spec.select_tags(&include, &exclude);
    }
    if specs.iter().all(|t| t.weight == 0) {
        let known: std::collections::BTreeSet<&str> = specs
            .iter()
            .flat_map(|t| t.tags.iter().chain(t.tasks.iter().flat_map(|k| k.tags.iter())))
            .map(String::as_str)
            .collect();
        let known = if known.is_empty() { "none".to_owned() } else { known.into_iter().collect::<Vec<_>>().join(", ") };
        let why = match disabled.as_slice() {
            [] => String::new(),
            names => format!(
                ": the tasks it selects are in {} with weight 0 ({}); give {} a weight under `tasksets:` in \
                 nest.yaml, e.g. with `nest configure --set {}=1`",
                if names.len() == 1 { "a disabled taskset" } else { "disabled tasksets" },
                names.join(", "),
                if names.len() == 1 { "it" } else { "one" },
                names[0],
            ),
        };
        return Err(UsageError(format!(
            "the tag selection (--tags {}, --exclude-tags {}) leaves no task to run{why}; the tags in use are: {known}",
            if include.is_empty() { "-".to_owned() } else { include.join(",") },
            if exclude.is_empty() { "-".to_owned() } else { exclude.join(",") },
        )));
    }
    Ok(())
}

/// The tasksets with weight 0 that hold tasks the selection would run, were they enabled.
fn selected_but_disabled(specs: &[nest_core::TasksetSpec], include: &[String], exclude: &[String]) -> Vec<String> {
    specs
        .iter()
        .filter(|t| t.weight == 0)
        .filter(|t| {
            let mut enabled = (*t).clone();
            enabled.weight = 1;
            enabled.select_tags(include, exclude);
            enabled.weight > 0
        })
        .map(|t| t.name.clone())
        .collect()
}
