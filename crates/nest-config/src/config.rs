//! `nest.yaml`: the load mix and run settings as a small, reviewable file.
//!
//! The file is parsed with serde (unknown keys are errors) into typed values, so a wrong type, a negative weight or
//! a bad duration is reported with the file, line and column where it stands. Checks that need the tasksets (a
//! weight for a taskset that does not exist) happen later, and use [`LoadedConfig::locate`] to point at the key.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::parse::UsageError;
use crate::settings::Settings;

/// The default config file name, looked up in the current directory.
pub const DEFAULT_FILE: &str = "nest.yaml";

/// Generates [`FileConfig`] (every setting of the table, plus the mix and the data), its `Deserialize` and
/// [`LoadedConfig::settings`] from the settings table.
macro_rules! file_config {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty = $env:literal, yaml($yaml:ident), cli($group:ident, $conv:ident, $cty:ty)
        $(#[$arg:meta])* ; )*) => {
        /// The keys of `nest.yaml`: each run setting (as its flag, minus the dashes), plus the mix and the data.
        #[derive(Debug, Default)]
        pub struct FileConfig {
            $( $(#[$doc])* pub $field: Option<<keys::$yaml as keys::Read<$ty>>::Raw>, )*
            /// Taskset name -> weight; 0 disables it.
            pub tasksets: BTreeMap<String, Weight>,
            /// Test data: pool name -> CSV or JSON file, relative to the config file.
            pub data: BTreeMap<String, PathBuf>,
            /// `nest scale`: steps, step and settle times, SLOs, history and gate (parsed by nest-scale).
            pub scale: Option<nest_scale::spec::ScaleConfig>,
            /// `nest slack serve`: presets, who may run them, where results go (see [`crate::slack`]).
            pub slack: Option<crate::slack::SlackSection>,
            /// Where a run's result is posted when it ends (`slack:URL` for Block Kit; secrets).
            pub notify: Vec<String>,
        }

        /// Every key of the file, in the order an unknown key's message lists them.
        const KEYS: &[&str] = &[$( stringify!($field), )* "tasksets", "data", "scale", "slack", "notify"];

        impl FileConfig {
            /// Reads the value of `key`, one of [`KEYS`].
            fn read_value<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                $( if key == stringify!($field) {
                    self.$field = map.next_value_seed(keys::Key::<keys::$yaml, $ty>::new(stringify!($field)))?;
                    return Ok(());
                } )*
                // The sections besides the settings: a new one needs a field, a name in `KEYS` and an arm here.
                match key {
                    "tasksets" => self.tasksets = map.next_value()?,
                    "data" => self.data = map.next_value()?,
                    "scale" => self.scale = map.next_value()?,
                    "slack" => self.slack = map.next_value()?,
                    "notify" => self.notify = map.next_value_seed(Notify)?,
                    other => return Err(de::Error::unknown_field(other, KEYS)),
                }
                Ok(())
            }
        }

        impl LoadedConfig {
            /// What the file says, as settings; its paths are relative to the file.
            pub fn settings(&self) -> Result<Settings, UsageError> {
                self.settings_of(&self.file)
            }

            /// What `f` (the file, or one of its presets) says, as settings; its paths are relative to the file.
            pub fn settings_of(&self, f: &FileConfig) -> Result<Settings, UsageError> {
                Ok(Settings {
                    $( $field: f.$field.as_ref()
                        .map(|raw| <keys::$yaml as keys::Read<$ty>>::resolve(raw, self))
                        .transpose()?, )*
                })
            }
        }
    };
}

crate::for_each_setting!(file_config);

/// Unknown keys are refused by name, and every value is read by its setting's [`keys::Read`].
impl<'de> Deserialize<'de> for FileConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FileConfig, D::Error> {
        struct File;
        impl<'de> Visitor<'de> for File {
            type Value = FileConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileConfig, A::Error> {
                let mut file = FileConfig::default();
                while let Some(key) = map.next_key_seed(KeyName)? {
                    file.read_value(key, &mut map)?;
                }
                Ok(file)
            }
        }
        d.deserialize_struct("FileConfig", KEYS, File)
    }
}

/// The `notify:` list, each URL checked.
struct Notify;

impl<'de> DeserializeSeed<'de> for Notify {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        crate::slack::notify(d)
    }
}

/// A key of the file; an unknown one is an error placed at it.
struct KeyName;

impl<'de> DeserializeSeed<'de> for KeyName {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeyName {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a setting name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        KEYS.iter().find(|k| **k == v).copied().ok_or_else(|| E::unknown_field(v, KEYS))
    }
}

/// A taskset weight from the file: a whole number >= 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight(pub u32);

/// A config file as loaded: where it is, its text (to point at keys), its values.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The file's path.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Its values.
    pub file: FileConfig,
}

impl LoadedConfig {
    /// Loads `explicit`, or `nest.yaml` in the current directory if it exists. `Ok(None)`: no file, no error.
    pub fn find(explicit: Option<&Path>) -> Result<Option<LoadedConfig>, UsageError> {
        match explicit {
            Some(path) => LoadedConfig::load(path).map(Some),
            None if Path::new(DEFAULT_FILE).is_file() => LoadedConfig::load(Path::new(DEFAULT_FILE)).map(Some),
            None => Ok(None),
        }
    }

    /// Loads and parses one file.
    pub fn load(path: &Path) -> Result<LoadedConfig, UsageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("{}: cannot read the config file: {e}", path.display())))?;
        let file = parse(&text).map_err(|e| UsageError(format!("{}:{e}", path.display())))?;
        Ok(LoadedConfig { path: path.to_path_buf(), text, file })
    }

    /// The folder paths in the file are relative to.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// `path:line:col` of the first occurrence of `text` in the file, or just the path.
    pub fn locate_text(&self, text: &str) -> String {
        for (i, line) in self.text.lines().enumerate() {
            if let Some(col) = line.find(text) {
                return format!("{}:{}:{}", self.path.display(), i + 1, col + 1);
            }
        }
        self.path.display().to_string()
    }

    /// `path:line:col` of `key` (under `section`, if given), or just the path when it cannot be found.
    pub fn locate(&self, section: Option<&str>, key: &str) -> String {
        match locate_key(&self.text, section, key) {
            Some((line, col)) => format!("{}:{line}:{col}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// A parse error with its place: `line:col: message` (the caller prefixes the file).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    line: usize,
    column: usize,
    message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses the text of a config file. An empty file is an empty config.
pub fn parse(text: &str) -> Result<FileConfig, ParseError> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    // serde_yaml_ng keeps the last of two equal keys without a word; refuse them first, in every mapping.
    if let Err(e) = serde_yaml_ng::from_str::<duplicates::NoDuplicateKeys>(text)
        && let Some(error) = duplicates::place(text, &e)
    {
        return Err(error);
    }
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (mut line, mut column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let full = e.to_string();
        // serde_yaml appends " at line L column C"; the place is already in front.
        let message = match full.find(" at line ") {
            Some(at) => full[..at].to_owned(),
            None => full,
        };
        let message = explain(&message);
        // A check that failed after its value parsed has no position of its own: place it at the key it names.
        let key: String = message.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if (line, column) == (1, 1)
            && let Some(at) = locate_key(text, None, &key)
        {
            (line, column) = at;
        }
        ParseError { line, column, message }
    })
}

mod duplicates;
pub mod edit;
mod explain;
pub mod keys;
use explain::explain;

/// Finds the line and column of `key:` in YAML text, optionally inside the block of `section:`.
pub fn locate_key(text: &str, section: Option<&str>, key: &str) -> Option<(usize, usize)> {
    let mut in_section = section.is_none();
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if let Some(section) = section
            && indent == 0
            && !body.is_empty()
            && !body.starts_with('#')
        {
            in_section = key_of(body) == Some(section);
            continue;
        }
        if in_section && key_of(body) == Some(key) {
            return Some((i + 1, indent + 1));
        }
    }
    None
}

fn key_of(body: &str) -> Option<&str> {
    let (key, _) = body.split_once(':')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Weight, D::Error> {
        struct WeightVisitor;
        impl Visitor<'_> for WeightVisitor {
            type Value = Weight;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number >= 0")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Weight, E> {
                u32::try_from(v).map(Weight).map_err(|_| E::custom(format!("weight {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Weight, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("weight {v} is negative: a weight is a whole number >= 0"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Weight, E> {
                Err(E::custom(format!("weight {v} is not a whole number: a weight is a whole number >= 0")))
            }
        }
        d.deserialize_any(WeightVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_key() {
        let c = parse(
            "host: https://staging.example.com\ntaskset_dir: tasksets\nusers: 200\nspawn_rate: 20\nrun_time: 5m\n\
             workers: 2\nstop_timeout: 3\ninsecure: true\nseed: 7\nuse_script_weights: false\n\
             tasksets:\n  shop/browse: 6\n  \"shop/checkout\": 1\n  admin/reports: 0\n",
        )
        .unwrap();
        assert_eq!(c.host.unwrap().as_str(), "https://staging.example.com/");
        assert_eq!((c.users, c.spawn_rate, c.workers, c.seed), (Some(200), Some(20.0), Some(2), Some(7)));
        assert_eq!(c.run_time, Some(Duration::from_secs(300)));
        assert_eq!(c.stop_timeout, Some(Duration::from_secs(3)));
        assert_eq!(c.tasksets["shop/checkout"], Weight(1));
        assert_eq!(c.tasksets["admin/reports"], Weight(0));
        assert!(parse("").unwrap().tasksets.is_empty());
    }

    #[test]
    fn bad_input_names_line_and_column() {
        assert!(
            err("tasksets:\n  a: 1\n b: 2\n").starts_with("3:2: did not find expected key"),
            "{}",
            err("tasksets:\n  a: 1\n b: 2\n")
        );
        assert_eq!(err("users: many\n"), "1:8: users: expected a whole number, found \"many\"");
        assert!(err("tasksets:\n  a: -1\n").starts_with("2:6: ") && err("tasksets:\n  a: -1\n").contains("negative"));
        assert!(err("tasksets:\n  a: 1.5\n").contains("not a whole number"));
        assert!(err("run_time: soon\n").starts_with("1:11: ") && err("run_time: soon\n").contains("not a duration"));
        assert!(err("host: localhost:80\n").contains("must be an http"));
        assert_eq!(err("usres: 3\n"), "1:1: unknown key `usres`; did you mean `users`?");
        assert!(err("users: 0\n").contains("at least 1"));
        assert_eq!(
            err("stop_timeout: 1e300\n"),
            "1:15: stop_timeout: 1e300 is not a duration: give a number of seconds from 0 to 31536000 (365 days)"
        );
        assert!(err("run_time: 400d\n").contains("longer than a year"), "{}", err("run_time: 400d\n"));
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        assert_eq!(err("users: 3\nUsers: 4\n"), "2:1: unknown key `Users`; did you mean `users`?");
        assert_eq!(err("spawn-rate: 3\n"), "1:1: unknown key `spawn-rate`; did you mean `spawn_rate`?");
        let far = err("colour: red\n");
        assert!(far.starts_with("1:1: unknown key `colour`; the keys are: host, taskset_dir, users,"), "{far}");
    }

    #[test]
    fn type_errors_name_the_key_and_the_type_in_words() {
        assert_eq!(err("users: [1]\n"), "1:8: users: expected a whole number, found a list");
        assert_eq!(err("users: 1.5\n"), "1:8: users: expected a whole number, found 1.5");
        assert_eq!(err("spawn_rate: fast\n"), "1:13: spawn_rate: expected a number, found \"fast\"");
        assert_eq!(err("insecure: maybe\n"), "1:11: insecure: expected true or false, found \"maybe\"");
        assert!(err("tags: smoke\n").starts_with("1:7: tags: expected a list (`[a, b]`"), "{}", err("tags: smoke\n"));
        assert!(err("tasksets: 3\n").starts_with("1:11: tasksets: expected a map"), "{}", err("tasksets: 3\n"));
        assert_eq!(err("taskset_dir: [a]\n"), "1:14: taskset_dir: expected a text, found a list");
        assert_eq!(err("tasksets:\n  a: x\n"), "2:6: tasksets.a: expected a whole number >= 0, found \"x\"");
        for text in ["users 3\n", "- users: 3\n", "42\n"] {
            let e = err(text);
            assert!(e.starts_with("1:1: the config must be a map of settings"), "{e}");
            assert!(!e.contains("FileConfig"), "{e}");
        }
        assert!(err("users 3\n").ends_with("did you mean `users: 3`?"), "{}", err("users 3\n"));
        let threshold = err("thresholds:\n  - 3\n");
        assert!(threshold.starts_with("2:3: thresholds: expected a threshold: an expression"), "{threshold}");
        let stage = err("stages:\n  - [1]\n");
        assert!(stage.contains("stages: expected a stage: \"30s:50\""), "{stage}");
    }

    #[test]
    fn http_settings_parse_sizes_and_strings() {
        let c = parse("max_body: 16MiB\naccept_encoding: \"gzip\"\n").unwrap();
        assert_eq!((c.max_body, c.accept_encoding.as_deref()), (Some(16 << 20), Some("gzip")));
        assert_eq!(parse("max_body: 1048576\n").unwrap().max_body, Some(1 << 20));
        let e = err("users: 2\nmax_body: lots\n");
        assert!(e.starts_with("2:") && e.contains("max_body: `lots` is not a size"), "{e}");
        assert!(err("max_body: 0\n").contains("max_body: a size must be at least 1 byte"));
    }

    #[test]
    fn source_addrs_are_a_list_or_a_string_of_ip_addresses() {
        let ip = |t: &str| t.parse::<std::net::IpAddr>().unwrap();
        let both = Some(vec![ip("127.0.0.2"), ip("::1")]);
        assert_eq!(parse("source_addrs: [127.0.0.2, \"::1\"]\n").unwrap().source_addrs, both);
        assert_eq!(parse("source_addrs: 127.0.0.2, ::1\n").unwrap().source_addrs, both);
        let e = err("users: 2\nsource_addrs:\n  - 127.0.0.2\n  - 127.0.0.300\n");
        assert!(e.starts_with("2:1: source_addrs: `127.0.0.300` is not an IP address"), "{e}");
        assert!(err("source_addrs: {a: 1}\n").contains("source_addrs: expected IP addresses"));
    }

    #[test]
    fn duplicate_keys_are_errors_naming_both_lines() {
        let text = "users: 3\ntasksets:\n  # the mix\n  shop: 1\n  admin: 0\n\n  shop: 4\n";
        assert_eq!(err(text), "7:3: duplicate key \"shop\" (first at line 4)");
        assert_eq!(err("users: 3\nhost: http://a\nusers: 4\n"), "3:1: duplicate key \"users\" (first at line 1)");
        // Any mapping, at any depth; the same key in two different mappings is fine.
        let nested = "data:\n  users: a.csv\ntasksets:\n  users: 1\nthresholds:\n  - expr: p95 < 1s\n    delay: 1s\n    \
                      expr: p99 < 2s\n";
        assert_eq!(err(nested), "8:5: duplicate key \"expr\" (first at line 6)");
        assert!(parse("data:\n  users: a.csv\ntasksets:\n  users: 1\n").is_ok());
        assert_eq!(err("tasksets: { a: 1, a: 2 }\n"), "1:11: duplicate key \"a\"");
    }

    #[test]
    fn every_setting_of_the_table_is_a_key_of_the_file_and_reaches_the_settings() {
        let text = "host: http://h\ntaskset_dir: t\nusers: 2\nspawn_rate: 1\nrun_time: 1s\nworkers: 1\nstop_timeout: 0\n\
                    insecure: true\nseed: 1\nuse_script_weights: true\nstages: [\"1s:1\"]\nshape: s.rhai\nrate: 1\n\
                    max_users: 1\nmax_delay: 1s\niterations: 1\ntags: [a]\nexclude_tags: [b]\nthresholds: [\"p95 < 1s\"]\n\
                    max_body: 1KiB\naccept_encoding: gzip\nstrict: false\nmax_string_size: 1\nmax_array_size: 1\n\
                    max_map_size: 1\nexit_code_on_error: 3\nno_default_gate: true\nprometheus: 127.0.0.1:9464\n\
                    prometheus_remote_write: http://r/api/v1/write\nprometheus_linger: 5s\nsource_addrs: [127.0.0.2]\n";
        assert_eq!(text.lines().count(), Settings::ENV.len());
        let config =
            LoadedConfig { path: PathBuf::from("dir/nest.yaml"), text: text.into(), file: parse(text).unwrap() };
        let mut s = config.settings().unwrap();
        // Their Debug shows inner `None`s: taken out, they are the only `None`s left.
        assert!(s.host.take().is_some() && s.thresholds.take().is_some_and(|t| t.len() == 1));
        assert_eq!(format!("{s:?}").matches("None").count(), 2, "{s:?}");
        assert_eq!((s.taskset_dir, s.shape), (Some(PathBuf::from("dir/t")), Some(PathBuf::from("dir/s.rhai"))));
        assert_eq!(s.max_body, Some(crate::parse::ByteSize(1024)));
        assert_eq!(s.prometheus, Some(([127, 0, 0, 1], 9464).into()));
        assert_eq!(s.prometheus_linger, Some(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn locates_keys_in_sections() {
        let text = "users: 3\ntasksets:\n  # comment\n  shop/browse: 6\n  \"odd name\": 1\nhost: x\n";
        assert_eq!(locate_key(text, Some("tasksets"), "shop/browse"), Some((4, 3)));
        assert_eq!(locate_key(text, Some("tasksets"), "odd name"), Some((5, 3)));
        assert_eq!(locate_key(text, None, "tasksets"), Some((2, 1)));
        assert_eq!(locate_key(text, Some("tasksets"), "host"), None);
    }
}
