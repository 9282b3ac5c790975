//! # nest-scale: the scalability index
//!
//! `nest scale` turns a stepped load test into one tracked number per commit, plus a model that explains it:
//!
//! - [`spec`]: the steps (users, or tasks/s), step and settle times, SLOs, history and gate, from the command line
//!   over `scale:` in nest.yaml ([`spec::ScaleConfig`], [`spec::Spec`]).
//! - [`run`]: the steps one after another through a caller's [`run::StepRunner`], then the tables, files, history
//!   line and gate ([`run::conclude`]).
//! - [`step`]: one step measured from its run report's timeline after the settle time (exact merged histograms),
//!   Little's law, nest's own CPU, dropped starts, the SLOs over the window.
//! - [`analysis`]: Capacity@SLO and the USL model in numbers and words; [`usl`]: the law and its fit.
//! - [`doc`]: the JSON document (`docs/scale.schema.json`), each step's full run report embedded.
//! - [`history`]: the append-only JSON-lines history; [`gate`]: the regression gate (exit code 6).
//! - [`table`], [`html`]: the terminal tables and the self-contained page.
//! - [`plan_hash`]: which runs are comparable.
//!
//! ```
//! use nest_scale::usl::{Point, fit};
//!
//! let truth = nest_scale::usl::Usl { sigma: 0.05, kappa: 0.001, lambda: 100.0 };
//! let points: Vec<Point> = [1.0, 4.0, 8.0, 16.0, 32.0, 64.0].iter().map(|&n| Point { n, x: truth.throughput(n) }).collect();
//! let model = fit(&points).unwrap().model;
//! assert!((model.sigma - 0.05).abs() < 1e-6 && (model.kappa - 0.001).abs() < 1e-8);
//! assert!((model.peak_concurrency().unwrap() - 30.8).abs() < 0.1);
//! ```

#![deny(missing_docs)]

pub mod analysis;
pub mod doc;
mod error;
pub mod gate;
mod hash;
pub mod history;
pub mod html;
pub mod run;
pub mod spec;
pub mod step;
mod sys;
pub mod table;
pub mod usl;

#[cfg(test)]
mod fixtures;

pub use error::{Regressed, ScaleError};
pub use hash::plan_hash;
