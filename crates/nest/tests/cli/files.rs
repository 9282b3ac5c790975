//! The files nest writes and reads are checked before any load: a report path that is a folder or a FIFO, and a
//! data file that is a FIFO or a device, stop the run with exit 2 before the server sees a request. Devices and
//! symbolic links are written through, never replaced by a plain file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::server::Server;
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
