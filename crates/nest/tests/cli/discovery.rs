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
