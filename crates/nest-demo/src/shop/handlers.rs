//! The shop's request handlers, one per endpoint.
//!
//! Each one first waits a small pseudo-random latency (with
//! `tokio::time::sleep`, never blocking the thread) so that the demo looks
//! like a real service in latency histograms, then does its work. State is
//! only touched through `ShopState`, whose locks never span an `.await`.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use super::catalog::{Catalog, cents_to_units};
use super::respond::{
    Resp, bearer_token, cookie, empty, error, format_id, json, parse_id, query_param, read_json, with_body,
};
use super::state::ShopState;
use crate::rng;

/// Longest `/slow` wait.
const MAX_SLOW_MS: u64 = 10_000;
/// `/slow` wait when `ms` is not given.
const DEFAULT_SLOW_MS: u64 = 100;
/// Longest user name accepted by `/login`.
const MAX_USER_LEN: usize = 256;
/// Most units of an item one `/cart` call may add.
const MAX_QTY: u32 = 1000;

const INDEX_HTML: &[u8] = b"<!doctype html>
<html><head><title>nest demo shop</title></head><body>
<h1>nest demo shop</h1>
<p>A small JSON API to point load tests at.</p>
<ul>
<li>POST /login <code>{\"user\": \"...\", \"password\": \"...\"}</code> &rarr; token + session cookie</li>
<li>GET /whoami (session cookie)</li>
<li>GET /items?page=N&amp;q=text</li>
<li>GET /items/{id} (ids 1..=100; ids ending in 7 are discontinued: 404)</li>
<li>POST /cart <code>{\"item\": id, \"qty\": n}</code> (Authorization: Bearer token)</li>
<li>POST /checkout (Authorization: Bearer token)</li>
<li>GET /slow?ms=N, GET /status/{code}, GET /redirect</li>
</ul>
</body></html>
";

/// Waits a pseudo-random time between `lo_ms` and `hi_ms` milliseconds.
async fn latency(lo_ms: u64, hi_ms: u64) {
    let micros = rng::between(lo_ms * 1000, hi_ms * 1000);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

fn unauthorized() -> Resp {
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `GET /`: the welcome page.
pub(super) async fn index() -> Resp {
    latency(1, 1).await;
    with_body(StatusCode::OK, "text/html; charset=utf-8", Bytes::from_static(INDEX_HTML))
}

#[derive(Deserialize)]
struct LoginBody {
    user: String,
    /// Accepted and ignored: every password is right.
    #[serde(default)]
    #[allow(dead_code)]
    password: Option<String>,
}

/// `POST /login`: a bearer token in the body and a session cookie.
pub(super) async fn login(state: &ShopState, headers: &HeaderMap, body: Incoming) -> Resp {
    latency(5, 10).await;
    let login: LoginBody = match read_json(headers, body).await {
        Ok(login) => login,
        Err(response) => return response,
    };
    if login.user.is_empty() || login.user.len() > MAX_USER_LEN {
        return error(StatusCode::BAD_REQUEST, "user must be 1 to 256 bytes");
    }
    let ids = state.login(&login.user);
    let mut response = json(StatusCode::OK, &json!({ "token": format_id(ids.token), "user": login.user }));
    let cookie = format!("session={}; Path=/; HttpOnly", format_id(ids.session));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// `GET /whoami`: the user of the session cookie.
pub(super) async fn whoami(state: &ShopState, headers: &HeaderMap) -> Resp {
    latency(1, 2).await;
    let user = cookie(headers, "session").and_then(parse_id).and_then(|session| state.session_user(session));
    match user {
        Some(user) => json(StatusCode::OK, &json!({ "user": &*user })),
        None => error(StatusCode::UNAUTHORIZED, "not logged in"),
    }
}

/// `GET /items?page=N&q=text`: one page of available items.
pub(super) async fn items(catalog: &Catalog, query: Option<&str>) -> Resp {
    latency(2, 5).await;
    let page = match query_param(query, "page") {
        None => 1,
        Some(page) => match page.parse::<usize>() {
            Ok(page) if page >= 1 => page,
            _ => return error(StatusCode::BAD_REQUEST, "page must be a number from 1"),
        },
    };
    let search = query_param(query, "q").filter(|q| !q.is_empty()).map(|q| q.to_lowercase());
    json(StatusCode::OK, &catalog.page(page, search.as_deref()))
}

/// `GET /items/{id}`: one item, 404 if unknown or discontinued.
pub(super) async fn item(catalog: &Catalog, id: &str) -> Resp {
    latency(1, 3).await;
    let found = Some(id)
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|id| id.parse::<u32>().ok())
        .and_then(|id| catalog.get(id));
    match found {
        Some(item) => json(StatusCode::OK, &item.detail()),
        None => error(StatusCode::NOT_FOUND, "not found"),
    }
}

#[derive(Deserialize)]
struct CartBody {
    item: u32,
    #[serde(default = "one")]
    qty: u32,
}

fn one() -> u32 {
    1
}

/// `POST /cart`: adds to the token's cart; answers the units in the cart.
pub(super) async fn cart(state: &ShopState, catalog: &Catalog, headers: &HeaderMap, body: Incoming) -> Resp {
    latency(3, 6).await;
    let Some(token) = bearer_token(headers).filter(|t| state.token_user(*t).is_some()) else {
        return unauthorized();
    };
    let add: CartBody = match read_json(headers, body).await {
        Ok(add) => add,
        Err(response) => return response,
    };
    if add.qty == 0 || add.qty > MAX_QTY {
        return error(StatusCode::BAD_REQUEST, "qty must be 1 to 1000");
    }
    if catalog.get(add.item).is_none() {
        return error(StatusCode::NOT_FOUND, "no such item");
    }
    match state.add_to_cart(token, add.item, add.qty) {
        Some(units) => json(StatusCode::OK, &json!({ "items": units })),
        // Evicted while the body was being read.
        None => unauthorized(),
    }
}

/// `POST /checkout`: empties the token's cart into an order.
pub(super) async fn checkout(state: &ShopState, catalog: &Catalog, headers: &HeaderMap) -> Resp {
    latency(10, 25).await;
    let Some(lines) = bearer_token(headers).and_then(|t| state.take_cart(t)) else {
        return unauthorized();
    };
    if lines.is_empty() {
        return error(StatusCode::CONFLICT, "cart is empty");
    }
    let mut cents: u64 = 0;
    let mut units: u64 = 0;
    for (id, qty) in lines {
        let price = catalog.get(id).map_or(0, |item| item.price_cents);
        cents = cents.saturating_add(price.saturating_mul(u64::from(qty)));
        units += u64::from(qty);
    }
    let order = format!("{:016x}", state.order_id() as u64);
    json(StatusCode::OK, &json!({ "order": order, "total": cents_to_units(cents), "items": units }))
}

/// `GET /slow?ms=N`: waits N ms (default 100, at most 10,000).
pub(super) async fn slow(query: Option<&str>) -> Resp {
    let ms = match query_param(query, "ms") {
        None => DEFAULT_SLOW_MS,
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) => ms.min(MAX_SLOW_MS),
            Err(_) => return error(StatusCode::BAD_REQUEST, "ms must be a number"),
        },
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    json(StatusCode::OK, &json!({ "slept_ms": ms }))
}

/// `GET /status/{code}`: answers with that status (200..=599).
pub(super) fn status(code: &str) -> Resp {
    let status =
        code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)).and_then(|c| StatusCode::from_u16(c).ok());
    match status {
        // These must not have a body.
        Some(s @ (StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)) => empty(s),
        Some(s) => json(s, &json!({ "status": s.as_u16() })),
        None => error(StatusCode::BAD_REQUEST, "status must be 200 to 599"),
    }
}

/// `GET /redirect`: 302 to `/items`.
pub(super) fn redirect() -> Resp {
    let mut response = empty(StatusCode::FOUND);
    response.headers_mut().insert(LOCATION, HeaderValue::from_static("/items"));
    response
}
