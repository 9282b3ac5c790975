//! # nest-rhai: the taskset language of nest
//!
//! A taskset is a Rhai file: its top level declares weights, think time and tasks; its functions are the tasks and
//! the `on_start`/`on_stop` hooks. This crate turns a folder of such files into something the scheduler runs:
//!
//! - [`Catalog::load`] discovers `.rhai` files recursively (skipping `_`- and `.`-prefixed names), compiles each,
//!   runs its top level, and reports every broken file as `path:line:col: message` before any load.
//!   [`Catalog::load_with`] takes [`LoadOptions`]: the [`ScriptLimits`] on value sizes, and whether the static check
//!   of names (undefined variables, functions, methods) refuses a script or only warns in [`Catalog::warnings`].
//! - [`Catalog::factory`] gives a [`ScriptFactory`], the [`nest_core::BehaviourFactory`] that compiles the same
//!   sources on every worker and runs task calls on the scheduler's fibers.
//! - [`Catalog::check_data`] checks the data pool names scripts use, and [`ScriptFactory::with_data`] serves the
//!   pools of a [`nest_data::DataRegistry`] to them as `data` (`data.claim("users")`, `data.next("items")`, ...).
//! - At run time scripts see `client` (their VU's HTTP session), `data`, `user` (a map kept for the VU's life),
//!   `vu_id`, and helpers (`rand`, `random`, `choice`, `uuid`, `now`, `sleep`, `env`, `log`, `interrupt`). The guide in
//!   `docs/tasksets.md` describes each with examples.
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//! let catalog = nest_rhai::Catalog::load(Path::new("tasksets"))?;
//! for t in &catalog.tasksets {
//!     println!("{} (weight {}): {} tasks", t.name, t.spec.weight, t.spec.tasks.len());
//! }
//! let http = Arc::new(nest_http::ClientConfig::new(false)?);
//! let factory = catalog.factory(http, Some("http://127.0.0.1:8080".parse()?));
//! # let _ = factory;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod api;
mod behaviour;
mod catalog;
mod check;
mod confine;
mod data_refs;
mod declare;
mod discover;
mod engine;
mod error;
mod shape;

pub use api::HttpResponse;
pub use behaviour::{ScriptBehaviour, ScriptFactory, ScriptVu};
pub use catalog::{Catalog, LoadOptions, TasksetDef};
pub use confine::Confine;
pub use discover::{Discovered, discover};
pub use engine::{MAX_CALL_LEVELS, MAX_OPERATIONS, ScriptLimits};
pub use error::{LoadError, LoadErrors};
pub use shape::LoadShape;
