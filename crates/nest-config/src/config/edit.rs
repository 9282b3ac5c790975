//! Editing `nest.yaml` for `nest configure`: the file's mapping with the weights and settings changed.
//!
//! The old file is read as plain YAML, so keys that `nest configure` was not asked about are kept as they are
//! (their values, not their comments); tasksets that no longer exist are dropped. The binary asks the questions,
//! checks the result with [`parse`](super::parse) and writes it atomically.

use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

/// The first line of every file `nest configure` writes.
pub const HEADER: &str =
    "# nest load mix and run settings. Written by `nest configure`; edit freely (comments are not kept).";

/// What to change in the file; `None` keeps what it says.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Taskset name -> new weight.
    pub weights: Vec<(String, u32)>,
    /// The target host, as given.
    pub host: Option<String>,
    /// The number of users.
    pub users: Option<u64>,
    /// Users started per second.
    pub spawn_rate: Option<f64>,
    /// The run time.
    pub run_time: Option<Duration>,
    /// Use each script's `weight(n)` and ignore `tasksets:`.
    pub use_script_weights: Option<bool>,
}

/// The new text of the config file: the old mapping with the changes applied, behind the header line.
///
/// Names under `tasksets:` that are not in `known` are dropped; every other key is kept (comments are not).
pub fn render(existing: Option<&str>, changes: &Changes, known: &[String]) -> Result<String, serde_yaml_ng::Error> {
    let mut root = match existing.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => match serde_yaml_ng::from_str::<Value>(text)? {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        },
        None => Mapping::new(),
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            root.insert(key.into(), value);
        }
    };
    set("host", changes.host.clone().map(Value::from));
    set("users", changes.users.map(Value::from));
    set("spawn_rate", changes.spawn_rate.map(Value::from));
    set("run_time", changes.run_time.map(|d| Value::from(humantime::format_duration(d).to_string())));
    set("use_script_weights", changes.use_script_weights.map(Value::from));
    let mut tasksets = match root.remove("tasksets") {
        Some(Value::Mapping(m)) => m,
        _ => Mapping::new(),
    };
    tasksets.retain(|k, _| k.as_str().is_some_and(|k| known.iter().any(|n| n == k)));
    for (name, weight) in &changes.weights {
        tasksets.insert(name.as_str().into(), Value::from(*weight));
    }
    if !tasksets.is_empty() {
        root.insert("tasksets".into(), Value::Mapping(tasksets));
    }
    let body = if root.is_empty() { String::new() } else { serde_yaml_ng::to_string(&Value::Mapping(root))? };
    Ok(format!("{HEADER}\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_keys_updates_weights_and_drops_unknown_names() {
        let old = "# old comment\nusers: 5\nstop_timeout: 2s\ntasksets:\n  a: 1\n  gone: 3\n";
        let changes = Changes {
            weights: vec![("b".into(), 0), ("a".into(), 6)],
            run_time: Some(Duration::from_secs(90)),
            ..Default::default()
        };
        let text = render(Some(old), &changes, &["a".into(), "b".into()]).unwrap();
        assert!(text.starts_with(HEADER));
        let v: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(v["users"], Value::from(5));
        assert_eq!(v["stop_timeout"], Value::from("2s"));
        assert_eq!(v["run_time"], Value::from("1m 30s"));
        assert_eq!(v["tasksets"]["a"], Value::from(6));
        assert_eq!(v["tasksets"]["b"], Value::from(0));
        assert!(v["tasksets"].get("gone").is_none());
        assert_eq!(crate::config::parse(&text).unwrap().run_time, Some(Duration::from_secs(90)));
    }

    #[test]
    fn a_new_file_gets_only_what_was_said() {
        let changes = Changes { weights: vec![("a".into(), 2)], ..Default::default() };
        assert_eq!(render(None, &changes, &["a".into()]).unwrap(), format!("{HEADER}\ntasksets:\n  a: 2\n"));
    }
}
