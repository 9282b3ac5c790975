//! Request counting, kept cheap enough for the hello benchmark.
//!
//! Every request bumps one relaxed atomic. The counters are striped: each OS
//! thread picks a stripe (a cache-line-aligned block holding one counter per
//! route) once, so worker threads of a multi-thread runtime do not fight over
//! a cache line. A snapshot sums the stripes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The routes the demo server counts, one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Hello,
    Index,
    Login,
    Whoami,
    Items,
    Item,
    Cart,
    Checkout,
    Slow,
    Status,
    Redirect,
    NotFound,
    MethodNotAllowed,
}

impl Route {
    /// Every route, in counter order (`route as usize` indexes this).
    pub(crate) const ALL: [Route; 13] = [
        Route::Hello,
        Route::Index,
        Route::Login,
        Route::Whoami,
        Route::Items,
        Route::Item,
        Route::Cart,
        Route::Checkout,
        Route::Slow,
        Route::Status,
        Route::Redirect,
        Route::NotFound,
        Route::MethodNotAllowed,
    ];

    /// The label used in [`DemoStats::by_route`].
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Route::Hello => "hello",
            Route::Index => "GET /",
            Route::Login => "POST /login",
            Route::Whoami => "GET /whoami",
            Route::Items => "GET /items",
            Route::Item => "GET /items/:id",
            Route::Cart => "POST /cart",
            Route::Checkout => "POST /checkout",
            Route::Slow => "GET /slow",
            Route::Status => "GET /status/:code",
            Route::Redirect => "GET /redirect",
            Route::NotFound => "(not found)",
            Route::MethodNotAllowed => "(method not allowed)",
        }
    }
}

const ROUTES: usize = Route::ALL.len();
const STRIPES: usize = 32;

/// One counter per route, alone on its cache lines.
#[repr(align(128))]
struct Stripe([AtomicU64; ROUTES]);

impl Stripe {
    const fn new() -> Self {
        Stripe([const { AtomicU64::new(0) }; ROUTES])
    }
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// Shared request counters of one server. Cloning shares the same counters.
///
/// [`DemoServer`](crate::DemoServer) owns one; pass one to
/// [`serve_with_counters`](crate::serve_with_counters) to read the counts of
/// a server running on your own runtime.
#[derive(Clone)]
pub struct Counters {
    stripes: Arc<[Stripe; STRIPES]>,
}

impl Counters {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Counters { stripes: Arc::new([const { Stripe::new() }; STRIPES]) }
    }

    /// Counts one request on `route`.
    #[inline]
    pub(crate) fn hit(&self, route: Route) {
        let stripe = STRIPE.with(|s| *s);
        self.stripes[stripe].0[route as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The requests counted so far. Routes never hit are left out.
    pub fn snapshot(&self) -> DemoStats {
        let mut stats = DemoStats::default();
        for route in Route::ALL {
            let n: u64 = self.stripes.iter().map(|s| s.0[route as usize].load(Ordering::Relaxed)).sum();
            if n > 0 {
                stats.total += n;
                stats.by_route.insert(route.label().to_owned(), n);
            }
        }
        stats
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new()
    }
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Counters").field(&self.snapshot()).finish()
    }
}

/// Requests served so far, counted when a request is routed (before its
/// response is sent, so a client that got its answer is already counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoStats {
    /// All requests.
    pub total: u64,
    /// Requests by route label: `"GET /items/:id"`, `"POST /login"`, ...,
    /// `"hello"` in hello mode, `"(not found)"` and `"(method not allowed)"`
    /// for requests that matched no route.
    pub by_route: BTreeMap<String, u64>,
}

impl DemoStats {
    /// The count for one route label, 0 if it was never hit.
    pub fn get(&self, label: &str) -> u64 {
        self.by_route.get(label).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_threads() {
        let counters = Counters::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.hit(Route::Hello);
                    }
                    counters.hit(Route::Item);
                });
            }
        });
        let stats = counters.snapshot();
        assert_eq!(stats.total, 4004);
        assert_eq!(stats.get("hello"), 4000);
        assert_eq!(stats.get("GET /items/:id"), 4);
        assert_eq!(stats.get("POST /login"), 0);
        assert_eq!(stats.by_route.len(), 2);
    }

    #[test]
    fn route_order_matches_discriminants() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i);
        }
    }
}
