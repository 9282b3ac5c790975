//! The one declaration of every run setting: its field and type, its environment variable, how `nest.yaml` reads
//! it, and its command-line flag with the help text.
//!
//! Each consumer is generated from this table, so a setting is added in one place: [`Settings`] with `over` and
//! `from_env` (`settings.rs`), the `nest.yaml` keys (`config.rs`), and the clap arguments of the `nest` binary.
//! [`for_each_setting!`](crate::for_each_setting) hands the entries to a callback macro; an entry reads
//!
//! ```text
//! /// The setting's doc.
//! field: Type = "NEST_FIELD", yaml(Reader), cli(group, conversion, ClapType)
//!     /// The flag's help text.
//!     #[arg(...)];
//! ```
//!
//! - `yaml(Reader)`: the [`Read`](crate::config::keys::Read) that parses and checks the key (the key is the field
//!   name);
//! - `cli(group, conversion, ClapType)`: `source` flags belong to `run`, `list` and `configure`, `run` flags to
//!   `nest run` alone; the clap field has `ClapType`, and the function of that name in
//!   [`flags`](crate::settings::flags) turns it into the setting;
//! - the environment variable is read with [`FromEnv`](crate::settings::env::FromEnv).
//!
//! [`Settings`]: crate::settings::Settings

/// Calls `$callback! { entries }` with every setting's entry (see the [module](crate::settings::table) docs).
#[macro_export]
macro_rules! for_each_setting {
    ($callback:ident) => {
        $callback! {
            /// Target host.
            host: url::Url = "NEST_HOST", yaml(Host), cli(run, host, Option<String>)
                /// Target host that relative paths go to, e.g. http://127.0.0.1:8080 [env: NEST_HOST].
                #[arg(short = 'H', long, conflicts_with = "demo")];
            /// Taskset folder (in `nest.yaml`, relative to the file).
            taskset_dir: std::path::PathBuf = "NEST_TASKSET_DIR", yaml(RelativePath),
                cli(source, value, Option<std::path::PathBuf>)
                /// Folder of taskset files, searched recursively, or a single `.rhai` file run as the only taskset
                /// [default: tasksets; env: NEST_TASKSET_DIR].
                #[arg(short = 'f', long, visible_alias = "locustfile", value_name = "PATH")];
            /// Number of users.
            users: u64 = "NEST_USERS", yaml(PositiveInt), cli(run, value, Option<u64>)
                /// Number of virtual users [default: 1, or 20 with --demo; env: NEST_USERS].
                #[arg(short, long)];
            /// Users started per second.
            spawn_rate: f64 = "NEST_SPAWN_RATE", yaml(PositiveRate), cli(run, value, Option<f64>)
                /// Users started per second [default: all at once; env: NEST_SPAWN_RATE].
                #[arg(short = 'r', long)];
            /// Run time.
            run_time: std::time::Duration = "NEST_RUN_TIME", yaml(PositiveDuration),
                cli(run, value, Option<std::time::Duration>)
                /// How long to run, e.g. 30s, 5m, 1h30m [default: until Ctrl-C, or 15s with --demo; env: NEST_RUN_TIME].
                #[arg(short = 't', long, value_parser = $crate::parse::parse_duration)];
            /// Worker threads.
            workers: usize = "NEST_WORKERS", yaml(PositiveInt), cli(run, value, Option<usize>)
                /// Worker threads [default: the number of cores; env: NEST_WORKERS].
                #[arg(long)];
            /// Grace period of a stop.
            stop_timeout: std::time::Duration = "NEST_STOP_TIMEOUT", yaml(AnyDuration),
                cli(run, value, Option<std::time::Duration>)
                /// On stop, how long requests in flight may take to finish before they are cancelled [default: 10s; env:
                /// NEST_STOP_TIMEOUT].
                #[arg(short = 's', long, value_parser = $crate::parse::parse_duration)];
            /// Accept any TLS certificate.
            insecure: bool = "NEST_INSECURE", yaml(Plain), cli(run, flag, bool)
                /// Accept any TLS certificate, for self-signed test targets [env: NEST_INSECURE].
                #[arg(long)];
            /// Seed of random choices.
            seed: u64 = "NEST_SEED", yaml(Plain), cli(run, value, Option<u64>)
                /// Seed for random choices: taskset and task picks, think times [env: NEST_SEED].
                #[arg(long)];
            /// Use each script's `weight(n)` and ignore `tasksets:`.
            use_script_weights: bool = "NEST_USE_SCRIPT_WEIGHTS", yaml(Plain), cli(run, flag, bool)
                /// Use each script's weight(n) and ignore `tasksets:` in the config [env: NEST_USE_SCRIPT_WEIGHTS].
                #[arg(long)];
            /// Stages over users (or over the rate, in the open model): `"30s:50"` strings or
            /// `{ duration: 30s, target: 50 }` maps in `nest.yaml`.
            stages: Vec<nest_core::Stage> = "NEST_STAGES", yaml(StageList),
                cli(run, stages, Option<$crate::settings::flags::Stages>)
                /// Stages, DURATION:TARGET,...: users over time, e.g. 30s:50,2m:50,30s:0; with --rate, tasks per second over
                /// time [env: NEST_STAGES].
                #[arg(long, value_parser = $crate::settings::flags::parse_stages, value_name = "STAGES")];
            /// A load shape script (in `nest.yaml`, relative to the file).
            shape: std::path::PathBuf = "NEST_SHAPE", yaml(RelativePath), cli(run, value, Option<std::path::PathBuf>)
                /// A load shape script defining `fn tick(t)`, which returns #{ users, spawn_rate } or () to stop [env:
                /// NEST_SHAPE].
                #[arg(long, value_name = "FILE", conflicts_with_all = ["stages", "rate"])];
            /// Open model: tasks started per second.
            rate: f64 = "NEST_RATE", yaml(PositiveRate), cli(run, value, Option<f64>)
                /// Open model: start tasks at this many per second, whatever the response times [env: NEST_RATE].
                #[arg(long, value_name = "R")];
            /// Open model: the VU pool limit.
            max_users: u64 = "NEST_MAX_USERS", yaml(PositiveInt), cli(run, value, Option<u64>)
                /// Open model: the most VUs the pool may grow to [default: the peak rate, at least 10; env: NEST_MAX_USERS].
                #[arg(long, value_name = "M")];
            /// Open model: how long a start may wait for a free VU.
            max_delay: std::time::Duration = "NEST_MAX_DELAY", yaml(PositiveDuration),
                cli(run, value, Option<std::time::Duration>)
                /// Open model: a start that waited longer than this for a free VU is dropped and counted [default: 5s; env:
                /// NEST_MAX_DELAY].
                #[arg(long, value_parser = $crate::parse::parse_duration, value_name = "DUR")];
            /// Run exactly this many tasks.
            iterations: u64 = "NEST_ITERATIONS", yaml(PositiveInt), cli(run, value, Option<u64>)
                /// Run exactly this many tasks in total, then stop [env: NEST_ITERATIONS].
                #[arg(long, value_name = "N")];
            /// Run only tasks with one of these tags.
            tags: Vec<String> = "NEST_TAGS", yaml(Plain), cli(run, list, Vec<String>)
                /// Run only tasks tagged with one of these (a taskset's tags apply to its tasks) [env: NEST_TAGS].
                #[arg(short = 'T', long, value_delimiter = ',', num_args = 1.., value_name = "TAG")];
            /// Skip tasks with any of these tags.
            exclude_tags: Vec<String> = "NEST_EXCLUDE_TAGS", yaml(Plain), cli(run, list, Vec<String>)
                /// Do not run tasks tagged with any of these [env: NEST_EXCLUDE_TAGS].
                #[arg(short = 'E', long, value_delimiter = ',', num_args = 1.., value_name = "TAG")];
            /// Pass/fail criteria (`;`-separated in the environment; expressions, or maps with `expr`, `abort` and
            /// `delay` in `nest.yaml`).
            thresholds: Vec<nest_report::thresholds::Threshold> = "NEST_THRESHOLDS", yaml(ThresholdList),
                cli(run, thresholds, Vec<String>)
                /// A pass/fail criterion, e.g. "p95 < 300ms", "error_rate < 1%", "GET /items/:id: p99 < 800ms" (repeatable;
                /// replaces `thresholds:` of the config) [env: NEST_THRESHOLDS, `;`-separated]. A failed threshold exits 99.
                #[arg(long = "threshold", value_name = "EXPR")];
            /// Cap on a buffered response body: bytes, or a size like `16MiB`.
            max_body: $crate::parse::ByteSize = "NEST_MAX_BODY", yaml(Size),
                cli(run, value, Option<$crate::parse::ByteSize>)
                /// Most bytes of a response body kept in memory, after decoding, e.g. 16MiB; a larger body fails its request
                /// (`body: false` and `discard_bodies()` stream bodies uncapped) [default: 16MiB; env: NEST_MAX_BODY].
                #[arg(long, value_parser = $crate::parse::parse_byte_size, value_name = "SIZE")];
            /// The `Accept-Encoding` header sent by default (empty: none).
            accept_encoding: String = "NEST_ACCEPT_ENCODING", yaml(Plain), cli(run, value, Option<String>)
                /// The Accept-Encoding header sent unless a request sets one; "" sends none [default: "gzip, deflate, br";
                /// env: NEST_ACCEPT_ENCODING].
                #[arg(long, value_name = "CODINGS")];
            /// Local addresses outgoing connections are made from, round-robin by VU (a list, or `,`-separated).
            source_addrs: Vec<std::net::IpAddr> = "NEST_SOURCE_ADDRS", yaml(AddrList), cli(run, addrs, Vec<String>)
                /// Make outgoing connections from these local IP addresses, round-robin by VU, e.g. 127.0.0.2,127.0.0.3:
                /// each address allows about 28,000 connections to one target address and port [env: NEST_SOURCE_ADDRS].
                #[arg(long = "source-addr", value_delimiter = ',', num_args = 1.., value_name = "ADDR")];
            /// The static check's findings are errors (false: warnings).
            strict: bool = "NEST_STRICT", yaml(Plain), cli(source, no_flag, bool)
                /// Report the static check's findings (undefined variables, functions, methods) as warnings instead of
                /// refusing the scripts [env: NEST_STRICT=false].
                #[arg(long = "no-strict")];
            /// Bytes one script string may hold.
            max_string_size: usize = "NEST_MAX_STRING_SIZE", yaml(PositiveInt), cli(source, value, Option<usize>)
                /// The most bytes one script string may hold; a task that builds a longer one fails [default: 16777216 (16
                /// MiB); env: NEST_MAX_STRING_SIZE].
                #[arg(long, value_name = "BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))];
            /// Items one script array may hold.
            max_array_size: usize = "NEST_MAX_ARRAY_SIZE", yaml(PositiveInt), cli(source, value, Option<usize>)
                /// The most items one script array may hold [default: 1000000; env: NEST_MAX_ARRAY_SIZE].
                #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))];
            /// Entries one script map may hold.
            max_map_size: usize = "NEST_MAX_MAP_SIZE", yaml(PositiveInt), cli(source, value, Option<usize>)
                /// The most entries one script map may hold [default: 1000000; env: NEST_MAX_MAP_SIZE].
                #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))];
            /// Exit code of a run that fails the default gate (0 turns the gate off).
            exit_code_on_error: u8 = "NEST_EXIT_CODE_ON_ERROR", yaml(Plain), cli(run, value, Option<u8>)
                /// With no threshold configured, the exit code of a run in which a request failed or a script error occurred
                /// (the default gate); 0 turns the gate off [default: 1; env: NEST_EXIT_CODE_ON_ERROR].
                #[arg(long, value_name = "N")];
            /// Serve Prometheus metrics at `/metrics` on this address.
            prometheus: std::net::SocketAddr = "NEST_PROMETHEUS", yaml(Plain),
                cli(run, value, Option<std::net::SocketAddr>)
                /// Serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9464 (port 0: a free
                /// one); an address beyond loopback needs NEST_PROMETHEUS_TOKEN [env: NEST_PROMETHEUS].
                #[arg(long, value_name = "ADDR")];
            /// Push the metrics by Prometheus remote write to this URL.
            prometheus_remote_write: String = "NEST_PROMETHEUS_REMOTE_WRITE", yaml(Plain),
                cli(run, value, Option<String>)
                /// Push the metrics to this Prometheus remote-write URL every 5s and at the end; credentials from
                /// NEST_PROMETHEUS_REMOTE_WRITE_TOKEN, or _USER and _PASSWORD [env: NEST_PROMETHEUS_REMOTE_WRITE].
                #[arg(long, value_name = "URL")];
            /// After the run, how long `/metrics` waits for a scrape of the final figures.
            prometheus_linger: std::time::Duration = "NEST_PROMETHEUS_LINGER", yaml(AnyDuration),
                cli(run, value, Option<std::time::Duration>)
                /// After the run, keep serving /metrics until a scrape has read the final figures, at most this long
                /// (set it to the scrape interval) [default: 0s; env: NEST_PROMETHEUS_LINGER].
                #[arg(long, value_parser = $crate::parse::parse_duration, value_name = "DUR")];
            /// Turn the default gate off.
            no_default_gate: bool = "NEST_NO_DEFAULT_GATE", yaml(Plain), cli(run, flag, bool)
                /// Turn the default gate off: with no threshold configured, exit 0 whatever failed [env:
                /// NEST_NO_DEFAULT_GATE].
                #[arg(long)];
        }
    };
}
