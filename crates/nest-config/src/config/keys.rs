//! How each `nest.yaml` setting is read and checked: the file's side of the settings table.
//!
//! Each entry of the table (`settings/table.rs`) names a [`Read`]. It deserializes the key's value, so a type error
//! carries the value's line and column; it checks the value, and since a check that fails after the value parsed
//! has no position, its message begins with the key and `config::parse` places it there; and it resolves the value
//! against the loaded file (paths are relative to the file, a threshold is named by its place).

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer};
use url::Url;

use super::LoadedConfig;
use crate::parse::{ByteSize, DurationVisitor, UsageError, parse_addrs, parse_duration, parse_host};
use crate::thresholds::ThresholdSpec;
use nest_report::thresholds::Threshold;

/// Reading one key of `nest.yaml` into a setting of type `T`.
pub trait Read<T> {
    /// The value as the file holds it (a field of [`FileConfig`](super::FileConfig)).
    type Raw;
    /// Deserializes and checks the value of `key`.
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Self::Raw>, D::Error>;
    /// The setting the value means in `config`.
    fn resolve(raw: &Self::Raw, config: &LoadedConfig) -> Result<T, UsageError>;
}

/// The seed that reads one key with `R`, for the `Deserialize` of [`FileConfig`](super::FileConfig).
pub struct Key<R, T>(&'static str, PhantomData<fn() -> (R, T)>);

impl<R, T> Key<R, T> {
    /// The seed of `key`.
    pub fn new(key: &'static str) -> Self {
        Key(key, PhantomData)
    }
}

impl<'de, R: Read<T>, T> DeserializeSeed<'de> for Key<R, T> {
    type Value = Option<R::Raw>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        R::read(d, self.0)
    }
}

/// Any value of the type, as serde reads it (`~` is unset).
pub struct Plain;

impl<T: DeserializeOwned + Clone> Read<T> for Plain {
    type Raw = T;
    fn read<'de, D: Deserializer<'de>>(d: D, _: &'static str) -> Result<Option<T>, D::Error> {
        Option::<T>::deserialize(d)
    }
    fn resolve(raw: &T, _: &LoadedConfig) -> Result<T, UsageError> {
        Ok(raw.clone())
    }
}

/// A path, relative to the config file.
pub struct RelativePath;

impl Read<PathBuf> for RelativePath {
    type Raw = PathBuf;
    fn read<'de, D: Deserializer<'de>>(d: D, _: &'static str) -> Result<Option<PathBuf>, D::Error> {
        Option::<PathBuf>::deserialize(d)
    }
    fn resolve(raw: &PathBuf, config: &LoadedConfig) -> Result<PathBuf, UsageError> {
        Ok(config.dir().join(raw))
    }
}

/// An http or https URL with a host.
pub struct Host;

impl Read<Url> for Host {
    type Raw = Url;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Url>, D::Error> {
        let text = String::deserialize(d)?;
        parse_host(&text).map(Some).map_err(|e| {
            // The message already begins with the key: `host `…` must be …`.
            debug_assert!(e.0.starts_with(key));
            de::Error::custom(e.0)
        })
    }
    fn resolve(raw: &Url, _: &LoadedConfig) -> Result<Url, UsageError> {
        Ok(raw.clone())
    }
}

/// A whole number of at least 1.
pub struct PositiveInt;

fn positive_int<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(de::Error::custom(format!("{key}: must be at least 1"))),
        n => Ok(Some(n)),
    }
}

impl Read<u64> for PositiveInt {
    type Raw = u64;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<u64>, D::Error> {
        positive_int(d, key)
    }
    fn resolve(raw: &u64, _: &LoadedConfig) -> Result<u64, UsageError> {
        Ok(*raw)
    }
}

impl Read<usize> for PositiveInt {
    type Raw = usize;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<usize>, D::Error> {
        positive_int(d, key).map(|n| n.map(|n| n as usize))
    }
    fn resolve(raw: &usize, _: &LoadedConfig) -> Result<usize, UsageError> {
        Ok(*raw)
    }
}

/// IP addresses: a list, or one `,`-separated string.
pub struct AddrList;

/// What a list of addresses may look like in the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Read<Vec<std::net::IpAddr>> for AddrList {
    type Raw = Vec<std::net::IpAddr>;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Self::Raw>, D::Error> {
        let parsed = match Option::<OneOrMany>::deserialize(d)
            .map_err(|_| de::Error::custom(format!("{key}: expected IP addresses, a list or `,`-separated")))?
        {
            None => return Ok(None),
            Some(OneOrMany::One(text)) => parse_addrs(text.split(',')),
            Some(OneOrMany::Many(items)) => parse_addrs(items.iter().map(String::as_str)),
        };
        parsed.map(Some).map_err(|e| de::Error::custom(format!("{key}: {e}")))
    }
    fn resolve(raw: &Self::Raw, _: &LoadedConfig) -> Result<Self::Raw, UsageError> {
        Ok(raw.clone())
    }
}

/// A finite number above 0.
pub struct PositiveRate;

impl Read<f64> for PositiveRate {
    type Raw = f64;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<f64>, D::Error> {
        let rate = f64::deserialize(d)?;
        if rate.is_finite() && rate > 0.0 {
            Ok(Some(rate))
        } else {
            Err(de::Error::custom(format!("{key}: must be a number above 0")))
        }
    }
    fn resolve(raw: &f64, _: &LoadedConfig) -> Result<f64, UsageError> {
        Ok(*raw)
    }
}

/// A duration in any form `nest.yaml` accepts (`30s`, `5m`, a number of seconds), zero included.
pub struct AnyDuration;

impl Read<Duration> for AnyDuration {
    type Raw = Duration;
    fn read<'de, D: Deserializer<'de>>(d: D, _: &'static str) -> Result<Option<Duration>, D::Error> {
        // The visitor's errors carry their position already.
        d.deserialize_any(DurationVisitor).map(Some)
    }
    fn resolve(raw: &Duration, _: &LoadedConfig) -> Result<Duration, UsageError> {
        Ok(*raw)
    }
}

/// A duration longer than zero.
pub struct PositiveDuration;

impl Read<Duration> for PositiveDuration {
    type Raw = Duration;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Duration>, D::Error> {
        match d.deserialize_any(DurationVisitor)? {
            Duration::ZERO => Err(de::Error::custom(format!("{key}: must be longer than zero"))),
            t => Ok(Some(t)),
        }
    }
    fn resolve(raw: &Duration, _: &LoadedConfig) -> Result<Duration, UsageError> {
        Ok(*raw)
    }
}

/// A byte size: a whole number of bytes, or text with a unit (`16MiB`).
pub struct Size;

impl Read<ByteSize> for Size {
    type Raw = u64;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Bytes(u64),
            Text(String),
        }
        let parsed = match Size::deserialize(d)? {
            Size::Bytes(0) => Err("a size must be at least 1 byte".to_owned()),
            Size::Bytes(n) => Ok(n),
            Size::Text(t) => nest_http::parse_size(&t),
        };
        parsed.map(Some).map_err(|e| de::Error::custom(format!("{key}: {e}")))
    }
    fn resolve(raw: &u64, _: &LoadedConfig) -> Result<ByteSize, UsageError> {
        Ok(ByteSize(*raw))
    }
}

/// Stages: a list of `"30s:50"` strings or `{ duration: 30s, target: 50 }` maps.
pub struct StageList;

impl Read<Vec<nest_core::Stage>> for StageList {
    type Raw = Vec<nest_core::Stage>;
    fn read<'de, D: Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Self::Raw>, D::Error> {
        // `Item` is the name `explain` words as "a stage".
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Text(String),
            Map { duration: DurationText, target: f64 },
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum DurationText {
            Text(String),
            Secs(f64),
        }
        let items = Vec::<Item>::deserialize(d)?;
        let mut text = Vec::with_capacity(items.len());
        for item in items {
            text.push(match item {
                Item::Text(t) => t,
                Item::Map { duration: DurationText::Text(d), target } => format!("{d}:{target}"),
                Item::Map { duration: DurationText::Secs(s), target } => format!("{s}:{target}"),
            });
        }
        nest_core::curve::parse_stages(&text.join(","), parse_duration)
            .map(Some)
            .map_err(|e| de::Error::custom(format!("{key}: {e}")))
    }
    fn resolve(raw: &Self::Raw, _: &LoadedConfig) -> Result<Self::Raw, UsageError> {
        Ok(raw.clone())
    }
}

/// Thresholds: expressions, or maps with `expr`, `abort` and `delay`; parsed once the file's text can name the
/// place of a bad one.
pub struct ThresholdList;

impl Read<Vec<Threshold>> for ThresholdList {
    type Raw = Vec<ThresholdSpec>;
    fn read<'de, D: Deserializer<'de>>(d: D, _: &'static str) -> Result<Option<Self::Raw>, D::Error> {
        Option::<Vec<ThresholdSpec>>::deserialize(d)
    }
    fn resolve(raw: &Self::Raw, config: &LoadedConfig) -> Result<Vec<Threshold>, UsageError> {
        raw.iter()
            .map(|spec| {
                let expr = match spec {
                    ThresholdSpec::Expr(e) | ThresholdSpec::Full { expr: e, .. } => e,
                };
                spec.parse(&config.locate_text(expr))
            })
            .collect()
    }
}
