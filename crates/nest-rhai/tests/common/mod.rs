//! Helpers shared by the integration tests that load taskset folders and run them on the real scheduler, without
//! HTTP: a folder of files, a factory of the loaded tasksets, and one run on a current-thread runtime.
//!
//! Each test file is its own binary and uses only a part of them.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nest_core::{Plan, RunHandle, RunResult};
use nest_rhai::{Catalog, LoadOptions, ScriptFactory};

/// A taskset folder holding `files` (names may have folders: `shop/browse.rhai`).
pub fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
    }
    dir
}

/// The workers' factory for `catalog`'s tasksets, with a plain HTTP configuration and no base URL.
pub fn factory(catalog: &Catalog) -> ScriptFactory {
    catalog.factory(Arc::new(nest_http::ClientConfig::new(false).unwrap()), None)
}

/// Runs `plan` with `factory` on a current-thread runtime, alone (no other segment).
pub fn execute(plan: Plan, factory: ScriptFactory) -> RunResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(nest_core::run(plan, Arc::new(factory), RunHandle::new(), ())).unwrap()
}

/// Runs every taskset of `dir`, loaded with `options`, with one VU on one worker for `iterations` tasks, ending
/// after `run_time` at the latest.
pub fn run_one_vu(dir: &Path, options: LoadOptions, iterations: u64, run_time: Duration) -> RunResult {
    let catalog = Catalog::load_with(dir, options).unwrap();
    let plan = Plan::builder(catalog.specs())
        .users(1)
        .workers(1)
        .iterations(Some(iterations))
        .run_time(Some(run_time))
        .stop_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    execute(plan, factory(&catalog))
}
