//! `nest scale`: parses the steps, runs each one through `nest run`'s path (`run::execute`), and hands the rest
//! (measurement, capacity, fit, files, history, gate) to nest-scale.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use nest_demo::{DemoConfig, DemoServer, Mode};
use nest_scale::ScaleError;
use nest_scale::run::{Outputs, Setup, StepRun};
use nest_scale::spec::{Load, ScaleConfig, Spec};

use crate::cli::{RunArgs, ScaleArgs, ScaleCommand, ScaleHistoryArgs};
use nest_config::parse::UsageError;
use nest_config::plan;
use nest_config::settings::Settings;

/// Runs `nest scale` (or `nest scale history`).
pub fn run(args: ScaleArgs) -> Result<()> {
    if let Some(ScaleCommand::History(h)) = &args.command {
        return history(h);
    }
    if args.run.web.is_some() {
        return Err(
            UsageError("nest scale has no web UI: --web belongs to `nest run` and `nest coordinate`".into()).into()
        );
    }
    let base = step_settings(&args.run)?;
    for path in args.run.json.iter().chain(&args.run.html) {
        crate::run::check_writable(path)?;
    }
    let mix = plan::load_mix(&args.run.source, base.clone())?;
    let file = mix.config.as_ref().and_then(|c| c.file.scale.clone());
    let notify = crate::notify::targets(&args.run.notify, mix.config.as_ref())?;
    let spec = Spec::layered(&cli_config(&args), file.as_ref(), args.gate).map_err(to_anyhow)?;
    let at = |load: Load, run_time| {
        let mut s = base.clone();
        match load {
            Load::Users(n) => s.users = Some(n),
            Load::Rate(r) => s.rate = Some(r),
        }
        s.run_time = Some(run_time);
        s
    };
    // Every error of the plan before any load: the first step's plan is built and checked here.
    let first_mix = plan::load_mix(&args.run.source, at(spec.steps[0], spec.settle + spec.step_time))?;
    drop(mix);
    let first = plan::build(first_mix, args.run.demo, nest_core::Segment::WHOLE)?;
    for warning in &first.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    let demo = match args.run.demo {
        true => Some(
            DemoServer::start(DemoConfig { mode: Mode::Shop, ..DemoConfig::default() })
                .context("could not start the demo target")?,
        ),
        false => None,
    };
    let host = match &demo {
        Some(server) => nest_config::parse::parse_host(&server.url())?,
        None => first.host.clone().ok_or_else(|| UsageError("no target".into()))?,
    };
    let setup = Setup {
        cycle: nest_scale::step::cycle(&first.mix.specs),
        plan_hash: plan_hash(&first, &spec, &base),
        target: nest_http::redact(&host).into_owned(),
        nest_version: env!("CARGO_PKG_VERSION").to_owned(),
        dir: std::env::current_dir()?,
        spec,
    };
    let mut runner = |step: usize, load: Load, run_time| -> Result<StepRun, ScaleError> {
        let failed = |e: anyhow::Error| ScaleError::Step { step, load: load.to_string(), reason: format!("{e:#}") };
        let mix = plan::load_mix(&args.run.source, at(load, run_time)).map_err(|e| failed(e.into()))?;
        let mut checked = plan::build(mix, args.run.demo, nest_core::Segment::WHOLE).map_err(|e| failed(e.into()))?;
        checked.host = Some(host.clone());
        let scale = crate::scale::ScaleOut::prepare(&crate::cli::ScaleOutArgs::default(), &mut checked);
        let ran = crate::run::execute(checked, true, &scale, None).map_err(failed)?;
        Ok(StepRun { report: ran.report, interrupted: ran.interrupted })
    };
    let doc = nest_scale::run::run(&setup, &mut runner, &mut std::io::stderr()).map_err(to_anyhow)?;
    drop(demo);
    let outputs = Outputs { json: args.run.json.clone(), html: args.run.html.clone() };
    let concluded = {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        nest_scale::run::conclude(&doc, &setup.spec, &outputs, &mut out, &mut err)
    };
    if !notify.is_empty() {
        let line = nest_slack::jobs::scale_line(&doc, &setup.spec.history);
        let title = args.run.source.preset.as_ref().map_or_else(|| "nest scale".to_owned(), |p| format!("scale {p}"));
        crate::notify::deliver(&notify, nest_slack::notify::Outcome::Scale(&doc, &line), &title);
    }
    concluded.map_err(to_anyhow)
}

/// `nest scale history`: the file from `--history`, else `scale: history:`, else the default.
fn history(h: &ScaleHistoryArgs) -> Result<()> {
    let config = nest_config::config::LoadedConfig::find(h.config.as_deref())?;
    let file = config.as_ref().and_then(|c| c.file.scale.as_ref()).and_then(|s| s.history.clone());
    let path = h.history.clone().or(file).unwrap_or_else(|| PathBuf::from(nest_scale::spec::DEFAULT_HISTORY));
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    nest_scale::run::show_history(&path, h.html.as_deref(), &mut out, &mut err).map_err(to_anyhow)
}

/// The run options of every step: no thresholds (the SLOs are judged over the measured window) and no default
/// gate; the options that would fight the steps are refused.
fn step_settings(run: &RunArgs) -> Result<Settings> {
    let taken = [
        ("--users", run.run.users.is_some()),
        ("--rate", run.run.rate.is_some()),
        ("--run-time", run.run.run_time.is_some()),
        ("--stages", run.run.stages.is_some()),
        ("--shape", run.run.shape.is_some()),
        ("--iterations", run.run.iterations.is_some()),
        ("--threshold (use --slo)", !run.run.thresholds.is_empty()),
        ("--csv", run.csv.is_some()),
        ("--junit", run.junit.is_some()),
    ];
    if let Some((flag, _)) = taken.iter().find(|(_, set)| *set) {
        return Err(UsageError(format!("nest scale does not take {flag}: the steps decide the load")).into());
    }
    let mut settings = run.settings()?;
    settings.thresholds = Some(Vec::new());
    settings.no_default_gate = Some(true);
    Ok(settings)
}

/// What the command line says about the steps.
fn cli_config(args: &ScaleArgs) -> ScaleConfig {
    ScaleConfig {
        steps: args.steps.clone(),
        rate_steps: args.rate_steps.clone(),
        step_time: args.step_time,
        settle: args.settle,
        slo: (!args.slo.is_empty()).then(|| args.slo.clone()),
        stop_on_breach: args.stop_on_breach,
        history: args.history.clone(),
        tolerance: args.tolerance,
        baseline: args.baseline,
    }
}

/// The plan hash: the scripts (paths relative to the taskset folder), the mix, the steps and the tag selection.
fn plan_hash(checked: &plan::RunPlan, spec: &Spec, s: &Settings) -> String {
    let catalog = &checked.mix.catalog;
    let scripts: Vec<(String, Vec<u8>)> = catalog
        .tasksets
        .iter()
        .map(|t| {
            let path = std::path::Path::new(&t.path);
            let bytes = std::fs::read(path).or_else(|_| std::fs::read(catalog.dir.join(path))).unwrap_or_default();
            let relative = path.strip_prefix(&catalog.dir).unwrap_or(path);
            (relative.to_string_lossy().into_owned(), bytes)
        })
        .collect();
    let settings = serde_json::json!({
        "scale": spec.hash_settings(),
        "mix": checked.mix.rows,
        "tags": s.tags,
        "exclude_tags": s.exclude_tags,
        "max_users": s.max_users,
    });
    nest_scale::plan_hash(&scripts, &settings)
}

/// nest-scale's errors for `main`: usage errors exit 2, a regression 6.
fn to_anyhow(e: ScaleError) -> anyhow::Error {
    match e {
        ScaleError::Usage(m) => UsageError(m).into(),
        ScaleError::Regressed(r) => r.into(),
        other => other.into(),
    }
}
