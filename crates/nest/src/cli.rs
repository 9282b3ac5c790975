//! Command-line arguments: the first of two stages.
//!
//! Clap parses raw options here, and the doc comments are the help text. Nothing is checked beyond syntax: turning
//! these options into a validated plan (and reporting every problem before load) is the job of `plan.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use nest_config::parse::{UsageError, parse_duration, parse_segment, parse_start_at};
use nest_config::settings::Settings;
use nest_demo::Stall;

/// nest: load testing with Rhai tasksets.
///
/// Every `.rhai` file under the taskset folder is a taskset: weighted tasks that virtual users run.
#[derive(Debug, Parser)]
#[command(name = "nest", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Exit codes, shown in `--help`.
pub const EXIT_CODES: &str = "Exit codes:
  0  the run completed and passed its thresholds (or, with none configured, the default gate)
  1  the default gate failed: with no threshold configured, a request failed or a script error occurred
     (--exit-code-on-error N changes the code, --no-default-gate turns the gate off); or an internal error
  2  a usage, config or script error, found before any load was sent (a failing setup() included)
  3  late: this segment was ready after --start-at + --late-tolerance; it sent nothing
  4  incomplete: a merged or coordinated run lacks a segment's share (the reports are written, marked
     incomplete), or a coordinated run was cancelled before its start (nothing was sent)
  5  refused: the coordinator refused this segment (another plan, an index out of range or taken, a bad token)
  6  nest scale --gate: scalability regressed against the history
 99  the run completed but at least one threshold failed";

/// The subcommands.
// `run` has many more options than the others; the value is parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tasksets against a host and print a summary.
    #[command(after_long_help = nest_config::settings::env_help())]
    Run(RunArgs),
    /// Show the load mix (tasksets, weights, shares, tasks) after compiling every script; run nothing.
    ///
    /// Exits 2 with `file:line:col` messages when a script or the config is broken: a fast pre-commit check.
    List(ListArgs),
    /// Write the load mix into nest.yaml: interactively, or with --set for scripts and CI.
    Configure(ConfigureArgs),
    /// Run the built-in demo target on its own, until Ctrl-C.
    DemoServer(DemoServerArgs),
    /// Install or remove a git pre-push hook that runs a load test before every push.
    Hook(HookArgs),
    /// Render a saved JSON report again: HTML, Locust CSV, JUnit XML or normalised JSON, without re-running.
    ///
    /// Without --html, --csv, --junit or --json it prints the summary tables. It exits 0 once rendered, even when the
    /// report holds a failed threshold (only `nest run` exits 99), and 2 when the file cannot be read or is not a
    /// nest JSON report.
    Report(ReportArgs),
    /// Step the load up and measure how far the target scales: Capacity@SLO, a USL fit, history and a gate.
    ///
    /// Each step runs the tasksets (as `nest run` would) at N users (--steps) or R tasks/s (--rate-steps) for the
    /// settle time plus the step time; only the step time is measured. `--json` and `--html` write the scalability
    /// document and page. With --gate it exits 6 when scalability regressed against the history.
    Scale(Box<ScaleArgs>),
    /// Merge saved JSON reports of one plan, run side by side, into one report, exactly.
    ///
    /// Counts add up, histograms are added bucket for bucket and percentiles are computed again; the thresholds are
    /// evaluated again on the merged figures (or those of --threshold), and a failed one exits 99. Segments of a
    /// split run (`nest run --segment I/N`) must share one plan hash and run id and hold each index once: other
    /// plans, other runs and two results of one index are refused with exit code 2, an exact copy of a file is
    /// ignored with a warning, and a set that lacks an index is merged, marked incomplete, and exits 4. Writes the
    /// same files as `nest report`.
    Merge(MergeArgs),
    /// Coordinate a run split into N segments: one start, one setup(), live merged figures, one verdict.
    ///
    /// Segments join with `nest run --coordinator URL --segment I/N`; every request must carry the token of
    /// NEST_COORDINATOR_TOKEN. Exits 0 or 99 like `nest run`, and 4 when the run is incomplete (a segment lost, or
    /// not every segment ready within --ready-timeout).
    Coordinate(crate::coordinate::CoordinateArgs),
    /// Start a coordinated run's segments: `nest launch local --segments N [run flags]` runs N on this machine.
    Launch(crate::launch::LaunchArgs),
    /// Run load tests from Slack: `nest slack serve` answers the `/nest` slash command (see docs/slack.md).
    Slack(crate::slack::SlackArgs),
}

/// Generates the clap arguments of the settings from the settings table of `nest_config`: `SourceSettings` (the
/// settings of the source flags) and `RunSettings` (those of `nest run` alone), each with a `settings()` that
/// says what was given.
macro_rules! setting_args {
    (@sort [$($source:tt)*] [$($run:tt)*]) => {
        setting_args!(@emit SourceSettings,
            "The settings that the source flags give (shared by run, list and configure).", $($source)*);
        setting_args!(@emit RunSettings,
            "The settings that the flags of `nest run` give, besides the source flags.", $($run)*);
    };
    (@sort [$($source:tt)*] [$($run:tt)*] $(#[$doc:meta])* $field:ident : $ty:ty = $env:literal, yaml($yaml:ident),
        cli(source, $conv:ident, $cty:ty) $(#[$arg:meta])* ; $($rest:tt)*) => {
        setting_args!(@sort [$($source)* [$field $conv ($cty) $(#[$arg])*]] [$($run)*] $($rest)*);
    };
    (@sort [$($source:tt)*] [$($run:tt)*] $(#[$doc:meta])* $field:ident : $ty:ty = $env:literal, yaml($yaml:ident),
        cli(run, $conv:ident, $cty:ty) $(#[$arg:meta])* ; $($rest:tt)*) => {
        setting_args!(@sort [$($source)*] [$($run)* [$field $conv ($cty) $(#[$arg])*]] $($rest)*);
    };
    (@emit $name:ident, $what:literal, $([$field:ident $conv:ident ($cty:ty) $(#[$arg:meta])*])*) => {
        #[doc = $what]
        #[derive(Debug, Args, Clone, Default)]
        pub struct $name {
            $( $(#[$arg])* pub $field: $cty, )*
        }

        impl $name {
            /// What these flags say, as settings (the others unset).
            pub fn settings(&self) -> Result<Settings, UsageError> {
                Ok(Settings { $( $field: nest_config::settings::flags::$conv(&self.$field)?, )* ..Settings::default() })
            }
        }
    };
    ($($entries:tt)*) => { setting_args!(@sort [] [] $($entries)*); };
}

nest_config::for_each_setting!(setting_args);

/// Where the tasksets and the config come from (shared by run, list and configure).
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Config file [default: nest.yaml in the current directory, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The taskset folder and the scripts' strictness and limits.
    #[command(flatten)]
    pub scripts: SourceSettings,
    /// Let `import` and data files resolve outside the project folder (the config file's folder, or the current
    /// one) and the taskset folder. Off by default: paths are checked after links are resolved.
    #[arg(long)]
    pub no_confine: bool,
    /// Run with the settings of this preset of `slack: presets:` in the config, as `/nest run NAME` does (they take
    /// the place of the file's own, key by key; the flags and the environment still come first).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
}

impl SourceArgs {
    /// What the source options (shared by run, list and configure) say.
    pub fn settings(&self) -> Result<Settings, UsageError> {
        self.scripts.settings()
    }
}

impl TryFrom<&SourceArgs> for nest_config::plan::Source {
    type Error = UsageError;
    /// The source options, with the process environment and stderr for warnings.
    fn try_from(args: &SourceArgs) -> Result<Self, UsageError> {
        Ok(nest_config::plan::Source {
            config: args.config.clone(),
            no_confine: args.no_confine,
            preset: args.preset.clone(),
            settings: args.settings()?,
            env: |key| std::env::var(key).ok(),
            warn: |warning| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "warning: {warning}");
            },
        })
    }
}

/// Options of `nest list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where the tasksets and config come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the mix as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `nest configure`.
#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Where the tasksets and config come from; the config file is written (created if missing).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Set a taskset's weight without prompting: NAME=WEIGHT (repeatable; 0 disables it).
    #[arg(long = "set", value_name = "NAME=WEIGHT")]
    pub set: Vec<String>,
    /// Set the target host without prompting.
    #[arg(short = 'H', long)]
    pub host: Option<String>,
    /// Set the number of users without prompting.
    #[arg(short, long)]
    pub users: Option<u64>,
    /// Set the spawn rate without prompting.
    #[arg(short = 'r', long)]
    pub spawn_rate: Option<f64>,
    /// Set the run time without prompting.
    #[arg(short = 't', long, value_parser = parse_duration)]
    pub run_time: Option<Duration>,
    /// Set use_script_weights without prompting.
    #[arg(long, value_name = "BOOL")]
    pub use_script_weights: Option<bool>,
}

/// Options of `nest run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the tasksets and config come from.
    #[command(flatten)]
    pub source: SourceArgs,
    /// The load, the target and the pass/fail criteria.
    #[command(flatten)]
    pub run: RunSettings,
    /// Print only the final verdict (no live view, no tables).
    #[arg(short, long)]
    pub quiet: bool,
    /// Start without asking for confirmation (it is never asked when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Also write the report as JSON to this file (written atomically).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write Locust-compatible CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv and
    /// PREFIX_exceptions.csv (each written atomically).
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Also write a self-contained HTML report (charts, tables, verdicts; works offline) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write JUnit XML to this file: a test case per threshold, per request name and per check.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Start the built-in demo shop on 127.0.0.1 and run against it.
    #[arg(long)]
    pub demo: bool,
    /// Accepted so that Locust command lines work as pasted: a run is headless unless --web is given.
    #[arg(long, conflicts_with = "web")]
    pub headless: bool,
    /// Serve the web UI on ADDR [default: 127.0.0.1:8089]: set the run up and start it from the page, watch it
    /// live, steer it, download its reports. Any address but loopback needs credentials (NEST_WEB_AUTH=user:pass or
    /// --web-auth-file). See docs/web.md.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8089")]
    pub web: Option<std::net::SocketAddr>,
    /// With --web: start the run at once instead of waiting for the page's Start button.
    #[arg(long, requires = "web")]
    pub autostart: bool,
    /// With --web: read the web UI's credentials, USER:PASS, from FILE (instead of NEST_WEB_AUTH; never on the
    /// command line, where every user of the machine could read them).
    #[arg(long, value_name = "FILE", requires = "web")]
    pub web_auth_file: Option<PathBuf>,
    /// Running one share of a split plan.
    #[command(flatten)]
    pub scale: ScaleOutArgs,
    /// Taking part in a coordinated run.
    #[command(flatten)]
    pub coordinator: crate::coordinate::JoinArgs,
    /// Where the result is posted.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Where a result is posted when the run ends (`nest run`, `nest scale`, `nest coordinate`, `nest merge`).
#[derive(Debug, Args, Clone, Default)]
pub struct NotifyArgs {
    /// Post the result here when the run ends: `slack:URL` (or a URL on hooks.slack.com) gets a Slack message,
    /// any other URL the JSON summary (repeatable; replaces `notify:` of the config) [env: NEST_NOTIFY,
    /// space-separated]. A failed delivery is a warning; the exit code stays the run's.
    #[arg(long = "notify", value_name = "URL", env = "NEST_NOTIFY", value_delimiter = ' ', hide_env_values = true)]
    pub notify: Vec<String>,
    /// Post nowhere, whatever --notify, NEST_NOTIFY and `notify:` say.
    #[arg(long)]
    pub no_notify: bool,
}

/// How this process takes part in a run split over several (see docs/scale.md). These are process flags, not
/// settings: they have no `nest.yaml` key, and [`ScaleOutArgs::with_env`] reads their variables.
#[derive(Debug, Args, Clone, Default)]
pub struct ScaleOutArgs {
    /// Run only segment I of N of the plan (0 <= I < N): the global VUs, arrivals and iterations j with j mod N = I,
    /// and that share of each data pool [env: NEST_SEGMENT].
    #[arg(long, value_parser = parse_segment, value_name = "I/N")]
    pub segment: Option<nest_core::Segment>,
    /// Get ready, then start the load at TIME (Unix seconds, fractions allowed, or RFC 3339 in UTC); a process ready
    /// only after TIME + --late-tolerance sends nothing and exits 3 [env: NEST_START_AT].
    #[arg(long, value_parser = parse_start_at, value_name = "TIME")]
    pub start_at: Option<std::time::SystemTime>,
    /// How late after --start-at a process may be ready and still start [default: 2s; env: NEST_LATE_TOLERANCE].
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub late_tolerance: Option<Duration>,
    /// The run's id, the same for every segment of one run [default: derived from the plan and --start-at, else a
    /// fresh UUID; env: NEST_RUN_ID].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
}

impl ScaleOutArgs {
    /// The flags, each not given taken from its `NEST_*` variable (an empty one counts as unset), the tolerance
    /// defaulted to 2 s. A malformed variable is a usage error naming it.
    pub fn with_env(&self) -> Result<ScaleOutArgs, UsageError> {
        fn var<T>(name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, UsageError> {
            match std::env::var(name) {
                Ok(text) if !text.trim().is_empty() => {
                    parse(&text).map(Some).map_err(|e| UsageError(format!("{name}={text}: {e}")))
                }
                _ => Ok(None),
            }
        }
        Ok(ScaleOutArgs {
            segment: self.segment.or(var("NEST_SEGMENT", parse_segment)?),
            start_at: self.start_at.or(var("NEST_START_AT", parse_start_at)?),
            late_tolerance: Some(
                self.late_tolerance.or(var("NEST_LATE_TOLERANCE", parse_duration)?).unwrap_or(Duration::from_secs(2)),
            ),
            run_id: self.run_id.clone().or(var("NEST_RUN_ID", |s| Ok(s.trim().to_owned()))?),
        })
    }
}

impl RunArgs {
    /// What the command line says: the settings of a run before the environment and the config file. The source
    /// flags are added by `load_mix`, with the taskset folder.
    pub fn settings(&self) -> Result<Settings, UsageError> {
        self.run.settings()
    }
}

/// Options of `nest report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report written by `nest run --json`.
    #[arg(value_name = "RESULT.json")]
    pub result: PathBuf,
    /// Write the self-contained HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the Locust-compatible CSV files PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv and
    /// PREFIX_exceptions.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the report again as JSON to this file: normalised (nest's own key order and formatting, keys it does
    /// not know dropped), as `nest run --json` writes it.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Options of `nest merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports written by `nest run --json`: the segments of one run (one, for a run of one segment), or whole runs
    /// side by side.
    #[arg(value_name = "RESULT.json", num_args = 1.., required = true)]
    pub results: Vec<PathBuf>,
    /// Where the merged report goes, and in which formats: as for `nest report`.
    #[command(flatten)]
    pub outputs: OutputArgs,
    /// A pass/fail criterion evaluated on the merged figures, as for `nest run` (repeatable; replaces the
    /// thresholds the reports hold). A failed threshold exits 99.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Where the merged result is posted.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// The report files `nest merge` and `nest coordinate` write.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Write the self-contained HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the Locust-compatible CSV files PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv and
    /// PREFIX_exceptions.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,
    /// Write JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the merged report as JSON to this file (written atomically).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl OutputArgs {
    /// The files to render, the JSON aside.
    pub fn outputs(&self) -> nest_report::render::Outputs {
        nest_report::render::Outputs { csv: self.csv.clone(), html: self.html.clone(), junit: self.junit.clone() }
    }
}

/// Options of `nest scale`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScaleArgs {
    /// `history`: show the history instead of running.
    #[command(subcommand)]
    pub command: Option<ScaleCommand>,
    /// Closed model: the users of each step, e.g. 1,4,8,16,32,64 [or `scale: steps:` in nest.yaml].
    #[arg(long, value_delimiter = ',', value_name = "N,...", conflicts_with = "rate_steps")]
    pub steps: Option<Vec<u64>>,
    /// Open model: tasks started per second at each step, e.g. 100,200,400,800.
    #[arg(long, value_delimiter = ',', value_name = "R,...")]
    pub rate_steps: Option<Vec<f64>>,
    /// Measured time of each step, whole seconds [default: 30s].
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub step_time: Option<Duration>,
    /// Unmeasured time at the start of each step, whole seconds [default: 5s].
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub settle: Option<Duration>,
    /// A service-level objective each step must meet, in the threshold language, e.g. "p95 < 300ms",
    /// "error_rate < 1%" (repeatable) [or `scale: slo:`].
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<String>,
    /// Stop at the first step that breaches an SLO by far (twice its limit) [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub stop_on_breach: Option<bool>,
    /// The history file, one JSON line per run [default: .nest/history.jsonl].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Compare with the history's median of the last --baseline comparable runs; exit 6 when regressed.
    #[arg(long)]
    pub gate: bool,
    /// The drop of Capacity@SLO the gate tolerates, e.g. 10% [default: 10%].
    #[arg(long, value_parser = nest_scale::spec::parse_percent, value_name = "PCT")]
    pub tolerance: Option<f64>,
    /// How many comparable history entries make the gate's baseline [default: 5].
    #[arg(long, value_name = "N")]
    pub baseline: Option<usize>,
    /// The run options, as for `nest run` (not --users, --rate, --run-time, --stages, --shape, --iterations,
    /// --threshold, --csv, --junit: the steps decide the load).
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands of `nest scale`.
#[derive(Debug, Subcommand)]
pub enum ScaleCommand {
    /// Print the history across commits (Capacity@SLO, σ, κ, N*) and chart it with --html.
    History(ScaleHistoryArgs),
}

/// Options of `nest scale history`.
#[derive(Debug, Args)]
pub struct ScaleHistoryArgs {
    /// The history file [default: `scale: history:` in nest.yaml, else .nest/history.jsonl].
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Write a self-contained page charting Capacity@SLO and N* over commits.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Config file [default: nest.yaml in the current directory, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Options of `nest demo-server`.
#[derive(Debug, Args)]
pub struct DemoServerArgs {
    /// Port on 127.0.0.1 [default: a free one].
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Answer every request with a plain 200 "hello" (a benchmark target) instead of the shop API.
    #[arg(long)]
    pub hello: bool,
    /// Server threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// With --hello: send every response this long after its request arrived, e.g. 50ms [default: at once].
    #[arg(long, value_name = "DUR", value_parser = parse_duration, requires = "hello")]
    pub latency: Option<Duration>,
    /// With --hello: answer nothing for FOR, starting AT after the server starts, e.g. 10s:1s (requests wait
    /// until the stall ends).
    #[arg(long, value_name = "AT:FOR", value_parser = parse_stall, requires = "hello")]
    pub stall: Option<nest_demo::Stall>,
    /// Answer like a system of known scalability, for `nest scale`: SIGMA,KAPPA,SERVICE_MS, e.g. 0.05,0.001,10
    /// (hello responses; a global lock held for SIGMA of the service time, a coherency delay growing with the
    /// requests in flight).
    #[arg(long, value_name = "SIGMA,KAPPA,MS", value_parser = nest_demo::UslModel::parse, conflicts_with_all = ["latency", "stall"])]
    pub usl: Option<nest_demo::UslModel>,
    /// Share the port with other `nest demo-server --reuse-port` processes (Linux SO_REUSEPORT): each holds as many
    /// connections as its open-file limit allows, and the kernel spreads new ones over them. Give the first one's
    /// port to the others with --port.
    #[arg(long)]
    pub reuse_port: bool,
}

/// Options of `nest hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// What to do with the hook.
    #[command(subcommand)]
    pub command: HookCommand,
}

/// The subcommands of `nest hook`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write a pre-push hook that runs `nest run --yes [ARGS]` and blocks the push when it fails.
    ///
    /// The hook goes where git looks for it (core.hooksPath is respected). It lets pushes that only delete refs
    /// through, never prompts, and is skipped by `git push --no-verify` or `NEST_SKIP=1 git push`.
    Install(HookInstallArgs),
    /// Remove nest's pre-push hook (and restore the one it chained, if any); a hook nest did not write is left alone.
    Uninstall,
}

/// Options of `nest hook install`.
#[derive(Debug, Args)]
pub struct HookInstallArgs {
    /// Replace a pre-push hook that nest did not write.
    #[arg(long, conflicts_with = "chain")]
    pub force: bool,
    /// Keep a pre-push hook that nest did not write: move it aside and run it first, with the same input.
    #[arg(long)]
    pub chain: bool,
    /// Run `nest scale --gate [ARGS]` instead of `nest run`: block the push when scalability regressed.
    #[arg(long)]
    pub scale: bool,
    /// Options for `nest run` in the hook, after `--` [default: none, so the project's nest.yaml is used].
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Parses `--stall AT:FOR`, e.g. `10s:1s`.
pub fn parse_stall(text: &str) -> Result<Stall, String> {
    let (at, length) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not AT:FOR; use e.g. 10s:1s (stall 1 s, 10 s after start)"))?;
    Ok(Stall { at: parse_duration(at)?, length: parse_duration(length)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls() {
        assert_eq!(parse_stall("10s:1s"), Ok(Stall { at: Duration::from_secs(10), length: Duration::from_secs(1) }));
        assert_eq!(
            parse_stall("1.5:250ms"),
            Ok(Stall { at: Duration::from_millis(1500), length: Duration::from_millis(250) })
        );
        assert!(parse_stall("10s").is_err());
        assert!(parse_stall("10s:soon").is_err());
    }

    #[test]
    fn every_setting_has_a_flag_whose_help_names_its_environment_variable() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let run = cli.find_subcommand("run").unwrap();
        for (field, var) in Settings::ENV {
            let arg =
                run.get_arguments().find(|a| a.get_id() == *field).unwrap_or_else(|| panic!("no flag for {field}"));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains(var), "--{}: {help}", arg.get_long().unwrap_or_default());
        }
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
