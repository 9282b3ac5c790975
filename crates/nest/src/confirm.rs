//! The confirmation before any load: the mix table, the target and the load, then `Start? [Y/n]`.
//!
//! The question is asked only on a terminal and without `--yes`; in CI and git hooks (stdin not a terminal) the
//! table is printed and the run proceeds, so automation never hangs on a prompt.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::mix;
use crate::plan::RunPlan;

/// Prints the mix and the run settings; asks whether to start when a person is there to answer.
pub fn confirm(plan: &RunPlan, yes: bool) -> Result<bool> {
    let stderr = std::io::stderr();
    let mut out = stderr.lock();
    mix::print(&mut out, &plan.mix.rows)?;
    writeln!(out, "\n{}", describe(plan))?;
    out.flush()?;
    drop(out);
    if yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    let answer = inquire::Confirm::new("Start?").with_default(true).prompt();
    match answer {
        Ok(start) => Ok(start),
        // Esc or Ctrl-C at the prompt: do not start.
        Err(
            inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted,
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn describe(plan: &RunPlan) -> String {
    let p = &plan.plan;
    let host = plan
        .host
        .as_ref()
        .map_or("the built-in demo target".to_owned(), |h| h.to_string());
    let spawn = match p.spawn_rate {
        Some(rate) => format!("{rate} per second"),
        None => "all at once".to_owned(),
    };
    let time = match p.run_time {
        Some(t) => humantime::format_duration(t).to_string(),
        None => "until Ctrl-C".to_owned(),
    };
    format!(
        "Host: {host}\nUsers: {} (started {spawn}) on {} workers\nRun time: {time}",
        p.users, p.workers
    )
}
