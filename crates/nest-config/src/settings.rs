//! Run settings from every source, and the one rule that layers them.
//!
//! A setting comes from the command line, else the environment (`NEST_HOST`, `NEST_USERS`, ...), else `nest.yaml`,
//! else its default. Each source fills a [`Settings`] with only what it says; [`Settings::over`] is the single
//! place where one source takes precedence over another, for every key at once.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::config::LoadedConfig;
use crate::parse::{ByteSize, UsageError, parse_duration, parse_host};
use crate::thresholds::ThresholdSpec;
use nest_report::thresholds::Threshold;

/// Parsing one environment variable's value.
trait FromEnv: Sized {
    fn from_env(value: &str) -> Result<Self, String>;
}

impl FromEnv for Url {
    fn from_env(value: &str) -> Result<Self, String> {
        parse_host(value).map_err(|e| e.0)
    }
}
impl FromEnv for PathBuf {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(PathBuf::from(value))
    }
}
impl FromEnv for Duration {
    fn from_env(value: &str) -> Result<Self, String> {
        parse_duration(value)
    }
}
impl FromEnv for bool {
    fn from_env(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
}
macro_rules! from_str_env {
    ($($ty:ty => $what:literal),*) => {$(
        impl FromEnv for $ty {
            fn from_env(value: &str) -> Result<Self, String> {
                value.trim().parse().map_err(|_| $what.to_owned())
            }
        }
    )*};
}
impl FromEnv for ByteSize {
    fn from_env(value: &str) -> Result<Self, String> {
        nest_http::parse_size(value).map(ByteSize)
    }
}
from_str_env!(u64 => "expected a whole number", usize => "expected a whole number", f64 => "expected a number",
    u8 => "expected a whole number from 0 to 255");
impl FromEnv for Vec<nest_core::Stage> {
    fn from_env(value: &str) -> Result<Self, String> {
        nest_core::curve::parse_stages(value, parse_duration)
    }
}
impl FromEnv for Vec<Threshold> {
    fn from_env(value: &str) -> Result<Self, String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| ThresholdSpec::Expr(t.to_owned()).parse("NEST_THRESHOLDS").map_err(|e| e.0))
            .collect()
    }
}
impl FromEnv for String {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}
impl FromEnv for Vec<String> {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
    }
}

macro_rules! settings {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty = $env:literal, )*) => {
        /// Every layered run setting; `None` means "this source does not say".
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct Settings {
            $( $(#[$doc])* pub $field: Option<$ty>, )*
        }

        impl Settings {
            /// The environment variable of each setting, for the docs and `--help`.
            pub const ENV: &[(&str, &str)] = &[$( (stringify!($field), $env), )*];

            /// Fills what `self` does not say from `lower`. The only precedence rule.
            pub fn over(self, lower: Settings) -> Settings {
                Settings { $( $field: self.$field.or(lower.$field), )* }
            }

            /// Reads the `NEST_*` variables through `lookup` (the process environment, or a test's map). Empty
            /// values count as unset.
            pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, UsageError> {
                Ok(Settings {
                    $( $field: match lookup($env).filter(|v| !v.is_empty()) {
                        Some(v) => Some(<$ty as FromEnv>::from_env(&v)
                            .map_err(|e| UsageError(format!("{}={v}: {e}", $env)))?),
                        None => None,
                    }, )*
                })
            }
        }
    };
}

settings! {
    /// Target host.
    host: Url = "NEST_HOST",
    /// Taskset folder.
    taskset_dir: PathBuf = "NEST_TASKSET_DIR",
    /// Number of users.
    users: u64 = "NEST_USERS",
    /// Users started per second.
    spawn_rate: f64 = "NEST_SPAWN_RATE",
    /// Run time.
    run_time: Duration = "NEST_RUN_TIME",
    /// Worker threads.
    workers: usize = "NEST_WORKERS",
    /// Grace period of a stop.
    stop_timeout: Duration = "NEST_STOP_TIMEOUT",
    /// Accept any TLS certificate.
    insecure: bool = "NEST_INSECURE",
    /// Seed of random choices.
    seed: u64 = "NEST_SEED",
    /// Use each script's `weight(n)` and ignore `tasksets:`.
    use_script_weights: bool = "NEST_USE_SCRIPT_WEIGHTS",
    /// Stages over users (or over the rate, in the open model).
    stages: Vec<nest_core::Stage> = "NEST_STAGES",
    /// A load shape script.
    shape: PathBuf = "NEST_SHAPE",
    /// Open model: tasks started per second.
    rate: f64 = "NEST_RATE",
    /// Open model: the VU pool limit.
    max_users: u64 = "NEST_MAX_USERS",
    /// Open model: how long a start may wait for a free VU.
    max_delay: Duration = "NEST_MAX_DELAY",
    /// Run exactly this many tasks.
    iterations: u64 = "NEST_ITERATIONS",
    /// Run only tasks with one of these tags.
    tags: Vec<String> = "NEST_TAGS",
    /// Skip tasks with any of these tags.
    exclude_tags: Vec<String> = "NEST_EXCLUDE_TAGS",
    /// Pass/fail criteria (`;`-separated in the environment).
    thresholds: Vec<Threshold> = "NEST_THRESHOLDS",
    /// Cap on a buffered response body.
    max_body: ByteSize = "NEST_MAX_BODY",
    /// The `Accept-Encoding` header sent by default (empty: none).
    accept_encoding: String = "NEST_ACCEPT_ENCODING",
    /// The static check's findings are errors (false: warnings).
    strict: bool = "NEST_STRICT",
    /// Bytes one script string may hold.
    max_string_size: usize = "NEST_MAX_STRING_SIZE",
    /// Items one script array may hold.
    max_array_size: usize = "NEST_MAX_ARRAY_SIZE",
    /// Entries one script map may hold.
    max_map_size: usize = "NEST_MAX_MAP_SIZE",
    /// Exit code of a run that fails the default gate (0 turns the gate off).
    exit_code_on_error: u8 = "NEST_EXIT_CODE_ON_ERROR",
    /// Turn the default gate off.
    no_default_gate: bool = "NEST_NO_DEFAULT_GATE",
}

/// The `--help` section listing the environment variables and the precedence rule.
pub fn env_help() -> String {
    let mut text = String::from(
        "Settings come from the command line, else the environment, else the config file (nest.yaml), else their \
         defaults. Environment variables:\n",
    );
    for (key, var) in Settings::ENV {
        text.push_str(&format!("  {var:<24} {key}\n"));
    }
    text
}

impl Settings {
    /// How scripts are loaded: the size limits and the strictness of the static check.
    pub fn load_options(&self) -> nest_rhai::LoadOptions {
        let defaults = nest_rhai::ScriptLimits::default();
        nest_rhai::LoadOptions {
            limits: nest_rhai::ScriptLimits {
                max_string_size: self.max_string_size.unwrap_or(defaults.max_string_size),
                max_array_size: self.max_array_size.unwrap_or(defaults.max_array_size),
                max_map_size: self.max_map_size.unwrap_or(defaults.max_map_size),
            },
            strict: self.strict.unwrap_or(true),
            confine: None,
        }
    }

    /// What `nest.yaml` says; its paths are relative to the file.
    pub fn from_file(config: &LoadedConfig) -> Result<Settings, UsageError> {
        let f = &config.file;
        let thresholds = match &f.thresholds {
            None => None,
            Some(specs) => Some(
                specs
                    .iter()
                    .map(|spec| {
                        let expr = match spec {
                            ThresholdSpec::Expr(e) | ThresholdSpec::Full { expr: e, .. } => e,
                        };
                        spec.parse(&config.locate_text(expr))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Settings {
            host: f.host.clone(),
            taskset_dir: f.taskset_dir.as_ref().map(|d| config.dir().join(d)),
            users: f.users,
            spawn_rate: f.spawn_rate,
            run_time: f.run_time,
            workers: f.workers,
            stop_timeout: f.stop_timeout,
            insecure: f.insecure,
            seed: f.seed,
            use_script_weights: f.use_script_weights,
            stages: f.stages.clone(),
            shape: f.shape.as_ref().map(|p| config.dir().join(p)),
            rate: f.rate,
            max_users: f.max_users,
            max_delay: f.max_delay,
            iterations: f.iterations,
            tags: f.tags.clone(),
            exclude_tags: f.exclude_tags.clone(),
            thresholds,
            max_body: f.max_body.map(ByteSize),
            accept_encoding: f.accept_encoding.clone(),
            strict: f.strict,
            max_string_size: f.max_string_size,
            max_array_size: f.max_array_size,
            max_map_size: f.max_map_size,
            exit_code_on_error: f.exit_code_on_error,
            no_default_gate: f.no_default_gate,
        })
    }

    /// CLI over environment over file: the settings of a run.
    pub fn layered(cli: Settings, env: Settings, file: Settings) -> Settings {
        cli.over(env).over(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, UsageError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn each_layer_overrides_the_one_below() {
        let file =
            Settings { users: Some(1), workers: Some(1), seed: Some(1), spawn_rate: Some(1.0), ..Default::default() };
        let env = env(&[("NEST_USERS", "2"), ("NEST_WORKERS", "2"), ("NEST_RUN_TIME", "1m")]).unwrap();
        let cli = Settings { users: Some(3), ..Default::default() };
        let s = Settings::layered(cli, env, file);
        assert_eq!(s.users, Some(3), "CLI over environment");
        assert_eq!(s.workers, Some(2), "environment over file");
        assert_eq!(s.seed, Some(1), "file when nothing above says");
        assert_eq!(s.run_time, Some(Duration::from_secs(60)));
        assert_eq!(s.host, None, "nobody said: the default applies later");
    }

    #[test]
    fn environment_values_are_checked_and_named() {
        let e = env(&[("NEST_USERS", "lots")]).unwrap_err().0;
        assert_eq!(e, "NEST_USERS=lots: expected a whole number");
        assert!(env(&[("NEST_HOST", "ftp://x")]).unwrap_err().0.starts_with("NEST_HOST=ftp://x: "));
        assert_eq!(env(&[("NEST_INSECURE", "yes")]).unwrap().insecure, Some(true));
        assert_eq!(env(&[("NEST_USERS", "")]).unwrap().users, None, "empty means unset");
        assert_eq!(Settings::ENV.len(), 27);
        assert_eq!(env(&[("NEST_MAX_BODY", "2MiB")]).unwrap().max_body, Some(ByteSize(2 << 20)));
        assert!(env(&[("NEST_MAX_BODY", "big")]).unwrap_err().0.starts_with("NEST_MAX_BODY=big: `big` is not a size"));
        assert!(!env(&[("NEST_STRICT", "false")]).unwrap().load_options().strict);
        let limits = env(&[("NEST_MAX_STRING_SIZE", "1024")]).unwrap().load_options().limits;
        assert_eq!((limits.max_string_size, limits.max_array_size), (1024, 1_000_000));
        assert_eq!(env(&[("NEST_EXIT_CODE_ON_ERROR", "3")]).unwrap().exit_code_on_error, Some(3));
        assert!(env(&[("NEST_EXIT_CODE_ON_ERROR", "300")]).unwrap_err().0.contains("0 to 255"));
    }
}
