//! Leaf parsers and the usage error, shared by the command line, the environment and the config file.
//!
//! They live here, below every other module, so that `settings`, `config`, `plan` and the command line can all
//! use them without importing each other.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use url::Url;

/// A problem with the user's input, found before any load: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An error that ends the command with its own exit code (3 late, 4 incomplete, 5 refused), after its message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitWith {
    /// The exit code.
    pub code: u8,
    /// What to print after `error: `.
    pub message: String,
}

/// Parses a segment `I/N` (from 0 to N-1).
pub fn parse_segment(text: &str) -> Result<nest_core::Segment, String> {
    let bad = || format!("`{text}` is not a segment: give I/N with 0 <= I < N, e.g. 0/3, 1/3, 2/3");
    let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
    let (i, n) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    nest_core::Segment::new(i, n).ok_or_else(bad)
}

/// Parses a start time: Unix seconds (fractions allowed) or RFC 3339 (`2026-12-01T18:00:00Z`).
pub fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| std::time::UNIX_EPOCH + Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("`{text}` is not a time: give Unix seconds (e.g. 1764612000.5) or RFC 3339"));
    }
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!(
            "`{text}` is not a time ({e}): give Unix seconds (e.g. 1764612000.5) or RFC 3339 (2026-12-01T18:00:00Z)"
        )
    })
}

/// A byte size from a setting: `16MiB`, `1048576` (see [`nest_http::parse_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// Parses `16MiB`, `512KiB` or a bare number of bytes.
pub fn parse_byte_size(text: &str) -> Result<ByteSize, String> {
    nest_http::parse_size(text).map(ByteSize)
}

/// Parses `30s`, `5m`, `1h30m`, `250ms` or a bare number of seconds, from 0 to a year.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return nest_core::duration_from_secs(secs).map_err(|_| {
            format!("`{text}` is not a duration: give 0 to {} seconds, or e.g. 30s, 5m, 1h30m", max_secs())
        });
    }
    match humantime::parse_duration(text) {
        Ok(d) if d <= nest_core::MAX_DURATION => Ok(d),
        Ok(_) => {
            Err(format!("`{text}` is longer than a year ({} seconds), the longest duration nest takes", max_secs()))
        }
        Err(e) => Err(format!("`{text}` is not a duration ({e}); use e.g. 30s, 5m, 1h30m")),
    }
}

fn max_secs() -> u64 {
    nest_core::MAX_DURATION.as_secs()
}

/// Reads a duration in any form `nest.yaml` accepts: `30s`, `5m`, `1h30m`, or a number of seconds.
pub struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration like 30s, 5m or 1h30m, or a number of seconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("a duration cannot be negative"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        nest_core::duration_from_secs(v).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// An optional duration in any form `nest.yaml` accepts (for nested settings such as a threshold's `delay`).
pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

/// Checks a target URL: http or https, with a host.
pub fn parse_host(text: &str) -> Result<Url, UsageError> {
    // Credentials in the host never appear in a message: the whole user part goes, whatever it holds.
    let shown = nest_http::redact_word(text);
    if !text.contains("://") {
        // No scheme, so no URL to redact: everything before the last `@` may be `user:password`.
        let shown = text.rfind('@').map_or(shown, |at| format!("***{}", &text[at..]).into());
        return Err(UsageError(format!(
            "host `{shown}` must be an http:// or https:// URL: did you mean http://{shown}?"
        )));
    }
    let url = Url::parse(text)
        .map_err(|e| UsageError(format!("host `{shown}` is not a URL ({e}); e.g. http://127.0.0.1:8080")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(UsageError(format!("host `{shown}` must be an http:// or https:// URL with a host")));
    }
    Ok(url)
}

/// IP addresses (`127.0.0.2`, `::1`), blanks ignored; the error names the one that is not.
pub fn parse_addrs<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<std::net::IpAddr>, String> {
    items
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| format!("`{t}` is not an IP address (like 127.0.0.2 or ::1)")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1e300").unwrap_err().starts_with("`1e300` is not a duration: give 0 to 31536000"));
        assert_eq!(parse_duration("365d"), Ok(nest_core::MAX_DURATION));
        assert!(parse_duration("366d").unwrap_err().contains("longer than a year"));
    }

    #[test]
    fn segments_and_start_times() {
        assert_eq!(parse_segment("2/3"), Ok(nest_core::Segment::new(2, 3).unwrap()));
        for bad in ["3/3", "0/0", "1", "a/3", "-1/3"] {
            assert!(parse_segment(bad).unwrap_err().contains("give I/N with 0 <= I < N"), "{bad}");
        }
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_764_612_000_500);
        assert_eq!(parse_start_at("1764612000.5"), Ok(at));
        assert_eq!(parse_start_at("2025-12-01T18:00:00.5Z"), Ok(at));
        assert!(parse_start_at("soon").unwrap_err().contains("RFC 3339"));
        assert!(parse_start_at("-5").is_err());
    }

    #[test]
    fn hosts() {
        assert!(parse_host("http://127.0.0.1:8080").is_ok());
        assert!(parse_host("https://example.com/base/").is_ok());
        assert!(parse_host("127.0.0.1:8080").unwrap_err().0.contains("must be an http"));
        assert!(parse_host("ftp://x").is_err());
        assert_eq!(parse_host("http://u:p%40ss@h/v1/").unwrap().password(), Some("p%40ss"));
        let e = parse_host("http://u:hunter2@exa mple/").unwrap_err().0;
        assert!(e.contains("http://***@") && !e.contains("hunter2"), "{e}");
        for host in ["bob:hunter2@h", "http://bob:hun'ter2@exa mple/", "http://bob:hun ter2@exa mple/", "bob:a@b:c@h:1"]
        {
            let e = parse_host(host).unwrap_err().0;
            assert!(!e.contains("hun") && !e.contains("bob") && e.contains("***@"), "{host}: {e}");
        }
        assert!(parse_host("http://exa mple").unwrap_err().0.contains("is not a URL"));
        assert!(parse_host("127.0.0.1:8080").unwrap_err().0.contains("did you mean http://127.0.0.1:8080?"));
    }
}
