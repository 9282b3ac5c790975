//! `nest launch local`: N segment processes on this machine, each `nest run --coordinator URL --segment I/N`.
//!
//! One process is held to its open-file limit and one scheduler; N are not. The children get the run's token in
//! their environment (never on their command line), their output comes back line by line prefixed `[i]`, and
//! each child's exit is reported to the coordinator at once, so one that dies before handing in a result is lost
//! without waiting for `--lost-after`. Each child has its own process group: a terminal's Ctrl-C reaches only the
//! launcher, which forwards one SIGTERM per signal, so a child sees the same first (graceful) and second (now)
//! stop as a `nest run` would.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::server::Handle;
use crate::token::{TOKEN_ENV, Token};

/// The running children.
pub struct Launched {
    pids: Arc<Mutex<Vec<Option<u32>>>>,
    waits: Mutex<Vec<JoinHandle<Option<ExitStatus>>>>,
}

/// Starts `segments` children of `program` (`nest`): `run RUN_ARGS --coordinator URL --segment I/N --yes --quiet`
/// (the merged summary is the launcher's; each child prints only its verdict line and its errors).
pub fn spawn_segments(
    program: &Path,
    run_args: &[OsString],
    url: &str,
    token: &Token,
    segments: u32,
    handle: Handle,
) -> std::io::Result<Launched> {
    let pids = Arc::new(Mutex::new(Vec::new()));
    let mut waits = Vec::new();
    for index in 0..segments {
        let mut command = Command::new(program);
        command
            .arg("run")
            .args(run_args)
            .args(["--coordinator", url, "--segment", &format!("{index}/{segments}"), "--yes", "--quiet"])
            .env(TOKEN_ENV, token.expose())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        pids.lock().unwrap_or_else(PoisonError::into_inner).push(child.id());
        let out = child.stdout.take().map(|s| tokio::spawn(prefix(index, s, false)));
        let err = child.stderr.take().map(|s| tokio::spawn(prefix(index, s, true)));
        let (handle, pids) = (handle.clone(), pids.clone());
        waits.push(tokio::spawn(async move {
            let status = child.wait().await.ok();
            pids.lock().unwrap_or_else(PoisonError::into_inner)[index as usize] = None;
            for task in [out, err].into_iter().flatten() {
                let _ = task.await;
            }
            let how = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
            handle.exited(index, &how);
            status
        }));
    }
    Ok(Launched { pids, waits: Mutex::new(waits) })
}

impl Launched {
    /// Sends SIGTERM to every child still running: the first asks for a graceful stop, the second stops now.
    pub fn terminate(&self) {
        for pid in self.pids.lock().unwrap_or_else(PoisonError::into_inner).iter().flatten() {
            if let Ok(pid) = libc::pid_t::try_from(*pid) {
                // SAFETY: `kill` has no memory effects; the pid is a child not yet reaped (its waiter clears it).
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// Waits for every child; their exit statuses, by index (empty if another call took them).
    pub async fn wait(&self) -> Vec<Option<ExitStatus>> {
        let waits = std::mem::take(&mut *self.waits.lock().unwrap_or_else(PoisonError::into_inner));
        let mut statuses = Vec::new();
        for wait in waits {
            statuses.push(wait.await.ok().flatten());
        }
        statuses
    }
}

/// Copies a child's output, line by line, prefixed with its index.
async fn prefix(index: u32, stream: impl AsyncRead + Unpin, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = if to_stderr {
            writeln!(std::io::stderr().lock(), "[{index}] {line}")
        } else {
            writeln!(std::io::stdout().lock(), "[{index}] {line}")
        };
    }
}
