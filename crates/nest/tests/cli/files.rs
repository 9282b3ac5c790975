//! The files nest writes and reads are checked before any load: a report path that is a folder or a FIFO, and a
//! data file that is a FIFO or a device, stop the run with exit 2 before the server sees a request. Devices and
//! symbolic links are written through, never replaced by a plain file. `/dev/stdout` is nest's own stdout (a pipe,
//! a file opened with `>>`), one report at most goes there, and a stdout or stderr that refuses writes (`/dev/full`)
//! costs only the lines printed there.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::server::{Reply, Server};
use crate::support::{RUN_LIMIT, Sandbox};

const ONE_GET: &str = "task(1, get);\n\nfn get() { client.get(\"/x\"); }\n";

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().expect("run mkfifo").success());
}

fn is_char_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).unwrap().file_type().is_char_device()
}

#[test]
fn a_report_path_that_is_a_folder_is_refused_before_load() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let folder = sandbox.root().join("out");
    for flag in ["--json", "--html", "--junit"] {
        let run = sandbox.nest(
            &["run", "-y", "-u", "1", "--iterations", "3", "-H", &server.url(), "--taskset-dir"]
                .map(str::to_owned)
                .into_iter()
                .chain([sandbox.dir().display().to_string(), flag.to_owned(), folder.display().to_string()])
                .collect::<Vec<_>>(),
            &[],
        );
        run.assert_code(2);
        assert!(run.stderr.contains("is a directory"), "{flag}: {}", run.context());
    }
    assert_eq!(server.total(), 0, "nothing is sent when a report cannot be written");
    assert!(folder.is_dir());
}

#[test]
fn a_report_path_that_is_a_fifo_is_refused_before_load_without_hanging() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let fifo = sandbox.root().join("out/r.html");
    mkfifo(&fifo);
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "3", "--html", &fifo.display().to_string()]);
    run.assert_code(2);
    assert!(run.stderr.contains("not a regular file"), "{}", run.context());
    assert_eq!(server.total(), 0);
    assert!(!run.has_report(), "no load, no report");
}

#[test]
fn a_character_device_is_written_in_place_and_stays_a_device() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let run = sandbox.nest(
        &["run", "-y", "-u", "1", "--iterations", "3", "-H", &server.url(), "--json", "/dev/null", "--taskset-dir"]
            .map(str::to_owned)
            .into_iter()
            .chain([sandbox.dir().display().to_string(), "--html".into(), "/dev/null".into()])
            .collect::<Vec<_>>(),
        &[],
    );
    run.assert_code(0);
    assert!(run.stderr.contains("report written to /dev/null"), "{}", run.context());
    assert_eq!(server.total(), 3);
    assert!(is_char_device("/dev/null"), "/dev/null was replaced by a file");
}

#[test]
fn json_dash_writes_the_report_alone_on_stdout() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let dir = sandbox.dir().display().to_string();
    let run = sandbox.nest(
        &["run", "-y", "-u", "1", "--iterations", "4", "-H", &server.url(), "--json", "-", "--taskset-dir", &dir],
        &[],
    );
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e})\n{}", run.context()));
    assert_eq!(json["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(server.total(), 4);
    assert!(!Path::new(&sandbox.root().join("-")).exists(), "no file named -");
}

#[test]
fn a_symlinked_report_is_written_through_to_its_target() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let target = sandbox.root().join("kept.json");
    std::fs::write(&target, "old").unwrap();
    std::os::unix::fs::symlink(&target, sandbox.json_path()).unwrap();
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "5"]);
    run.assert_code(0);
    assert!(std::fs::symlink_metadata(sandbox.json_path()).unwrap().file_type().is_symlink(), "the link stays");
    // The report is read through the link: it is the target that holds it.
    assert_eq!(run.report().total_requests(), server.total());
    assert_eq!(server.total(), 5);
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(kept["totals"]["requests"].as_u64(), Some(5));
    let leftovers: Vec<_> =
        std::fs::read_dir(sandbox.root().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["r.json"], "no temporary left behind");
}

#[test]
fn a_data_file_that_is_a_fifo_or_a_device_is_refused_before_load() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", "task(1, get);\n\nfn get() { let u = data.next(\"users\"); client.get(\"/x\"); }\n");
    mkfifo(&sandbox.root().join("users.csv"));
    std::os::unix::fs::symlink("/dev/zero", sandbox.root().join("zero.json")).unwrap();
    for file in ["users.csv", "zero.json"] {
        sandbox.write_config(&format!("data:\n  users: {file}\n"));
        // --no-confine: /dev/zero is outside the project too, and this test is about the file's type.
        let running = sandbox.spawn(&server.url(), &["-u", "1", "--iterations", "3", "--no-confine"]);
        // Before the fix the FIFO blocked the load forever and /dev/zero exhausted memory.
        let run = running.wait(RUN_LIMIT.min(Duration::from_secs(60)), &sandbox);
        run.assert_code(2);
        assert!(run.stderr.contains(&format!("{file}: the data file is not a regular file")), "{}", run.context());
    }
    assert_eq!(server.total(), 0);
}

/// `import` and `data:` paths must resolve inside the project (the config's folder) or the taskset folder, links
/// resolved; `--no-confine` lifts the check.
#[test]
fn imports_and_data_outside_the_project_are_refused_unless_no_confine() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("lib.rhai"), "fn path() { \"/x\" }\n").unwrap();
    std::fs::write(outside.path().join("users.csv"), "name\nada\n").unwrap();
    // A link planted in the taskset folder, and a data path that climbs out.
    std::os::unix::fs::symlink(outside.path().join("lib.rhai"), sandbox.dir().join("_lib.rhai")).unwrap();
    sandbox.write("get.rhai", "import \"_lib\" as lib;\ntask(1, get);\n\nfn get() { client.get(lib::path()); }\n");
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("outside the project"), "{}", run.context());
    assert!(run.stderr.contains("--no-confine"), "{}", run.context());
    assert_eq!(server.total(), 0);

    sandbox.write("get.rhai", "task(1, get);\n\nfn get() { let u = data.next(\"users\"); client.get(\"/x\"); }\n");
    std::fs::remove_file(sandbox.dir().join("_lib.rhai")).unwrap();
    sandbox.write_config(&format!("data:\n  users: {}\n", outside.path().join("users.csv").display()));
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nest.yaml:2:"), "the error names the declaration: {}", run.context());
    assert!(run.stderr.contains("outside the project"), "{}", run.context());
    assert_eq!(server.total(), 0);

    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "2", "--no-confine"]);
    run.assert_code(0);
    assert_eq!(server.total(), 2);
    assert_eq!(run.report().total_requests(), 2);
}

/// `nest run` against `server` with `extra` arguments, 3 iterations, and the given stdout and stderr.
fn run_with_stdio(sandbox: &Sandbox, server: &Server, extra: &[&str], out: Stdio, err: Stdio) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
    command
        .current_dir(sandbox.root())
        .args(["run", "-y", "-u", "1", "--iterations", "3", "-t", "30s", "-H", &server.url(), "--taskset-dir"])
        .arg(sandbox.dir())
        .args(extra)
        .env_remove("NEST_THRESHOLDS")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    command.output().expect("run nest")
}

fn dev_full() -> Stdio {
    std::fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full").into()
}

/// stdout and stderr on a full disk: every print fails, yet the run completes, the exit code is the verdict
/// (the default gate: 1, as `/fail` fails), and the report files are on disk. Before the fix nest exited 101 at its
/// first message and wrote no report.
#[test]
fn a_run_with_stdout_and_stderr_full_completes_and_writes_its_reports() {
    let server =
        Server::builder().route(|seen| if seen.path == "/fail" { Reply::status(500) } else { Reply::ok() }).start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", "task(1, get);\n\nfn get() { client.get(\"/x\"); client.get(\"/fail\"); }\n");
    let json = sandbox.json_path();
    let junit = sandbox.root().join("out/r.xml");
    let (json_arg, junit_arg) = (json.display().to_string(), junit.display().to_string());
    let output =
        run_with_stdio(&sandbox, &server, &["--json", &json_arg, "--junit", &junit_arg], dev_full(), dev_full());
    assert_eq!(output.status.code(), Some(1), "the default gate's verdict, not a panic: {output:?}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(server.total(), 6);
    assert_eq!(report["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(report["totals"]["failures"].as_u64(), Some(server.count("GET", "/fail")));
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuite"), "the JUnit file is written too");
    // And with only stdout full, the same run passes the gate when nothing fails.
    let ok = Server::start();
    sandbox.write("get.rhai", ONE_GET);
    let output = run_with_stdio(&sandbox, &ok, &["--json", &json_arg], dev_full(), Stdio::piped());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["totals"]["requests"].as_u64(), Some(ok.total()));
    assert_eq!(ok.total(), 3);
}

/// `--json /dev/stdout` into a pipe (`| jq`): written to the pipe, alone (the summary goes to stderr). Before the
/// fix the run was refused: /dev/stdout resolved to `pipe:[…]`, "a link to a file that does not exist".
#[test]
fn json_to_dev_stdout_goes_down_a_pipe_alone() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let output = run_with_stdio(&sandbox, &server, &["--json", "/dev/stdout"], Stdio::piped(), Stdio::piped());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not only JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(json["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(server.total(), 3);
    assert!(stderr.contains("/x"), "the summary is on stderr: {stderr}");
}

/// `--json /dev/stdout >> ci.log`: the JSON is appended to the log through nest's own stdout; what the log held
/// stays, and the file is not replaced. Before the fix /dev/stdout resolved to ci.log, which was renamed over.
#[test]
fn json_to_dev_stdout_appends_to_the_file_stdout_is() {
    use std::os::unix::fs::MetadataExt;
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let log = sandbox.root().join("ci.log");
    std::fs::write(&log, "earlier build output\n").unwrap();
    let inode = std::fs::metadata(&log).unwrap().ino();
    let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let output = run_with_stdio(&sandbox, &server, &["--json", "/dev/stdout"], append.into(), Stdio::piped());
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::metadata(&log).unwrap().ino(), inode, "ci.log is the same file, not a replacement");
    let text = std::fs::read_to_string(&log).unwrap();
    let rest = text.strip_prefix("earlier build output\n").unwrap_or_else(|| panic!("earlier content lost:\n{text}"));
    let json: serde_json::Value = serde_json::from_str(rest).unwrap_or_else(|e| panic!("not the JSON ({e}):\n{rest}"));
    assert_eq!(json["totals"]["requests"].as_u64(), Some(server.total()));
    assert_eq!(server.total(), 3);
}

/// Any one report may go to stdout (`-` or `/dev/stdout`), and then the summary goes to stderr; two reports there,
/// or `--csv -` (a prefix for several files), are usage errors before any load.
#[test]
fn one_report_on_stdout_moves_the_summary_and_two_are_refused() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("get.rhai", ONE_GET);
    let output = run_with_stdio(&sandbox, &server, &["--html", "-"], Stdio::piped(), Stdio::piped());
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("<!DOCTYPE html>"), "only the HTML on stdout:\n{stdout}");
    assert!(stdout.trim_end().ends_with("</html>"), "only the HTML on stdout:\n{stdout}");
    assert!(stderr.contains("Requests"), "the summary is on stderr: {stderr}");
    assert_eq!(server.total(), 3);
    let refused: [&[&str]; 3] =
        [&["--json", "-", "--junit", "-"], &["--html", "/dev/stdout", "--json", "-"], &["--csv", "-"]];
    for args in refused {
        let output = run_with_stdio(&sandbox, &server, args, Stdio::piped(), Stdio::piped());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("stdout") || stderr.contains("--csv"), "{args:?}: {stderr}");
    }
    assert_eq!(server.total(), 3, "nothing sent by the refused runs");
    assert!(!sandbox.root().join("-_stats.csv").exists());
}
