//! Helpers: a temporary taskset folder per test, running the `nest` binary with bounded waits, and reading its
//! JSON report.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any `nest` run may take before the test gives up on it (a safety net, far above every run time).
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A temporary folder with `tasksets/` for scripts and `out/` for the JSON report.
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    /// An empty sandbox.
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new().prefix("nest-cli-").tempdir().unwrap();
        std::fs::create_dir(root.path().join("tasksets")).unwrap();
        std::fs::create_dir(root.path().join("out")).unwrap();
        Sandbox { root }
    }

    /// The taskset folder, as passed to `--taskset-dir`.
    pub fn dir(&self) -> PathBuf {
        self.root.path().join("tasksets")
    }

    /// Writes a file under the taskset folder, creating its folders.
    pub fn write(&self, relative: &str, source: &str) -> &Sandbox {
        let path = self.dir().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, source).unwrap();
        self
    }

    /// A taskset file's path as nest prints it: the folder joined with the relative path.
    pub fn path_of(&self, relative: &str) -> String {
        self.dir().join(relative).display().to_string()
    }

    /// Where `--json` writes the report (alone in its folder).
    pub fn json_path(&self) -> PathBuf {
        self.root.path().join("out").join("r.json")
    }

    /// The sandbox root: the current directory of every run, where `nest.yaml` is looked for.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Writes a file under the sandbox root (not in the taskset folder), creating its folders.
    pub fn write_root(&self, relative: &str, text: &str) -> &Sandbox {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    /// Writes `nest.yaml` in the sandbox root, where every run finds it.
    pub fn write_config(&self, text: &str) -> &Sandbox {
        self.write_root("nest.yaml", text)
    }

    /// `--json` and the report path, for [`Sandbox::nest`] arguments.
    pub fn json_args(&self) -> [String; 2] {
        ["--json".to_owned(), self.json_path().display().to_string()]
    }

    /// The `nest` binary, run in the sandbox root without the caller's `NEST_*` environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
        // Hermetic: no `nest.yaml` from the caller's folder, no `NEST_*` settings from its environment.
        command.current_dir(self.root.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("NEST_") {
                command.env_remove(key);
            }
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// Runs `nest` with exactly `args` (the subcommand included, nothing added) and the `NEST_*` variables of
    /// `env`, to its end, and reads the report if one was written (pass [`Sandbox::json_args`] for one).
    pub fn nest<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Run {
        let mut command = self.command();
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Running::start(command).wait(RUN_LIMIT, self)
    }

    /// Starts `nest` with exactly `args` and the `NEST_*` variables of `env` (see [`Sandbox::nest`]), without waiting.
    pub fn spawn_nest<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Running {
        let mut command = self.command();
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Running::start(command)
    }

    /// Starts `nest run` on this sandbox against `host`, with 2 workers, `--json` and `-y`, plus `args`.
    pub fn spawn(&self, host: &str, args: &[&str]) -> Running {
        let mut command = self.command();
        command
            .arg("run")
            .arg("--taskset-dir")
            .arg(self.dir())
            .args(["-H", host, "--workers", "2", "-y", "--json"])
            .arg(self.json_path())
            .args(args);
        Running::start(command)
    }

    /// Runs `nest run` (see [`Sandbox::spawn`]) to its end and reads the report if one was written.
    pub fn run(&self, host: &str, args: &[&str]) -> Run {
        self.spawn(host, args).wait(RUN_LIMIT, self)
    }
}

/// A `nest` process being run.
pub struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = from.read_to_string(&mut text);
        text
    })
}

impl Running {
    fn start(mut command: Command) -> Running {
        let mut child = command.spawn().expect("start nest");
        // Read both pipes as the child writes, so that it never blocks on a full pipe.
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        Running { child, stdout, stderr }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit, at most `limit` (then kills it and fails the test), and reads the sandbox's report.
    pub fn wait(mut self, limit: Duration, sandbox: &Sandbox) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.join().unwrap_or_default();
                panic!("nest did not exit within {limit:?}; stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = self.stdout.join().unwrap();
        let stderr = self.stderr.join().unwrap();
        let report = read_report(&sandbox.json_path());
        Run { code: status.code(), stdout, stderr, report }
    }
}

fn read_report(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()));
    Some(Report(value))
}

/// A finished `nest` run.
pub struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    report: Option<Report>,
}

impl Run {
    /// The output, for assertion messages.
    pub fn context(&self) -> String {
        format!("exit code {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// Asserts the exit code.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "{}", self.context());
        self
    }

    /// The JSON report; fails the test when none was written.
    pub fn report(&self) -> &Report {
        self.report.as_ref().unwrap_or_else(|| panic!("no JSON report was written\n{}", self.context()))
    }

    /// Whether a JSON report was written.
    pub fn has_report(&self) -> bool {
        self.report.is_some()
    }
}

/// The `--json` report.
pub struct Report(pub Value);

fn u(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count in {value}"))
}

fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("`{key}` is not a string in {value}"))
}

fn rows<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key].as_array().unwrap_or_else(|| panic!("`{key}` is not an array in {value}"))
}

/// One row of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    pub location: String,
    pub message: String,
    pub count: u64,
}

/// One row of `failures[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub method: String,
    pub name: String,
    pub reason: String,
    pub count: u64,
}

/// One row of `tasks[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub taskset: String,
    pub task: String,
    pub runs: u64,
    pub errors: u64,
}

impl Report {
    /// `totals.requests`.
    pub fn total_requests(&self) -> u64 {
        u(&self.0["totals"], "requests")
    }

    /// `totals.failures`.
    pub fn total_failures(&self) -> u64 {
        u(&self.0["totals"], "failures")
    }

    fn request_row(&self, method: &str, name: &str) -> Option<&Value> {
        rows(&self.0, "requests").iter().find(|r| s(r, "method") == method && s(r, "name") == name)
    }

    /// `requests[].requests` of (method, name), 0 without a row.
    pub fn requests(&self, method: &str, name: &str) -> u64 {
        self.request_row(method, name).map_or(0, |r| u(r, "requests"))
    }

    /// `requests[].failures` of (method, name), 0 without a row.
    pub fn request_failures(&self, method: &str, name: &str) -> u64 {
        self.request_row(method, name).map_or(0, |r| u(r, "failures"))
    }

    /// The `(method, name)` of every `requests[]` row.
    pub fn request_names(&self) -> Vec<(String, String)> {
        rows(&self.0, "requests").iter().map(|r| (s(r, "method").to_owned(), s(r, "name").to_owned())).collect()
    }

    /// `tasks[]`.
    pub fn tasks(&self) -> Vec<TaskRow> {
        rows(&self.0, "tasks")
            .iter()
            .map(|r| TaskRow {
                taskset: s(r, "taskset").to_owned(),
                task: s(r, "task").to_owned(),
                runs: u(r, "runs"),
                errors: u(r, "errors"),
            })
            .collect()
    }

    /// `tasks[].runs` of one task or hook, 0 without a row.
    pub fn runs(&self, taskset: &str, task: &str) -> u64 {
        self.task(taskset, task).map_or(0, |t| t.runs)
    }

    /// The `tasks[]` row of one task or hook.
    pub fn task(&self, taskset: &str, task: &str) -> Option<TaskRow> {
        self.tasks().into_iter().find(|t| t.taskset == taskset && t.task == task)
    }

    /// `failures[]`.
    pub fn failures(&self) -> Vec<FailureRow> {
        rows(&self.0, "failures")
            .iter()
            .map(|r| FailureRow {
                method: s(r, "method").to_owned(),
                name: s(r, "name").to_owned(),
                reason: s(r, "reason").to_owned(),
                count: u(r, "count"),
            })
            .collect()
    }

    /// `errors[]`.
    pub fn errors(&self) -> Vec<ErrorRow> {
        rows(&self.0, "errors")
            .iter()
            .map(|r| ErrorRow {
                location: s(r, "location").to_owned(),
                message: s(r, "message").to_owned(),
                count: u(r, "count"),
            })
            .collect()
    }
}

/// `line:col` (1-based) of the first occurrence of `needle` in `source`.
pub fn line_col(source: &str, needle: &str) -> (usize, usize) {
    for (i, line) in source.lines().enumerate() {
        if let Some(at) = line.find(needle) {
            return (i + 1, line[..at].chars().count() + 1);
        }
    }
    panic!("`{needle}` is not in the source:\n{source}");
}

/// A loopback port nothing listens on, and that no other test's server can be given while this one runs.
///
/// Ports bound with port 0 (every test server) and the source ports of outgoing connections come from the
/// kernel's ephemeral range, so a free port below it stays closed.
pub fn closed_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (1024..low)
        .rev()
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below the ephemeral range")
}
