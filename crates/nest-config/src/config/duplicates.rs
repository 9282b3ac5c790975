//! The first pass over a config file: a mapping that repeats a key is an error that names both lines.
//!
//! serde_yaml_ng keeps the last of two equal keys without a word, so `tasksets: { shop: 1, ..., shop: 4 }` would
//! silently run weight 4. This pass deserializes the document into a type that accepts any YAML but refuses a
//! repeated key in any mapping; the error is placed at the mapping, so the lines of both keys are found from there.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::Value;

use super::ParseError;

/// The prefix of the error raised on a repeated key, followed by the key as YAML.
const DUPLICATE: &str = "duplicate key ";

/// Any YAML document whose mappings each have distinct keys.
pub struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Walk)
    }
}

struct Walk;

impl<'de> Visitor<'de> for Walk {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        NoDuplicateKeys::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen: Vec<Value> = Vec::new();
        while let Some(key) = map.next_key::<Value>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{}", shown(&key))));
            }
            map.next_value::<NoDuplicateKeys>()?;
            seen.push(key);
        }
        Ok(NoDuplicateKeys)
    }
}

fn shown(key: &Value) -> String {
    match key {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml_ng::to_string(other).map_or_else(|_| "?".into(), |t| t.trim_end().to_owned()),
    }
}

/// The duplicate-key error of the first pass, placed at the repeated key and naming the line of the first one.
/// Other errors are left to the typed parse, which words them better.
pub fn place(text: &str, error: &serde_yaml_ng::Error) -> Option<ParseError> {
    let message = error.to_string();
    let at = message.find(DUPLICATE)?;
    let key_text = message[at + DUPLICATE.len()..].split(" at line ").next().unwrap_or_default().to_owned();
    let key = match serde_yaml_ng::from_str::<String>(&key_text) {
        Ok(key) => key,
        Err(_) => key_text.clone(),
    };
    // The error is placed at the start of the mapping: its keys are the lines below, at the same column.
    let (start, column) = error.location().map_or((1, 1), |l| (l.line(), l.column()));
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for n in start..=lines.len() {
        let line = lines[n - 1];
        if n > start && indentation(line).is_some_and(|i| i + 1 < column) {
            break;
        }
        if key_column(line, &key) == Some(column) {
            found.push(n);
        }
    }
    let (line, first) = match found[..] {
        [first, second, ..] => (second, format!(" (first at line {first})")),
        // A flow mapping (`{ a: 1, a: 2 }`) has both on one line.
        _ => (start, String::new()),
    };
    Some(ParseError { line, column, message: format!("{DUPLICATE}{key_text}{first}") })
}

/// The indentation of a line that holds content (not blank, not only a comment).
fn indentation(line: &str) -> Option<usize> {
    let body = line.trim_start();
    (!body.is_empty() && !body.starts_with('#')).then(|| line.len() - body.len())
}

/// The column where `key:` starts on this line (after indentation and any `- `), if it does.
fn key_column(line: &str, key: &str) -> Option<usize> {
    let body = line.trim_start().trim_start_matches("- ").trim_start();
    let start = line.len() - body.len();
    let (found, _) = body.split_once(':')?;
    (found.trim().trim_matches(|c| c == '"' || c == '\'') == key).then_some(start + 1)
}
