//! The web UI of `nest run --web` and `nest coordinate --web`: one page, served from the binary, to set a run up,
//! start it, watch it and steer it.
//!
//! A [`WebUi`] is an HTTP server (axum) on its own thread and runtime, so that it outlives the run it shows and
//! never shares the runner's loop. The caller (the `nest` binary) drives it through three steps:
//!
//! 1. [`WebUi::start`] binds the address (refused when it is not loopback and no [`Credentials`] are given) and
//!    serves the page with the [`Setup`]: the mix with editable weights, the load's numbers, the host, read-only.
//! 2. [`WebUi::next_start`] waits for the page's Start button (a [`StartOrder`]); the caller builds the plan and
//!    [accepts](StartOrder::accept) or [refuses](StartOrder::refuse) it. With `--autostart` this step is skipped.
//! 3. [`WebUi::running`] hands over the run's [`RunHandle`](nest_core::RunHandle) and snapshot channel: the page
//!    then follows the run over Server-Sent Events and its controls reach the handle (any [`Steer`]: a
//!    coordinator's, with [`WebUi::coordinating`], relays them to every segment). [`WebUi::finished`] keeps
//!    the final report on the page and for download.
//!
//! Safety lives in [`guard`]: loopback by default, Basic authentication otherwise, a per-process token and an
//! Origin check on every control request, and capped request bodies.
//!
//! ```
//! use nest_web::{LoadSetup, Setup, WebError, WebUi};
//!
//! let setup = || Setup {
//!     mix: Vec::new(),
//!     load: LoadSetup::Closed { users: 10, spawn_rate: Some(2.0) },
//!     host: "http://127.0.0.1:8080".into(),
//!     run_time_s: Some(60.0),
//!     iterations: None,
//! };
//! // Any address but loopback needs credentials.
//! let refused = WebUi::start("0.0.0.0:8089".parse().unwrap(), None, setup());
//! assert!(matches!(refused, Err(WebError::Unprotected { .. })));
//! // On loopback (port 0: a free one), the page is served until the `WebUi` is dropped.
//! let web = WebUi::start("127.0.0.1:0".parse().unwrap(), None, setup()).unwrap();
//! assert!(web.url().starts_with("http://127.0.0.1:"));
//! ```

#![deny(missing_docs)]

pub mod guard;
mod live;
mod routes;
mod seconds;
pub mod setup;
pub mod steer;
pub mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

pub use crate::guard::Credentials;
pub use crate::live::LiveContext;
pub use crate::setup::{LoadSetup, Setup, StartOrder, StartRequest};
pub use crate::steer::Steer;
pub use crate::view::Segments;

use crate::live::Shared;

/// What can go wrong when starting the web UI.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A non-loopback address without credentials: anyone on the network could drive load.
    #[error(
        "--web {addr} is not a loopback address: anyone who can reach it could start and steer load, so nest needs \
         credentials for it (NEST_WEB_AUTH=user:pass, or --web-auth-file FILE), or bind to 127.0.0.1"
    )]
    Unprotected {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The credentials are not `user:pass`.
    #[error("web credentials: {0}")]
    Credentials(String),
    /// The server's thread or runtime could not start.
    #[error("could not start the web UI: {0}")]
    Runtime(std::io::Error),
}

/// The web UI's server; it stops when dropped.
pub struct WebUi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    starts: Mutex<mpsc::Receiver<StartOrder>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebUi {
    /// Binds `addr` and serves the page with `setup` (refused before anything when `addr` is not loopback and
    /// `auth` is `None`, see [`guard::check_bind`]).
    pub fn start(addr: SocketAddr, auth: Option<Credentials>, setup: Setup) -> Result<WebUi, WebError> {
        guard::check_bind(addr, auth.as_ref())?;
        let listener = std::net::TcpListener::bind(addr).map_err(|source| WebError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(WebError::Runtime)?;
        let bound = listener.local_addr().map_err(WebError::Runtime)?;
        let (start_tx, starts) = mpsc::channel(1);
        let shared = Arc::new(Shared::new(guard::Guard::new(auth, bound), setup, start_tx));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nest-web")
            .enable_all()
            .build()
            .map_err(WebError::Runtime)?;
        let handle = runtime.handle().clone();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(WebError::Runtime)?
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = routes::router(shared.clone());
        let thread = std::thread::Builder::new()
            .name("nest-web".into())
            .spawn(move || {
                // Not a graceful shutdown: the pages' event streams never end by themselves.
                runtime.block_on(async move {
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_background();
            })
            .map_err(WebError::Runtime)?;
        Ok(WebUi {
            shared,
            addr: bound,
            runtime: handle,
            starts: Mutex::new(starts),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, for people: `http://127.0.0.1:8089/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Blocks until the page's Start button sends a valid order (`None` once the server is gone). Not to be called
    /// from inside a tokio runtime.
    pub fn next_start(&self) -> Option<StartOrder> {
        self.starts.lock().unwrap_or_else(PoisonError::into_inner).blocking_recv()
    }

    /// The run started: the page follows `snapshots` and its controls reach `steer` (the run's
    /// [`RunHandle`](nest_core::RunHandle)); the users or rate controls show unless the [`Setup`]'s load is
    /// [`LoadSetup::Fixed`] (stages or a shape). Call it before the runner publishes (it subscribes at once, so no
    /// snapshot is missed).
    pub fn running(&self, steer: impl Steer + 'static, snapshots: nest_core::Snapshots, context: LiveContext) {
        let steerable = !matches!(self.shared.setup.load, LoadSetup::Fixed { .. });
        let controls = live::Controls { steer: std::sync::Arc::new(steer), steerable };
        self.shared.running(&self.runtime, controls, snapshots, context);
    }

    /// A coordinator's run started: the page follows its merged `snapshots`, and its controls reach `steer`, which
    /// relays them to every segment. The users or rate control shows once the merged snapshots carry a target
    /// (the coordinator learns the model from its segments); a change the segments' plan refuses says so.
    pub fn coordinating(&self, steer: impl Steer + 'static, snapshots: nest_core::Snapshots, context: LiveContext) {
        let controls = live::Controls { steer: std::sync::Arc::new(steer), steerable: true };
        self.shared.running(&self.runtime, controls, snapshots, context);
    }

    /// Whether the page's Stop button stopped the run (a run stopped otherwise, by a signal, may end the process).
    pub fn stopped_from_page(&self) -> bool {
        self.shared.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The run is over: its final report stays on the page and is what the downloads give.
    pub fn finished(&self, report: nest_report::model::Report) {
        self.shared.finished(report);
    }

    /// A coordinator's segments, for the page's segments tab: the newest table replaces the last.
    pub fn set_segments(&self, segments: Segments) {
        self.shared.set_segments(segments);
    }
}

impl Drop for WebUi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
