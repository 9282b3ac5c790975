//! The `nest` binary: parse, dispatch, and turn the outcome into an exit code.
//!
//! Exit codes: 0 when the run completed; 2 for a usage, config or script error found before any load; 1 for an
//! unexpected internal error; 3 late, 4 incomplete, 5 refused (split runs); 6 a scalability regression
//! (`nest scale --gate`); 99 a failed threshold. They are documented in `--help` and in docs/cli.md.

mod cli;
mod configure;
mod confirm;
mod coordinate;
mod demo_server;
mod hook;
mod launch;
mod launch_remote;
mod list;
mod live;
mod report_cmd;
mod run;
mod scale;
mod scale_index;
mod shell;

/// mimalloc instead of the system allocator: fewer instructions per request (bench/README.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use nest_config::parse::UsageError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The verdicts are already on stdout: a failed threshold needs no error line.
        Err(err) if err.downcast_ref::<nest_report::thresholds::ThresholdsFailed>().is_some() => ExitCode::from(99),
        // The gate's verdict is on stdout too.
        Err(err) if err.downcast_ref::<nest_report::thresholds::GateFailed>().is_some() => {
            ExitCode::from(err.downcast_ref::<nest_report::thresholds::GateFailed>().map_or(1, |gate| gate.code))
        }
        Err(err) if err.downcast_ref::<nest_scale::Regressed>().is_some() => {
            ExitCode::from(nest_scale::Regressed::CODE)
        }
        Err(err) if err.downcast_ref::<nest_config::parse::ExitWith>().is_some() => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::from(err.downcast_ref::<nest_config::parse::ExitWith>().map_or(1, |e| e.code))
        }
        Err(err) => {
            // Never a panic (exit 101) when stderr is closed or full: the exit code says it.
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::List(args) => list::run(args),
        Command::Configure(args) => configure::run(args),
        Command::DemoServer(args) => demo_server::run(args),
        Command::Hook(args) => hook::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Merge(args) => report_cmd::merge(args),
        Command::Scale(args) => scale_index::run(*args),
        Command::Coordinate(args) => coordinate::run(args),
        Command::Launch(args) => launch::run(args),
    }
}
