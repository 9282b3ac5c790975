//! Command-line arguments: the first of two stages.
//!
//! Clap parses raw options here, and the doc comments are the help text. Nothing is checked beyond syntax: turning
//! these options into a validated plan (and reporting every problem before load) is the job of `plan.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::parse::{ByteSize, UsageError, parse_byte_size, parse_duration, parse_host, parse_segment, parse_start_at};
use crate::settings::Settings;
use crate::thresholds::ThresholdSpec;

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
  4  incomplete: a merged run lacks a segment's share (the reports are written, marked incomplete)
  5  refused: the coordinator refused this segment (another plan, an index out of range or taken, a bad token)
 99  the run completed but at least one threshold failed";

/// The subcommands.
// `run` has many more options than the others; the value is parsed once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tasksets against a host and print a summary.
    #[command(after_long_help = crate::settings::env_help())]
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
    /// Merge saved JSON reports of one plan, run side by side, into one report, exactly.
    ///
    /// Counts add up, histograms are added bucket for bucket and percentiles are computed again; the thresholds are
    /// evaluated again on the merged figures (or those of --threshold), and a failed one exits 99. Segments of a
    /// split run (`nest run --segment I/N`) must share one plan hash and run id and hold each index once: other
    /// plans, other runs and two results of one index are refused with exit code 2, an exact copy of a file is
    /// ignored with a warning, and a set that lacks an index is merged, marked incomplete, and exits 4. Writes the
    /// same files as `nest report`.
    Merge(MergeArgs),
}

/// Where the tasksets and the config come from (shared by run, list and configure).
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Config file [default: nest.yaml in the current directory, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of taskset files, searched recursively, or a single `.rhai` file run as the only taskset
    /// [default: tasksets; env: NEST_TASKSET_DIR].
    #[arg(short = 'f', long, visible_alias = "locustfile", value_name = "PATH")]
    pub taskset_dir: Option<PathBuf>,
    /// Let `import` and data files resolve outside the project folder (the config file's folder, or the current
    /// one) and the taskset folder. Off by default: paths are checked after links are resolved.
    #[arg(long)]
    pub no_confine: bool,
    /// Report the static check's findings (undefined variables, functions, methods) as warnings instead of
    /// refusing the scripts [env: NEST_STRICT=false].
    #[arg(long)]
    pub no_strict: bool,
    /// The most bytes one script string may hold; a task that builds a longer one fails [default: 16777216 (16
    /// MiB); env: NEST_MAX_STRING_SIZE].
    #[arg(long, value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_string_size: Option<usize>,
    /// The most items one script array may hold [default: 1000000; env: NEST_MAX_ARRAY_SIZE].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_array_size: Option<usize>,
    /// The most entries one script map may hold [default: 1000000; env: NEST_MAX_MAP_SIZE].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_map_size: Option<usize>,
}

impl SourceArgs {
    /// What the source options (shared by run, list and configure) say.
    pub fn settings(&self) -> Settings {
        Settings {
            taskset_dir: self.taskset_dir.clone(),
            strict: self.no_strict.then_some(false),
            max_string_size: self.max_string_size,
            max_array_size: self.max_array_size,
            max_map_size: self.max_map_size,
            ..Settings::default()
        }
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
    /// Target host that relative paths go to, e.g. http://127.0.0.1:8080 [env: NEST_HOST].
    #[arg(short = 'H', long, conflicts_with = "demo")]
    pub host: Option<String>,
    /// Number of virtual users [default: 1, or 20 with --demo; env: NEST_USERS].
    #[arg(short, long)]
    pub users: Option<u64>,
    /// Users started per second [default: all at once; env: NEST_SPAWN_RATE].
    #[arg(short = 'r', long)]
    pub spawn_rate: Option<f64>,
    /// How long to run, e.g. 30s, 5m, 1h30m [default: until Ctrl-C, or 15s with --demo; env: NEST_RUN_TIME].
    #[arg(short = 't', long, value_parser = parse_duration)]
    pub run_time: Option<Duration>,
    /// Worker threads [default: the number of cores; env: NEST_WORKERS].
    #[arg(long)]
    pub workers: Option<usize>,
    /// On stop, how long requests in flight may take to finish before they are cancelled [default: 10s; env:
    /// NEST_STOP_TIMEOUT].
    #[arg(short = 's', long, value_parser = parse_duration)]
    pub stop_timeout: Option<Duration>,
    /// Use each script's weight(n) and ignore `tasksets:` in the config [env: NEST_USE_SCRIPT_WEIGHTS].
    #[arg(long)]
    pub use_script_weights: bool,
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
    /// Accept any TLS certificate, for self-signed test targets [env: NEST_INSECURE].
    #[arg(long)]
    pub insecure: bool,
    /// With no threshold configured, the exit code of a run in which a request failed or a script error occurred
    /// (the default gate); 0 turns the gate off [default: 1; env: NEST_EXIT_CODE_ON_ERROR].
    #[arg(long, value_name = "N")]
    pub exit_code_on_error: Option<u8>,
    /// Turn the default gate off: with no threshold configured, exit 0 whatever failed [env:
    /// NEST_NO_DEFAULT_GATE].
    #[arg(long)]
    pub no_default_gate: bool,
    /// Start the built-in demo shop on 127.0.0.1 and run against it.
    #[arg(long)]
    pub demo: bool,
    /// Accepted so that Locust command lines work as pasted: nest has no web UI, every run is headless.
    #[arg(long)]
    pub headless: bool,
    /// Stages, DURATION:TARGET,...: users over time, e.g. 30s:50,2m:50,30s:0; with --rate, tasks per second over
    /// time [env: NEST_STAGES].
    #[arg(long, value_parser = parse_stages_arg, value_name = "STAGES")]
    pub stages: Option<Stages>,
    /// A load shape script defining `fn tick(t)`, which returns #{ users, spawn_rate } or () to stop [env:
    /// NEST_SHAPE].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stages", "rate"])]
    pub shape: Option<PathBuf>,
    /// Open model: start tasks at this many per second, whatever the response times [env: NEST_RATE].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open model: the most VUs the pool may grow to [default: the peak rate, at least 10; env: NEST_MAX_USERS].
    #[arg(long, value_name = "M")]
    pub max_users: Option<u64>,
    /// Open model: a start that waited longer than this for a free VU is dropped and counted [default: 5s; env:
    /// NEST_MAX_DELAY].
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_delay: Option<Duration>,
    /// Most bytes of a response body kept in memory, after decoding, e.g. 16MiB; a larger body fails its request
    /// (`body: false` and `discard_bodies()` stream bodies uncapped) [default: 16MiB; env: NEST_MAX_BODY].
    #[arg(long, value_parser = parse_byte_size, value_name = "SIZE")]
    pub max_body: Option<ByteSize>,
    /// The Accept-Encoding header sent unless a request sets one; "" sends none [default: "gzip, deflate, br";
    /// env: NEST_ACCEPT_ENCODING].
    #[arg(long, value_name = "CODINGS")]
    pub accept_encoding: Option<String>,
    /// Run exactly this many tasks in total, then stop [env: NEST_ITERATIONS].
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
    /// Run only tasks tagged with one of these (a taskset's tags apply to its tasks) [env: NEST_TAGS].
    #[arg(short = 'T', long, value_delimiter = ',', num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
    /// Do not run tasks tagged with any of these [env: NEST_EXCLUDE_TAGS].
    #[arg(short = 'E', long, value_delimiter = ',', num_args = 1.., value_name = "TAG")]
    pub exclude_tags: Vec<String>,
    /// A pass/fail criterion, e.g. "p95 < 300ms", "error_rate < 1%", "GET /items/:id: p99 < 800ms" (repeatable;
    /// replaces `thresholds:` of the config) [env: NEST_THRESHOLDS, `;`-separated]. A failed threshold exits 99.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Seed for random choices: taskset and task picks, think times [env: NEST_SEED].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Running one share of a split plan.
    #[command(flatten)]
    pub scale: ScaleOutArgs,
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
    /// What the command line says: the settings of a run before the environment and the config file.
    pub fn settings(&self) -> Result<Settings, UsageError> {
        Ok(Settings {
            host: self.host.as_deref().map(parse_host).transpose()?,
            taskset_dir: self.source.taskset_dir.clone(),
            users: self.users,
            spawn_rate: self.spawn_rate,
            run_time: self.run_time,
            workers: self.workers,
            stop_timeout: self.stop_timeout,
            insecure: self.insecure.then_some(true),
            seed: self.seed,
            use_script_weights: self.use_script_weights.then_some(true),
            stages: self.stages.clone().map(|s| s.0),
            shape: self.shape.clone(),
            rate: self.rate,
            max_users: self.max_users,
            max_delay: self.max_delay,
            iterations: self.iterations,
            tags: (!self.tags.is_empty()).then(|| self.tags.clone()),
            exclude_tags: (!self.exclude_tags.is_empty()).then(|| self.exclude_tags.clone()),
            max_body: self.max_body,
            accept_encoding: self.accept_encoding.clone(),
            thresholds: match self.threshold.is_empty() {
                true => None,
                false => Some(
                    self.threshold
                        .iter()
                        .map(|t| ThresholdSpec::Expr(t.clone()).parse("--threshold"))
                        .collect::<Result<_, _>>()?,
                ),
            },
            // Set from `self.source` by `load_mix`, with the taskset folder.
            strict: None,
            max_string_size: None,
            max_array_size: None,
            max_map_size: None,
            exit_code_on_error: self.exit_code_on_error,
            no_default_gate: self.no_default_gate.then_some(true),
        })
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
}

/// The report files `nest merge` writes.
#[derive(Debug, Args)]
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
    /// Write the merged report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
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
    #[arg(long, value_name = "AT:FOR", value_parser = crate::parse::parse_stall, requires = "hello")]
    pub stall: Option<nest_demo::Stall>,
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
    /// Options for `nest run` in the hook, after `--` [default: none, so the project's nest.yaml is used].
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Stages as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<nest_core::Stage>);

/// Parses `30s:50,2m:50,30s:0`.
pub fn parse_stages_arg(text: &str) -> Result<Stages, String> {
    nest_core::curve::parse_stages(text, parse_duration).map(Stages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
