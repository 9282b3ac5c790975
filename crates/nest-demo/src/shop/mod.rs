//! The shop mode: a small, realistic JSON API to aim load tests at.
//!
//! It has what example scripts need to look like real ones: a login that
//! hands out a bearer token and a session cookie, a paged and searchable item
//! list, item pages with a deterministic share of 404s, a cart and a checkout
//! that need the token, plus `/slow`, `/status/{code}` and `/redirect` for
//! exercising timeouts, status checks and redirects. This file routes a
//! request to its handler (in `handlers`) and counts it.

mod catalog;
mod handlers;
mod respond;
mod state;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::header::{ALLOW, HeaderValue};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::Service;

use crate::stats::{Counters, Route};
use catalog::Catalog;
use respond::{Resp, error};
use state::ShopState;

/// Everything the shop handlers share: state, catalogue, counters.
pub(crate) struct Shop {
    state: ShopState,
    catalog: Catalog,
    counters: Counters,
}

/// The per-connection hyper service of the shop mode (a cheap `Arc` clone).
#[derive(Clone)]
pub(crate) struct ShopService {
    shop: Arc<Shop>,
}

impl ShopService {
    /// A fresh shop (empty state) counting into `counters`.
    pub(crate) fn new(counters: Counters) -> Self {
        ShopService { shop: Arc::new(Shop { state: ShopState::new(), catalog: Catalog::new(), counters }) }
    }
}

impl Service<Request<Incoming>> for ShopService {
    type Response = Resp;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shop = Arc::clone(&self.shop);
        Box::pin(async move { Ok(shop.handle(req).await) })
    }
}

/// A matched path, with its path parameter if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Index,
    Login,
    Whoami,
    Items,
    Item(&'a str),
    Cart,
    Checkout,
    Slow,
    Status(&'a str),
    Redirect,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of a path, if any.
    fn parse(path: &'a str) -> Option<Self> {
        Some(match path {
            "/" => Endpoint::Index,
            "/login" => Endpoint::Login,
            "/whoami" => Endpoint::Whoami,
            "/items" => Endpoint::Items,
            "/cart" => Endpoint::Cart,
            "/checkout" => Endpoint::Checkout,
            "/slow" => Endpoint::Slow,
            "/redirect" => Endpoint::Redirect,
            _ => {
                if let Some(id) = path.strip_prefix("/items/").filter(|s| !s.contains('/')) {
                    Endpoint::Item(id)
                } else if let Some(code) = path.strip_prefix("/status/").filter(|s| !s.contains('/')) {
                    Endpoint::Status(code)
                } else {
                    return None;
                }
            }
        })
    }

    /// The one method the endpoint accepts.
    fn method(self) -> &'static str {
        match self {
            Endpoint::Login | Endpoint::Cart | Endpoint::Checkout => "POST",
            _ => "GET",
        }
    }

    /// The counter for the endpoint.
    fn route(self) -> Route {
        match self {
            Endpoint::Index => Route::Index,
            Endpoint::Login => Route::Login,
            Endpoint::Whoami => Route::Whoami,
            Endpoint::Items => Route::Items,
            Endpoint::Item(_) => Route::Item,
            Endpoint::Cart => Route::Cart,
            Endpoint::Checkout => Route::Checkout,
            Endpoint::Slow => Route::Slow,
            Endpoint::Status(_) => Route::Status,
            Endpoint::Redirect => Route::Redirect,
        }
    }
}

impl Shop {
    async fn handle(&self, req: Request<Incoming>) -> Resp {
        let (parts, body) = req.into_parts();
        let Some(endpoint) = Endpoint::parse(parts.uri.path()) else {
            self.counters.hit(Route::NotFound);
            return error(StatusCode::NOT_FOUND, "not found");
        };
        let allowed = endpoint.method();
        if parts.method.as_str() != allowed {
            self.counters.hit(Route::MethodNotAllowed);
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
            return response;
        }
        self.counters.hit(endpoint.route());

        let query = parts.uri.query();
        let headers = &parts.headers;
        match endpoint {
            Endpoint::Index => handlers::index().await,
            Endpoint::Login => handlers::login(&self.state, headers, body).await,
            Endpoint::Whoami => handlers::whoami(&self.state, headers).await,
            Endpoint::Items => handlers::items(&self.catalog, query).await,
            Endpoint::Item(id) => handlers::item(&self.catalog, id).await,
            Endpoint::Cart => handlers::cart(&self.state, &self.catalog, headers, body).await,
            Endpoint::Checkout => handlers::checkout(&self.state, &self.catalog, headers).await,
            Endpoint::Slow => handlers::slow(query).await,
            Endpoint::Status(code) => handlers::status(code),
            Endpoint::Redirect => handlers::redirect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        assert_eq!(Endpoint::parse("/"), Some(Endpoint::Index));
        assert_eq!(Endpoint::parse("/items"), Some(Endpoint::Items));
        assert_eq!(Endpoint::parse("/items/42"), Some(Endpoint::Item("42")));
        assert_eq!(Endpoint::parse("/items/"), Some(Endpoint::Item("")));
        assert_eq!(Endpoint::parse("/items/4/2"), None);
        assert_eq!(Endpoint::parse("/status/503"), Some(Endpoint::Status("503")));
        assert_eq!(Endpoint::parse("/nope"), None);
        assert_eq!(Endpoint::Cart.method(), "POST");
        assert_eq!(Endpoint::Item("1").route().label(), "GET /items/:id");
    }
}
