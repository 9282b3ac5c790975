//! The functions and types a taskset script sees at run time.
//!
//! `client` (HTTP), the response type and its extraction helpers, `data` (test data pools), `check` and `metric`,
//! and the helpers (`rand`, `sleep`, `interrupt`, ...). Host functions find the running VU through the fiber-local [`VuCtx`](crate::engine::VuCtx); anything that
//! waits suspends only that VU's fiber.

mod checks;
mod client;
mod data;
mod extract;
mod helpers;
pub(crate) mod options;
mod response;

use std::rc::Rc;

use rhai::Engine;

pub(crate) use checks::Metrics;
pub(crate) use client::Client;
pub(crate) use data::{Data, Held};
pub(crate) use helpers::{QuietLoad, log_line};
pub use response::HttpResponse;

use crate::engine::WorkerEnv;

/// Registers the whole run-time API on an engine.
pub(crate) fn register(engine: &mut Engine, env: &Rc<WorkerEnv>) {
    client::register(engine);
    data::register(engine);
    response::register(engine);
    helpers::register(engine, env);
    checks::register(engine, env);
    extract::register(engine);
}
