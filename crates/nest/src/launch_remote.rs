//! `nest launch ssh HOST... [run flags]` and `nest launch k8s --segments N --image IMAGE`: the segments on other
//! machines.
//!
//! The work is `nest_launch`'s (the files to ship, ssh, the Kubernetes objects); this file splits the flags like
//! `nest launch local` does, serves the SSH run's coordinator on the address the hosts can reach, and writes the
//! manifests with the commands that apply them.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use nest_coord::token::Token;
use nest_launch::bundle::Bundle;
use nest_launch::k8s::{REPORTS_DIR, Spec};
use nest_launch::ssh::{Launched, Prepared, SshOptions};

use crate::coordinate::{JudgeArgs, bind, finish, serve};
use nest_config::parse::{ExitWith, UsageError};

/// Options of `nest launch ssh`.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// Where the coordinator listens, on this machine. The segments must reach it there: every request carries the
    /// run's token, but prefer an address on a private network.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7878")]
    pub listen: SocketAddr,
    /// This machine's address as the hosts reach it (`HOST` or `HOST:PORT`) [default: the --listen address, when
    /// it names one].
    #[arg(long, value_name = "HOST")]
    pub advertise: Option<String>,
    /// The ssh config file to use instead of ~/.ssh/config (`ssh -F FILE`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// An ssh option for every connection (`ssh -o OPTION`), repeatable: `--ssh-option User=load`.
    #[arg(long = "ssh-option", value_name = "OPTION")]
    pub ssh_option: Vec<String>,
    /// How the run is held together, judged and reported.
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// The hosts (ssh destinations: `name`, `user@name`, an alias of the ssh config), one segment each in this
    /// order, then the flags of `nest run` for every segment.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "HOST... [RUN FLAGS]")]
    pub args: Vec<OsString>,
}

/// Options of `nest launch k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// N: the segment pods (an Indexed Job of N).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub segments: u32,
    /// The nest image the pods run (build it with the repository's Dockerfile).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The namespace of every object [default: kubectl's current one].
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The folder to write NAME-run.yaml and NAME-token.yaml into.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = "k8s")]
    pub output: PathBuf,
    /// The run's name: the prefix of every object (NAME-coordinator is the Service the segments call).
    #[arg(long, value_name = "NAME", default_value = "nest")]
    pub name: String,
    /// The coordinator's port.
    #[arg(long, value_name = "PORT", default_value_t = 7878)]
    pub port: u16,
    /// A PersistentVolumeClaim for the coordinator's reports [default: an emptyDir, gone with the pod].
    #[arg(long, value_name = "CLAIM")]
    pub reports_claim: Option<String>,
    /// Each segment pod's CPU, request and limit (`2`, `500m`).
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<String>,
    /// Each segment pod's memory, request and limit (`1Gi`).
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// How the run is held together, judged and reported; report files are written under /reports in the
    /// coordinator's pod (`--json report.json` is the default).
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// The flags of `nest run` for every segment (-H, -u, -r, -t, --rate, -f, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "RUN FLAGS")]
    pub run_args: Vec<OsString>,
}

/// Runs `nest launch ssh`.
pub fn ssh(mut args: SshArgs) -> Result<()> {
    let (hosts, run_args) = split_hosts(std::mem::take(&mut args.args))?;
    let run_args = crate::launch::take_judge_flags(run_args, &mut args.judge)?;
    let bundle = collect(&run_args)?;
    let binary = std::env::current_exe().context("cannot find the nest executable to copy")?;
    let ssh = SshOptions { config: args.ssh_config.clone(), options: args.ssh_option.clone() };
    let version = format!("nest {}", env!("CARGO_PKG_VERSION"));
    let segments = u32::try_from(hosts.len()).map_err(|_| UsageError("too many hosts".into()))?;
    let token = Token::generate();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let conclusion = runtime.block_on(async {
        // The thresholds and report paths are checked before the copies; the coordinator is bound after them, so
        // that --ready-timeout counts from the segments' start, not from the start of a slow copy.
        args.judge.settings(segments)?;
        advertised_url(args.advertise.as_deref(), args.listen)?;
        let reports = &args.judge.reports;
        for path in reports.json.iter().chain(&reports.csv).chain(&reports.html).chain(&reports.junit) {
            crate::run::check_writable(path)?;
        }
        let prepared = prepare_all(&ssh, &hosts, &version, &binary, &bundle, args.judge.quiet).await?;
        let bound = async {
            let coordinator = bind(&args.judge, segments, args.listen, token.clone()).await?;
            let url = advertised_url(args.advertise.as_deref(), coordinator.local_addr())?;
            anyhow::Ok((coordinator, url))
        };
        let (coordinator, url) = match bound.await {
            Ok(bound) => bound,
            Err(e) => {
                for host in &prepared {
                    let _ = ssh.remove(host).await;
                }
                return Err(e);
            }
        };
        let launched = Launched::spawn(&ssh, &prepared, &bundle.run_args, &url, &token, coordinator.handle())
            .context("cannot start the segments")?;
        let launched = Arc::new(launched);
        let forward = launched.clone();
        let conclusion = serve(coordinator, &args.judge, segments, move |_| {
            forward.terminate();
            false
        })
        .await;
        if let Ok(launched) = Arc::try_unwrap(launched) {
            launched.wait().await;
        }
        conclusion
    })?;
    finish(&args.judge, &conclusion)
}

/// The leading arguments that are not flags are the hosts (`--` ends them); the rest are the run flags.
fn split_hosts(args: Vec<OsString>) -> Result<(Vec<String>, Vec<OsString>)> {
    let mut args = args.into_iter().peekable();
    let mut hosts = Vec::new();
    while let Some(arg) = args.next_if(|a| !a.to_string_lossy().starts_with('-')) {
        hosts.push(arg.into_string().map_err(|a| UsageError(format!("{a:?}: a host name must be text")))?);
    }
    args.next_if(|a| a == "--");
    if hosts.is_empty() {
        return Err(UsageError("name at least one host: `nest launch ssh HOST... [run flags]`".into()).into());
    }
    Ok((hosts, args.collect()))
}

/// The project's files for `nest run RUN_ARGS` started here.
fn collect(run_args: &[OsString]) -> Result<Bundle> {
    let env = std::env::var_os("NEST_TASKSET_DIR").map(PathBuf::from);
    Bundle::collect(Path::new("."), run_args, env.as_deref()).map_err(|e| UsageError(e.to_string()).into())
}

/// `http://ADVERTISE[:PORT]`, the port the coordinator is bound to when not given.
fn advertised_url(advertise: Option<&str>, bound: SocketAddr) -> Result<String> {
    let port = bound.port();
    let host = match advertise {
        Some(host) if host.parse::<SocketAddr>().is_ok() => return Ok(format!("http://{host}")),
        Some(host) if host.rsplit_once(':').is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok()) => {
            return Ok(format!("http://{host}"));
        }
        Some(host) if host.contains(':') && !host.starts_with('[') => format!("[{host}]"),
        Some(host) => host.to_owned(),
        None if bound.ip().is_unspecified() => {
            let message = format!(
                "the coordinator listens on {bound}: give --advertise with this machine's address as the hosts see it"
            );
            return Err(UsageError(message).into());
        }
        None => return Ok(format!("http://{bound}")),
    };
    Ok(format!("http://{host}:{port}"))
}

/// Prepares every host at once; on any failure, cleans up the others and names every failed host.
async fn prepare_all(
    ssh: &SshOptions,
    hosts: &[String],
    version: &str,
    binary: &Path,
    bundle: &Bundle,
    quiet: bool,
) -> Result<Vec<Prepared>> {
    let preparing = ssh.prepare_all(hosts, version, binary, bundle);
    tokio::pin!(preparing);
    // The ssh steps have their own process group: a Ctrl-C here lets them end, then their folders are removed.
    let (results, interrupted) = tokio::select! {
        results = &mut preparing => (results, false),
        _ = interrupted() => {
            let note = "interrupted: removing the folders made on the hosts (press Ctrl-C again to leave them)";
            let _ = writeln!(std::io::stderr(), "{note}");
            tokio::select! {
                results = &mut preparing => (results, true),
                _ = interrupted() => {
                    let message = "interrupted twice: nothing was sent; temporary folders \
                                   (nest-launch.*) may remain on the hosts".to_owned();
                    return Err(ExitWith { code: 4, message }.into());
                }
            }
        }
    };
    let mut prepared = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(host) => prepared.push(host),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() || interrupted {
        for host in &prepared {
            let _ = ssh.remove(host).await;
        }
        if interrupted {
            let message = "the run was cancelled before its start: nothing was sent".to_owned();
            return Err(ExitWith { code: 4, message }.into());
        }
        anyhow::bail!("cannot prepare the hosts:\n  {}", errors.join("\n  "));
    }
    if !quiet {
        let mut err = std::io::stderr().lock();
        for host in &prepared {
            let how = if host.copied_binary { "copied nest and " } else { "" };
            let _ = writeln!(err, "[{}] {how}{} files in {}", host.host, bundle.files.len(), host.dir);
        }
    }
    Ok(prepared)
}

/// The first Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => t.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
}

/// Runs `nest launch k8s`: writes the manifests and says how to apply them.
pub fn k8s(mut args: K8sArgs) -> Result<()> {
    let run_args = crate::launch::take_judge_flags(std::mem::take(&mut args.run_args), &mut args.judge)?;
    let bundle = collect(&run_args)?;
    let spec = Spec {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        segments: args.segments,
        port: args.port,
        coordinate_args: coordinate_args(&args.judge),
        run_args: bundle.run_args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
        reports_claim: args.reports_claim.clone(),
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
    };
    let manifests = spec.manifests(&bundle, &Token::generate()).map_err(|e| UsageError(e.to_string()))?;
    let [objects, secret] = manifests.write(&args.output, &args.name)?;
    let ns = args.namespace.as_deref().map(|n| format!(" -n {n}")).unwrap_or_default();
    let name = spec.coordinator_name();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} ({} files) and {} (the token, mode 0600)",
        objects.display(),
        bundle.files.len(),
        secret.display()
    )?;
    writeln!(out, "apply:   kubectl{ns} apply -f {} -f {}", secret.display(), objects.display())?;
    writeln!(out, "follow:  kubectl{ns} logs -f job/{name}")?;
    Ok(())
}

/// `nest coordinate`'s flags for the coordinator's pod: the judge's, with the report files under /reports.
fn coordinate_args(judge: &JudgeArgs) -> Vec<String> {
    let secs = |d: std::time::Duration| format!("{}ms", d.as_millis());
    let mut args = vec!["--ready-timeout".to_owned(), secs(judge.ready_timeout)];
    args.extend([
        "--lost-after".to_owned(),
        secs(judge.lost_after),
        "--abort-delay".to_owned(),
        secs(judge.abort_delay),
    ]);
    for t in &judge.threshold {
        args.extend(["--threshold".to_owned(), t.clone()]);
    }
    for t in &judge.abort_threshold {
        args.extend(["--abort-threshold".to_owned(), t.clone()]);
    }
    let under = |path: &Path| {
        let name = path.file_name().map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
        format!("{REPORTS_DIR}/{name}")
    };
    let json = judge.reports.json.as_deref().map_or_else(|| format!("{REPORTS_DIR}/report.json"), under);
    args.extend(["--json".to_owned(), json]);
    for (flag, path) in
        [("--csv", &judge.reports.csv), ("--html", &judge.reports.html), ("--junit", &judge.reports.junit)]
    {
        if let Some(path) = path {
            args.extend([flag.to_owned(), under(path)]);
        }
    }
    if judge.quiet {
        args.push("--quiet".to_owned());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_end_at_the_first_flag_or_a_double_dash() {
        let args = |l: &[&str]| l.iter().map(OsString::from).collect::<Vec<_>>();
        let (hosts, rest) = split_hosts(args(&["a", "user@b", "-u", "2"])).unwrap();
        assert_eq!((hosts, rest), (vec!["a".to_owned(), "user@b".to_owned()], args(&["-u", "2"])));
        let (hosts, rest) = split_hosts(args(&["a", "--", "-t", "1s"])).unwrap();
        assert_eq!((hosts, rest), (vec!["a".to_owned()], args(&["-t", "1s"])));
        assert!(split_hosts(args(&["-u", "2"])).unwrap_err().to_string().contains("at least one host"));
    }

    #[test]
    fn the_advertised_url_takes_the_bound_port_unless_given() {
        let bound: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        assert_eq!(advertised_url(Some("10.0.0.5"), bound).unwrap(), "http://10.0.0.5:4000");
        assert_eq!(advertised_url(Some("gw:80"), bound).unwrap(), "http://gw:80");
        assert_eq!(advertised_url(Some("fd00::1"), bound).unwrap(), "http://[fd00::1]:4000");
        assert!(advertised_url(None, bound).unwrap_err().to_string().contains("--advertise"));
        let loopback: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        assert_eq!(advertised_url(None, loopback).unwrap(), "http://127.0.0.2:5000");
    }
}
