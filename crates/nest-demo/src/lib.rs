//! The built-in demo target of the `nest` load tester.
//!
//! `nest run --demo` needs something to point load at without asking the user
//! to deploy anything, and `nest demo-server` gives people (and the wrk
//! comparison benchmark) a known server to hit. This crate is that server: a
//! small, realistic JSON shop API ([`Mode::Shop`]) with login, cookies, bearer
//! tokens, a cart and small simulated latencies, and a bare [`Mode::Hello`]
//! mode that answers `hello\n` as fast as hyper allows. For load-model
//! benchmarks the hello mode can also delay every response by a fixed
//! [`DemoConfig::latency`] and stop answering altogether for one
//! [`DemoConfig::stall`] window, or answer as a system whose throughput
//! follows the Universal Scalability Law with known parameters
//! ([`DemoConfig::usl`]), the ground truth of `nest scale`.
//!
//! It is a test fixture, not a real web service: state lives in memory, tokens
//! are not cryptographically random, and it is meant for loopback only.
//!
//! ```no_run
//! use nest_demo::{DemoConfig, DemoServer, Mode};
//!
//! let server = DemoServer::start(DemoConfig { mode: Mode::Shop, ..DemoConfig::default() })?;
//! println!("demo shop listening on {}", server.url());
//! // ... point load at server.url() ...
//! let stats = server.stats();
//! println!("{} requests served", stats.total);
//! server.stop();
//! # Ok::<(), nest_demo::Error>(())
//! ```
#![deny(missing_docs)]

mod hello;
mod rng;
mod server;
mod shop;
mod stats;
mod timer;
mod usl;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use server::{DemoServer, SHUTDOWN_GRACE, serve, serve_with_counters};
pub use stats::{Counters, DemoStats};
pub use usl::UslModel;

/// Which API the demo server exposes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The JSON shop API (login, items, cart, checkout, ...), with small
    /// simulated latencies. The default.
    #[default]
    Shop,
    /// Every request gets `200 text/plain` `hello\n` immediately (or after
    /// [`DemoConfig::latency`] / the end of a [`DemoConfig::stall`]): the
    /// benchmark target.
    Hello,
}

impl Mode {
    /// The lowercase name of the mode (`"shop"` or `"hello"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Shop => "shop",
            Mode::Hello => "hello",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to start a [`DemoServer`].
#[derive(Clone, Debug, PartialEq)]
pub struct DemoConfig {
    /// Address to bind; the default `127.0.0.1:0` picks a free loopback port.
    pub addr: SocketAddr,
    /// Which API to serve.
    pub mode: Mode,
    /// Tokio worker threads for the server's own runtime (default 1; 0 is
    /// treated as 1). One thread uses a current-thread runtime.
    pub threads: usize,
    /// Hello mode only: every response is sent this long after its request
    /// arrived (to within tens of microseconds; a timer thread, no runtime
    /// thread is blocked). Default zero: answered at once. The shop mode
    /// ignores it.
    pub latency: Duration,
    /// Hello mode only: one window during which the server answers nothing
    /// (default none). The shop mode ignores it.
    pub stall: Option<Stall>,
    /// Hello mode only: answer as a system of known scalability ([`UslModel`]: contention σ, coherency κ,
    /// service time), instead of `latency` and `stall`. The shop mode ignores it.
    pub usl: Option<UslModel>,
    /// Let other processes bind the same port (`SO_REUSEPORT`, unix only; default off): the kernel then spreads
    /// new connections over all of them. One process holds only as many connections as its open-file limit, so a
    /// benchmark past that limit runs several servers on one port.
    pub reuse_port: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            mode: Mode::Shop,
            threads: 1,
            latency: Duration::ZERO,
            stall: None,
            usl: None,
            reuse_port: false,
        }
    }
}

/// A full stall of the hello-mode server: from `at` after the server starts
/// (timed from the call to [`DemoServer::start`]), for `length`, no response
/// is sent.
///
/// Connections are still accepted and requests still read (and counted), but
/// a request that arrives during the stall is answered only when it ends (plus
/// [`DemoConfig::latency`], as if the server took it up then), and a request
/// already in flight whose response falls due during the stall is answered at
/// its end. Nothing blocks a runtime thread: responses wait on a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// When the stall starts, counted from the server's start.
    pub at: Duration,
    /// How long it lasts.
    pub length: Duration,
}

/// Why a [`DemoServer`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound or set up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server's tokio runtime could not be built.
    #[error("cannot build the demo server runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server's OS thread could not be spawned.
    #[error("cannot spawn the demo server thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The server thread died before reporting that it was ready.
    #[error("the demo server thread exited during startup")]
    Startup,
}
