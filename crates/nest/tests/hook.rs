//! `nest hook install` and `nest hook uninstall` as a developer meets them: real `git push`es from a temporary
//! repository to a local bare remote, with the hook running nest against a loopback server started by the test.
//!
//! Each test has its own temp dir, its own server on port 0 and a git configuration isolated from the machine's
//! (no global or system config), so a global `core.hooksPath` cannot leak in. Every child process is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NEST: &str = env!("CARGO_BIN_EXE_nest");
/// A push runs nest for about a second; anything near this means something hangs.
const TIMEOUT: Duration = Duration::from_secs(45);

/// A keep-alive HTTP/1.1 server on 127.0.0.1: 200 everywhere, 500 under `/fail`. It counts the requests it saw.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &counter);
                });
            }
        });
        Server { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, hits: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut body_len = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                body_len = value.trim().parse().unwrap_or(0);
            }
        }
        std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink())?;
        hits.fetch_add(1, Ordering::SeqCst);
        let (status, body) =
            if path.starts_with("/fail") { ("500 Internal Server Error", "no") } else { ("200 OK", "ok") };
        write!(writer, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}", body.len())?;
    }
}

/// What a finished child process left.
struct Outcome {
    code: Option<i32>,
    output: String,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs a command with stdin closed and a deadline; stdout and stderr are kept together, in order of arrival.
fn run(mut cmd: Command, dir: &Path) -> Outcome {
    let log = dir.join(format!("output-{}.log", std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos()));
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file);
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {TIMEOUT:?}:\n{}", std::fs::read_to_string(&log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    Outcome { code: status.code(), output }
}

/// A working repository with one commit, an `origin` that is a bare repository beside it, a taskset and a nest.yaml
/// pointing at `server`.
struct Repo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    work: PathBuf,
    remote: PathBuf,
}

impl Repo {
    fn new(server: &Server) -> Repo {
        Repo::with_taskset(server, "wait_time(constant(0.05));\ntask(1, ping);\nfn ping() { client.get(\"/\"); }\n")
    }

    fn with_taskset(server: &Server, taskset: &str) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (work, remote) = (root.join("work"), root.join("remote.git"));
        std::fs::create_dir_all(work.join("tasksets")).unwrap();
        let repo = Repo { _tmp: tmp, root, work, remote };
        repo.git_in(&repo.root, &["init", "-q", "--bare", "remote.git"]);
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Nest Test"]);
        repo.git(&["config", "user.email", "nest@example.invalid"]);
        repo.git(&["remote", "add", "origin", repo.remote.to_str().unwrap()]);
        std::fs::write(repo.work.join("tasksets/ping.rhai"), taskset).unwrap();
        let config = format!("host: {}\nusers: 2\nrun_time: 1s\nstop_timeout: 1s\n", server.url);
        std::fs::write(repo.work.join("nest.yaml"), config).unwrap();
        repo.git(&["add", "."]);
        repo.commit("Add the load test");
        repo
    }

    /// A command with the environment of a clean machine: no git config but the repository's, no NEST_* settings.
    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CEILING_DIRECTORIES", &self.root)
            .env("NO_COLOR", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("NEST_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = self.command("git", dir);
        cmd.args(args);
        let out = run(cmd, &self.root);
        assert!(out.ok(), "git {args:?} failed:\n{}", out.output);
        out.output.trim().to_owned()
    }

    fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.work, args)
    }

    /// Commits everything with `subject` and returns the short sha.
    fn commit(&self, subject: &str) -> String {
        self.git(&["commit", "-q", "--allow-empty", "-m", subject]);
        self.git(&["rev-parse", "--short", "HEAD"])
    }

    fn nest(&self, args: &[&str]) -> Outcome {
        let mut cmd = self.command(NEST, &self.work);
        cmd.args(args);
        run(cmd, &self.root)
    }

    fn install(&self, args: &[&str]) {
        let out = self.nest(&[&["hook", "install"], args].concat());
        assert!(out.ok(), "install failed:\n{}", out.output);
    }

    fn push(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut cmd = self.command("git", &self.work);
        cmd.arg("push").args(args).envs(env.iter().copied());
        run(cmd, &self.root)
    }

    /// The sha the remote has for `branch`, if any.
    fn remote_has(&self, branch: &str) -> Option<String> {
        let mut cmd = self.command("git", &self.remote);
        cmd.args(["rev-parse", "--verify", "-q", "--short", &format!("refs/heads/{branch}")]);
        let out = run(cmd, &self.root);
        out.ok().then(|| out.output.trim().to_owned())
    }

    fn hook(&self, name: &str) -> PathBuf {
        self.work.join(".git/hooks").join(name)
    }

    /// Writes a hook that nest did not write: it leaves `marker` with its stdin in it, then exits with `code`.
    fn foreign_hook(&self, code: i32) -> PathBuf {
        let marker = self.root.join("foreign-hook-ran");
        let script = format!("#!/bin/sh\n# someone else's hook\ncat > '{}'\nexit {code}\n", marker.display());
        write_executable(&self.hook("pre-push"), &script);
        marker
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_passing_run_lets_the_push_through() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.install(&[]);
    let sha = repo.commit("Speed up the search page");

    let out = repo.push(&["-u", "origin", "main"], &[]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("load test before pushing {sha} (Speed up the search page) to origin main")));
    assert!(out.output.contains("the load test passed"), "{}", out.output);
    assert!(server.hits() > 0, "nest sent no request");
    assert_eq!(repo.remote_has("main"), Some(sha));
}

#[test]
fn a_broken_taskset_blocks_the_push_and_says_how_to_skip() {
    let server = Server::start();
    let repo = Repo::with_taskset(&server, "task(1, ping);\nfn ping() { client.get(\"/\") \n");
    repo.install(&[]);
    let sha = repo.commit("Break the taskset");

    let out = repo.push(&["origin", "main"], &[]);
    assert!(!out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("load test before pushing {sha} (Break the taskset)")), "{}", out.output);
    assert!(out.output.contains("(exit 2): the push is blocked"), "{}", out.output);
    assert!(out.output.contains("git push --no-verify, or NEST_SKIP=1 git push"), "{}", out.output);
    assert_eq!(repo.remote_has("main"), None);
    assert_eq!(server.hits(), 0);
}

/// The hook's temporary worktrees: none may be left once a push is over, whatever its outcome.
fn worktrees(repo: &Repo) -> Vec<String> {
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    list.lines().filter_map(|l| l.strip_prefix("worktree ")).map(str::to_owned).collect()
}

#[test]
fn an_untracked_broken_file_does_not_block_a_good_commit() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.install(&[]);
    let sha = repo.commit("Tune the search page");
    // Work in progress, never committed: it would fail `nest run` in the working tree (exit 2).
    std::fs::write(repo.work.join("tasksets/wip.rhai"), "task(1, wip);\nfn wip() { client.get(\"/\") \n").unwrap();
    std::fs::write(repo.work.join("nest.yaml"), "users: [not, a, number]\n").unwrap();

    let out = repo.push(&["origin", "main"], &[]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("testing commit {sha} as committed")), "{}", out.output);
    assert!(out.output.contains(&format!("the load test passed on commit {sha}")), "{}", out.output);
    assert!(server.hits() > 0, "nest sent no request");
    assert_eq!(repo.remote_has("main"), Some(sha));
    assert_eq!(worktrees(&repo), [repo.work.display().to_string()], "the temporary worktree is removed");
    assert!(repo.work.join("tasksets/wip.rhai").is_file(), "the working tree is left as it was");
}

#[test]
fn a_broken_committed_file_blocks_the_push_even_when_the_working_tree_is_fixed() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.install(&[]);
    std::fs::write(repo.work.join("tasksets/new.rhai"), "task(1, new);\nfn new() { client.get(\"/\") \n").unwrap();
    repo.git(&["add", "."]);
    let sha = repo.commit("Add a broken taskset");
    // Fixed on disk but not committed: what is pushed is still broken.
    std::fs::write(repo.work.join("tasksets/new.rhai"), "task(1, new);\nfn new() { client.get(\"/\"); }\n").unwrap();

    let out = repo.push(&["origin", "main"], &[]);
    assert!(!out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("testing commit {sha} as committed")), "{}", out.output);
    assert!(out.output.contains(&format!("commit {sha}: the run could not start")), "{}", out.output);
    assert!(out.output.contains("new.rhai:"), "the error names the broken file: {}", out.output);
    assert_eq!(repo.remote_has("main"), None);
    assert_eq!(server.hits(), 0);
    assert_eq!(worktrees(&repo), [repo.work.display().to_string()], "the temporary worktree is removed on failure");
}

#[test]
fn a_breached_threshold_blocks_the_push() {
    let server = Server::start();
    let repo =
        Repo::with_taskset(&server, "wait_time(constant(0.05));\ntask(1, f);\nfn f() { client.get(\"/fail\"); }\n");
    repo.install(&["--", "--threshold", "error_rate < 1%"]);
    assert!(std::fs::read_to_string(repo.hook("pre-push")).unwrap().contains("--threshold 'error_rate < 1%'"));
    let sha = repo.commit("Return 500s");

    let out = repo.push(&["origin", "main"], &[]);
    assert!(!out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("load test before pushing {sha} (Return 500s)")), "{}", out.output);
    assert!(out.output.contains("a threshold was breached (exit 99): the push is blocked"), "{}", out.output);
    assert!(server.hits() > 0);
    assert_eq!(repo.remote_has("main"), None);
}

/// The run happens in a temporary checkout; a relative report path still lands in the repository, where the
/// person who pushed looks for it, and holds what the server saw.
#[test]
fn relative_report_paths_are_written_in_the_repository() {
    let server = Server::start();
    let repo = Repo::new(&server);
    std::fs::create_dir(repo.work.join("out")).unwrap();
    repo.install(&["--", "--json", "out/pre-push.json", "--csv=out/pre-push"]);
    repo.commit("Report where I can read it");

    let out = repo.push(&["-u", "origin", "main"], &[]);
    assert!(out.ok(), "{}", out.output);
    let text = std::fs::read_to_string(repo.work.join("out/pre-push.json"))
        .unwrap_or_else(|e| panic!("no report in the repository's out/ ({e}):\n{}", out.output));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let requests = report["totals"]["requests"].as_u64().unwrap();
    assert!(requests > 0, "{report}");
    assert_eq!(requests as usize, server.hits(), "the report counts what the server saw");
    assert!(repo.work.join("out/pre-push_stats.csv").is_file(), "{:?}", std::fs::read_dir(repo.work.join("out")));
    assert_eq!(worktrees(&repo), [repo.work.display().to_string()], "the temporary worktree is removed");
}

#[test]
fn every_pushed_commit_is_named() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.install(&[]);
    let main = repo.commit("Tune the cache");
    repo.git(&["switch", "-q", "-c", "feature"]);
    let feature = repo.commit("Try a new index");

    let out = repo.push(&["origin", "main", "feature"], &[]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("pushing {main} (Tune the cache) to origin main")), "{}", out.output);
    assert!(out.output.contains(&format!("pushing {feature} (Try a new index) to origin feature")), "{}", out.output);
    assert_eq!(repo.remote_has("feature"), Some(feature));
}

#[test]
fn a_push_that_only_deletes_refs_runs_nothing() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.git(&["branch", "old"]);
    assert!(repo.push(&["origin", "main", "old"], &[]).ok());
    repo.install(&[]);

    let out = repo.push(&["origin", "--delete", "old"], &[]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains("only deletes refs"), "{}", out.output);
    assert_eq!(server.hits(), 0);
    assert_eq!(repo.remote_has("old"), None);
}

#[test]
fn nest_skip_skips_the_load_test() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.install(&[]);
    let sha = repo.commit("Hotfix");

    let out = repo.push(&["origin", "main"], &[("NEST_SKIP", "1")]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains("NEST_SKIP is set: skipping the load test"), "{}", out.output);
    assert_eq!(server.hits(), 0);
    assert_eq!(repo.remote_has("main"), Some(sha));
}

#[test]
fn a_foreign_hook_is_refused_unless_forced() {
    let server = Server::start();
    let repo = Repo::new(&server);
    let marker = repo.foreign_hook(0);
    let foreign = std::fs::read_to_string(repo.hook("pre-push")).unwrap();

    let out = repo.nest(&["hook", "install"]);
    assert_eq!(out.code, Some(2), "{}", out.output);
    assert!(out.output.contains("nest did not write it; use --chain"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(repo.hook("pre-push")).unwrap(), foreign);

    let out = repo.nest(&["hook", "install", "--force"]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains("replaced a pre-push hook that nest did not write"), "{}", out.output);
    assert!(std::fs::read_to_string(repo.hook("pre-push")).unwrap().contains("# nest pre-push hook v2"));
    assert!(repo.push(&["origin", "main"], &[]).ok());
    assert!(!marker.exists(), "the replaced hook still ran");
    assert!(server.hits() > 0);

    // Installing again over its own hook just updates it.
    let out = repo.nest(&["hook", "install", "--", "-t", "1s"]);
    assert!(out.ok(), "{}", out.output);
    assert!(std::fs::read_to_string(repo.hook("pre-push")).unwrap().contains("run --yes -t 1s <"));
}

#[test]
fn a_chained_hook_runs_first_with_the_same_input() {
    let server = Server::start();
    let repo = Repo::new(&server);
    let marker = repo.foreign_hook(0);
    let foreign = std::fs::read_to_string(repo.hook("pre-push")).unwrap();
    repo.install(&["--chain"]);
    assert_eq!(std::fs::read_to_string(repo.hook("pre-push.nest-chained")).unwrap(), foreign);

    let out = repo.push(&["origin", "main"], &[]);
    assert!(out.ok(), "{}", out.output);
    let stdin = std::fs::read_to_string(&marker).expect("the chained hook did not run");
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(stdin, format!("refs/heads/main {head} refs/heads/main {}\n", "0".repeat(head.len())));
    assert!(server.hits() > 0);
}

#[test]
fn a_failing_chained_hook_blocks_the_push_before_nest_runs() {
    let server = Server::start();
    let repo = Repo::new(&server);
    let marker = repo.foreign_hook(3);
    repo.install(&["--chain"]);

    let out = repo.push(&["origin", "main"], &[]);
    assert!(!out.ok(), "{}", out.output);
    assert!(marker.exists());
    assert!(out.output.contains("pre-push.nest-chained) failed (exit 3): the push is blocked"), "{}", out.output);
    assert_eq!(server.hits(), 0);
    assert_eq!(repo.remote_has("main"), None);
}

#[test]
fn core_hooks_path_is_respected() {
    let server = Server::start();
    let repo = Repo::new(&server);
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    // From a subfolder, to show that the path is the repository's, not the current directory's.
    std::fs::create_dir_all(repo.work.join("src")).unwrap();
    let mut cmd = repo.command(NEST, &repo.work.join("src"));
    cmd.args(["hook", "install"]);
    let out = run(cmd, &repo.root);
    assert!(out.ok(), "{}", out.output);
    assert!(repo.work.join(".githooks/pre-push").is_file());
    assert!(!repo.hook("pre-push").exists());

    let sha = repo.commit("Use the shared hooks folder");
    let out = repo.push(&["origin", "main"], &[]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains(&format!("load test before pushing {sha}")), "{}", out.output);
    assert!(server.hits() > 0);
}

#[test]
fn uninstall_removes_only_its_own_hook() {
    let server = Server::start();
    let repo = Repo::new(&server);

    // nest's own hook, alone: removed.
    repo.install(&[]);
    let out = repo.nest(&["hook", "uninstall"]);
    assert!(out.ok(), "{}", out.output);
    assert!(!repo.hook("pre-push").exists());
    let out = repo.nest(&["hook", "uninstall"]);
    assert!(out.ok() && out.output.contains("nothing to uninstall"), "{}", out.output);

    // Someone else's hook: left alone.
    repo.foreign_hook(0);
    let foreign = std::fs::read_to_string(repo.hook("pre-push")).unwrap();
    let out = repo.nest(&["hook", "uninstall"]);
    assert_eq!(out.code, Some(2), "{}", out.output);
    assert!(out.output.contains("was not written by nest"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(repo.hook("pre-push")).unwrap(), foreign);

    // Chained: the previous hook comes back.
    repo.install(&["--chain"]);
    let out = repo.nest(&["hook", "uninstall"]);
    assert!(out.ok(), "{}", out.output);
    assert!(out.output.contains("restored the previous one"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(repo.hook("pre-push")).unwrap(), foreign);
    assert!(!repo.hook("pre-push.nest-chained").exists());
    assert_eq!(server.hits(), 0);
}

#[test]
fn install_outside_a_repository_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let mut cmd = Command::new(NEST);
    cmd.current_dir(&root).env("GIT_CEILING_DIRECTORIES", &root).env_remove("GIT_DIR").args(["hook", "install"]);
    let out = run(cmd, &root);
    assert_eq!(out.code, Some(2), "{}", out.output);
    assert!(out.output.contains("not inside a git repository"), "{}", out.output);
}
