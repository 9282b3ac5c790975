//! `nest run --web`: the glue between the command line, the web UI (`nest-web`) and the run (`run.rs`).
//!
//! Everything is checked before the page is served: the address and credentials (a non-loopback address without
//! them is a usage error, exit 2), the scripts, the config and the plan. Then the page waits for Start (unless
//! `--autostart`); its form's weights and numbers become the command line's settings of a fresh plan, so they are
//! checked exactly as flags are. The run is `run.rs`'s `execute`, steered by the page's handle; the report files
//! and the exit code are those of `nest run`. The confirmation prompt of `nest run` does not apply: the Start
//! button is the confirmation.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

use nest_config::parse::UsageError;
use nest_config::plan;
use nest_config::settings::Settings;
use nest_core::RunHandle;
use nest_report::model::Source;
use nest_report::render::Outputs;
use nest_web::{Credentials, LiveContext, LoadSetup, Setup, StartRequest, WebError, WebUi};

use crate::cli::RunArgs;
use crate::scale::ScaleOut;

/// The variable that holds the web UI's credentials, `user:pass`.
pub const AUTH_VAR: &str = "NEST_WEB_AUTH";

/// Runs `nest run --web`.
pub fn run(args: RunArgs) -> Result<()> {
    let addr = args.web.context("--web without an address")?;
    refuse_split_run(&args)?;
    check(addr, args.web_auth_file.as_ref())?;
    let outputs = Outputs { csv: args.csv.clone(), html: args.html.clone(), junit: args.junit.clone() };
    let summary_to_stderr = crate::run::check_outputs(&args, &outputs)?;
    // The whole plan is built once before the page is served, so that every error is found first.
    let mix = plan::load_mix(&args.source, args.settings()?)?;
    let first = plan::build_steered(mix, args.demo, nest_core::Segment::WHOLE)?;
    for warning in &first.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    let notify = crate::notify::targets(&args.notify, first.mix.config.as_ref())?;
    let web = serve(addr, args.web_auth_file.as_ref(), setup_of(&first, args.demo))?;
    announce(&web);
    let mut checked = if args.autostart { first } else { wait_for_start(&args, &web)? };
    let scale = ScaleOut::prepare(&args.scale.with_env()?, &mut checked);
    let demo = crate::run::start_demo(&args, &mut checked)?;
    let run_time = checked.plan.run_time;
    let executed = crate::run::execute_steered(checked, args.quiet, &scale, None, RunHandle::new(), |started| {
        web.running(started.handle.clone(), started.snapshots.clone(), live_context(&started, run_time));
    });
    drop(demo);
    let executed = executed?;
    web.finished(executed.report.clone());
    let outcome =
        crate::run::finish(&args, &executed.report, executed.gate, summary_to_stderr, &outputs, None, &notify);
    // A Ctrl-C or SIGTERM that stopped the run ends the process too: it was asked to go.
    let signalled = executed.interrupted && !web.stopped_from_page();
    let exits_at_the_end = args.yes && run_time.is_some();
    if !signalled && !exits_at_the_end {
        keep_until_interrupted(&web)?;
    }
    outcome
}

/// A web run is one whole run on this machine; a split run has `nest coordinate --web`.
fn refuse_split_run(args: &RunArgs) -> Result<()> {
    let scale = args.scale.with_env()?;
    if scale.segment.is_some() || scale.start_at.is_some() || args.coordinator.url().is_some() {
        return Err(UsageError(
            "--web runs the whole plan from this process; for a run split into segments, watch it with \
             `nest coordinate --web`"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// The credentials from `--web-auth-file` or `NEST_WEB_AUTH`, if any (never from the command line itself).
fn credentials(file: Option<&PathBuf>) -> Result<Option<Credentials>> {
    let (text, from) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("--web-auth-file {}: {e}", path.display())))?;
            (Some(text), path.display().to_string())
        }
        None => (std::env::var(AUTH_VAR).ok().filter(|v| !v.trim().is_empty()), AUTH_VAR.to_owned()),
    };
    text.map(|t| Credentials::parse(&t).map_err(|e| UsageError(format!("{from}: {e}")).into())).transpose()
}

/// Checks the address and credentials, then serves the page: a non-loopback address without credentials, an
/// address in use or malformed credentials are usage errors (exit 2), found before anything starts.
pub fn serve(addr: SocketAddr, auth_file: Option<&PathBuf>, setup: Setup) -> Result<WebUi> {
    let auth = credentials(auth_file)?;
    let web = WebUi::start(addr, auth, setup).map_err(|e| match e {
        WebError::Unprotected { .. } | WebError::Bind { .. } | WebError::Credentials(_) => {
            anyhow::Error::new(UsageError(e.to_string()))
        }
        other => anyhow::Error::new(other),
    })?;
    Ok(web)
}

/// Says where the page is, once it shows what it should (scripts and tests wait for this line).
pub fn announce(web: &WebUi) {
    let _ = writeln!(std::io::stderr(), "web UI on {}", web.url());
}

/// Checks the address and credentials before anything else.
fn check(addr: SocketAddr, auth_file: Option<&PathBuf>) -> Result<()> {
    let auth = credentials(auth_file)?;
    nest_web::guard::check_bind(addr, auth.as_ref()).map_err(|e| UsageError(e.to_string()))?;
    Ok(())
}

/// Blocks until Ctrl-C or SIGTERM, saying that the final report stays on the page until then.
pub fn keep_until_interrupted(web: &WebUi) -> Result<()> {
    let _ = writeln!(std::io::stderr(), "the final report stays on {} until Ctrl-C", web.url());
    wait_for_ctrl_c()
}

/// The page of `nest coordinate --web`: no form (the segments bring their plan), a segments tab.
pub fn coordinator_setup(segments: u32) -> Setup {
    Setup {
        mix: Vec::new(),
        load: LoadSetup::Fixed { description: format!("{segments} segments, each running its share of one plan") },
        host: "the segments' target".to_owned(),
        run_time_s: None,
        iterations: None,
    }
}

/// What the web UI needs to show a coordinated run and build its reports.
pub fn coordinator_context(segments: u32, thresholds: Vec<nest_report::thresholds::Threshold>) -> LiveContext {
    let run = nest_report::model::RunInfo {
        nest_version: env!("CARGO_PKG_VERSION").to_owned(),
        command: crate::shell::join(std::env::args()),
        host: "the segments' target".to_owned(),
        load: format!("{segments} segments"),
        workers: 0,
        run_time_s: None,
        iterations: None,
        mix: Vec::new(),
        identity: None,
        segments: Vec::new(),
        incomplete: None,
        stats_reset: None,
    };
    let gate = thresholds.is_empty();
    LiveContext { tasksets: Vec::new(), run, thresholds, gate, users: 0, open: false, run_time: None }
}

/// The coordinator's segments, as the segments tab shows them.
pub fn segments(seats: Vec<nest_coord::state::SeatStatus>) -> nest_web::Segments {
    let rows = seats
        .into_iter()
        .map(|s| nest_web::view::SegmentRow {
            index: u64::from(s.index),
            host: s.host.unwrap_or_default(),
            state: s.state.to_owned(),
            users: s.users,
            start_skew_ms: s.start_skew_ms,
            last_seen_s: s.last_seen.map(|d| d.as_secs_f64()),
        })
        .collect();
    nest_web::Segments { rows }
}

/// What the page shows before the run, from the checked plan.
fn setup_of(checked: &plan::RunPlan, demo: bool) -> Setup {
    let s = &checked.mix.settings;
    let load = if s.stages.is_some() || s.shape.is_some() {
        LoadSetup::Fixed { description: crate::confirm::load_line(&checked.plan) }
    } else if checked.plan.model.is_open() {
        LoadSetup::Open { rate: s.rate.unwrap_or_default() }
    } else {
        LoadSetup::Closed { users: checked.plan.users(), spawn_rate: s.spawn_rate }
    };
    let host = match (&checked.host, demo) {
        (_, true) => "the built-in demo shop (--demo)".to_owned(),
        (Some(host), false) => nest_http::redact(host).into_owned(),
        (None, false) => String::new(),
    };
    Setup {
        mix: checked.mix.rows.clone(),
        load,
        host,
        run_time_s: checked.plan.run_time.map(|t| t.as_secs_f64()),
        iterations: checked.plan.iterations,
    }
}

/// Waits for a Start whose form builds a plan; a form the plan refuses is answered with why, and the page waits
/// for the next.
fn wait_for_start(args: &RunArgs, web: &WebUi) -> Result<plan::RunPlan> {
    let _ = writeln!(std::io::stderr(), "waiting for Start on the page (Ctrl-C to quit; nothing is sent before)");
    loop {
        let order = web.next_start().context("the web UI stopped before the run started")?;
        match plan_of(args, &order.request) {
            Ok(checked) => {
                order.accept();
                return Ok(checked);
            }
            Err(e) => order.refuse(format!("{e:#}")),
        }
    }
}

/// The plan of a Start form: its numbers are the command line's settings, its weights replace the mix's.
fn plan_of(args: &RunArgs, request: &StartRequest) -> Result<plan::RunPlan> {
    let mut settings: Settings = args.settings()?;
    settings.users = request.users.or(settings.users);
    settings.spawn_rate = request.spawn_rate.or(settings.spawn_rate);
    settings.rate = request.rate.or(settings.rate);
    if let Some(seconds) = request.run_time_s {
        settings.run_time = Some(std::time::Duration::from_secs_f64(seconds));
    }
    let mut mix = plan::load_mix(&args.source, settings)?;
    form_weights(&mut mix.specs, &mut mix.sources, &request.weights);
    Ok(plan::build_steered(mix, args.demo, nest_core::Segment::WHOLE)?)
}

/// The form's weights in place of the mix's (`specs` and their `sources` side by side): a weight the form changed
/// says so in the reports' mix table (`web UI`); one it left as it was keeps its source.
fn form_weights(specs: &mut [nest_core::TasksetSpec], sources: &mut [Source], weights: &BTreeMap<String, u32>) {
    for (spec, source) in specs.iter_mut().zip(sources) {
        if let Some(&weight) = weights.get(&spec.name)
            && weight != spec.weight
        {
            spec.weight = weight;
            *source = Source::Web;
        }
    }
}

/// What the web UI needs to show the run and build its reports.
fn live_context(started: &crate::run::Started<'_>, run_time: Option<std::time::Duration>) -> LiveContext {
    LiveContext {
        tasksets: started.plan.tasksets.clone(),
        run: started.run_info.clone(),
        thresholds: started.thresholds.to_vec(),
        gate: started.gate,
        users: started.plan.segment_users(),
        open: started.plan.model.is_open(),
        run_time,
    }
}

/// Blocks until Ctrl-C (or SIGTERM).
fn wait_for_ctrl_c() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::{TaskSpec, TasksetSpec};

    #[test]
    fn weights_the_form_changed_are_labelled_web_and_the_others_keep_their_source() {
        let spec = |name: &str, weight| TasksetSpec {
            name: name.into(),
            weight,
            tasks: vec![TaskSpec::new("t", 1)],
            ..Default::default()
        };
        let mut specs = vec![spec("a", 1), spec("b", 2), spec("c", 1)];
        let mut sources = vec![Source::Config, Source::FromScript, Source::FromScript];
        let form = BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 2)]);
        form_weights(&mut specs, &mut sources, &form);
        let weights: Vec<u32> = specs.iter().map(|s| s.weight).collect();
        assert_eq!(weights, [3, 2, 1]);
        assert_eq!(sources, [Source::Web, Source::FromScript, Source::FromScript], "b was sent unchanged");
    }
}
