//! `nest launch ssh`: one segment per host, over the system OpenSSH client.
//!
//! OpenSSH already knows the user's hosts, keys, agent, jump hosts and known_hosts (`~/.ssh/config`); nest adds
//! nothing to them and never turns host key checking off. Per host it makes a private temporary folder, copies
//! the nest binary there when the host's `nest --version` is not this one, unpacks the project's files (a `tar`
//! stream over ssh), and starts `nest run --coordinator URL --segment I/N` in that folder.
//!
//! The token never reaches a command line (remote command lines are visible in `ps`): the remote wrapper reads it
//! as the first line of ssh's standard input and puts it in the segment's environment. The rest of that input is
//! the stop channel: each line sends the segment one SIGTERM (the first stops it gracefully, the second now), and
//! its end (the launcher died, the connection dropped) stops it too. The wrapper removes the folder when the
//! segment ends, whatever its outcome.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bundle::Bundle;
use nest_coord::server::Handle;
use nest_coord::token::{TOKEN_ENV, Token};

/// How ssh is called: `-F FILE` and `-o OPTION`s before the host (the user's own config applies otherwise).
#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    /// `ssh -F FILE`: another config file instead of `~/.ssh/config`.
    pub config: Option<PathBuf>,
    /// `ssh -o OPTION`, in order.
    pub options: Vec<String>,
}

/// Why a host cannot take its segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// `ssh` (or the local `tar`) cannot be started.
    #[error("cannot start `{0}`: {1}")]
    Spawn(&'static str, std::io::Error),
    /// A step failed on a host; its error output is included.
    #[error("{host}: {step} failed ({status}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Step {
        /// The host as given.
        host: String,
        /// What was being done.
        step: &'static str,
        /// How the command ended.
        status: String,
        /// Its error output, trimmed.
        stderr: String,
    },
}

/// A host made ready: its temporary folder and the nest to run there.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The host as given (an ssh destination: `name`, `user@name`, an alias of the ssh config).
    pub host: String,
    /// The temporary folder on the host (absolute).
    pub dir: String,
    /// The nest program to run there: `nest` on the host's PATH, or the copy in `dir`.
    pub program: String,
    /// Whether the binary was copied.
    pub copied_binary: bool,
}

/// Makes the temporary folder, prints nothing; its path is the first line, the host's `nest --version` the second.
const PREPARE: &str = r#"d=$(mktemp -d "${TMPDIR:-/tmp}/nest-launch.XXXXXXXX") || exit 1
chmod 700 "$d" && echo "$d" && { nest --version 2>/dev/null || echo; }"#;

/// Unpacks the project's files (standard input, a tar stream) into the folder `$1`.
const UNPACK: &str = r#"cd "$1" && tar -xf - && mkdir -p .nest"#;

/// Writes the binary (standard input) into the folder `$1`.
const INSTALL: &str = r#"cat > "$1/.nest/nest" && chmod 700 "$1/.nest/nest""#;

/// Runs a segment: `$1` the folder, `$2` the nest program, the rest `nest run`'s arguments. The token is the first
/// line of standard input; each later line is one SIGTERM, and the end of input one more. The folder is removed
/// at the end.
const SEGMENT: &str = r#"d=$1; p=$2; shift 2
trap 'cd / && rm -rf "$d"' EXIT
exec 3<&0
IFS= read -r NEST_COORDINATOR_TOKEN || exit 70
export NEST_COORDINATOR_TOKEN
cd "$d" || exit 70
"$p" run "$@" </dev/null 3<&- & pid=$!
unset NEST_COORDINATOR_TOKEN
( while IFS= read -r _; do kill -TERM "$pid"; done; kill -TERM "$pid" ) <&3 >/dev/null 2>&1 &
watch=$!
wait "$pid"; code=$?
kill "$watch" 2>/dev/null
exit "$code""#;

/// Removes the folder `$1` (when the segment could not be started).
const REMOVE: &str = r#"rm -rf "$1""#;

impl SshOptions {
    /// `ssh [-F FILE] [-o OPTION]... -T HOST sh -c 'SCRIPT' sh ARGS...`, every argument quoted for the remote
    /// shell. Nothing secret goes in it.
    fn command(&self, host: &str, script: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ssh");
        if let Some(config) = &self.config {
            command.arg("-F").arg(config);
        }
        for option in &self.options {
            command.arg("-o").arg(option);
        }
        let mut remote = format!("sh -c {} sh", quote(script));
        for arg in args {
            remote.push(' ');
            remote.push_str(&quote(arg));
        }
        command.args(["-T", "-e", "none", host, &remote]);
        // Its own process group: a terminal's Ctrl-C reaches the launcher only, which ends every step itself.
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
        command
    }

    /// Runs `script` on `host` with `input` on its standard input, to its end; its standard output.
    async fn step(
        &self,
        host: &str,
        step: &'static str,
        script: &str,
        args: &[&str],
        input: Option<Input<'_>>,
    ) -> Result<String, SshError> {
        let mut command = self.command(host, script, args);
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(|e| SshError::Spawn("ssh", e))?;
        let feeding = match (input, child.stdin.take()) {
            (Some(input), Some(stdin)) => Some(input.feed(stdin)),
            _ => None,
        };
        let output = child.wait_with_output();
        let (output, fed) = match feeding {
            Some(feed) => {
                let (output, fed) = tokio::join!(output, feed);
                (output, fed)
            }
            None => (output.await, Ok(())),
        };
        let output = output.map_err(|e| SshError::Spawn("ssh", e))?;
        let failed = |status: String| SshError::Step {
            host: host.to_owned(),
            step,
            status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        };
        if !output.status.success() {
            return Err(failed(output.status.to_string()));
        }
        fed.map_err(|e| failed(format!("sending the files: {e}")))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Makes `host` ready: the folder, the binary when the host has no nest of exactly `version` (`nest X.Y.Z`,
    /// as `nest --version` prints it), the project's files.
    pub async fn prepare(
        &self,
        host: &str,
        version: &str,
        binary: &Path,
        bundle: &Bundle,
    ) -> Result<Prepared, SshError> {
        let out = self.step(host, "making a temporary folder", PREPARE, &[], None).await?;
        let mut lines = out.lines();
        let dir = lines.next().unwrap_or_default().trim().to_owned();
        if !dir.starts_with('/') {
            let status = format!("no folder in the answer {out:?}");
            return Err(SshError::Step {
                host: host.to_owned(),
                step: "making a temporary folder",
                status,
                stderr: "".into(),
            });
        }
        let remote_version = lines.next().unwrap_or_default().trim();
        let prepared = self.fill(host, &dir, remote_version != version, binary, bundle).await;
        if prepared.is_err() {
            let _ = self.step(host, "removing the temporary folder", REMOVE, &[&dir], None).await;
        }
        prepared
    }

    /// Prepares every host at once (see [`SshOptions::prepare`]); the results in the hosts' order.
    pub async fn prepare_all(
        &self,
        hosts: &[String],
        version: &str,
        binary: &Path,
        bundle: &Bundle,
    ) -> Vec<Result<Prepared, SshError>> {
        let mut tasks = Vec::new();
        for host in hosts {
            let (ssh, host, version) = (self.clone(), host.clone(), version.to_owned());
            let (binary, bundle) = (binary.to_path_buf(), bundle.clone());
            tasks.push(tokio::spawn(async move { ssh.prepare(&host, &version, &binary, &bundle).await }));
        }
        let mut results = Vec::new();
        for (task, host) in tasks.into_iter().zip(hosts) {
            results.push(task.await.unwrap_or_else(|e| {
                let status = format!("the task ended: {e}");
                Err(SshError::Step { host: host.clone(), step: "preparing", status, stderr: String::new() })
            }));
        }
        results
    }

    /// Removes a prepared host's folder (when its segment is not started after all).
    pub async fn remove(&self, host: &Prepared) -> Result<(), SshError> {
        self.step(&host.host, "removing the temporary folder", REMOVE, &[&host.dir], None).await.map(|_| ())
    }

    /// Copies the files (and the binary when `copy_binary`) into `dir` on `host`.
    async fn fill(
        &self,
        host: &str,
        dir: &str,
        copy_binary: bool,
        binary: &Path,
        bundle: &Bundle,
    ) -> Result<Prepared, SshError> {
        self.step(host, "copying the project's files", UNPACK, &[dir], Some(Input::Tar(bundle))).await?;
        let program = if copy_binary {
            self.step(host, "copying the nest binary", INSTALL, &[dir], Some(Input::File(binary))).await?;
            format!("{dir}/.nest/nest")
        } else {
            "nest".to_owned()
        };
        Ok(Prepared { host: host.to_owned(), dir: dir.to_owned(), program, copied_binary: copy_binary })
    }

    /// Starts segment `index` of `segments` on a prepared host: `nest run RUN_ARGS --coordinator URL --segment
    /// I/N --yes --quiet`, its output printed prefixed `[label]`.
    pub fn start(
        &self,
        host: &Prepared,
        label: &str,
        run_args: &[OsString],
        url: &str,
        segment: (u32, u32),
    ) -> Result<Child, SshError> {
        let flags: Vec<String> = run_args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let segment = format!("{}/{}", segment.0, segment.1);
        let mut args: Vec<&str> = vec![&host.dir, &host.program];
        args.extend(flags.iter().map(String::as_str));
        args.extend(["--coordinator", url, "--segment", &segment, "--yes", "--quiet"]);
        let mut command = self.command(&host.host, SEGMENT, &args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().map_err(|e| SshError::Spawn("ssh", e))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(prefix(label.to_owned(), out, false));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(prefix(label.to_owned(), err, true));
        }
        Ok(child)
    }
}

/// What a step reads on its standard input.
enum Input<'a> {
    /// The project's files as a tar stream (the local `tar`).
    Tar(&'a Bundle),
    /// One file's bytes.
    File(&'a Path),
}

impl Input<'_> {
    /// Writes the input into `stdin`, then closes it.
    async fn feed(self, mut stdin: tokio::process::ChildStdin) -> std::io::Result<()> {
        match self {
            Input::File(path) => {
                let mut file = tokio::fs::File::open(path).await?;
                tokio::io::copy(&mut file, &mut stdin).await?;
            }
            Input::Tar(bundle) => {
                let mut tar = Command::new("tar");
                tar.arg("-cf").arg("-").arg("-C").arg(&bundle.root).arg("--");
                tar.args(&bundle.files).stdin(Stdio::null()).stdout(Stdio::piped()).kill_on_drop(true);
                let mut tar = tar.spawn()?;
                if let Some(mut out) = tar.stdout.take() {
                    tokio::io::copy(&mut out, &mut stdin).await?;
                }
                let status = tar.wait().await?;
                if !status.success() {
                    return Err(std::io::Error::other(format!("the local tar failed ({status})")));
                }
            }
        }
        stdin.shutdown().await
    }
}

/// The running segments: their stop channels and waiters.
pub struct Launched {
    stops: Vec<mpsc::UnboundedSender<()>>,
    waits: Vec<JoinHandle<Option<ExitStatus>>>,
}

impl Launched {
    /// Starts every prepared host's segment (host `i` is segment `i` of `hosts.len()`), hands each its token, and
    /// reports each exit to the coordinator through `handle`.
    pub fn spawn(
        ssh: &SshOptions,
        hosts: &[Prepared],
        run_args: &[OsString],
        url: &str,
        token: &Token,
        handle: Handle,
    ) -> Result<Launched, SshError> {
        let labels = labels(hosts);
        let mut launched = Launched { stops: Vec::new(), waits: Vec::new() };
        let segments = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
        for (index, (host, label)) in (0..segments).zip(hosts.iter().zip(&labels)) {
            let mut child = ssh.start(host, label, run_args, url, (index, segments))?;
            let stdin = child.stdin.take();
            let (stop, stops) = mpsc::unbounded_channel();
            launched.stops.push(stop);
            let (handle, token) = (handle.clone(), token.clone());
            launched.waits.push(tokio::spawn(async move {
                let feeder = stdin.map(|stdin| tokio::spawn(control(stdin, token, stops)));
                let status = child.wait().await.ok();
                if let Some(feeder) = feeder {
                    feeder.abort();
                }
                let how = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
                handle.exited(index, &how);
                status
            }));
        }
        Ok(launched)
    }

    /// Asks every segment to stop: the first call gracefully, the second now.
    pub fn terminate(&self) {
        for stop in &self.stops {
            let _ = stop.send(());
        }
    }

    /// Waits for every ssh to end; their exit statuses, by index.
    pub async fn wait(self) -> Vec<Option<ExitStatus>> {
        let mut statuses = Vec::new();
        for wait in self.waits {
            statuses.push(wait.await.ok().flatten());
        }
        statuses
    }
}

/// The segment's standard input: the token line, then one line per stop asked; kept open until the end.
async fn control(mut stdin: tokio::process::ChildStdin, token: Token, mut stops: mpsc::UnboundedReceiver<()>) {
    debug_assert_eq!(TOKEN_ENV, "NEST_COORDINATOR_TOKEN", "the wrapper script names the variable");
    let line = format!("{}\n", token.expose());
    if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
        return;
    }
    while stops.recv().await.is_some() {
        if stdin.write_all(b"stop\n").await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
    // The launcher is done with this segment; keep the channel open so the end of input does not stop it.
    std::future::pending::<()>().await;
}

/// The output prefixes: the host name, with `#index` when a host takes more than one segment.
fn labels(hosts: &[Prepared]) -> Vec<String> {
    let twice = |name: &str| hosts.iter().filter(|h| h.host == name).count() > 1;
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| if twice(&h.host) { format!("{}#{i}", h.host) } else { h.host.clone() })
        .collect()
}

/// Copies a segment's output, line by line, prefixed `[label]`.
async fn prefix(label: String, stream: impl AsyncRead + Unpin, to_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = if to_stderr {
            writeln!(std::io::stderr().lock(), "[{label}] {line}")
        } else {
            writeln!(std::io::stdout().lock(), "[{label}] {line}")
        };
    }
}

/// `text` single-quoted for a POSIX shell (and the remote login shells that quote alike).
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_host_with_two_segments_gets_numbered_labels() {
        let host =
            |h: &str| Prepared { host: h.into(), dir: "/t".into(), program: "nest".into(), copied_binary: false };
        assert_eq!(labels(&[host("a"), host("b"), host("a")]), ["a#0", "b", "a#2"]);
    }

    #[test]
    fn the_segment_script_never_names_the_token_value() {
        let ssh = SshOptions { config: Some("cfg".into()), options: vec!["BatchMode=yes".into()] };
        let command = ssh.command("h", SEGMENT, &["/tmp/x", "nest"]);
        let args: Vec<_> = command.as_std().get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(&args[..6], ["-F", "cfg", "-o", "BatchMode=yes", "-T", "-e"]);
        assert!(args.last().unwrap().starts_with("sh -c 'd=$1;"), "{args:?}");
        assert!(args.last().unwrap().ends_with(" sh '/tmp/x' 'nest'"), "{args:?}");
    }
}
