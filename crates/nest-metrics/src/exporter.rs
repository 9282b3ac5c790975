//! The exporter as one object: bound before the run, fed from the run's snapshot channel, serving `/metrics` and
//! pushing remote writes while it runs, and finishing after the run with the final figures.
//!
//! The binary binds it first (so a bad address is a usage error before any load), starts it on the snapshot
//! channel of `nest run` or `nest coordinate` (or of a web UI's run), and awaits [`Running::finish`] once the run
//! is over: the last figures are pushed, and a scraper gets up to the linger time to read them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nest_core::snapshot::{RunPhase, Snapshots};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::remote::RemoteWrite;
use crate::series::{Families, Series, SeriesOptions};

/// How long [`Running::finish`] waits for the run's final snapshot, and for the server to close.
const SETTLE: Duration = Duration::from_secs(5);

/// What the exporter does.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// Serve `/metrics` here (port 0: any free port).
    pub listen: Option<SocketAddr>,
    /// A bearer token every scrape must send; required for a bind beyond loopback.
    pub token: Option<String>,
    /// Push to this remote-write receiver too.
    pub remote_write: Option<RemoteWrite>,
    /// How often to push during the run.
    pub push_every: Duration,
    /// After the run, how long to keep serving until a scrape has read the final figures.
    pub linger: Duration,
    /// How the series are built.
    pub series: SeriesOptions,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            listen: None,
            token: None,
            remote_write: None,
            push_every: Duration::from_secs(5),
            linger: Duration::ZERO,
            series: SeriesOptions::default(),
        }
    }
}

/// The state the feed writes and the server reads.
#[derive(Debug)]
pub struct Shared {
    pub(crate) token: Option<String>,
    current: Mutex<Arc<Families>>,
    finished: AtomicBool,
    served: Notify,
    served_final: AtomicBool,
}

impl Shared {
    /// The exposition now, and whether it holds the final figures.
    pub(crate) fn scrape(&self) -> (String, bool) {
        let families = self.families();
        let finished = self.finished.load(Ordering::SeqCst);
        (crate::text::encode(&families), finished)
    }

    pub(crate) fn final_served(&self) {
        self.served_final.store(true, Ordering::SeqCst);
        self.served.notify_waiters();
    }

    fn families(&self) -> Arc<Families> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// An exporter bound and not yet started.
#[derive(Debug)]
pub struct Exporter {
    config: ExporterConfig,
    listener: Option<std::net::TcpListener>,
}

impl Exporter {
    /// Checks the configuration and binds the listener, if any.
    pub fn bind(config: ExporterConfig) -> Result<Exporter, Error> {
        let listener = match config.listen {
            None => None,
            Some(addr) => {
                crate::serve::check_bind(addr, config.token.as_deref())?;
                let listener = std::net::TcpListener::bind(addr).map_err(|source| Error::Bind { addr, source })?;
                listener.set_nonblocking(true).map_err(|source| Error::Bind { addr, source })?;
                Some(listener)
            }
        };
        Ok(Exporter { config, listener })
    }

    /// Where `/metrics` is served, if it is.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts serving, pushing and following `snapshots` on the current tokio runtime; `warn` hears what goes wrong
    /// (a folded request name, a failed push) and never stops the run.
    pub fn start(self, snapshots: Snapshots, warn: impl Fn(&str) + Send + Sync + 'static) -> Running {
        let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(warn);
        let series = Series::new(self.config.series.clone());
        let shared = Arc::new(Shared {
            token: self.config.token.clone().filter(|t| !t.is_empty()),
            current: Mutex::new(Arc::new(Series::new(self.config.series.clone()).observe(&Default::default()).0)),
            finished: AtomicBool::new(false),
            served: Notify::new(),
            served_final: AtomicBool::new(false),
        });
        let (stop_serving, serving) = watch::channel(false);
        let (stop_pushing, pushing) = watch::channel(false);
        let server = self.listener.and_then(|listener| match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => Some(tokio::spawn(serve(listener, shared.clone(), serving))),
            Err(e) => {
                warn(&format!("metrics: cannot serve /metrics: {e}"));
                None
            }
        });
        let feed = tokio::spawn(follow(series, snapshots, shared.clone(), warn.clone()));
        let pusher = self.config.remote_write.clone().map(|remote| {
            tokio::spawn(push_periodically(remote, self.config.push_every, shared.clone(), warn.clone(), pushing))
        });
        Running { config: self.config, shared, feed, server, pusher, stop_serving, stop_pushing, warn }
    }
}

/// Serves `/metrics` until `stop` turns true.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let _ = axum::serve(listener, crate::serve::router(shared)).with_graceful_shutdown(shutdown).await;
}

/// Keeps the families of the newest snapshot; ends with the run's final snapshot or the channel.
async fn follow(
    mut series: Series,
    mut snapshots: Snapshots,
    shared: Arc<Shared>,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
) {
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        let (families, warning) = series.observe(&snapshot);
        *shared.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(families);
        if let Some(w) = warning {
            warn(&w);
        }
        if snapshot.phase == RunPhase::Drain {
            break;
        }
        if snapshots.changed().await.is_err() {
            // The sender is gone: its last value was the run's last word.
            let snapshot = snapshots.borrow().clone();
            let (families, _) = series.observe(&snapshot);
            *shared.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(families);
            break;
        }
    }
    shared.finished.store(true, Ordering::SeqCst);
}

async fn push_periodically(
    remote: RemoteWrite,
    every: Duration,
    shared: Arc<Shared>,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match remote.push(&shared.families(), 1).await {
            Ok(()) if failing => {
                failing = false;
                warn("metrics: remote write works again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                warn(&format!("metrics: {e} (the run goes on; retrying every {}s)", every.as_secs()));
            }
            Err(_) => {}
        }
    }
}

/// A started exporter.
pub struct Running {
    config: ExporterConfig,
    shared: Arc<Shared>,
    feed: JoinHandle<()>,
    server: Option<JoinHandle<()>>,
    pusher: Option<JoinHandle<()>>,
    stop_serving: watch::Sender<bool>,
    stop_pushing: watch::Sender<bool>,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Running {
    /// After the run: takes the final figures, pushes them (with retries), and keeps serving until a scrape has
    /// read them or the linger time is over. Every wait is bounded.
    pub async fn finish(mut self) {
        if tokio::time::timeout(SETTLE, &mut self.feed).await.is_err() {
            // No final snapshot came (a run that failed before its drain): what was seen is final.
            self.feed.abort();
            self.shared.finished.store(true, Ordering::SeqCst);
        }
        if let Some(pusher) = self.pusher.take() {
            let _ = self.stop_pushing.send(true);
            let _ = pusher.await;
        }
        if let Some(remote) = &self.config.remote_write
            && let Err(e) = remote.push(&self.shared.families(), 3).await
        {
            (self.warn)(&format!("metrics: the final figures were not pushed: {e}"));
        }
        if let Some(server) = self.server.take() {
            let served = self.shared.served.notified();
            if !self.shared.served_final.load(Ordering::SeqCst) && !self.config.linger.is_zero() {
                let _ = tokio::time::timeout(self.config.linger, served).await;
            }
            let _ = self.stop_serving.send(true);
            let mut server = server;
            if tokio::time::timeout(SETTLE, &mut server).await.is_err() {
                server.abort();
            }
        }
    }
}
