//! `nest coordinate`: host the coordinator of a run split into segments, show the merged live view, and judge; and
//! `nest run --coordinator URL`: a segment's part in it.
//!
//! The service, the client and every rule are `nest_coord`'s; this file parses the flags, prints the coordinator's
//! events through the live view, writes the merged reports like `nest run` does, and turns the verdict into an exit
//! code: 0 passed, 99 a threshold failed, 4 incomplete (a segment lost, or the run cancelled before its start). A
//! segment registers (5 when refused), pushes its live figures and hands in its result.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use nest_coord::client::{Client, ClientError, Session};
use nest_coord::finish::{Conclusion, Verdict, conclude};
use nest_coord::protocol::Register;
use nest_coord::rendezvous::Coordinated;
use nest_coord::server::{Coordinator, Handle};
use nest_coord::state::Settings;
use nest_coord::token::Token;
use nest_core::Segment;
use nest_report::output::write_atomic;
use nest_report::thresholds::{GateFailed, Threshold, ThresholdsFailed};

use crate::cli::OutputArgs;
use crate::live::Display;
use nest_config::parse::{ExitWith, UsageError, parse_duration};

/// Options of `nest coordinate`.
#[derive(Debug, Args, Clone)]
pub struct CoordinateArgs {
    /// N: the segments of the run (`nest run --coordinator URL --segment I/N`, I from 0 to N-1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub segments: u32,
    /// Address to listen on; without it, loopback only. `0.0.0.0:7878` takes segments from other hosts.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
    pub listen: SocketAddr,
    /// How the run is held together and judged.
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Where the merged result is posted.
    #[command(flatten)]
    pub notify: crate::cli::NotifyArgs,
    /// Serve the web UI on ADDR [default: 127.0.0.1:8089]: the merged live figures, a segments tab, the controls
    /// (users or rate, reset stats, Stop: every segment at one instant), the reports; the final report stays on
    /// the page until Ctrl-C. Any address but loopback needs credentials (NEST_WEB_AUTH=user:pass or
    /// --web-auth-file). See docs/web.md.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8089")]
    pub web: Option<SocketAddr>,
    /// With --web: read the web UI's credentials, USER:PASS, from FILE (instead of NEST_WEB_AUTH).
    #[arg(long, value_name = "FILE", requires = "web")]
    pub web_auth_file: Option<PathBuf>,
}

/// How a coordinated run is held together, judged and reported (`nest coordinate`, `nest launch`).
#[derive(Debug, Args, Clone)]
pub struct JudgeArgs {
    /// How long every segment has to register and become ready; then the run is cancelled (exit 4).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "60s")]
    pub ready_timeout: Duration,
    /// A segment silent this long (no live push, no request) is lost: the run goes on, marked incomplete.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub lost_after: Duration,
    /// A criterion judged on the merged figures (repeatable); they replace the segments' own. A failed one exits
    /// 99.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// A criterion also checked live, once a second, on the merged figures: when breached, every segment is
    /// stopped (repeatable).
    #[arg(long = "abort-threshold", value_name = "EXPR")]
    pub abort_threshold: Vec<String>,
    /// Warm-up before the abort thresholds are checked.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "0s")]
    pub abort_delay: Duration,
    /// The merged report's files, as for `nest merge`.
    #[command(flatten)]
    pub reports: OutputArgs,
    /// Print only the verdict (no live view, no tables).
    #[arg(short, long)]
    pub quiet: bool,
    /// Serve Prometheus metrics of the merged live figures at http://ADDR/metrics (port 0: a free one); an address
    /// beyond loopback needs NEST_PROMETHEUS_TOKEN.
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<SocketAddr>,
    /// Push the merged metrics to this Prometheus remote-write URL every 5s and at the end; credentials from
    /// NEST_PROMETHEUS_REMOTE_WRITE_TOKEN, or _USER and _PASSWORD.
    #[arg(long, value_name = "URL")]
    pub prometheus_remote_write: Option<String>,
    /// After the run, keep serving /metrics until a scrape has read the final figures, at most this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "0s")]
    pub prometheus_linger: Duration,
}

impl JudgeArgs {
    /// The settings of a run of `segments`, thresholds checked.
    pub fn settings(&self, segments: u32) -> Result<Settings, UsageError> {
        let parse = |flag: &str, expr: &String, abort: bool| {
            Threshold::parse(expr)
                .map(|t| t.with_abort(abort, self.abort_delay))
                .map_err(|e| UsageError(format!("{flag}: {e}")))
        };
        let thresholds = (self.threshold.iter().map(|t| parse("--threshold", t, false)))
            .chain(self.abort_threshold.iter().map(|t| parse("--abort-threshold", t, true)))
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            ready_timeout: self.ready_timeout,
            lost_after: self.lost_after,
            thresholds,
            ..Settings::new(segments)
        })
    }

    /// The metrics' settings (flags only: the segments, started with this environment, read `NEST_PROMETHEUS`).
    fn metrics(&self) -> nest_config::plan::Metrics {
        nest_config::plan::Metrics {
            listen: self.prometheus,
            remote_write: self.prometheus_remote_write.clone(),
            linger: self.prometheus_linger,
        }
    }
}

/// Runs `nest coordinate`: the token must be in `NEST_COORDINATOR_TOKEN`.
pub fn run(args: CoordinateArgs) -> Result<()> {
    let targets = crate::notify::targets(&args.notify, None)?;
    let token = Token::from_env().map_err(|e| UsageError(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let coordinator = runtime.block_on(bind(&args.judge, args.segments, args.listen, token))?;
    if !args.judge.quiet {
        let (addr, n) = (coordinator.local_addr(), args.segments);
        let _ = writeln!(std::io::stderr(), "coordinator listening on http://{addr}, waiting for {n} segments");
    }
    let Some(addr) = args.web else {
        let conclusion = runtime.block_on(serve(coordinator, &args.judge, args.segments, |_| true))?;
        drop(runtime);
        let finished = finish(&args.judge, &conclusion);
        if let Some(report) = &conclusion.report {
            crate::notify::send(&targets, report, "nest coordinate");
        }
        return finished;
    };
    // The web UI: the merged figures, the segments, the controls; the final report after.
    let web =
        Arc::new(crate::web::serve(addr, args.web_auth_file.as_ref(), crate::web::coordinator_setup(args.segments))?);
    let (handle, thresholds) = (coordinator.handle(), args.judge.settings(args.segments)?.thresholds);
    let context = crate::web::coordinator_context(args.segments, thresholds);
    web.coordinating(WebSteer(handle.clone()), coordinator.snapshots(), context);
    crate::web::announce(&web);
    let last = handle.clone();
    let seats = {
        let web = web.clone();
        runtime.spawn(async move {
            let mut clock = tokio::time::interval(Duration::from_secs(1));
            loop {
                clock.tick().await;
                web.set_segments(crate::web::segments(handle.seats()));
            }
        })
    };
    let conclusion = runtime.block_on(serve(coordinator, &args.judge, args.segments, |_| true));
    seats.abort();
    web.set_segments(crate::web::segments(last.seats()));
    let conclusion = conclusion?;
    if let Some(report) = &conclusion.report {
        web.finished(report.clone());
    }
    let outcome = finish(&args.judge, &conclusion);
    if let Some(report) = &conclusion.report {
        crate::notify::send(&targets, report, "nest coordinate");
    }
    crate::web::keep_until_interrupted(&web)?;
    outcome
}

/// The web UI's controls on a coordinated run: the coordinator relays each to every segment, at one instant.
struct WebSteer(Handle);

impl nest_web::Steer for WebSteer {
    fn stop(&self) {
        self.0.stop_all("stopped from the web UI");
    }

    fn set_users(&self, users: u64, spawn_rate: Option<f64>) -> Result<(), nest_core::ControlError> {
        self.0.set_users(users, spawn_rate)
    }

    fn set_rate(&self, per_second: f64) -> Result<(), nest_core::ControlError> {
        self.0.set_rate(per_second)
    }

    fn reset_stats(&self) -> Result<(), nest_core::ControlError> {
        self.0.reset_stats()
    }
}

/// Binds the coordinator of a run of `segments` on `listen`; the report paths are checked first.
pub async fn bind(judge: &JudgeArgs, segments: u32, listen: SocketAddr, token: Token) -> Result<Coordinator> {
    let settings = judge.settings(segments)?;
    for path in judge.reports.json.iter().cloned().chain(judge.reports.outputs().paths()) {
        crate::run::check_writable(&path)?;
    }
    let run_id = nest_coord::state::new_run_id();
    Coordinator::bind(listen, token, settings, run_id)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {listen}: {e}")).into())
}

/// Serves the run to its end with the live view, and judges it. `on_signal` hears each Ctrl-C or SIGTERM, counted
/// from 1 (`nest launch` forwards it to its children); on the second, it says whether to give up on the segments
/// still running (true), or to wait for them to hand in what they have (false: they were stopped now).
pub async fn serve(
    coordinator: Coordinator,
    judge: &JudgeArgs,
    segments: u32,
    on_signal: impl Fn(u32) -> bool + Send + 'static,
) -> Result<Conclusion> {
    let settings = judge.settings(segments)?;
    let display = Arc::new(Mutex::new(Display::new(judge.quiet, None)));
    let say = |text: &str| display.lock().unwrap_or_else(PoisonError::into_inner).message(text);
    let metrics = crate::metrics::bind(&judge.metrics(), &[], &settings.thresholds, say)?
        .map(|m| crate::metrics::start(m, coordinator.snapshots(), display.clone()));
    let signals = tokio::spawn(watch_signals(coordinator.handle(), on_signal));
    let progress =
        (!judge.quiet).then(|| tokio::spawn(crate::run::show_progress(display.clone(), coordinator.snapshots())));
    let events = display.clone();
    let end = coordinator
        .run(move |event| events.lock().unwrap_or_else(PoisonError::into_inner).message(&event.to_string()))
        .await
        .context("the coordinator failed")?;
    signals.abort();
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    if let Some(metrics) = metrics {
        metrics.finish().await;
    }
    display.lock().unwrap_or_else(PoisonError::into_inner).finish();
    conclude(end, &settings).map_err(|e| anyhow::anyhow!("the segments' results do not merge: {e}"))
}

/// Prints and writes the merged report, and turns the verdict into the exit code.
pub fn finish(args: &JudgeArgs, conclusion: &Conclusion) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(report) = &conclusion.report {
        if args.quiet {
            let _ = nest_report::thresholds::print_verdict_line(&mut out, report);
        } else {
            let _ = nest_report::table::print_summary(&mut out, &report.summary);
            let _ = nest_report::thresholds::print_verdicts(&mut out, &report.thresholds);
        }
        if let Some(path) = &args.reports.json {
            let json = serde_json::to_vec_pretty(report)?;
            write_atomic(path, &json).with_context(|| format!("could not write {}", path.display()))?;
            let _ = writeln!(std::io::stderr(), "report written to {}", path.display());
        }
        for path in args.reports.outputs().write(report)? {
            let _ = writeln!(std::io::stderr(), "report written to {}", path.display());
        }
    }
    for warning in &conclusion.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    for line in conclusion.incomplete_lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    match conclusion.verdict {
        Verdict::Passed => Ok(()),
        Verdict::Incomplete => {
            let message = match conclusion.report {
                Some(_) => "the run is incomplete: the reports are marked incomplete",
                None => "the run is incomplete: no segment handed in a result",
            };
            let message = message.to_owned();
            Err(ExitWith { code: 4, message }.into())
        }
        Verdict::Failed { gate_only: true, .. } => {
            Err(GateFailed { code: nest_report::thresholds::DEFAULT_EXIT_CODE }.into())
        }
        Verdict::Failed { failed, total, .. } => Err(ThresholdsFailed { failed, total }.into()),
    }
}

/// First Ctrl-C or SIGTERM: stop every segment (they hand in what they have). Second: give up on the segments
/// still running, and write what came in.
async fn watch_signals(handle: Handle, on_signal: impl Fn(u32) -> bool) {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    for seen in 1.. {
        #[cfg(unix)]
        let terminated = async {
            match term.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { return },
            _ = terminated => {}
        }
        if seen == 1 {
            handle.stop_all("the coordinator was interrupted");
            on_signal(seen);
            let _ =
                writeln!(std::io::stderr(), "\nstopping every segment; press Ctrl-C again to stop waiting for them");
        } else {
            if on_signal(seen) {
                handle.abandon("the coordinator stopped waiting for it");
            }
            return;
        }
    }
}

/// `nest run`'s part in a coordinated run.
#[derive(Debug, Args, Clone, Default)]
pub struct JoinArgs {
    /// Take part in the run of the coordinator at URL (`nest coordinate`), as the segment of --segment: one start,
    /// one setup(), the verdict is the coordinator's. The token comes from NEST_COORDINATOR_TOKEN [env:
    /// NEST_COORDINATOR].
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
}

impl JoinArgs {
    /// The coordinator's URL: `--coordinator`, else a non-empty `NEST_COORDINATOR`.
    pub(crate) fn url(&self) -> Option<String> {
        let env = || std::env::var("NEST_COORDINATOR").ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
        self.coordinator.clone().or_else(env)
    }
}

/// How long a segment waits for a coordinator that does not answer yet (started at the same time, say).
const PATIENCE: Duration = Duration::from_secs(60);

/// Registers segment `segment` of `plan_hash` with the coordinator of `args`, if any: refused, the command exits 5.
/// `scale` is what the command line and environment say of the split: a segment is needed, a start time is not.
pub fn join(
    args: &JoinArgs,
    scale: &crate::cli::ScaleOutArgs,
    segment: Segment,
    plan_hash: &str,
    run_id: &str,
) -> Result<Option<Arc<Coordinated>>> {
    let Some(url) = args.url() else { return Ok(None) };
    if scale.segment.is_none() {
        return Err(
            UsageError("--coordinator needs --segment I/N (or NEST_SEGMENT): which share is this?".into()).into()
        );
    }
    if scale.start_at.is_some() {
        return Err(UsageError("--coordinator gives the start: leave out --start-at (and NEST_START_AT)".into()).into());
    }
    let token = Token::from_env().map_err(|e| UsageError(e.to_string()))?;
    let client = Client::new(&url, token).map_err(|e| UsageError(e.to_string()))?;
    let (index, segments, host) = (segment.index, segment.count, nest_report::identity::host_name());
    let register = Register { index, segments, plan_hash: plan_hash.to_owned(), host, run_id: run_id.to_owned() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let joined =
        runtime.block_on(Coordinated::join(Session::new(client, register), PATIENCE)).map_err(|e| match e {
            ClientError::Refused(m) => ExitWith { code: 5, message: format!("refused by the coordinator: {m}") }.into(),
            other => anyhow::Error::new(other).context("could not join the coordinated run"),
        })?;
    Ok(Some(Arc::new(joined)))
}
