//! Parsing one `NEST_*` variable's text into a setting's type: the environment's side of the settings table.
//!
//! The environment holds only text, so each setting's type says how its variable is read (`true`/`yes`/`1`,
//! `30s`, `16MiB`, a `,`- or `;`-separated list); the error is worded for the person who set the variable.

use std::path::PathBuf;
use std::time::Duration;

use nest_report::thresholds::Threshold;
use url::Url;

use crate::parse::{ByteSize, parse_addrs, parse_duration, parse_host};
use crate::thresholds::ThresholdSpec;

/// Parsing one environment variable's value.
pub trait FromEnv: Sized {
    /// The value of `value`, or what is wrong with it.
    fn from_env(value: &str) -> Result<Self, String>;
}

impl FromEnv for Url {
    fn from_env(value: &str) -> Result<Self, String> {
        parse_host(value).map_err(|e| e.0)
    }
}
impl FromEnv for PathBuf {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(PathBuf::from(value))
    }
}
impl FromEnv for Duration {
    fn from_env(value: &str) -> Result<Self, String> {
        parse_duration(value)
    }
}
impl FromEnv for bool {
    fn from_env(value: &str) -> Result<Self, String> {
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
}
macro_rules! from_str_env {
    ($($ty:ty => $what:literal),*) => {$(
        impl FromEnv for $ty {
            fn from_env(value: &str) -> Result<Self, String> {
                value.trim().parse().map_err(|_| $what.to_owned())
            }
        }
    )*};
}
impl FromEnv for ByteSize {
    fn from_env(value: &str) -> Result<Self, String> {
        nest_http::parse_size(value).map(ByteSize)
    }
}
from_str_env!(u64 => "expected a whole number", usize => "expected a whole number", f64 => "expected a number",
    u8 => "expected a whole number from 0 to 255",
    std::net::SocketAddr => "expected an address and port, e.g. 127.0.0.1:9464");
impl FromEnv for Vec<nest_core::Stage> {
    fn from_env(value: &str) -> Result<Self, String> {
        nest_core::curve::parse_stages(value, parse_duration)
    }
}
impl FromEnv for Vec<Threshold> {
    fn from_env(value: &str) -> Result<Self, String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| ThresholdSpec::Expr(t.to_owned()).parse("NEST_THRESHOLDS").map_err(|e| e.0))
            .collect()
    }
}
impl FromEnv for String {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}
impl FromEnv for Vec<String> {
    fn from_env(value: &str) -> Result<Self, String> {
        Ok(value.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
    }
}
impl FromEnv for Vec<std::net::IpAddr> {
    fn from_env(value: &str) -> Result<Self, String> {
        parse_addrs(value.split(','))
    }
}
