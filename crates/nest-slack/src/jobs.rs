//! The one run a Slack workspace may have going: started as a child `nest` process, stopped with SIGTERM, its
//! result read back from disk and posted to the command's `response_url`.
//!
//! A child process (the same `nest` binary, `run` or `scale` with `--preset`) keeps the service small and robust:
//! a run that crashes or leaks cannot take the service down, `/nest stop` is the SIGTERM that `nest run` already
//! handles (it stops gracefully and still writes its report), and the child runs exactly what `nest run --preset
//! NAME` runs in a terminal. Nothing secret is on its command line: the preset name, the overrides and file names.
//! The child runs in its own process group, and the `NEST_*` settings variables of the service are removed from
//! its environment, so that only the preset and the overrides decide what it runs. Every run's JSON, HTML and log
//! stay in the results folder.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::blocks::{self, Context, ScaleLine};
use crate::command::Overrides;
use crate::notify::{self, Policy};

/// What kind of run a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `nest run --preset`.
    Run,
    /// `nest scale --preset`.
    Scale,
}

/// How jobs are started and where their files go.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `nest` binary.
    pub program: PathBuf,
    /// The config file the presets come from (`--config`).
    pub config: PathBuf,
    /// The results folder: each run's JSON, HTML and log.
    pub results: PathBuf,
    /// Environment variables removed from the child's environment (the `NEST_*` settings).
    pub env_remove: Vec<String>,
    /// Where the HTML reports are served, when they are (`slack.report_base_url`).
    pub report_base_url: Option<url::Url>,
    /// The history file `nest scale` appends to (for the change against the baseline).
    pub history: PathBuf,
    /// How results are posted.
    pub policy: Policy,
}

/// A job asked for by a command.
#[derive(Debug, Clone)]
pub struct Job {
    /// Run or scale.
    pub kind: Kind,
    /// The preset.
    pub preset: String,
    /// The overrides (run only).
    pub overrides: Overrides,
    /// Who asked (the Slack user id).
    pub user: String,
    /// Where the result goes.
    pub response_url: url::Url,
}

struct Current {
    job: Job,
    started: SystemTime,
    pid: u32,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    last: Option<String>,
    /// The threads that wait for a job and post its result; a finished one is dropped at the next start.
    posters: Vec<std::thread::JoinHandle<()>>,
}

/// The one job at a time.
#[derive(Clone)]
pub struct Jobs {
    launch: Arc<Launch>,
    state: Arc<Mutex<State>>,
}

/// Writes one line to the service's log (stderr); a failed write is ignored.
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl Jobs {
    /// No job yet.
    pub fn new(launch: Launch) -> Jobs {
        Jobs { launch: Arc::new(launch), state: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `job`, or says why not: busy with another, or the child could not start. The answer is for the
    /// user (`Ok` is the "started" line).
    pub fn start(&self, job: Job) -> Result<String, String> {
        let mut state = self.lock();
        if let Some(current) = &state.current {
            return Err(format!("busy: {}", describe(current)));
        }
        let started = SystemTime::now();
        let id = format!("{}-{}", stamp(started), job.preset);
        let files = Files::new(&self.launch.results, &id);
        let child = self.spawn(&job, &files).map_err(|e| {
            log(&format!("could not start {}: {e}", job.preset));
            format!("could not start `{}`; the service's log says why", job.preset)
        })?;
        let pid = child.id();
        log(&format!("started {} `{}` for {} (pid {pid}, files {}.*)", kind(job.kind), job.preset, job.user, id));
        let line =
            format!("started {} `{}`{} for <@{}>", kind(job.kind), job.preset, overrides(&job.overrides), job.user);
        state.current = Some(Current { job: job.clone(), started, pid });
        let jobs = self.clone();
        state.posters.retain(|p| !p.is_finished());
        state.posters.push(std::thread::spawn(move || jobs.finish(child, job, files)));
        Ok(line)
    }

    /// Stops the current job gracefully (SIGTERM to its process group); its result is still posted.
    pub fn stop(&self) -> String {
        let state = self.lock();
        match &state.current {
            Some(current) => {
                terminate(current.pid);
                log(&format!("stopping {} (pid {})", current.job.preset, current.pid));
                format!("stopping `{}`: its result will be posted here", current.job.preset)
            }
            None => "nothing is running".into(),
        }
    }

    /// What is running, and what ran last.
    pub fn status(&self) -> String {
        let state = self.lock();
        match (&state.current, &state.last) {
            (Some(current), _) => format!("running: {}", describe(current)),
            (None, Some(last)) => format!("idle; the last run: {last}"),
            (None, None) => "idle: nothing has run yet".into(),
        }
    }

    /// Stops the current job, if any, and waits until every result was posted.
    pub fn shutdown(&self) {
        let posters = {
            let mut state = self.lock();
            if let Some(current) = &state.current {
                terminate(current.pid);
            }
            std::mem::take(&mut state.posters)
        };
        for poster in posters {
            let _ = poster.join();
        }
    }

    fn spawn(&self, job: &Job, files: &Files) -> std::io::Result<Child> {
        std::fs::create_dir_all(&self.launch.results)?;
        let log = std::fs::File::create(&files.log)?;
        let mut command = Command::new(&self.launch.program);
        command.args(self.args(job, files));
        for var in &self.launch.env_remove {
            command.env_remove(var);
        }
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.spawn()
    }

    fn args(&self, job: &Job, files: &Files) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            if job.kind == Kind::Run { "run" } else { "scale" }.into(),
            "--config".into(),
            self.launch.config.clone().into(),
            "--preset".into(),
            job.preset.clone().into(),
            "--yes".into(),
            "--quiet".into(),
            // The result goes to the command's response_url; `notify:` of the file would post it twice.
            "--no-notify".into(),
            "--json".into(),
            files.json.clone().into(),
            "--html".into(),
            files.html.clone().into(),
        ];
        let o = &job.overrides;
        if let Some(users) = o.users {
            args.extend(["--users".into(), users.to_string().into()]);
        }
        if let Some(time) = o.run_time {
            args.extend(["--run-time".into(), format!("{}ms", time.as_millis()).into()]);
        }
        if let Some(rate) = o.rate {
            args.extend(["--rate".into(), rate.to_string().into()]);
        }
        args
    }

    /// Waits for the child, frees the slot, and posts its result. The slot is free before the post: whoever reads
    /// the result in Slack and sends the next command at once must not be told the service is busy (a post can
    /// take its retries' time).
    fn finish(&self, mut child: Child, job: Job, files: Files) {
        let status = child.wait();
        let code = status.as_ref().ok().and_then(|s| s.code());
        let (message, summary) = self.result(&job, &files, code);
        {
            let mut state = self.lock();
            state.current = None;
            state.last = Some(summary);
        }
        match notify::post_json(&job.response_url, &message, self.launch.policy) {
            Ok(_) => log(&format!("posted the result of {} to {}", job.preset, notify::redact(&job.response_url))),
            Err(e) => log(&format!("warning: {e}")),
        }
    }

    /// The message of a finished job, and a line for `/nest status`.
    fn result(&self, job: &Job, files: &Files, code: Option<i32>) -> (serde_json::Value, String) {
        let link = self
            .launch
            .report_base_url
            .as_ref()
            .filter(|_| files.html.is_file())
            .and_then(|base| base.join(files.html.file_name()?.to_str()?).ok().map(|u| u.to_string()));
        let context = Context {
            title: format!("{} `{}`", kind(job.kind), job.preset),
            user: Some(job.user.clone()),
            link,
            scale: None,
            in_channel: true,
        };
        let read = std::fs::read(&files.json);
        let outcome = match (job.kind, read) {
            (Kind::Run, Ok(bytes)) => serde_json::from_slice::<nest_report::model::Report>(&bytes)
                .map(|report| {
                    let (word, _) = blocks::verdict(&report);
                    let t = &report.summary.totals;
                    let line = format!("`{}` {word}: {} requests, {} failures", job.preset, t.requests, t.failures);
                    (blocks::run_message(&report, &context), line)
                })
                .map_err(|e| e.to_string()),
            (Kind::Scale, Ok(bytes)) => serde_json::from_slice::<nest_scale::doc::ScaleDoc>(&bytes)
                .map(|doc| {
                    let line = scale_line(&doc, &self.launch.history);
                    let text = format!("`{}`: {}", job.preset, line.headline);
                    (blocks::scale_message(&doc, &line, &context), text)
                })
                .map_err(|e| e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        outcome.unwrap_or_else(|e| {
            log(&format!("{}: no result ({e}); exit code {code:?}; see {}", job.preset, files.log.display()));
            let text = format!(
                ":x: {} `{}` ended without a result (exit code {}); the service's log and {} say why",
                kind(job.kind),
                job.preset,
                code.map_or("none".into(), |c| c.to_string()),
                files.log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            );
            (blocks::plain(&text, true), format!("`{}` ended without a result", job.preset))
        })
    }
}

/// Capacity@SLO of a scale document, and the median of the comparable history entries before it.
pub fn scale_line(doc: &nest_scale::doc::ScaleDoc, history: &Path) -> ScaleLine {
    let now = nest_scale::history::Entry::of(doc);
    let entries = nest_scale::history::read(history).map(|(e, _)| e).unwrap_or_default();
    // The run appended itself last: the baseline is what came before it.
    let before: Vec<_> = entries.into_iter().filter(|e| e.time < now.time).collect();
    let base = nest_scale::gate::comparable(&before, &now, 5);
    let mut values: Vec<f64> = base.iter().filter_map(|e| e.capacity_rps).collect();
    values.sort_by(f64::total_cmp);
    let baseline_rps = (!values.is_empty()).then(|| {
        let n = values.len();
        if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
    });
    ScaleLine {
        headline: doc.capacity.headline(),
        capacity_rps: doc.capacity.throughput_rps,
        baseline_rps,
        steps: doc.steps.len(),
    }
}

/// A job's files in the results folder.
struct Files {
    json: PathBuf,
    html: PathBuf,
    log: PathBuf,
}

impl Files {
    fn new(dir: &Path, id: &str) -> Files {
        Files {
            json: dir.join(format!("{id}.json")),
            html: dir.join(format!("{id}.html")),
            log: dir.join(format!("{id}.log")),
        }
    }
}

fn describe(current: &Current) -> String {
    let ago = current.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    format!(
        "{} `{}` started by <@{}> at {} UTC ({ago} s ago)",
        kind(current.job.kind),
        current.job.preset,
        current.job.user,
        clock(current.started)
    )
}

fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Run => "run",
        Kind::Scale => "scale",
    }
}

fn overrides(o: &Overrides) -> String {
    let mut parts = Vec::new();
    if let Some(u) = o.users {
        parts.push(format!("users={u}"));
    }
    if let Some(t) = o.run_time {
        parts.push(format!("time={}", humantime::format_duration(t)));
    }
    if let Some(r) = o.rate {
        parts.push(format!("rate={r}"));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

/// `20261201T213000Z`: sortable, and safe in a file name.
fn stamp(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.replace(['-', ':'], "")
}

/// `21:30:00`.
fn clock(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or(&text).to_owned()
}

/// SIGTERM to the child's process group: `nest` stops gracefully and writes its report.
fn terminate(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_the_preset_and_overrides_and_posts_nowhere_itself() {
        let launch = Launch {
            program: "nest".into(),
            config: "/p/nest.yaml".into(),
            results: "/p/r".into(),
            env_remove: Vec::new(),
            report_base_url: None,
            history: "h".into(),
            policy: Policy::default(),
        };
        let job = Job {
            kind: Kind::Run,
            preset: "smoke".into(),
            overrides: Overrides { users: Some(5), run_time: Some(std::time::Duration::from_secs(3)), rate: None },
            user: "U1".into(),
            response_url: url::Url::parse("https://hooks.slack.com/commands/T/1/secret").unwrap(),
        };
        let args: Vec<String> = Jobs::new(launch)
            .args(&job, &Files::new(Path::new("/p/r"), "id"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let line = args.join(" ");
        assert_eq!(
            line,
            "run --config /p/nest.yaml --preset smoke --yes --quiet --no-notify --json /p/r/id.json --html \
             /p/r/id.html --users 5 --run-time 3000ms"
        );
        assert!(!line.contains("secret"));
    }

    #[test]
    fn stamps_sort_and_are_file_names() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_624_600);
        assert_eq!(stamp(at), "20251201T213000Z");
        assert_eq!(clock(at), "21:30:00");
    }
}
