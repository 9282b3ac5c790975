//! `nest run`: start the target if asked, run the plan, stop on time or on signals, and report.
//!
//! Stopping is plumbing, not `process::exit`: the first Ctrl-C (or SIGTERM, or SIGHUP) asks for a graceful stop, a second one
//! cancels what is in flight, and either way the summary is printed and the JSON report written.
//!
//! Once the load started, nothing nest prints may end the run: after a hangup the terminal refuses writes, and
//! stdout or stderr may be a full disk. Every message is written with its error ignored (never `eprintln!`, which
//! panics), the stop is asked before the message that announces it, and the report files never depend on the summary
//! having been printed.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use nest_core::{EndReason, RunHandle, RunPhase, Snapshots};
use nest_demo::{DemoConfig, DemoServer, Mode};
use nest_http::ClientConfig;

use crate::cli::RunArgs;
use crate::confirm;
use crate::live::Display;
use crate::scale::ScaleOut;
use nest_config::parse::UsageError;
use nest_config::plan;
use nest_coord::rendezvous::Coordinated;
use nest_report::model::{Report, RunInfo};
use nest_report::output::write_atomic;
use nest_report::render::Outputs;
use nest_report::table::print_summary;
use nest_report::thresholds::{self, GateFailed, Threshold, ThresholdsFailed};

/// Runs `nest run`.
pub fn run(args: RunArgs) -> Result<()> {
    let scale_args = args.scale.with_env()?;
    let segment = scale_args.segment.unwrap_or(nest_core::Segment::WHOLE);
    let mix = plan::load_mix(&args.source, args.settings()?)?;
    // A segment of a coordinated run may be steered by the coordinator: it keeps its workers for more users.
    let build = if args.coordinator.url().is_some() { plan::build_steered } else { plan::build };
    let mut checked = build(mix, args.demo, segment)?;
    let mut scale = ScaleOut::prepare(&scale_args, &mut checked);
    for warning in &checked.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    let outputs = Outputs { csv: args.csv.clone(), html: args.html.clone(), junit: args.junit.clone() };
    let summary_to_stderr = check_outputs(&args, &outputs)?;
    let notify = crate::notify::targets(&args.notify, checked.mix.config.as_ref())?;
    if !confirm::confirm(&checked, args.yes, args.quiet)? {
        let _ = writeln!(std::io::stderr(), "not started: nothing was sent");
        return Ok(());
    }
    let joined = scale.coordinated(&args.coordinator, &scale_args, &mut checked)?;
    let say = |text: &str| {
        if !args.quiet {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    };
    let demo = start_demo(&args, &mut checked)?;
    if let Some(line) = scale.announcement(&scale_args) {
        say(&line);
    }
    let executed = execute(checked, args.quiet, &scale, joined.as_ref());
    drop(demo);
    let Executed { report, gate, .. } = executed?;
    finish(&args, &report, gate, summary_to_stderr, &outputs, joined.as_ref(), &notify)
}

/// After the run: prints the summary, hands the result to the coordinator (if any), writes the report files, and
/// posts the summary to the `--notify` targets, and turns the verdicts into the outcome.
pub fn finish(
    args: &RunArgs,
    report: &Report,
    gate: Option<u8>,
    summary_to_stderr: bool,
    outputs: &Outputs,
    joined: Option<&Arc<Coordinated>>,
    notify: &[nest_slack::notify::Target],
) -> Result<()> {
    let say = |text: &str| {
        if !args.quiet {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    };
    // A report on stdout (`--json -`, `--html /dev/stdout`) is alone there, so the summary goes to stderr. A summary
    // that cannot be printed (a closed terminal, a full disk) must not keep the report files from being written.
    let _ = if summary_to_stderr {
        print_report(&mut std::io::stderr().lock(), report, args.quiet)
    } else {
        print_report(&mut std::io::stdout().lock(), report, args.quiet)
    };
    // A coordinated segment hands its result in first; the verdict is the coordinator's.
    let handed = joined.map(|joined| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(joined.hand_in(report)).context("could not hand the result in to the coordinator")
    });
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(report)?;
        write_atomic(path, &json).with_context(|| format!("could not write {}", path.display()))?;
        say(&format!("report written to {}", path.display()));
    }
    for path in outputs.write(report)? {
        say(&format!("report written to {}", path.display()));
    }
    let title = args.source.preset.as_ref().map_or_else(|| "nest run".to_owned(), |p| format!("preset {p}"));
    crate::notify::send(notify, report, &title);
    if let Some(handed) = handed {
        return handed;
    }
    let failed = report.thresholds.iter().filter(|v| !v.passed).count();
    if let Some(code) = gate
        && failed > 0
    {
        return Err(GateFailed { code }.into());
    }
    if failed > 0 {
        return Err(ThresholdsFailed { failed, total: report.thresholds.len() }.into());
    }
    Ok(())
}

/// Starts the demo target when `--demo` asks for it, and points the plan at it.
pub(crate) fn start_demo(args: &RunArgs, checked: &mut plan::RunPlan) -> Result<Option<DemoServer>> {
    if !args.demo {
        return Ok(None);
    }
    let server = DemoServer::start(DemoConfig { mode: Mode::Shop, ..DemoConfig::default() })
        .context("could not start the demo target")?;
    if !args.quiet {
        let _ = writeln!(std::io::stderr(), "demo target listening on {}", server.url());
    }
    checked.host = Some(nest_config::parse::parse_host(&server.url())?);
    Ok(Some(server))
}

/// What one run produced.
pub struct Executed {
    /// The report, verdicts included.
    pub report: Report,
    /// The default gate's exit code, when it applies.
    pub gate: Option<u8>,
    /// A signal stopped it.
    pub interrupted: bool,
}

/// Runs a checked plan against its host to its end, watching signals, progress (unless `quiet`) and the abort
/// thresholds, and builds its report. `nest run` prints and writes it; `nest scale` runs one per step. `scale` is
/// its part in a split run (its rendezvous and identity), `joined` the coordinator it feeds, if any.
pub fn execute(
    checked: plan::RunPlan,
    quiet: bool,
    scale: &ScaleOut,
    joined: Option<&Arc<Coordinated>>,
) -> Result<Executed> {
    execute_steered(checked, quiet, scale, joined, RunHandle::new(), |_| {})
}

/// What a run's outside observer (the web UI) is handed as the run starts, before any snapshot is published.
pub struct Started<'a> {
    /// The handle that steers the run (the one given to [`execute_steered`]).
    pub handle: &'a RunHandle,
    /// The run's snapshots.
    pub snapshots: &'a Snapshots,
    /// The plan about to run.
    pub plan: &'a nest_core::Plan,
    /// What is run, for reports.
    pub run_info: &'a RunInfo,
    /// The thresholds.
    pub thresholds: &'a [Threshold],
    /// The default gate applies.
    pub gate: bool,
}

/// [`execute`], steered from outside: `handle` steers the run (the signals stop it too), and `started` is called
/// once, just before the run starts, to subscribe to its snapshots.
pub fn execute_steered(
    checked: plan::RunPlan,
    quiet: bool,
    scale: &ScaleOut,
    joined: Option<&Arc<Coordinated>>,
    handle: RunHandle,
    started: impl FnOnce(Started<'_>),
) -> Result<Executed> {
    let say = |text: &str| {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    };
    let host = checked.host.clone().ok_or_else(|| UsageError("no target".into()))?;
    let http = Arc::new(client_config(&checked)?);
    let data = checked.mix.data.clone();
    let factory = Arc::new(checked.mix.catalog.factory(http, Some(host.clone())).with_data(data.clone()));
    let mut run_info = run_info(&checked, &host);
    let plan = checked.plan;
    let gate = checked.gate;
    let metrics = crate::metrics::bind(&checked.metrics, &plan.tasksets, &checked.thresholds, say)?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let display = Arc::new(Mutex::new(Display::new(quiet, plan.run_time)));
    let (publish, snapshots) = nest_core::snapshot::channel();
    let thresholds = &checked.thresholds;
    started(Started {
        handle: &handle,
        snapshots: &snapshots,
        plan: &plan,
        run_info: &run_info,
        thresholds,
        gate: gate.is_some(),
    });
    let (result, (thresholds, aborted)) = runtime.block_on(async {
        let signals = tokio::spawn(watch_signals(handle.clone(), plan.stop_timeout));
        // The observers: each watches the runner's snapshots; none runs inside its loop.
        // (With `--quiet` nothing is shown, and no abort threshold means nothing to watch: then no one subscribes,
        // and the runner copies nothing.)
        let quiet = matches!(*display.lock().unwrap_or_else(PoisonError::into_inner), Display::Quiet);
        let progress = (!quiet).then(|| tokio::spawn(show_progress(display.clone(), snapshots.clone())));
        if let Some(joined) = joined {
            let display = display.clone();
            let say = move |text: &str| display.lock().unwrap_or_else(PoisonError::into_inner).message(text);
            joined.feed(snapshots.clone(), handle.clone(), say);
        }
        let metrics = metrics.map(|m| crate::metrics::start(m, snapshots.clone(), display.clone()));
        let abort = tokio::spawn(abort_on_breach(checked.thresholds, snapshots, handle.clone(), display.clone()));
        let shape = Shape(checked.shape);
        let result = nest_core::run_with_rendezvous(plan, factory, handle, shape, publish, scale.rendezvous()).await;
        signals.abort();
        if let Some(progress) = progress {
            let _ = progress.await;
        }
        if let Some(metrics) = metrics {
            metrics.finish().await;
        }
        (result, abort.await.expect("the abort evaluator does not panic"))
    });
    display.lock().unwrap_or_else(PoisonError::into_inner).finish();
    let result = result.map_err(|e| match e {
        nest_core::Error::Worker { .. } | nest_core::Error::InvalidPlan(_) | nest_core::Error::Setup(_) => {
            anyhow::Error::new(UsageError(e.to_string()))
        }
        nest_core::Error::Rendezvous(e) => anyhow::Error::new(crate::scale::failed(&e)),
        other => anyhow::Error::new(other),
    })?;
    match (result.cut, result.end) {
        (Some(nest_core::Phase::Setup), EndReason::Killed) => {
            say("stopped during setup(): its calls were cancelled; the load did not start")
        }
        (Some(nest_core::Phase::Setup), _) => say("stopped during setup(): the load did not start"),
        (Some(nest_core::Phase::Start), _) => say("stopped while waiting for the start time: the load did not start"),
        (Some(nest_core::Phase::Teardown), _) => say("stopped during teardown(): its calls were cancelled"),
        (None, EndReason::Killed) => say("stopped: calls still in flight were cancelled"),
        (None, EndReason::Stopped) if aborted.is_empty() => say("stopped"),
        (None, EndReason::Stopped) => say("stopped: an abort threshold was breached"),
        (None, EndReason::RunTime | EndReason::Completed) => {}
    }

    let interrupted = matches!(result.end, EndReason::Stopped | EndReason::Killed) && aborted.is_empty();
    run_info.identity = Some(scale.identity(&result));
    let summary = result.summary(nest_config::data::pool_rows(&data));
    let report = Report::new(summary, run_info, &thresholds, &aborted, gate.is_some());
    Ok(Executed { report, gate, interrupted })
}

/// The HTTP client settings of the run.
fn client_config(checked: &plan::RunPlan) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new(checked.insecure).context("could not set up TLS")?;
    if let Some(max) = checked.max_body {
        config = config.max_body(max);
    }
    if let Some(codings) = &checked.accept_encoding {
        config = config.accept_encoding(codings).map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(config.source_addrs(checked.source_addrs.clone()))
}

/// What was run, for the report.
fn run_info(checked: &plan::RunPlan, host: &url::Url) -> RunInfo {
    let plan = &checked.plan;
    RunInfo {
        nest_version: env!("CARGO_PKG_VERSION").to_owned(),
        // Quoted, so that it can be pasted back (`--threshold 'p95 < 300ms'` stays one word), each word redacted.
        command: crate::shell::join(crate::notify::redact_args(std::env::args())),
        host: nest_http::redact(host).into_owned(),
        load: confirm::load_line(plan),
        workers: plan.workers,
        run_time_s: plan.run_time.map(|t| t.as_secs_f64()),
        iterations: plan.iterations,
        mix: checked.mix.rows.clone(),
        identity: None,
        segments: Vec::new(),
        incomplete: None,
        stats_reset: None,
    }
}

/// The summary and verdicts, or only the verdict line with `--quiet`.
fn print_report(out: &mut impl Write, report: &Report, quiet: bool) -> Result<()> {
    if quiet {
        thresholds::print_verdict_line(out, report)?;
    } else {
        print_summary(out, &report.summary)?;
        thresholds::print_verdicts(out, &report.thresholds)?;
    }
    out.flush()?;
    Ok(())
}

/// Checks every report path before any load; returns whether one of them is stdout (the summary then goes to
/// stderr). Two reports on stdout would be mixed, and five CSV files cannot share it: both are usage errors.
pub(crate) fn check_outputs(args: &RunArgs, outputs: &Outputs) -> Result<bool> {
    if outputs.csv.as_deref().is_some_and(|p| p.as_os_str() == "-" || nest_report::output::fd_name(p).is_some()) {
        return Err(UsageError(
            "--csv takes a file name prefix (it writes several files), not `-` or a descriptor".into(),
        )
        .into());
    }
    let mut on_stdout = Vec::new();
    for path in args.json.iter().cloned().chain(outputs.paths()) {
        if nest_report::output::is_stdout(&check_writable(&path)?) {
            on_stdout.push(path.display().to_string());
        }
    }
    if on_stdout.len() > 1 {
        let both = on_stdout.join(" and ");
        return Err(UsageError(format!("only one report can go to stdout, not {both}: give the others a file")).into());
    }
    Ok(!on_stdout.is_empty())
}

/// Fails before any load when a report file could not be written at the end (see [`nest_report::output::check`]).
pub fn check_writable(path: &std::path::Path) -> Result<nest_report::output::Target> {
    let target = nest_report::output::check(path)
        .map_err(|e| UsageError(format!("cannot write the report {}: {e}", path.display())))?;
    Ok(target)
}

/// The script's load shape, if it has one.
struct Shape(Option<nest_rhai::LoadShape>);

impl nest_core::ShapeSource for Shape {
    fn tick(&mut self, elapsed: Duration) -> nest_core::ShapeTick {
        match &self.0 {
            Some(shape) => shape.tick(elapsed),
            None => nest_core::ShapeTick::Stop,
        }
    }
}

/// The progress display, as an observer: it shows each second of the load and the final totals.
pub(crate) async fn show_progress(display: Arc<Mutex<Display>>, mut snapshots: Snapshots) {
    while snapshots.changed().await.is_ok() {
        let snapshot = snapshots.borrow_and_update().clone();
        // (The load's first snapshot, at 0 s, has nothing to show yet.)
        let shown = match snapshot.phase {
            RunPhase::Load => snapshot.seconds > 0,
            RunPhase::Drain => true,
            _ => false,
        };
        if shown {
            display.lock().unwrap_or_else(PoisonError::into_inner).update(&snapshot.totals, snapshot.elapsed);
        }
    }
}

/// The `abort` thresholds, as an observer: at each second of the load, stops the run when one is breached (after
/// its delay). Returns the thresholds, and those breached with the second at which they were.
async fn abort_on_breach(
    thresholds: Vec<Threshold>,
    mut snapshots: Snapshots,
    handle: RunHandle,
    display: Arc<Mutex<Display>>,
) -> (Vec<Threshold>, Vec<(usize, f64)>) {
    let mut aborted = Vec::new();
    if !thresholds.iter().any(|t| t.abort) {
        return (thresholds, aborted);
    }
    while snapshots.changed().await.is_ok() {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.phase != RunPhase::Load || handle.is_stopping() {
            continue;
        }
        // (After a reset of the statistics, the totals and their rates cover the time since it.)
        let counted = snapshot.elapsed.saturating_sub(snapshot.counted_from);
        let breached = thresholds::breached_now(&thresholds, &snapshot.totals, counted);
        if breached.is_empty() {
            continue;
        }
        let at = snapshot.elapsed.as_secs_f64();
        let mut display = display.lock().unwrap_or_else(PoisonError::into_inner);
        for i in breached {
            let expr = &thresholds[i].expr;
            display.message(&format!("threshold `{expr}` breached at {at:.0}s: stopping the run"));
            aborted.push((i, at));
        }
        handle.stop();
    }
    (thresholds, aborted)
}

/// First Ctrl-C, SIGTERM or SIGHUP (a closed terminal, a dropped SSH session): graceful stop. Second: stop now.
async fn watch_signals(handle: RunHandle, grace: Duration) {
    #[cfg(unix)]
    let (mut term, mut hup) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::hangup()).ok())
    };
    let mut seen = 0;
    loop {
        #[cfg(unix)]
        let terminated = async {
            tokio::select! {
                Some(()) = recv(&mut term) => {}
                Some(()) = recv(&mut hup) => {}
                else => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            () = terminated => {}
        }
        seen += 1;
        // Stop first, then say so: after a hangup stderr may refuse the message, and the stop must not depend on it.
        if seen == 1 {
            handle.stop();
            let grace = humantime::format_duration(grace);
            let _ = writeln!(
                std::io::stderr(),
                "\nstopping: letting requests in flight finish (up to {grace}); press Ctrl-C again to stop now"
            );
        } else {
            handle.kill();
            let _ = writeln!(std::io::stderr(), "stopping now");
            return;
        }
    }
}

/// The next delivery of a signal, or never when it could not be watched.
#[cfg(unix)]
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
