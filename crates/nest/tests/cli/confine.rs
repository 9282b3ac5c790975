//! `--confine` (the default) against the ways an `import` named a file outside the project and was read anyway:
//! a dotted name (Rhai replaces any extension with `.rhai`, so `evil.x` reads `evil.rhai`), and an absolute path
//! of that kind. Both are refused by `nest list` and `nest run` before any request; `--no-confine` reads the
//! same module, which the server then sees.

use crate::server::Server;
use crate::support::Sandbox;

/// An `outside/evil.rhai` (beside, not inside, the sandbox) whose `path()` the script requests.
fn outside() -> tempfile::TempDir {
    let outside = tempfile::Builder::new().prefix("nest-outside-").tempdir().unwrap();
    std::fs::write(outside.path().join("evil.rhai"), "fn path() { \"/from-outside\" }\n").unwrap();
    outside
}

fn importing(path: &str) -> String {
    format!("import \"{path}\" as evil;\ntask(1, get);\n\nfn get() {{ client.get(evil::path()); }}\n")
}

fn assert_refused(sandbox: &Sandbox, server: &Server) {
    let list = sandbox.nest(&["list", "--taskset-dir", &sandbox.dir().display().to_string()], &[]);
    list.assert_code(2);
    assert!(list.stderr.contains("outside the project"), "{}", list.context());
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("outside the project") && run.stderr.contains("--no-confine"), "{}", run.context());
    assert_eq!(server.total(), 0);
}

#[test]
fn dotted_and_absolute_imports_outside_the_project_are_refused() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    let outside = outside();
    let name = outside.path().file_name().unwrap().to_str().unwrap();
    let climbing =
        format!("{}/{name}/evil.x", sandbox.dir().ancestors().skip(1).map(|_| "..").collect::<Vec<_>>().join("/"));
    let absolute = outside.path().join("evil.x").display().to_string();
    for path in [climbing.as_str(), absolute.as_str()] {
        sandbox.write("get.rhai", &importing(path));
        assert_refused(&sandbox, &server);
    }
    let run = sandbox.run(&server.url(), &["-u", "1", "--iterations", "2", "--no-confine"]);
    run.assert_code(0);
    assert_eq!(server.count("GET", "/from-outside"), 2, "--no-confine reads the same module");
}
