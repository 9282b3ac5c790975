//! serde's error wording, rewritten for people who write `nest.yaml`.
//!
//! An unknown key gets a did-you-mean, a type error names the key and the expected type in words, and a file that
//! is not a map of settings says what a config looks like. Split from `config.rs`, which parses; this only words.

/// Rewrites serde's wording for people: an unknown key gets a did-you-mean, a type error names the key and the
/// expected type in words (`users: expected a whole number, found "many"`), not Rust's (`expected u64`).
pub(super) fn explain(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, known)) = rest.split_once("`, expected one of ")
    {
        return unknown_key(key, &known.split(", ").map(|k| k.trim_matches('`')).collect::<Vec<_>>());
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, known)) = rest.split_once("`, expected `")
    {
        return unknown_key(key, &[known.trim_end_matches('`')]);
    }
    if let Some((key, rest)) = message.split_once(": data did not match any variant of untagged enum ") {
        let expected = match rest {
            "ThresholdSpec" => {
                "a threshold: an expression such as \"p95 < 300ms\", or a map with `expr` (and \
                                `abort`, `delay`)"
            }
            "Item" => "a stage: \"30s:50\", or a map with `duration` and `target`",
            _ => return message.to_owned(),
        };
        return format!("{key}: expected {expected}");
    }
    let (key, rest) = match message.split_once(": invalid type: ") {
        Some((key, rest)) => (Some(key), rest),
        None => match message.strip_prefix("invalid type: ") {
            Some(rest) => (None, rest),
            None => return message.to_owned(),
        },
    };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else { return message.to_owned() };
    let found = found_in_words(found);
    match key {
        Some(key) => format!("{key}: expected {}, found {found}", expected_in_words(expected)),
        None => top_level_type(&found),
    }
}

/// `unknown key `usres`; did you mean `users`?`, or the list of keys when none is close.
fn unknown_key(key: &str, known: &[&str]) -> String {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    let mut close: Vec<(f64, &str)> = known
        .iter()
        .map(|k| (if *k == lower { 1.0 } else { strsim::jaro_winkler(&lower, k) }, *k))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pick: Vec<String> = close.iter().take(3).map(|(_, k)| format!("`{k}`")).collect();
    if pick.is_empty() {
        format!("unknown key `{key}`; the keys are: {}", known.join(", "))
    } else {
        format!("unknown key `{key}`; did you mean {}?", pick.join(" or "))
    }
}

/// serde's `expected` in words a config author knows.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "u64" | "u32" | "usize" | "i64" => "a whole number".to_owned(),
        "f64" | "f32" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list (`[a, b]`, or one `- item` per line)".to_owned(),
        "a map" => "a map (`name: value` lines, indented below the key)".to_owned(),
        "path string" | "a string" => "a text".to_owned(),
        other => other.to_owned(),
    }
}

/// serde's `invalid type: string "x"` in words: `"x"`, `3`, `a list`.
fn found_in_words(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return text.to_owned();
    }
    for kind in ["integer ", "floating point ", "boolean "] {
        if let Some(value) = found.strip_prefix(kind) {
            return value.trim_matches('`').to_owned();
        }
    }
    match found {
        "sequence" => "a list".to_owned(),
        "map" => "a map".to_owned(),
        "unit value" => "nothing".to_owned(),
        other => other.to_owned(),
    }
}

/// The whole file is not a map of settings (`users 3`, a list, a number).
fn top_level_type(found: &str) -> String {
    let mut message =
        format!("the config must be a map of settings, one `key: value` per line (e.g. `users: 10`), found {found}");
    // `users 3`: a forgotten colon.
    if let Some((word, value)) = found.trim_matches('"').split_once(' ')
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        message.push_str(&format!("; did you mean `{word}: {value}`?"));
    }
    message
}
