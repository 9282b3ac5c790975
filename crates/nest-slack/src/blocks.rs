//! A run's result as a Slack Block Kit message: the verdict and thresholds, the figures, the top failures, and a
//! link to the HTML report.
//!
//! The same message goes to a slash command's `response_url` and to an incoming webhook (`--notify slack:URL`):
//! `text` is the notification's fallback, `blocks` the layout. It is a pure function of the report, so tests read
//! the numbers back from the JSON. Slack caps a section's text at 3000 characters; long lists are cut.

use serde_json::{Value, json};

use nest_report::model::Report;

/// Slack's limit on a section's text, kept under.
const SECTION_MAX: usize = 2900;
/// How many failures are listed.
const TOP_FAILURES: usize = 5;

/// What a message says besides the report.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// What ran: a preset's name, or the command.
    pub title: String,
    /// Who started it (a Slack user id, shown as a mention).
    pub user: Option<String>,
    /// The HTML report's address.
    pub link: Option<String>,
    /// For `nest scale`: Capacity@SLO and its change against the baseline.
    pub scale: Option<ScaleLine>,
    /// Post into the channel (a slash command's result), rather than only to the user.
    pub in_channel: bool,
}

/// The headline of a `nest scale` run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScaleLine {
    /// The headline: `scalability index: 412 req/s at p95 < 300ms`.
    pub headline: String,
    /// Capacity@SLO, requests per second.
    pub capacity_rps: Option<f64>,
    /// The median Capacity@SLO of the baseline, when there is one.
    pub baseline_rps: Option<f64>,
    /// The steps run.
    pub steps: usize,
}

impl ScaleLine {
    /// The change against the baseline, in words.
    pub fn change(&self) -> String {
        match (self.capacity_rps, self.baseline_rps) {
            (Some(now), Some(base)) if base > 0.0 => {
                format!("{:+.1}% against the baseline ({base:.0} req/s)", 100.0 * (now - base) / base)
            }
            _ => "no baseline yet (the history has no comparable run)".into(),
        }
    }
}

/// The verdict of a report: passed, failed, or completed when nothing judged it.
pub fn verdict(report: &Report) -> (&'static str, &'static str) {
    if report.thresholds.is_empty() {
        ("completed", ":white_circle:")
    } else if report.thresholds.iter().all(|v| v.passed) {
        ("passed", ":white_check_mark:")
    } else {
        ("failed", ":x:")
    }
}

/// The Block Kit message of a run.
pub fn run_message(report: &Report, context: &Context) -> Value {
    let (word, icon) = verdict(report);
    let t = &report.summary.totals;
    let l = &t.latency_ms;
    let text = format!(
        "{icon} {} {word}: {} requests, {} failures, {:.1} req/s, p95 {:.0} ms",
        context.title, t.requests, t.failures, t.rps, l.p95
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&format!("{} {word}", context.title), 150)},
    })];
    let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")});
    blocks.push(json!({"type": "section", "fields": [
        field("Requests", t.requests.to_string()),
        field("Failures", format!("{} ({:.2}%)", t.failures, percent(t.failures, t.requests))),
        field("Throughput", format!("{:.1} req/s", t.rps)),
        field("p50 / p95 / p99", format!("{:.0} / {:.0} / {:.0} ms", l.p50, l.p95, l.p99)),
        field("Duration", format!("{:.1} s", report.summary.duration_s)),
        field("Load", report.run.load.clone()),
    ]}));
    if let Some(scale) = &context.scale {
        blocks.push(section(&format!(
            "*Capacity@SLO*\n{}\n{} · {} steps",
            scale.headline,
            scale.change(),
            scale.steps
        )));
    }
    if !report.thresholds.is_empty() {
        blocks.push(section(&thresholds(report)));
    }
    if !report.summary.failures.is_empty() {
        blocks.push(section(&failures(report)));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": footer(report, context)}]}));
    let kind = if context.in_channel { "in_channel" } else { "ephemeral" };
    json!({"response_type": kind, "text": text, "blocks": blocks})
}

/// The Block Kit message of a `nest scale` run: Capacity@SLO, its change against the baseline, and the steps.
pub fn scale_message(doc: &nest_scale::doc::ScaleDoc, line: &ScaleLine, context: &Context) -> Value {
    let text = format!("{}: {} ({})", context.title, line.headline, line.change());
    let mut steps = String::from("*Steps*");
    for s in &doc.steps {
        let mark = if s.meets_slos { ":white_check_mark:" } else { ":x:" };
        steps.push_str(&format!(
            "\n{mark} {}: {:.1} req/s, p95 {:.0} ms, {:.2}% errors",
            s.load, s.throughput_rps, s.latency_ms.p95, s.error_pct
        ));
    }
    if let Some(stopped) = &doc.stopped {
        steps.push_str(&format!("\n_{}_", escape(stopped)));
    }
    let blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&context.title, 150)}}),
        section(&format!("*Capacity@SLO*\n{}\n{}", escape(&line.headline), line.change())),
        section(&steps),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": scale_footer(doc, context)}]}),
    ];
    let kind = if context.in_channel { "in_channel" } else { "ephemeral" };
    json!({"response_type": kind, "text": text, "blocks": blocks})
}

fn scale_footer(doc: &nest_scale::doc::ScaleDoc, context: &Context) -> String {
    let mut parts = Vec::new();
    if let Some(link) = &context.link {
        parts.push(format!("<{link}|scalability page>"));
    }
    parts.push(format!("target {}", escape(&doc.target)));
    if let Some(user) = &context.user {
        parts.push(format!("started by <@{user}>"));
    }
    parts.push(format!("nest {}", doc.nest_version));
    parts.join(" · ")
}

/// A plain message (an acknowledgement, a refusal).
pub fn plain(text: &str, in_channel: bool) -> Value {
    let kind = if in_channel { "in_channel" } else { "ephemeral" };
    json!({"response_type": kind, "text": text})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_MAX)}})
}

fn thresholds(report: &Report) -> String {
    let mut text = String::from("*Thresholds*");
    for v in &report.thresholds {
        let mark = if v.passed { ":white_check_mark:" } else { ":x:" };
        let name = if v.default_gate { "default gate".to_owned() } else { format!("`{}`", escape(&v.expr)) };
        text.push_str(&format!("\n{mark} {name}: {}", escape(&v.message)));
    }
    text
}

fn failures(report: &Report) -> String {
    let mut rows: Vec<_> = report.summary.failures.iter().collect();
    rows.sort_by_key(|f| std::cmp::Reverse(f.count));
    let mut text = String::from("*Top failures*");
    for f in rows.iter().take(TOP_FAILURES) {
        text.push_str(&format!("\n• {}× `{} {}`: {}", f.count, escape(&f.method), escape(&f.name), escape(&f.reason)));
    }
    if rows.len() > TOP_FAILURES {
        text.push_str(&format!("\n… and {} more kinds", rows.len() - TOP_FAILURES));
    }
    text
}

fn footer(report: &Report, context: &Context) -> String {
    let mut parts = Vec::new();
    if let Some(link) = &context.link {
        parts.push(format!("<{link}|HTML report>"));
    }
    parts.push(format!("target {}", escape(&report.run.host)));
    if let Some(user) = &context.user {
        parts.push(format!("started by <@{user}>"));
    }
    if let Some(reason) = &report.summary.stopped_in {
        parts.push(format!("stopped in {}", escape(reason)));
    }
    parts.push(format!("nest {}", report.run.nest_version));
    parts.join(" · ")
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

/// Slack's three control characters in text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_and_control_characters_escaped() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn the_scale_change_is_signed() {
        let line = ScaleLine { capacity_rps: Some(90.0), baseline_rps: Some(100.0), ..ScaleLine::default() };
        assert_eq!(line.change(), "-10.0% against the baseline (100 req/s)");
        assert!(ScaleLine::default().change().starts_with("no baseline"));
    }
}
