//! The command line's side of the settings table: a clap field's value turned into a setting.
//!
//! The clap fields themselves are generated in the `nest` binary from [`for_each_setting!`](crate::for_each_setting);
//! each entry names its conversion here. Only a flag that was given says something: an absent flag, an unset
//! switch and an empty list are `None`, so a lower layer (the environment, `nest.yaml`) can speak.

use nest_report::thresholds::Threshold;
use url::Url;

use crate::parse::{UsageError, parse_addrs, parse_duration, parse_host};
use crate::thresholds::ThresholdSpec;

/// Stages as given on the command line (one value: clap would split a `Vec`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<nest_core::Stage>);

/// Parses `30s:50,2m:50,30s:0` (the value parser of `--stages`).
pub fn parse_stages(text: &str) -> Result<Stages, String> {
    nest_core::curve::parse_stages(text, parse_duration).map(Stages)
}

/// A value flag, already parsed by clap.
pub fn value<T: Clone>(given: &Option<T>) -> Result<Option<T>, UsageError> {
    Ok(given.clone())
}

/// A switch that turns a setting on (`--insecure`).
pub fn flag(given: &bool) -> Result<Option<bool>, UsageError> {
    Ok(given.then_some(true))
}

/// A switch that turns a setting off (`--no-strict`).
pub fn no_flag(given: &bool) -> Result<Option<bool>, UsageError> {
    Ok(given.then_some(false))
}

/// A list flag (`--tags a,b`); empty when not given.
pub fn list(given: &[String]) -> Result<Option<Vec<String>>, UsageError> {
    Ok((!given.is_empty()).then(|| given.to_vec()))
}

/// `--host`: checked here rather than by clap, so that a bad one is worded as everywhere else.
pub fn host(given: &Option<String>) -> Result<Option<Url>, UsageError> {
    given.as_deref().map(parse_host).transpose()
}

/// `--source-addr`, repeated or `,`-separated.
pub fn addrs(given: &[String]) -> Result<Option<Vec<std::net::IpAddr>>, UsageError> {
    if given.is_empty() {
        return Ok(None);
    }
    parse_addrs(given.iter().map(String::as_str)).map(Some).map_err(|e| UsageError(format!("--source-addr: {e}")))
}

/// `--stages`.
pub fn stages(given: &Option<Stages>) -> Result<Option<Vec<nest_core::Stage>>, UsageError> {
    Ok(given.clone().map(|s| s.0))
}

/// `--threshold`, repeated: each parsed, a bad one named by the flag.
pub fn thresholds(given: &[String]) -> Result<Option<Vec<Threshold>>, UsageError> {
    if given.is_empty() {
        return Ok(None);
    }
    given.iter().map(|t| ThresholdSpec::Expr(t.clone()).parse("--threshold")).collect::<Result<_, _>>().map(Some)
}
