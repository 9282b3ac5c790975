//! `--prometheus`, `--prometheus-remote-write`: the exporter's settings and secrets, bound before the load.
//!
//! The exporter itself is `nest-metrics`; here the binary reads its secrets from the environment (never from the
//! command line), binds it so that a bad address is a usage error before anything is sent, and starts it on a
//! run's snapshot channel with the run's messages as its warnings.

use std::sync::{Arc, Mutex, PoisonError};

use nest_config::parse::UsageError;
use nest_config::plan::Metrics;
use nest_core::{Snapshots, TasksetSpec};
use nest_metrics::{Auth, Exporter, ExporterConfig, RemoteWrite, Running, SeriesOptions};
use nest_report::thresholds::Threshold;

use crate::live::Display;

/// A non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The remote write's credentials: a bearer token, or a user and password.
fn remote_auth() -> Result<Option<Auth>, UsageError> {
    let token = env("NEST_PROMETHEUS_REMOTE_WRITE_TOKEN");
    let user = env("NEST_PROMETHEUS_REMOTE_WRITE_USER");
    let password = env("NEST_PROMETHEUS_REMOTE_WRITE_PASSWORD");
    match (token, user, password) {
        (Some(_), Some(_), _) => Err(UsageError(
            "NEST_PROMETHEUS_REMOTE_WRITE_TOKEN and NEST_PROMETHEUS_REMOTE_WRITE_USER are both set: keep one".into(),
        )),
        (Some(token), None, _) => Ok(Some(Auth::Bearer(token))),
        (None, Some(user), Some(password)) => Ok(Some(Auth::Basic(user, password))),
        (None, Some(_), None) => Err(UsageError(
            "NEST_PROMETHEUS_REMOTE_WRITE_USER is set without NEST_PROMETHEUS_REMOTE_WRITE_PASSWORD".into(),
        )),
        (None, None, _) => Ok(None),
    }
}

/// The exporter of `metrics`, bound, or `None` when no metrics are asked for. `say` hears where they are served.
pub fn bind(
    metrics: &Metrics,
    tasksets: &[TasksetSpec],
    thresholds: &[Threshold],
    say: impl Fn(&str),
) -> Result<Option<Exporter>, UsageError> {
    if metrics.listen.is_none() && metrics.remote_write.is_none() {
        return Ok(None);
    }
    let remote_write = match &metrics.remote_write {
        Some(url) => Some(RemoteWrite::new(url, remote_auth()?).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let series = SeriesOptions { tasksets: tasksets.to_vec(), thresholds: thresholds.to_vec(), ..Default::default() };
    let config = ExporterConfig {
        listen: metrics.listen,
        token: env("NEST_PROMETHEUS_TOKEN"),
        remote_write,
        linger: metrics.linger,
        series,
        ..ExporterConfig::default()
    };
    let exporter = Exporter::bind(config).map_err(|e| UsageError(e.to_string()))?;
    if let Some(addr) = exporter.local_addr() {
        say(&format!("metrics on http://{addr}/metrics"));
    }
    Ok(Some(exporter))
}

/// Starts `exporter` on `snapshots`; its warnings go through the live view.
pub fn start(exporter: Exporter, snapshots: Snapshots, display: Arc<Mutex<Display>>) -> Running {
    exporter.start(snapshots, move |text| {
        display.lock().unwrap_or_else(PoisonError::into_inner).message(&format!("warning: {text}"));
    })
}
