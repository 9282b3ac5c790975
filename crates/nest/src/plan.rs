//! The second stage: raw options into a validated run plan.
//!
//! Everything that can be wrong with the options, the scripts or the machine's limits is found here, before any
//! load is sent, and reported as a [`UsageError`] (exit code 2).

use std::fmt;
use std::time::Duration;

use nest_core::Plan;
use nest_rhai::Catalog;
use url::Url;

use crate::cli::RunArgs;

/// A problem with the user's input, found before any load: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Users of `--demo` unless told otherwise.
const DEMO_USERS: u64 = 20;
/// Run time of `--demo` unless told otherwise.
const DEMO_RUN_TIME: Duration = Duration::from_secs(15);

/// A checked run, ready to start.
pub struct RunPlan {
    /// The loaded tasksets.
    pub catalog: Catalog,
    /// The scheduler's plan.
    pub plan: Plan,
    /// The target; `None` until the demo target is started.
    pub host: Option<Url>,
    /// Warnings about this machine's limits.
    pub warnings: Vec<String>,
}

/// Checks the options and the scripts.
pub fn build(args: &RunArgs) -> Result<RunPlan, UsageError> {
    let catalog = Catalog::load(&args.taskset_dir).map_err(|errors| {
        let n = errors.0.len();
        let head = if n == 1 {
            "a taskset has an error".to_owned()
        } else {
            format!("{n} errors in tasksets")
        };
        UsageError(format!("{head}; nothing was run:\n{errors}"))
    })?;
    let host = match (&args.host, args.demo) {
        (Some(host), _) => Some(parse_host(host)?),
        (None, true) => None,
        (None, false) => {
            return Err(UsageError(
                "no target: give --host URL (e.g. --host http://127.0.0.1:8080), or --demo".into(),
            ));
        }
    };
    let users = args.users.unwrap_or(if args.demo { DEMO_USERS } else { 1 });
    let run_time = args
        .run_time
        .or(if args.demo { Some(DEMO_RUN_TIME) } else { None });
    let mut builder = Plan::builder(catalog.specs())
        .users(users)
        .spawn_rate(args.spawn_rate)
        .run_time(run_time)
        .stop_timeout(args.stop_timeout);
    if let Some(workers) = args.workers {
        builder = builder.workers(workers);
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    let plan = builder.build().map_err(|e| UsageError(e.to_string()))?;
    let limits = nest_core::limits::check(users).map_err(|e| UsageError(e.to_string()))?;
    Ok(RunPlan {
        catalog,
        plan,
        host,
        warnings: limits.warnings,
    })
}

/// Checks a target URL: http or https, with a host.
pub fn parse_host(text: &str) -> Result<Url, UsageError> {
    let url = Url::parse(text).map_err(|e| {
        UsageError(format!(
            "--host `{text}` is not a URL ({e}); e.g. http://127.0.0.1:8080"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(UsageError(format!(
            "--host `{text}` must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(parse_host("http://127.0.0.1:8080").is_ok());
        assert!(parse_host("https://example.com/base/").is_ok());
        assert!(
            parse_host("127.0.0.1:8080")
                .unwrap_err()
                .0
                .contains("must be an http")
        );
        assert!(parse_host("ftp://x").is_err());
        assert!(
            parse_host("not a url")
                .unwrap_err()
                .0
                .contains("is not a URL")
        );
    }
}
