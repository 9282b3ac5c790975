//! The confirmation before any load: the mix table, the target and the load, then `Start? [Y/n]`.
//!
//! The question is asked only on a terminal and without `--yes`; in CI and git hooks (stdin not a terminal) the
//! table is printed and the run proceeds, so automation never hangs on a prompt.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use nest_core::Model;

use nest_config::mix;
use nest_config::plan::RunPlan;

/// Prints the mix and the run settings (not with `--quiet`, unless there is a question); asks whether to start when
/// a person is there to answer.
pub fn confirm(plan: &RunPlan, yes: bool, quiet: bool) -> Result<bool> {
    let ask = !yes && std::io::stdin().is_terminal();
    if quiet && !ask {
        return Ok(true);
    }
    let printed = print_plan(plan);
    // Unasked, a stderr that refuses the table (closed, full) must not stop the run; asked, it is where the prompt is.
    if !ask {
        return Ok(true);
    }
    printed?;
    let answer = inquire::Confirm::new("Start?").with_default(true).prompt();
    match answer {
        Ok(start) => Ok(start),
        // Esc or Ctrl-C at the prompt: do not start.
        Err(inquire::InquireError::OperationCanceled | inquire::InquireError::OperationInterrupted) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The mix table and the run, on stderr.
fn print_plan(plan: &RunPlan) -> std::io::Result<()> {
    let mut out = std::io::stderr().lock();
    mix::print(&mut out, &plan.mix.rows)?;
    writeln!(out, "\n{}", describe(plan))?;
    out.flush()
}

fn describe(plan: &RunPlan) -> String {
    let host = plan
        .host
        .as_ref()
        .map_or("the built-in demo target".to_owned(), |h| nest_http::redact_url(h.as_str()).into_owned());
    format!("Host: {host}\nLoad: {}\nRun time: {}", load_line(&plan.plan), time_line(plan))
}

/// How long the run lasts, in words.
pub fn time_line(plan: &RunPlan) -> String {
    let p = &plan.plan;
    match (p.run_time, p.iterations) {
        (Some(t), None) => humantime::format_duration(t).to_string(),
        (None, Some(n)) => format!("until {n} tasks have run"),
        (Some(t), Some(n)) => format!("{n} tasks, at most {}", humantime::format_duration(t)),
        (None, None) if plan.shape.is_some() => "until the shape ends".to_owned(),
        (None, None) => "until Ctrl-C".to_owned(),
    }
}

/// The load model in words.
pub fn load_line(p: &nest_core::Plan) -> String {
    let load = match &p.model {
        Model::Open { arrivals, max_users, max_delay } => format!(
            "open model: tasks start at up to {}/s on a pool of at most {max_users} VUs (starts that wait over {} \
             are dropped)",
            arrivals.peak_rate(),
            humantime::format_duration(*max_delay)
        ),
        Model::Closed { shaped: true, .. } => "closed model: users follow the load shape script".to_owned(),
        Model::Closed { users, .. } => format!("closed model: {} users at most", users.peak()),
    };
    format!("{load}, on {} workers", p.workers)
}
