//! `GET /metrics`: the newest families as OpenMetrics text, on loopback unless a token guards it.
//!
//! Only that one route and method is served (axum answers 404 and 405 to anything else; a GET has no body to cap).
//! A bind beyond loopback is refused unless a bearer token is configured, which every scrape must then send
//! (Prometheus: `authorization: { credentials_file: ... }`); the token is compared in constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq as _;

use crate::Error;
use crate::exporter::Shared;

/// Checks the bind rule: loopback, or a token.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), Error> {
    if addr.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(Error::NeedsToken { addr })
    }
}

/// The service.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(token) = &shared.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| bool::from(g.ct_eq(token.as_bytes()))) {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a bearer token is required\n")
                .into_response();
        }
    }
    let (body, finished) = shared.scrape();
    let response = ([(header::CONTENT_TYPE, crate::text::CONTENT_TYPE)], body).into_response();
    if finished {
        shared.final_served();
    }
    response
}
