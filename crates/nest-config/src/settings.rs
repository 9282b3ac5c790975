//! Run settings from every source, and the one rule that layers them.
//!
//! A setting comes from the command line, else the environment (`NEST_HOST`, `NEST_USERS`, ...), else `nest.yaml`,
//! else its default. Each source fills a [`Settings`] with only what it says; [`Settings::over`] is the single
//! place where one source takes precedence over another, for every key at once. Every setting is declared once,
//! in the table of `settings/table.rs`; the struct, the environment and `nest.yaml` readers and the binary's flags
//! are generated from it.

use crate::parse::UsageError;

pub mod env;
pub mod flags;
pub mod table;

use env::FromEnv;

/// Generates [`Settings`], [`Settings::over`] and [`Settings::from_env`] from the settings table.
macro_rules! settings {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty = $env:literal, yaml($yaml:ident), cli($group:ident, $conv:ident, $cty:ty)
        $(#[$arg:meta])* ; )*) => {
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

crate::for_each_setting!(settings);

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

    /// CLI over environment over file: the settings of a run.
    pub fn layered(cli: Settings, env: Settings, file: Settings) -> Settings {
        cli.over(env).over(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ByteSize;
    use std::collections::HashMap;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, UsageError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn source_addrs_from_the_environment() {
        let got = env(&[("NEST_SOURCE_ADDRS", "127.0.0.2, 127.0.0.3")]).unwrap().source_addrs.unwrap();
        assert_eq!(got.iter().map(ToString::to_string).collect::<Vec<_>>(), ["127.0.0.2", "127.0.0.3"]);
        let e = env(&[("NEST_SOURCE_ADDRS", "127.0.0.2,localhost")]).unwrap_err().0;
        assert!(e.contains("NEST_SOURCE_ADDRS") && e.contains("`localhost` is not an IP address"), "{e}");
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
        assert_eq!(Settings::ENV.len(), 31);
        assert_eq!(env(&[("NEST_PROMETHEUS", "127.0.0.1:0")]).unwrap().prometheus, Some(([127, 0, 0, 1], 0).into()));
        let e = env(&[("NEST_PROMETHEUS", "9464")]).unwrap_err().0;
        assert_eq!(e, "NEST_PROMETHEUS=9464: expected an address and port, e.g. 127.0.0.1:9464");
        assert_eq!(env(&[("NEST_MAX_BODY", "2MiB")]).unwrap().max_body, Some(ByteSize(2 << 20)));
        assert!(env(&[("NEST_MAX_BODY", "big")]).unwrap_err().0.starts_with("NEST_MAX_BODY=big: `big` is not a size"));
        assert!(!env(&[("NEST_STRICT", "false")]).unwrap().load_options().strict);
        let limits = env(&[("NEST_MAX_STRING_SIZE", "1024")]).unwrap().load_options().limits;
        assert_eq!((limits.max_string_size, limits.max_array_size), (1024, 1_000_000));
        assert_eq!(env(&[("NEST_EXIT_CODE_ON_ERROR", "3")]).unwrap().exit_code_on_error, Some(3));
        assert!(env(&[("NEST_EXIT_CODE_ON_ERROR", "300")]).unwrap_err().0.contains("0 to 255"));
    }
}
