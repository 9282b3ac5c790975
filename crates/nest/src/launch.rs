//! `nest launch local --segments N [run flags]`: a coordinator and N `nest run` segments on this machine.
//!
//! The children and their output are `nest_coord::launch`'s; this file splits the flags (the report and threshold
//! flags are the coordinator's, everything else goes to every child), generates the run's token, and serves the
//! run as `nest coordinate` does. Its exit code is the coordinator's.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use nest_coord::token::Token;

use crate::coordinate::{JudgeArgs, bind, finish, serve};
use nest_config::parse::UsageError;

/// Options of `nest launch`.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Where to start the segments.
    #[command(subcommand)]
    pub target: LaunchTarget,
}

/// Where `nest launch` starts the segments.
#[derive(Debug, Subcommand)]
pub enum LaunchTarget {
    /// N segment processes on this machine, plus the coordinator in this process.
    ///
    /// Every flag that is not the launcher's goes to each `nest run` child, which adds `--coordinator URL
    /// --segment I/N`. Report and threshold flags (--json, --html, --csv, --junit, --threshold) are the merged
    /// run's, wherever they stand. The children's output is prefixed `[i]`.
    Local(LocalArgs),
    /// One segment per host over OpenSSH (`nest launch ssh HOST... [run flags]`), the coordinator here.
    ///
    /// Uses the system ssh client with your ~/.ssh/config, agent and known_hosts. Each host gets a private
    /// temporary folder with the taskset folder, nest.yaml and its data files (and this nest binary when the host
    /// lacks this exact version); the folder is removed when its segment ends. The token goes over ssh's standard
    /// input, never on a command line. Output is prefixed `[host]`; Ctrl-C stops every segment and still writes
    /// the merged report. The hosts must reach --listen (give --advertise with this machine's address).
    Ssh(crate::launch_remote::SshArgs),
    /// Write Kubernetes manifests: a ConfigMap of the project's files, the coordinator's Job and Service, an
    /// Indexed Job of N segments, and the token's Secret in a file of its own (mode 0600).
    K8s(crate::launch_remote::K8sArgs),
}

/// Options of `nest launch local`.
#[derive(Debug, Args)]
pub struct LocalArgs {
    /// N: how many segment processes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub segments: u32,
    /// How the run is held together, judged and reported.
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// The flags of `nest run` for every segment (-H, -u, -r, -t, --rate, -f, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "RUN FLAGS")]
    pub run_args: Vec<OsString>,
}

/// Runs `nest launch`.
pub fn run(args: LaunchArgs) -> Result<()> {
    let mut args = match args.target {
        LaunchTarget::Local(args) => args,
        LaunchTarget::Ssh(args) => return crate::launch_remote::ssh(args),
        LaunchTarget::K8s(args) => return crate::launch_remote::k8s(args),
    };
    args.run_args = take_judge_flags(std::mem::take(&mut args.run_args), &mut args.judge)?;
    let program = std::env::current_exe().context("cannot find the nest executable to start the segments")?;
    let token = Token::generate();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    let conclusion = runtime.block_on(async {
        let coordinator = bind(&args.judge, args.segments, loopback, token.clone()).await?;
        let url = format!("http://{}", coordinator.local_addr());
        let handle = coordinator.handle();
        let children =
            nest_coord::launch::spawn_segments(&program, &args.run_args, &url, &token, args.segments, handle)
                .context("cannot start the segments")?;
        let children = std::sync::Arc::new(children);
        let forward = children.clone();
        // Each signal is forwarded once; after the second the children stop now and still hand in what they have.
        let conclusion = serve(coordinator, &args.judge, args.segments, move |_| {
            forward.terminate();
            false
        })
        .await;
        // (Every child handed its result in or was lost: let them finish printing and exit.)
        children.wait().await;
        conclusion
    })?;
    finish(&args.judge, &conclusion)
}

/// Moves the report and threshold flags out of the children's flags into the launcher's; refuses the flags the
/// launcher sets itself.
pub(crate) fn take_judge_flags(run_args: Vec<OsString>, judge: &mut JudgeArgs) -> Result<Vec<OsString>> {
    let mut kept = Vec::new();
    let mut args = run_args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (text.clone(), None),
        };
        if ["--coordinator", "--segment", "--start-at"].contains(&flag.as_str()) {
            return Err(UsageError(format!("{flag}: `nest launch` sets it for each segment")).into());
        }
        // The launcher gives every child `--yes --quiet`; a `-q` here is the merged run's.
        match flag.as_str() {
            "-y" | "--yes" => continue,
            "-q" | "--quiet" => {
                judge.quiet = true;
                continue;
            }
            _ => {}
        }
        if !["--json", "--html", "--csv", "--junit", "--threshold"].contains(&flag.as_str()) {
            kept.push(arg);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))?,
        };
        match flag.as_str() {
            "--json" => judge.reports.json = Some(PathBuf::from(value)),
            "--html" => judge.reports.html = Some(PathBuf::from(value)),
            "--csv" => judge.reports.csv = Some(PathBuf::from(value)),
            "--junit" => judge.reports.junit = Some(PathBuf::from(value)),
            _ => judge.threshold.push(value),
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    #[test]
    fn report_and_threshold_flags_are_the_launchers_wherever_they_stand() {
        let matches = JudgeArgs::augment_args(clap::Command::new("t")).get_matches_from(["t"]);
        let mut judge = JudgeArgs::from_arg_matches(&matches).unwrap();
        let args = ["-H", "http://h", "--json", "a.json", "-u", "3", "--threshold=p95 < 1s", "-y", "-q", "--html=b"];
        let kept = take_judge_flags(args.iter().map(OsString::from).collect(), &mut judge).unwrap();
        assert_eq!(kept, ["-H", "http://h", "-u", "3"].map(OsString::from));
        assert_eq!(judge.reports.json, Some(PathBuf::from("a.json")));
        assert_eq!(judge.reports.html, Some(PathBuf::from("b")));
        assert_eq!(judge.threshold, ["p95 < 1s"]);
        assert!(judge.quiet);
        let refused = take_judge_flags(vec!["--segment".into(), "0/2".into()], &mut judge).unwrap_err();
        assert!(refused.to_string().contains("sets it for each segment"), "{refused}");
        assert!(take_judge_flags(vec!["--json".into()], &mut judge).is_err(), "a flag without its value");
    }
}
