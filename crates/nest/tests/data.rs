//! Shared test data, end to end: `nest run` against a loopback server that records which account is logged in at
//! each moment.
//!
//! The server treats `GET /login?u=NAME` as "NAME is now in use" and `GET /logout?u=NAME` as "NAME is free", and
//! records a violation whenever an account is logged in twice at once (or logged out while not in use). Tests
//! assert what the server saw and what the JSON report's `pools[]` says. Each test has its own temp dir and its own
//! server on port 0; every `nest` process is bounded.

use std::collections::HashSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::Value;

/// Far above every run here: reaching it means something hangs.
const RUN_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------- the server

#[derive(Default)]
struct Seen {
    requests: u64,
    logged_in: HashSet<String>,
    used: HashSet<String>,
    logins: u64,
    violations: Vec<String>,
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 with its own runtime; `GET /hang` never answers.
struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let state = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let stream = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                        _ = &mut stopped => break,
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| answer(req, state.clone()));
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                    });
                }
            });
            // Dropping the runtime cancels the connections still open (and the requests that hang).
        });
        Server { url, seen, stop: Some(stop), thread: Some(thread) }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let account = req.uri().query().and_then(|q| q.strip_prefix("u=")).unwrap_or("").to_owned();
    let path = req.uri().path().to_owned();
    {
        let mut s = seen.lock().unwrap();
        s.requests += 1;
        match path.as_str() {
            "/login" => {
                s.logins += 1;
                s.used.insert(account.clone());
                if !s.logged_in.insert(account.clone()) {
                    s.violations.push(format!("{account} logged in twice at once"));
                }
            }
            "/logout" if !s.logged_in.remove(&account) => s.violations.push(format!("{account} logged out while free")),
            _ => {}
        }
    }
    if path == "/hang" {
        std::future::pending::<()>().await;
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
}

// ---------------------------------------------------------------- running nest

/// A temp folder with `tasksets/` (and its `_data/`), an optional `nest.yaml`, and `out/r.json`.
struct Sandbox {
    root: tempfile::TempDir,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Option<Value>,
}

impl Run {
    fn context(&self) -> String {
        format!("exit code {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// The report's `pools[]` row of `name`.
    fn pool(&self, name: &str) -> &Value {
        let report = self.report.as_ref().unwrap_or_else(|| panic!("no report\n{}", self.context()));
        let pools =
            report["pools"].as_array().unwrap_or_else(|| panic!("no pools[] in the report\n{}", self.context()));
        pools.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no pool {name} in {pools:?}"))
    }
}

fn count(row: &Value, key: &str) -> u64 {
    row[key].as_u64().unwrap_or_else(|| panic!("`{key}` is not a count in {row}"))
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::Builder::new().prefix("nest-data-").tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("tasksets")).unwrap();
        std::fs::create_dir_all(root.path().join("out")).unwrap();
        Sandbox { root }
    }

    /// Writes `relative` (under the sandbox root), creating its folders.
    fn write(&self, relative: &str, text: &str) -> &Sandbox {
        let path = self.root.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// `nest run` on `tasksets/` against `host`, with 2 workers, `-y` and `--json`, plus `args`.
    fn run(&self, host: &str, args: &[&str]) -> Run {
        let json = self.path("out/r.json");
        let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
        command.current_dir(self.root.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("NEST_") {
                command.env_remove(key);
            }
        }
        command
            .arg("run")
            .arg("--taskset-dir")
            .arg(self.path("tasksets"))
            .args(["-H", host, "--workers", "2", "-y", "--json"])
            .arg(&json)
            .args(args);
        let (code, stdout, stderr) = bounded(command);
        let report = std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).unwrap());
        Run { code, stdout, stderr, report }
    }
}

/// Runs `command` to its end, at most [`RUN_LIMIT`]; returns the exit code, stdout and stderr.
fn bounded(mut command: Command) -> (Option<i32>, String, String) {
    let out_dir = tempfile::tempdir().unwrap();
    let (out, err) = (out_dir.path().join("out"), out_dir.path().join("err"));
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nest did not exit within {RUN_LIMIT:?}; stderr:\n{}", std::fs::read_to_string(&err).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(err).unwrap())
}

fn accounts(n: usize) -> String {
    let mut csv = String::from("name,password\n");
    for i in 0..n {
        csv.push_str(&format!("account{i},secret{i}\n"));
    }
    csv
}

// ---------------------------------------------------------------- claims

#[test]
fn a_thousand_users_share_three_hundred_accounts_one_at_a_time() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("nest.yaml", "data:\n  users: data/users.csv\n").write("data/users.csv", &accounts(300)).write(
        "tasksets/session.rhai",
        r#"
            wait_time(constant(0.01));
            task(1, session);

            fn session() {
                let account = data.claim("users");
                client.get(`/login?u=${account.name}`, #{ name: "/login" });
                sleep(0.01);                                  // use the account a little while
                client.get(`/logout?u=${account.name}`, #{ name: "/logout" });
                data.release("users", account);
            }
            "#,
    );
    let run = sandbox.run(&server.url, &["-u", "1000", "-t", "4s"]);
    assert_eq!(run.code, Some(0), "{}", run.context());
    let (violations, used, still_in, logins) =
        server.seen(|s| (s.violations.clone(), s.used.len(), s.logged_in.len(), s.logins));
    assert!(violations.is_empty(), "accounts in use twice at once: {:?}", &violations[..violations.len().min(10)]);
    assert_eq!(used, 300, "every account was used");
    assert_eq!(still_in, 0, "every session ended: the run did not deadlock");
    let pool = run.pool("users");
    assert_eq!(count(pool, "rows"), 300);
    assert_eq!(count(pool, "claims"), logins, "one claim per login");
    assert_eq!(count(pool, "releases"), count(pool, "claims"));
    assert_eq!(count(pool, "max_held"), 300);
    assert!(count(pool, "waits") > 0 && count(pool, "timeouts") == 0, "{pool}");
    assert!(run.stdout.contains("Data pools") && run.stdout.contains("users"), "{}", run.context());
}

#[test]
fn users_that_leave_or_stop_give_their_rows_back() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("tasksets/_data/accounts.csv", &accounts(10)).write(
        "tasksets/hold.rhai",
        r#"
        wait_time(constant(0.005));
        task(5, browse);
        task(1, leave);

        fn on_start() {                    // claimed here, never released by the script
            user.account = data.claim("accounts");
            client.get(`/login?u=${user.account.name}`, #{ name: "/login" });
        }
        fn browse() { client.get("/browse"); }
        fn leave() { interrupt(); }
        fn on_stop() { client.get(`/logout?u=${user.account.name}`, #{ name: "/logout" }); }
        "#,
    );
    let run = sandbox.run(&server.url, &["-u", "20", "-t", "2s"]);
    assert_eq!(run.code, Some(0), "{}", run.context());
    let (violations, still_in) = server.seen(|s| (s.violations.clone(), s.logged_in.len()));
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(still_in, 0, "on_stop ran before every row went back");
    let pool = run.pool("accounts");
    assert!(count(pool, "claims") > 10, "rows were claimed again after users left: {pool}");
    assert_eq!(count(pool, "releases"), count(pool, "claims"), "{pool}");
}

#[test]
fn users_cancelled_at_the_stop_timeout_give_their_rows_back() {
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("tasksets/_data/accounts.csv", &accounts(2)).write(
        "tasksets/stuck.rhai",
        r#"
        task(1, stuck);
        fn on_start() { user.account = data.claim("accounts"); }
        fn stuck() { client.get("/hang"); }     // never answered: cancelled at the stop timeout
        "#,
    );
    let run = sandbox.run(&server.url, &["-u", "4", "-t", "1s", "--stop-timeout", "1s"]);
    assert_eq!(run.code, Some(0), "{}", run.context());
    assert!(run.stderr.contains("cancelled"), "{}", run.context());
    let pool = run.pool("accounts");
    assert!(count(pool, "claims") >= 2, "{pool}");
    assert_eq!(count(pool, "releases"), count(pool, "claims"), "{pool}");
}

// ---------------------------------------------------------------- bad data: exit 2, nothing sent

/// Runs nest on `sandbox` and asserts exit 2, no request, no report, and each of `expected` in the error.
fn refused(sandbox: &Sandbox, expected: &[&str]) {
    let server = Server::start();
    let run = sandbox.run(&server.url, &["-u", "2", "-t", "2s"]);
    assert_eq!(run.code, Some(2), "{}", run.context());
    for text in expected {
        assert!(run.stderr.contains(text), "expected `{text}` in:\n{}", run.context());
    }
    assert!(run.stderr.contains("nothing was run"), "{}", run.context());
    assert_eq!(server.seen(|s| s.requests), 0, "no request may be sent");
    assert!(run.report.is_none(), "no report is written");
}

const CLAIMS_USERS: &str = "task(1, t);\nfn t() {\n    let u = data.claim(\"users\");\n}\n";

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn a_missing_data_file_is_refused_with_its_declaration() {
    let sandbox = Sandbox::new();
    sandbox.write("nest.yaml", "users: 2\ndata:\n  users: data/missing.csv\n").write("tasksets/t.rhai", CLAIMS_USERS);
    refused(&sandbox, &["data/missing.csv: cannot read the data file: ", "(declared at nest.yaml:3:3)"]);
}

#[test]
fn a_csv_row_with_the_wrong_number_of_fields_is_refused_with_its_line() {
    let sandbox = Sandbox::new();
    sandbox
        .write("tasksets/_data/users.csv", "name,password\na,1\nb,2\nc\nd,4\n")
        .write("tasksets/t.rhai", CLAIMS_USERS);
    let file = display(&sandbox.path("tasksets/_data/users.csv"));
    refused(&sandbox, &[&format!("{file}:4: expected 2 fields, found 1")]);
}

#[test]
fn invalid_json_is_refused_with_line_and_column() {
    let sandbox = Sandbox::new();
    sandbox
        .write("tasksets/_data/users.json", "[\n  {\"name\": \"a\"},\n  {\"name\": }\n]\n")
        .write("tasksets/t.rhai", CLAIMS_USERS);
    let file = display(&sandbox.path("tasksets/_data/users.json"));
    refused(&sandbox, &[&format!("{file}:3:12: invalid JSON: expected value")]);
}

#[test]
fn json_that_is_not_an_array_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write("tasksets/_data/users.json", "{\"name\": \"a\"}").write("tasksets/t.rhai", CLAIMS_USERS);
    refused(&sandbox, &["expected a JSON array of rows (objects or values), found an object"]);
}

#[test]
fn an_empty_pool_that_a_script_uses_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.write("tasksets/_data/users.csv", "name,password\n").write("tasksets/t.rhai", CLAIMS_USERS);
    let (script, data) =
        (display(&sandbox.path("tasksets/t.rhai")), display(&sandbox.path("tasksets/_data/users.csv")));
    refused(&sandbox, &[&format!("{script}:3:13: data.claim(\"users\"): the data set `users` ({data}) has no row")]);
}

#[test]
fn an_undeclared_pool_name_is_refused_at_its_place() {
    let sandbox = Sandbox::new();
    sandbox
        .write("tasksets/_data/users.csv", &accounts(3))
        .write("tasksets/t.rhai", "task(1, t);\nfn t() {\n    let u = data.claim(\"userz\");\n}\n");
    let script = display(&sandbox.path("tasksets/t.rhai"));
    refused(&sandbox, &[&format!("{script}:3:13: data.claim(\"userz\"): no data set named `userz` (declared: users)")]);
}

#[test]
fn nest_list_checks_data_too() {
    let sandbox = Sandbox::new();
    sandbox.write("tasksets/_data/users.csv", "a,b\n1\n").write("tasksets/t.rhai", CLAIMS_USERS);
    let mut command = Command::new(env!("CARGO_BIN_EXE_nest"));
    command.current_dir(sandbox.root.path()).arg("list").arg("--taskset-dir").arg(sandbox.path("tasksets"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEST_") {
            command.env_remove(key);
        }
    }
    let (code, _, stderr) = bounded(command);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("users.csv:2: expected 2 fields, found 1"), "{stderr}");
}
