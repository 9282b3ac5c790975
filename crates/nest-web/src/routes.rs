//! The HTTP routes: the page and its assets, the event stream, the downloads and the control POSTs.
//!
//! Every route passes [`Guard::admit`](crate::guard) (credentials or a loopback Host); the POSTs also pass the
//! token and Origin check, and their bodies are capped. The page and its assets are compiled into the binary.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};

use nest_report::model::Report;
use serde::Deserialize;

use crate::live::{Refused, Shared};
use crate::setup::StartRequest;

/// The most a control request's body may hold: a form of weights and numbers.
const BODY_LIMIT: usize = 16 * 1024;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const UPLOT_JS: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uplot/uPlot.min.css");

type Shared_ = State<Arc<Shared>>;

/// The whole application.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let control = Router::new()
        .route("/api/start", post(start))
        .route("/api/stop", post(stop))
        .route("/api/users", post(users))
        .route("/api/rate", post(rate))
        .route("/api/reset", post(reset))
        .route_layer(middleware::from_fn_with_state(shared.clone(), control_guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/api/events", get(events))
        .route("/api/state", get(state))
        .route("/api/report.json", get(report_json))
        .route("/api/report.html", get(report_html))
        .route("/api/report.xml", get(report_junit))
        .route("/api/report.csv", get(report_csv))
        .merge(control)
        .layer(middleware::from_fn_with_state(shared.clone(), admit))
        .with_state(shared)
}

/// Credentials, or a loopback Host, on every request.
async fn admit(State(shared): Shared_, request: Request, next: Next) -> Response {
    match shared.guard.admit(request.headers()) {
        Ok(()) => next.run(request).await,
        Err((StatusCode::UNAUTHORIZED, why)) => {
            let mut response = (StatusCode::UNAUTHORIZED, why).into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"nest\""));
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The token and Origin, on every control request.
async fn control_guard(State(shared): Shared_, request: Request, next: Next) -> Response {
    match shared.guard.control(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// The page, with this process's token.
async fn index(State(shared): Shared_) -> Response {
    let page = INDEX.replace("__NEST_TOKEN__", shared.guard.token());
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    // Another site may not frame the page (clickjacking the Start button).
    response.headers_mut().insert("x-frame-options", HeaderValue::from_static("DENY"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "uPlot.iife.min.js" => ("text/javascript; charset=utf-8", UPLOT_JS),
        "uPlot.min.css" => ("text/css; charset=utf-8", UPLOT_CSS),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// The page's one stream: every chart point so far (`history`), then a `view` at each change.
async fn events(State(shared): Shared_) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let history = Event::default().event("history").data(shared.history());
    let mut views = shared.views();
    views.mark_changed();
    let updates = stream::unfold(views, |mut views| async move {
        views.changed().await.ok()?;
        let json = views.borrow_and_update().clone();
        Some((Ok(Event::default().event("view").data(json.as_str())), views))
    });
    let first = stream::iter([Ok(history)]);
    Sse::new(futures_util::StreamExt::chain(first, updates))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The newest view, as JSON (what the event stream sends).
async fn state(State(shared): Shared_) -> Response {
    let json = shared.views().borrow().clone();
    ([(header::CONTENT_TYPE, "application/json")], json.to_string()).into_response()
}

async fn start(State(shared): Shared_, body: axum::body::Bytes) -> Response {
    let request: StartRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("the start form is not valid: {e}")).into_response(),
    };
    answer(shared.start(request).await)
}

async fn stop(State(shared): Shared_) -> Response {
    answer(shared.stop())
}

/// A change of users (closed model).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersForm {
    users: Option<u64>,
    spawn_rate: Option<f64>,
}

/// A change of rate (open model).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateForm {
    rate: Option<f64>,
}

/// The body of a control request as `T`, or what is wrong with it (a 400).
fn form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("the form is not valid: {e}"))
}

async fn users(State(shared): Shared_, body: axum::body::Bytes) -> Response {
    let form: UsersForm = match form(&body) {
        Ok(form) => form,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Some(users) = form.users else {
        return (StatusCode::BAD_REQUEST, "give the number of users").into_response();
    };
    answer(shared.steer(|handle| handle.set_users(users, form.spawn_rate)))
}

async fn rate(State(shared): Shared_, body: axum::body::Bytes) -> Response {
    let form: RateForm = match form(&body) {
        Ok(form) => form,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Some(rate) = form.rate else {
        return (StatusCode::BAD_REQUEST, "give the rate, tasks per second").into_response();
    };
    answer(shared.steer(|handle| handle.set_rate(rate)))
}

async fn reset(State(shared): Shared_) -> Response {
    answer(shared.steer(|steer| steer.reset_stats()))
}

/// 204, or the refusal's status and message.
fn answer(result: Result<(), Refused>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => refused_response(refused),
    }
}

fn refused_response(refused: Refused) -> Response {
    match refused {
        Refused::Phase(why) => (StatusCode::CONFLICT, why).into_response(),
        Refused::Invalid(why) => (StatusCode::BAD_REQUEST, why).into_response(),
    }
}

/// A report download: `file` names it, `kind` is its content type.
fn download(shared: &Shared, kind: &'static str, file: &str, render: impl FnOnce(&Report) -> Vec<u8>) -> Response {
    match shared.report() {
        Ok(report) => {
            let disposition = format!("attachment; filename=\"{file}\"");
            ([(header::CONTENT_TYPE, kind.to_owned()), (header::CONTENT_DISPOSITION, disposition)], render(&report))
                .into_response()
        }
        Err(refused) => refused_response(refused),
    }
}

async fn report_json(State(shared): Shared_) -> Response {
    download(&shared, "application/json", "nest-report.json", |r| serde_json::to_vec_pretty(r).unwrap_or_default())
}

async fn report_html(State(shared): Shared_) -> Response {
    download(&shared, "text/html; charset=utf-8", "nest-report.html", |r| {
        nest_report::render::html::render(r).into_bytes()
    })
}

async fn report_junit(State(shared): Shared_) -> Response {
    download(&shared, "application/xml", "nest-junit.xml", |r| nest_report::render::junit::render(r).into_bytes())
}

/// One of the CSV files: `?file=stats` (the default), `stats_history`, `failures`, `exceptions` or `checks`.
async fn report_csv(State(shared): Shared_, uri: Uri) -> Response {
    let files = nest_report::render::csv::FILES;
    let wanted = uri.query().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("file=")).unwrap_or("stats");
    let Some(i) = files.iter().position(|f| f.trim_start_matches('_').trim_end_matches(".csv") == wanted) else {
        let names: Vec<_> = files.iter().map(|f| f.trim_start_matches('_').trim_end_matches(".csv")).collect();
        return (StatusCode::NOT_FOUND, format!("no CSV file `{wanted}`: one of {}", names.join(", "))).into_response();
    };
    let name = format!("nest{}", files[i]);
    download(&shared, "text/csv; charset=utf-8", &name, |r| {
        nest_report::render::csv::render(r)
            .ok()
            .and_then(|mut all| (i < all.len()).then(|| all.swap_remove(i)))
            .unwrap_or_default()
    })
}
