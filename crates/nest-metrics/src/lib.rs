//! nest's Prometheus metrics: the series of a running test, read from its live snapshots, served at `/metrics`
//! and pushed by remote write.
//!
//! The runner publishes cumulative [`nest_core::Snapshot`]s on a watch channel; this crate follows one, turns it
//! into Prometheus families ([`series`]) whose counters never go down (even over a reset of the statistics) and
//! whose request names are capped, and exposes them in the OpenMetrics text format through the official
//! `prometheus-client` crate ([`text`]), on an axum service ([`serve`]) and as remote-write pushes ([`remote`]).
//! The user guide is `docs/metrics.md`.
//!
//! ```
//! use nest_metrics::{Exporter, ExporterConfig};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let config = ExporterConfig { listen: Some("127.0.0.1:0".parse().unwrap()), ..ExporterConfig::default() };
//! let exporter = Exporter::bind(config).unwrap();
//! assert!(exporter.local_addr().is_some());
//! let (publish, snapshots) = nest_core::snapshot::channel();
//! let running = exporter.start(snapshots, |warning| eprintln!("{warning}"));
//! drop(publish); // the run is over
//! running.finish().await;
//! # });
//! ```

#![deny(missing_docs)]

use std::net::SocketAddr;

pub mod buckets;
mod exporter;
pub mod monotonic;
pub mod remote;
pub mod series;
pub mod serve;
pub mod text;

pub use exporter::{Exporter, ExporterConfig, Running};
pub use remote::{Auth, RemoteWrite};
pub use series::{DEFAULT_NAME_CAP, OTHER, Series, SeriesOptions};

/// Why the exporter cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address cannot be listened on.
    #[error("--prometheus {addr}: cannot listen: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A bind beyond loopback without a token.
    #[error(
        "--prometheus {addr} is not a loopback address: set NEST_PROMETHEUS_TOKEN to a secret that scrapers must \
         send as a bearer token, or listen on 127.0.0.1"
    )]
    NeedsToken {
        /// The address.
        addr: SocketAddr,
    },
    /// The remote-write URL cannot be used.
    #[error("--prometheus-remote-write {url}: {reason}")]
    RemoteWriteUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}
