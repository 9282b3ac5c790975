//! Posting a result when a run ends: Block Kit to Slack, the JSON summary anywhere else.
//!
//! `--notify slack:URL` (or a URL on Slack's webhook host) gets the Block Kit message, any other URL the JSON
//! summary. Each delivery has a timeout and a few retries with a growing pause; it never changes a run's exit
//! code, so a failure is only a warning. Webhook URLs embed their token: they are shown redacted
//! ([`Target::shown`]), never whole.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Slack's incoming-webhook host.
pub const SLACK_WEBHOOK_HOST: &str = "hooks.slack.com";

/// What is sent to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Slack's Block Kit message.
    Slack,
    /// The JSON summary.
    Json,
}

/// One place a result goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL, whole (a secret).
    pub url: url::Url,
    /// What it gets.
    pub format: Format,
}

/// Why a `--notify` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--notify {shown}: {reason}")]
pub struct BadTarget {
    /// The value, redacted.
    pub shown: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Target {
    /// Parses `slack:URL` or `URL` (http or https).
    pub fn parse(text: &str) -> Result<Target, BadTarget> {
        let text = text.trim();
        let (forced, rest) = match text.strip_prefix("slack:") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let bad = |reason: &str| BadTarget { shown: redact_text(text), reason: reason.to_owned() };
        let url = url::Url::parse(rest).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("expected an http:// or https:// URL"));
        }
        let slack = forced || url.host_str() == Some(SLACK_WEBHOOK_HOST);
        Ok(Target { url, format: if slack { Format::Slack } else { Format::Json } })
    }

    /// The URL as it may be shown: scheme, host and the first path segment; the rest (the token) elided.
    pub fn shown(&self) -> String {
        redact(&self.url)
    }
}

/// A URL without its secret parts: `https://hooks.slack.com/services/…`.
pub fn redact(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let first = url.path_segments().and_then(|mut s| s.next()).filter(|s| !s.is_empty());
    match first {
        Some(first) if url.path().len() > first.len() + 1 || url.query().is_some() => {
            format!("{}://{host}{port}/{first}/…", url.scheme())
        }
        Some(first) => format!("{}://{host}{port}/{first}", url.scheme()),
        None => format!("{}://{host}{port}/", url.scheme()),
    }
}

/// [`redact`] of a text that may not be a URL.
pub fn redact_str(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => redact(&url),
        Err(_) => "<not a URL>".into(),
    }
}

fn redact_text(text: &str) -> String {
    let rest = text.strip_prefix("slack:").unwrap_or(text);
    match url::Url::parse(rest) {
        Ok(url) => redact(&url),
        Err(_) => "<the value given>".into(),
    }
}

/// How hard a delivery tries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The attempts in all (at least 1).
    pub attempts: u32,
    /// The bound on one attempt (connect, send, answer).
    pub timeout: Duration,
    /// The pause after the first failure; it doubles after each.
    pub backoff: Duration,
}

impl Default for Policy {
    /// Four attempts of 10 s each, 0.5 s, 1 s and 2 s apart.
    fn default() -> Policy {
        Policy { attempts: 4, timeout: Duration::from_secs(10), backoff: Duration::from_millis(500) }
    }
}

/// Why a delivery failed, after its retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not deliver to {shown} after {attempts} attempts: {last}")]
pub struct DeliveryFailed {
    /// The target, redacted.
    pub shown: String,
    /// The attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last: String,
}

/// What ended, to be told.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// A run (`nest run`, `nest coordinate`, `nest merge`).
    Run(&'a nest_report::model::Report),
    /// A `nest scale` run, with its Capacity@SLO line.
    Scale(&'a nest_scale::doc::ScaleDoc, &'a crate::blocks::ScaleLine),
}

/// The body a target of `format` gets: the Block Kit message, or the JSON summary (the report's figures without
/// its histograms and timeline; for `scale`, Capacity@SLO and the steps' figures).
pub fn body(format: Format, outcome: Outcome<'_>, title: &str) -> Value {
    let context = crate::blocks::Context { title: title.to_owned(), in_channel: true, ..Default::default() };
    match (format, outcome) {
        (Format::Slack, Outcome::Run(report)) => crate::blocks::run_message(report, &context),
        (Format::Slack, Outcome::Scale(doc, line)) => crate::blocks::scale_message(doc, line, &context),
        (Format::Json, Outcome::Run(report)) => run_summary(report, title),
        (Format::Json, Outcome::Scale(doc, line)) => scale_summary(doc, line, title),
    }
}

fn run_summary(report: &nest_report::model::Report, title: &str) -> Value {
    let (verdict, _) = crate::blocks::verdict(report);
    let s = &report.summary;
    let t = &s.totals;
    serde_json::json!({
        "title": title,
        "verdict": verdict,
        "host": report.run.host,
        "load": report.run.load,
        "started_at": s.started_at,
        "duration_s": s.duration_s,
        "totals": {"requests": t.requests, "failures": t.failures, "rps": t.rps, "latency_ms": t.latency_ms},
        "thresholds": report.thresholds,
        "failures": s.failures,
        "incomplete": report.run.incomplete.is_some(),
    })
}

fn scale_summary(doc: &nest_scale::doc::ScaleDoc, line: &crate::blocks::ScaleLine, title: &str) -> Value {
    let steps: Vec<Value> = doc
        .steps
        .iter()
        .map(|s| {
            serde_json::json!({"load": s.load.to_string(), "throughput_rps": s.throughput_rps,
                "p95_ms": s.latency_ms.p95, "error_pct": s.error_pct, "meets_slos": s.meets_slos})
        })
        .collect();
    serde_json::json!({
        "title": title,
        "capacity": doc.capacity,
        "headline": line.headline,
        "baseline_rps": line.baseline_rps,
        "change": line.change(),
        "steps": steps,
        "target": doc.target,
    })
}

/// Delivers `outcome` to every target in turn; returns, per target, its redacted URL and the attempts it took, or
/// why it failed.
pub fn deliver_all(
    targets: &[Target],
    outcome: Outcome<'_>,
    title: &str,
    policy: Policy,
) -> Vec<Result<(String, u32), DeliveryFailed>> {
    targets
        .iter()
        .map(|target| post_json(&target.url, &body(target.format, outcome, title), policy).map(|n| (target.shown(), n)))
        .collect()
}

/// Posts `body` as JSON to `url`, retrying a transport error, a 429 or a 5xx; returns the attempts it took. A 4xx
/// other than 429 is not retried: the request itself is wrong. Runs its own small runtime: call it from
/// synchronous code, off any async runtime.
pub fn post_json(url: &url::Url, body: &Value, policy: Policy) -> Result<u32, DeliveryFailed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let shown = redact(url);
    let runtime = runtime.map_err(|e| DeliveryFailed { shown: shown.clone(), attempts: 0, last: e.to_string() })?;
    runtime.block_on(post_json_async(url, body, policy))
}

/// [`post_json`] on the caller's runtime (a current-thread one: the client is not `Send`).
pub async fn post_json_async(url: &url::Url, body: &Value, policy: Policy) -> Result<u32, DeliveryFailed> {
    let shown = redact(url);
    let failed = |attempts, last: String| DeliveryFailed { shown: shown.clone(), attempts, last };
    let config = nest_http::ClientConfig::new(false)
        .map_err(|e| failed(0, e.to_string()))?
        .connect_timeout(policy.timeout)
        .default_timeout(policy.timeout);
    let client = nest_http::VuClient::new(Arc::new(config), None);
    let mut pause = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        let mut request = nest_http::Request::new(http::Method::POST, url.as_str());
        request.body = nest_http::Body::Json(body.clone());
        request.follow_redirects = false;
        let response = client.send(request).await;
        match response.status {
            200..=299 => return Ok(attempt),
            0 => last = response.error.unwrap_or_else(|| "no answer".into()),
            status @ (429 | 500..=599) => last = format!("HTTP {status}"),
            status => return Err(failed(attempt, format!("HTTP {status} (not retried)"))),
        }
        if attempt < policy.attempts {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
    }
    Err(failed(policy.attempts.max(1), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_pick_their_format_from_the_prefix_or_the_host() {
        let t = Target::parse("slack:http://127.0.0.1:9/hook").unwrap();
        assert_eq!(t.format, Format::Slack);
        assert_eq!(t.url.as_str(), "http://127.0.0.1:9/hook");
        let t = Target::parse("https://hooks.slack.com/services/T0/B0/secret").unwrap();
        assert_eq!(t.format, Format::Slack);
        assert_eq!(t.shown(), "https://hooks.slack.com/services/…");
        assert_eq!(Target::parse("http://ci.example/results").unwrap().format, Format::Json);
        let e = Target::parse("ftp://hooks.slack.com/services/T0/B0/secret").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(Target::parse("slack:nothing").is_err());
    }

    #[test]
    fn a_refusing_target_fails_after_every_attempt() {
        // A port nobody listens on: every attempt is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}/x/token")).unwrap();
        let policy = Policy { attempts: 3, timeout: Duration::from_secs(2), backoff: Duration::from_millis(1) };
        let e = post_json(&url, &serde_json::json!({}), policy).unwrap_err();
        assert_eq!(e.attempts, 3);
        assert!(!e.to_string().contains("token"), "{e}");
    }
}
