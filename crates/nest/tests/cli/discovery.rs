//! Finding tasksets: nested folders are walked, `_`/`.`-prefixed names and non-`.rhai` files are skipped.

use crate::server::Server;
use crate::support::Sandbox;

#[test]
fn nested_tasksets_are_found_and_private_ones_skipped() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let skipped = r#"
task(1, skip);

fn skip() { client.get("/skipped"); }
"#;
    sandbox
        .write(
            "x/y/deep.rhai",
            r#"
task(1, deep);

fn deep() { client.get("/deep"); }
"#,
        )
        .write("_private.rhai", skipped)
        .write("_lib/skip.rhai", skipped)
        .write("x/_nested.rhai", skipped)
        // Never compiled: a syntax error here must not stop the run.
        .write(".hidden/skip.rhai", "task(1, skip);\nlet x = ;\n")
        .write("notes.txt", "task(1, skip); not a taskset\n")
        .write("x/y/deep.rhai.bak", skipped);
    let run = sandbox.run(&server.url(), &["-u", "2", "-t", "1s"]);
    run.assert_code(0);
    let report = run.report();
    let deep = server.count("GET", "/deep");
    assert!(deep > 0, "{}", run.context());
    assert_eq!(server.count("GET", "/skipped"), 0);
    assert_eq!(server.total(), deep, "{:?}", server.counts());
    assert_eq!(report.total_requests(), deep);
    let tasks = report.tasks();
    assert!(!tasks.is_empty(), "{}", run.context());
    for t in &tasks {
        assert_eq!((t.taskset.as_str(), t.task.as_str()), ("x/y/deep", "deep"));
    }
    assert_eq!(report.runs("x/y/deep", "deep"), deep);
}

/// `nest run -f FILE`, as a Locust user types it: only that file runs, named by its stem, and `import` resolves
/// from its folder; the other `.rhai` files beside it are not tasksets.
#[test]
fn a_single_file_runs_as_the_only_taskset() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox
        .write("_paths.rhai", "fn home() { \"/home\" }\n")
        .write("locustfile.rhai", "import \"_paths\" as p;\ntask(1, home);\n\nfn home() { client.get(p::home()); }\n")
        .write("other.rhai", "task(1, other);\n\nfn other() { client.get(\"/other\"); }\n");
    let file = sandbox.path_of("locustfile.rhai");
    let mut args: Vec<String> = ["run", "-f", &file, "-H", &server.url(), "-u", "2", "-t", "1s", "-y", "--headless"]
        .map(str::to_owned)
        .to_vec();
    args.extend(sandbox.json_args());
    let run = sandbox.nest(&args, &[]);
    run.assert_code(0);
    let home = server.count("GET", "/home");
    assert!(home > 0, "{}", run.context());
    assert_eq!(server.total(), home, "only the named file runs: {:?}", server.counts());
    assert_eq!(run.report().total_requests(), home);
    assert_eq!(run.report().runs("locustfile", "home"), home);

    let list = sandbox.nest(&["list", "--locustfile", &file], &[]);
    list.assert_code(0);
    assert!(list.stdout.contains("locustfile") && !list.stdout.contains("other"), "{}", list.context());
    assert!(list.stdout.contains(&format!("1 taskset in {file} (no config file)")), "{}", list.context());
}

#[test]
fn a_path_that_is_neither_folder_nor_rhai_file_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write_root("locustfile.py", "from locust import HttpUser\n").write_root("notes.txt", "");
    let run = sandbox.nest(&["list", "-f", "locustfile.py"], &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("locustfile.py: not a taskset: nest runs Rhai tasksets"), "{}", run.context());
    let run = sandbox.nest(&["list", "-f", "notes.txt"], &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("notes.txt: not a taskset: give a `.rhai` file"), "{}", run.context());
    let run = sandbox.nest(&["list", "-f", "missing"], &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("missing: taskset folder or file not found"), "{}", run.context());
}
