//! `nest slack serve`: the HTTP service Slack's slash commands are sent to, and the reports folder.
//!
//! `POST /slack/commands` is verified first ([`Verifier`]: signature, timestamp, replay, size, content type); a
//! refusal answers a bare 401 or 400 and logs its reason here, and nothing is parsed or run. A verified command is
//! then checked (who may start load, the `response_url`, the preset and its overrides) and answered at once, well
//! within Slack's 3 seconds; a run goes on in the background ([`Jobs`]) and its result is posted to the
//! `response_url`. With a reports folder, `GET /reports/NAME` serves the HTML and JSON files nest wrote there, by
//! plain name only: no folders, no links, no other files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::blocks::plain;
use crate::command::{self, Command, Presets};
use crate::jobs::{Job, Jobs, Kind, log};
use crate::verify::{MAX_BODY, Signed, Verifier};

/// Who may start or stop load, and where results may be posted.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Slack user ids or names that may start and stop load (empty: anyone in the workspace).
    pub allowed_users: Vec<String>,
    /// Channel ids or names load may be started from (empty: any).
    pub allowed_channels: Vec<String>,
    /// The hosts a `response_url` may point at (Slack's `hooks.slack.com`). It must be https, except on a
    /// loopback address (a test's fake Slack).
    pub response_url_hosts: Vec<String>,
}

impl Access {
    /// Whether the command's user and channel may start or stop load.
    fn may_load(&self, form: &Form) -> bool {
        let listed = |list: &[String], id: &str, name: &str| {
            list.is_empty() || list.iter().any(|entry| entry == id || (!name.is_empty() && entry == name))
        };
        listed(&self.allowed_users, &form.user_id, &form.user_name)
            && listed(&self.allowed_channels, &form.channel_id, &form.channel_name)
    }

    /// The command's `response_url`, when it may be posted to.
    fn response_url(&self, text: &str) -> Option<url::Url> {
        let url = url::Url::parse(text).ok()?;
        let host = url.host_str()?;
        if !self.response_url_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return None;
        }
        let loopback = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        (url.scheme() == "https" || (loopback && url.scheme() == "http")).then_some(url)
    }
}

/// What `nest slack serve` serves.
pub struct Service {
    /// The request checker.
    pub verifier: Verifier,
    /// The presets a command may name.
    pub presets: Presets,
    /// Who may start load; where results go.
    pub access: Access,
    /// The one job at a time.
    pub jobs: Jobs,
    /// The folder `GET /reports/NAME` serves, when `slack.report_base_url` is set.
    pub reports: Option<PathBuf>,
}

/// The fields of a slash command that nest reads.
#[derive(Debug, Default)]
struct Form {
    text: String,
    user_id: String,
    user_name: String,
    channel_id: String,
    channel_name: String,
    response_url: String,
}

impl Form {
    fn parse(body: &[u8]) -> Form {
        let mut form = Form::default();
        for (key, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "text" => form.text = value,
                "user_id" => form.user_id = value,
                "user_name" => form.user_name = value,
                "channel_id" => form.channel_id = value,
                "channel_name" => form.channel_name = value,
                "response_url" => form.response_url = value,
                _ => {}
            }
        }
        form
    }
}

/// The routes.
pub fn router(service: Arc<Service>) -> Router {
    let mut router = Router::new().route("/slack/commands", post(slash_command));
    if service.reports.is_some() {
        router = router.route("/reports/{name}", get(report_file));
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY)).with_state(service)
}

/// Serves `router(service)` on `listener` until `shutdown` resolves, then stops the current job (its result is
/// still posted) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = service.jobs.clone();
    let app = router(service).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    tokio::task::spawn_blocking(move || jobs.shutdown()).await.map_err(std::io::Error::other)
}

async fn slash_command(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Read at most one byte past the cap: a larger body is refused by the verifier, like every other failure.
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY + 1).await {
        Ok(body) => body,
        Err(_) => {
            log(&format!("refused a request from {peer}: {}", crate::verify::Rejection::TooLarge));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = Signed {
        timestamp: headers.get("x-slack-request-timestamp").and_then(|v| v.to_str().ok()),
        signature: headers.get("x-slack-signature").and_then(|v| v.to_str().ok()),
        content_type: text(header::CONTENT_TYPE),
    };
    if let Err(rejection) = service.verifier.verify(signed, &body) {
        log(&format!("refused a request from {peer}: {rejection}"));
        return StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST).into_response();
    }
    let form = Form::parse(&body);
    let reply = match command::parse(&form.text, &service.presets) {
        Err(refusal) => plain(&refusal, false),
        Ok(Command::Help) => plain(&command::help(&service.presets), false),
        Ok(Command::Status) => plain(&service.jobs.status(), false),
        Ok(command) if !service.access.may_load(&form) => {
            log(&format!("refused {command:?} from user {} in channel {}", form.user_id, form.channel_id));
            plain("you may not start or stop load from here (`slack.allowed_users`, `slack.allowed_channels`)", false)
        }
        Ok(Command::Stop) => plain(&service.jobs.stop(), true),
        Ok(Command::Run { preset, overrides }) => start(&service, &form, Kind::Run, preset, overrides),
        Ok(Command::Scale { preset }) => start(&service, &form, Kind::Scale, preset, Default::default()),
    };
    axum::Json(reply).into_response()
}

fn start(
    service: &Service,
    form: &Form,
    kind: Kind,
    preset: String,
    overrides: command::Overrides,
) -> serde_json::Value {
    let Some(response_url) = service.access.response_url(&form.response_url) else {
        log(&format!(
            "refused a command whose response_url is not allowed: {}",
            crate::notify::redact_str(&form.response_url)
        ));
        return plain("this command's response_url is not one nest may post to (`slack.response_url_hosts`)", false);
    };
    let job = Job { kind, preset, overrides, user: form.user_id.clone(), response_url };
    match service.jobs.start(job) {
        Ok(started) => plain(&started, true),
        Err(refusal) => plain(&refusal, false),
    }
}

/// `GET /reports/NAME`: a file nest wrote into the reports folder, by its plain name.
async fn report_file(State(service): State<Arc<Service>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(dir) = &service.reports else { return StatusCode::NOT_FOUND.into_response() };
    let Some(kind) = served_type(&name) else { return StatusCode::NOT_FOUND.into_response() };
    let path = dir.join(&name);
    // A link, a folder or a device is not a report nest wrote.
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_file() => {}
        _ => return StatusCode::NOT_FOUND.into_response(),
    }
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, kind), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], bytes).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The content type of a report file name, or `None` for any other name: letters, digits, `-`, `_` and one `.`
/// before `html` or `json`, nothing else (no `/`, no `..`, no hidden file).
pub fn served_type(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    let plain = !stem.is_empty()
        && !stem.starts_with(['.', '-'])
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !stem.contains("..");
    match ext {
        "html" if plain => Some("text/html; charset=utf-8"),
        "json" if plain => Some("application/json"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_report_names_are_served() {
        assert_eq!(served_type("20261201T213000Z-smoke.html"), Some("text/html; charset=utf-8"));
        assert_eq!(served_type("a.scale.json"), Some("application/json"));
        for bad in
            ["../etc/passwd", "..html", ".hidden.html", "a/b.html", "a.log", "a..b.html", "a%2f.html", "a.html/", ""]
        {
            assert_eq!(served_type(bad), None, "{bad}");
        }
    }

    #[test]
    fn response_urls_must_be_slack_over_https_or_a_loopback_fake() {
        let access =
            Access { response_url_hosts: vec!["hooks.slack.com".into(), "127.0.0.1".into()], ..Access::default() };
        assert!(access.response_url("https://hooks.slack.com/commands/T/1/x").is_some());
        assert!(access.response_url("http://hooks.slack.com/commands/T/1/x").is_none());
        assert!(access.response_url("http://127.0.0.1:9/r").is_some());
        assert!(access.response_url("https://evil.example/r").is_none());
        assert!(access.response_url("https://hooks.slack.com.evil.example/r").is_none());
        let only_slack = Access { response_url_hosts: vec!["hooks.slack.com".into()], ..Access::default() };
        assert!(only_slack.response_url("http://127.0.0.1:9/r").is_none());
    }

    #[test]
    fn allowed_users_and_channels_match_ids_or_names() {
        let access = Access { allowed_users: vec!["U1".into(), "alice".into()], ..Access::default() };
        let form = |id: &str, name: &str| Form { user_id: id.into(), user_name: name.into(), ..Form::default() };
        assert!(access.may_load(&form("U1", "x")));
        assert!(access.may_load(&form("U9", "alice")));
        assert!(!access.may_load(&form("U9", "bob")));
        assert!(Access::default().may_load(&form("U9", "bob")));
    }
}
