//! `nest list`: the load mix without running anything, as a table or as JSON.
//!
//! It compiles every script and reads the config exactly as `nest run` does, so it doubles as a fast pre-commit
//! check: a broken script or config exits 2 with `file:line:col` messages.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::ListArgs;
use nest_config::mix::{self, MixRow};
use nest_config::plan::load_mix;
use nest_config::settings::Settings;

#[derive(Serialize)]
struct ListJson<'a> {
    taskset_dir: String,
    config: Option<String>,
    tasksets: &'a [MixRow],
}

/// Runs `nest list`.
pub fn run(args: ListArgs) -> Result<()> {
    let mix = load_mix(&args.source, Settings::default())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let json = ListJson {
            taskset_dir: mix.catalog.dir.display().to_string(),
            config: mix.config.as_ref().map(|c| c.path.display().to_string()),
            tasksets: &mix.rows,
        };
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    } else {
        mix::print(&mut out, &mix.rows)?;
        let config =
            mix.config.as_ref().map_or("no config file".to_owned(), |c| format!("config {}", c.path.display()));
        // A single taskset file (`-f shop.rhai`) is named as given; a folder as the catalog has it.
        let source = mix.settings.taskset_dir.as_ref().filter(|p| p.is_file()).unwrap_or(&mix.catalog.dir);
        let noun = if mix.rows.len() == 1 { "taskset" } else { "tasksets" };
        writeln!(out, "\n{} {noun} in {} ({config})", mix.rows.len(), source.display())?;
    }
    Ok(())
}
