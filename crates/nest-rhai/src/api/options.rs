//! Parsing the options map of a request (`#{ name: .., headers: .., json: .. }`) into a typed request.
//!
//! Every key is checked: a misspelt option is an error that names it, not a silently ignored setting.

use std::time::Duration;

use nest_http::{Body, Request};
use rhai::{Dynamic, EvalAltResult, Map};

/// The option keys `client.get(path, opts)` accepts.
pub(crate) const KEYS: &[&str] =
    &["name", "headers", "query", "json", "body", "form", "timeout", "expect", "redirects", "max_body"];

/// What a script asked for, beyond the request itself.
pub(crate) struct Options {
    /// The stats group name.
    pub name: Option<String>,
    /// Statuses that count as success; empty means the default (1xx–3xx).
    pub expect: Vec<u16>,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Applies `opts` to `request` and returns the options that are not part of the request.
pub(crate) fn apply(request: &mut Request, method: &str, opts: Map) -> Res<Options> {
    let mut options = Options { name: None, expect: Vec::new() };
    let mut body_key: Option<String> = None;
    for (key, value) in opts {
        let key = key.as_str();
        let what = |expected: &str| -> Box<EvalAltResult> {
            format!("option `{key}` of a {method} request must be {expected}, not {}", value.type_name()).into()
        };
        match key {
            "name" => options.name = Some(value.clone().into_string().map_err(|_| what("a string"))?),
            "headers" => request.headers = pairs(value.clone(), key, method)?,
            "query" => request.query = pairs(value.clone(), key, method)?,
            // `body: false` streams the response body and only counts it; `body: true` keeps it (the default, or
            // back on under `discard_bodies()`). A string is the request body.
            "body" if value.is_bool() => request.keep_body = value.as_bool().unwrap_or(true),
            "json" | "body" | "form" => {
                if let Some(previous) = body_key.replace(key.to_owned()) {
                    return Err(format!(
                        "options `{previous}` and `{key}` of a {method} request cannot be used together"
                    )
                    .into());
                }
                request.body = match key {
                    "json" => Body::Json(
                        rhai::serde::from_dynamic(&value)
                            .map_err(|e| format!("option `json` of a {method} request: {e}"))?,
                    ),
                    "body" => Body::Text(value.clone().into_string().map_err(|_| what("a string, or true or false"))?),
                    _ => Body::Form(pairs(value, key, method)?),
                };
            }
            "timeout" => {
                seconds(&value).ok_or_else(|| what("a number of seconds"))?;
                let timeout = duration_named(&value, || format!("option `timeout` of a {method} request"))?;
                if timeout.is_zero() {
                    return Err(format!("option `timeout` of a {method} request must be more than 0 seconds").into());
                }
                request.timeout = Some(timeout);
            }
            "expect" => options.expect = statuses(&value).ok_or_else(|| what("a status code or an array of them"))?,
            "max_body" => {
                request.max_body =
                    Some(size(&value).map_err(|e| format!("option `max_body` of a {method} request: {e}"))?)
            }
            "redirects" => request.follow_redirects = value.as_bool().map_err(|_| what("true or false"))?,
            other => {
                return Err(format!(
                    "unknown option `{other}` for a {method} request: expected one of {}",
                    KEYS.join(", ")
                )
                .into());
            }
        }
    }
    Ok(options)
}

/// A number of seconds from an int or a float.
pub(crate) fn seconds(value: &Dynamic) -> Option<f64> {
    value.as_float().ok().or_else(|| value.as_int().ok().map(|i| i as f64))
}

/// A byte size from an integer (bytes) or a string with a unit (`"16MiB"`).
fn size(value: &Dynamic) -> Result<u64, String> {
    if let Ok(n) = value.as_int() {
        return u64::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| "a size must be at least 1 byte".to_owned());
    }
    match value.clone().into_string() {
        Ok(text) => nest_http::parse_size(&text),
        Err(_) => Err(format!("expected bytes (1048576) or a size (\"1MiB\"), not {}", value.type_name())),
    }
}

/// A duration from a script value, checked (finite, >= 0, at most a year), with `what` naming the call in errors.
pub(crate) fn duration(value: &Dynamic, what: &str) -> Result<Duration, String> {
    duration_named(value, || what.to_owned())
}

/// [`duration`], with the call's name built only when there is an error to report.
pub(crate) fn duration_named(value: &Dynamic, what: impl Fn() -> String) -> Result<Duration, String> {
    let secs =
        seconds(value).ok_or_else(|| format!("{} takes a number of seconds, not {}", what(), value.type_name()))?;
    nest_core::duration_from_secs(secs).map_err(|e| format!("{}: {e}", what()))
}

fn pairs(value: Dynamic, key: &str, method: &str) -> Res<Vec<(String, String)>> {
    let type_name = value.type_name();
    let map = value
        .try_cast::<Map>()
        .ok_or_else(|| format!("option `{key}` of a {method} request must be a map, not {type_name}"))?;
    Ok(map.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn statuses(value: &Dynamic) -> Option<Vec<u16>> {
    let one = |v: &Dynamic| v.as_int().ok().and_then(|i| u16::try_from(i).ok()).filter(|s| (100..=599).contains(s));
    if value.is_array() {
        value.clone().into_array().ok()?.iter().map(one).collect()
    } else {
        one(value).map(|s| vec![s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(script: &str) -> Map {
        rhai::Engine::new().eval::<Map>(script).unwrap()
    }

    #[test]
    fn applies_every_option() {
        let mut r = Request::new(http::Method::POST, "/x");
        let o = apply(
            &mut r,
            "post",
            map(r#"#{ name: "/x/:id", headers: #{ "X-A": "1" }, query: #{ q: "a b" }, json: #{ k: [1, 2] },
                     timeout: 2, expect: [200, 404], redirects: false, max_body: "2KiB" }"#),
        )
        .unwrap();
        assert_eq!(o.name.as_deref(), Some("/x/:id"));
        assert_eq!(o.expect, vec![200, 404]);
        assert_eq!(r.headers, vec![("X-A".to_owned(), "1".to_owned())]);
        assert_eq!(r.query, vec![("q".to_owned(), "a b".to_owned())]);
        assert_eq!(r.timeout, Some(Duration::from_secs(2)));
        assert!(!r.follow_redirects);
        assert_eq!(r.max_body, Some(2048));
        assert!(r.keep_body);
        let Body::Json(v) = &r.body else { panic!("not json") };
        assert_eq!(v.to_string(), r#"{"k":[1,2]}"#);
    }

    #[test]
    fn body_false_discards_the_response_body_and_a_string_is_the_request_body() {
        let mut r = Request::new(http::Method::POST, "/x");
        apply(&mut r, "post", map(r#"#{ body: false, json: #{ a: 1 } }"#)).unwrap();
        assert!(!r.keep_body);
        assert!(matches!(r.body, Body::Json(_)));
        apply(&mut r, "post", map(r#"#{ body: true }"#)).unwrap();
        assert!(r.keep_body);
        let mut r = Request::new(http::Method::POST, "/x");
        apply(&mut r, "post", map(r#"#{ body: "text" }"#)).unwrap();
        assert!(r.keep_body && matches!(r.body, Body::Text(_)));
    }

    #[test]
    fn rejects_unknown_keys_and_conflicts() {
        let mut r = Request::new(http::Method::GET, "/x");
        let e = apply(&mut r, "get", map("#{ nmae: 1 }")).err().unwrap().to_string();
        assert!(e.contains("unknown option `nmae`") && e.contains("expected one of name"), "{e}");
        let e = apply(&mut r, "get", map(r#"#{ json: 1, body: "x" }"#)).err().unwrap().to_string();
        assert!(e.contains("cannot be used together"), "{e}");
        let e = apply(&mut r, "get", map("#{ timeout: -1 }")).err().unwrap().to_string();
        assert!(e.contains("is not a duration"), "{e}");
        let e = apply(&mut r, "get", map("#{ timeout: 0 }")).err().unwrap().to_string();
        assert!(e.contains("more than 0"), "{e}");
        let e = apply(&mut r, "get", map("#{ max_body: 0 }")).err().unwrap().to_string();
        assert!(e.contains("option `max_body`") && e.contains("at least 1 byte"), "{e}");
        let e = apply(&mut r, "get", map("#{ max_body: \"lots\" }")).err().unwrap().to_string();
        assert!(e.contains("not a size"), "{e}");
        let e = apply(&mut r, "get", map("#{ timeout: 1e300 }")).err().unwrap().to_string();
        assert!(e.contains("option `timeout` of a get request: 1e300 is not a duration"), "{e}");
        let e = apply(&mut r, "get", map("#{ expect: \"200\" }")).err().unwrap().to_string();
        assert!(e.contains("status code"), "{e}");
    }
}
