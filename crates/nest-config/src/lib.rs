//! What a run is told, as a library: `nest.yaml`, the `NEST_*` environment and the one rule that layers them
//! over the command line, the load mix, the load model and the test data.
//!
//! The `nest` binary parses arguments into a [`settings::Settings`] and hands it here; everything that can be
//! wrong with the settings, the config file or the data is a [`parse::UsageError`] (exit code 2) found before
//! any load. A coordinator or a web UI can read and check the same settings without the command line.

#![deny(missing_docs)]

pub mod config;
pub mod data;
pub mod mix;
pub mod model;
pub mod parse;
pub mod plan;
pub mod settings;
pub mod slack;
pub mod thresholds;
