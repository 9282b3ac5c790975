//! `nest launch ssh` for real: two `sshd` on loopback addresses (127.0.0.2 and 127.0.0.3), each with its own config,
//! host key and an authorized key made here, a known_hosts file made here, and an ssh config passed with
//! `--ssh-config`. The target counts the requests of both segments; the merged report must hold exactly as many.
//! Skips, saying why, without `sshd`/`ssh`/`ssh-keygen`; fails instead under `NEST_REQUIRE_TOOLS=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::support::{RUN_LIMIT, Sandbox};

/// An `sshd` started by a test, stopped when dropped.
struct Sshd {
    child: Child,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OpenSSH programs, or why the test cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |name: &str, extra: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(extra.iter().map(PathBuf::from))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("`{name}` is not installed (Debian: openssh-server openssh-client)"))
    };
    let sshd = find("sshd", &["/usr/sbin", "/usr/local/sbin"])?;
    find("ssh", &[])?;
    let keygen = find("ssh-keygen", &[])?;
    Ok((sshd, keygen))
}

/// The tools, or `None` after printing why the test is skipped (a failure under `NEST_REQUIRE_TOOLS=1`).
fn tools_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match tools() {
        Ok(tools) => Some(tools),
        Err(why) if std::env::var("NEST_REQUIRE_TOOLS").as_deref() == Ok("1") => panic!("{test}: {why}"),
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            None
        }
    }
}

fn keygen(keygen: &Path, path: &Path) {
    let status = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "nest-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
}

/// Two hosts, `alpha` (127.0.0.2) and `beta` (127.0.0.3), each an sshd of its own; the ssh config naming them.
struct Hosts {
    _servers: Vec<Sshd>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

fn start_hosts(sshd: &Path, keygen_path: &Path) -> Hosts {
    let dir = tempfile::Builder::new().prefix("nest-ssh-").tempdir().unwrap();
    let client_key = dir.path().join("id");
    keygen(keygen_path, &client_key);
    let authorized = dir.path().join("authorized_keys");
    std::fs::copy(dir.path().join("id.pub"), &authorized).unwrap();
    // sshd running as root wants its privilege separation folder (the Debian service makes it at boot).
    if nix_is_root() {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(whoami);
    let (mut known, mut client, mut servers) = (String::new(), String::new(), Vec::new());
    for (name, ip) in [("alpha", "127.0.0.2"), ("beta", "127.0.0.3")] {
        let host_key = dir.path().join(format!("{name}_host_key"));
        keygen(keygen_path, &host_key);
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let config = dir.path().join(format!("{name}_sshd_config"));
        let text = format!(
            "Port {port}\nListenAddress {ip}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             LogLevel ERROR\n",
            host_key.display(),
            authorized.display(),
            dir.path().join(format!("{name}.pid")).display(),
        );
        // beta has this very nest on its PATH (so nothing is copied there); alpha has none.
        let text = if name == "beta" {
            let bin = dir.path().join("beta_bin");
            std::fs::create_dir(&bin).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nest"), bin.join("nest")).unwrap();
            format!("{text}SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n", bin.display())
        } else {
            text
        };
        std::fs::write(&config, text).unwrap();
        // Its log (the readiness probe's connections included) goes to a file beside its config.
        let log = std::fs::File::create(dir.path().join(format!("{name}_sshd.log"))).unwrap();
        let child =
            Command::new(sshd).args(["-D", "-e", "-f"]).arg(&config).stdin(Stdio::null()).stderr(log).spawn().unwrap();
        servers.push(Sshd { child });
        wait_for_port(ip, port);
        let public = std::fs::read_to_string(dir.path().join(format!("{name}_host_key.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        known.push_str(&format!("[{ip}]:{port} {kind} {key}\n"));
        client.push_str(&format!(
            "Host {name}\n  HostName {ip}\n  Port {port}\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n",
            client_key.display()
        ));
    }
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, known).unwrap();
    // Host keys are checked strictly, against the file made here only.
    client.push_str(&format!(
        "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
         BatchMode yes\n  ConnectTimeout 10\n",
        known_hosts.display()
    ));
    let config = dir.path().join("ssh_config");
    std::fs::write(&config, client).unwrap();
    Hosts { _servers: servers, config, _dir: dir }
}

fn nix_is_root() -> bool {
    whoami() == "root"
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits (at most 10 s) until something listens on `ip:port`.
fn wait_for_port(ip: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((ip, port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen on {ip}:{port} within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The remote folders the launcher reported (`[host] copied nest and N files in DIR`).
fn remote_dirs(stderr: &str) -> Vec<PathBuf> {
    stderr.lines().filter_map(|l| l.split_once(" files in ").map(|(_, d)| PathBuf::from(d.trim()))).collect()
}

fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write(
        "a.rhai",
        "task(1, a);\n\nfn a() { let u = data.next(\"users\"); client.get(\"/u/\" + u.name); sleep(0.01); }\n",
    );
    sandbox.write_root("data/users.csv", "name\nann\nbob\n");
    sandbox.write_config("data:\n  users: data/users.csv\n");
    sandbox
}

fn launch(sandbox: &Sandbox, hosts: &Hosts, target: &str, duration: &str) -> crate::support::Running {
    let (json, config) = (sandbox.json_path().display().to_string(), hosts.config.display().to_string());
    let args = [
        "launch",
        "ssh",
        "--listen",
        "127.0.0.1:0",
        "--ssh-config",
        &config,
        "--json",
        &json,
        "alpha",
        "beta",
        "-f",
        "tasksets",
        "-H",
        target,
        "-u",
        "4",
        "-t",
        duration,
        "--workers",
        "1",
    ];
    sandbox.spawn_nest(&args, &[])
}

#[test]
fn two_hosts_over_ssh_make_one_run_that_the_server_counts_whole() {
    let Some((sshd, keygen)) = tools_or_skip("two_hosts_over_ssh_make_one_run_that_the_server_counts_whole") else {
        return;
    };
    let hosts = start_hosts(&sshd, &keygen);
    let server = Server::start();
    let sandbox = sandbox();
    let run = launch(&sandbox, &hosts, &server.url(), "2s").wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    let report = run.report();
    assert!(server.total() > 0, "{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "both segments counted\n{}", run.context());
    // The data file was shipped: the requests name its rows.
    assert_eq!(server.count("GET", "/u/ann") + server.count("GET", "/u/bob"), server.total(), "{}", run.context());
    assert_eq!(report.0["run"]["segments"].as_array().map(Vec::len), Some(2), "{}", run.context());
    // alpha lacks nest: the binary was copied; beta has this version on its PATH: only the files.
    assert!(run.stderr.contains("[alpha] copied nest and 3 files in "), "{}", run.context());
    assert!(run.stderr.contains("[beta] 3 files in "), "{}", run.context());
    for host in ["alpha", "beta"] {
        assert!(run.stdout.contains(&format!("[{host}] ")), "the segment's verdict line, prefixed\n{}", run.context());
    }
    let dirs = remote_dirs(&run.stderr);
    assert_eq!(dirs.len(), 2, "{}", run.context());
    for dir in dirs {
        assert!(!dir.exists(), "{} was not cleaned up\n{}", dir.display(), run.context());
    }
}

#[test]
fn ctrl_c_stops_every_remote_segment_and_still_writes_the_merged_report() {
    let Some((sshd, keygen)) = tools_or_skip("ctrl_c_stops_every_remote_segment_and_still_writes_the_merged_report")
    else {
        return;
    };
    let hosts = start_hosts(&sshd, &keygen);
    let server = Server::start();
    let sandbox = sandbox();
    let running = launch(&sandbox, &hosts, &server.url(), "60s");
    assert!(server.wait_for_total(40, Duration::from_secs(60)), "no load within 60 s");
    assert_token_only_in_the_environment(&server.url());
    assert!(Command::new("kill").args(["-INT", &running.pid().to_string()]).status().unwrap().success());
    let run = running.wait(RUN_LIMIT, &sandbox);
    run.assert_code(0);
    let report = run.report();
    assert!(report.0["duration_s"].as_f64().unwrap() < 50.0, "{}", run.context());
    assert_eq!(report.total_requests(), server.total(), "every segment stopped and handed in\n{}", run.context());
    assert_eq!(report.0["run"]["segments"].as_array().map(Vec::len), Some(2), "{}", run.context());
    for dir in remote_dirs(&run.stderr) {
        assert!(!dir.exists(), "{} was not cleaned up\n{}", dir.display(), run.context());
    }
}

/// The processes of this run (their command line names `target`): the ssh clients, the remote wrappers and the
/// segments. No command line holds the token (a 64-hex-digit word); each segment has it in its environment.
fn assert_token_only_in_the_environment(target: &str) {
    let is_token = |w: &str| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit());
    let mut segments = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(target) {
            continue;
        }
        assert!(!cmdline.split(|c: char| !c.is_ascii_alphanumeric()).any(is_token), "a token in `ps`: {cmdline}");
        if cmdline.contains("nest run ") && cmdline.contains(" --segment ") && !cmdline.contains("sh -c") {
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let environ = String::from_utf8_lossy(&environ).into_owned();
            let token = environ.split('\0').find_map(|v| v.strip_prefix("NEST_COORDINATOR_TOKEN="));
            assert!(token.is_some_and(is_token), "the segment has the token in its environment: {cmdline}");
            segments += 1;
        }
    }
    assert_eq!(segments, 2, "two remote segments running");
}

#[test]
fn an_unknown_host_key_is_refused_and_nothing_runs() {
    let Some((sshd, keygen)) = tools_or_skip("an_unknown_host_key_is_refused_and_nothing_runs") else {
        return;
    };
    let hosts = start_hosts(&sshd, &keygen);
    // The same config, against an empty known_hosts: host key checking stays on.
    let config = std::fs::read_to_string(&hosts.config).unwrap();
    let empty = hosts.config.with_file_name("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let known = hosts.config.with_file_name("known_hosts");
    let strict = hosts.config.with_file_name("strict_config");
    std::fs::write(&strict, config.replace(&known.display().to_string(), &empty.display().to_string())).unwrap();
    let server = Server::start();
    let sandbox = sandbox();
    let (json, strict) = (sandbox.json_path().display().to_string(), strict.display().to_string());
    let args = [
        "launch",
        "ssh",
        "--listen",
        "127.0.0.1:0",
        "--ssh-config",
        &strict,
        "--json",
        &json,
        "alpha",
        "-f",
        "tasksets",
        "-H",
        &server.url(),
        "-u",
        "1",
        "-t",
        "1s",
    ];
    let run = sandbox.nest(&args, &[]);
    run.assert_code(1);
    assert!(run.stderr.contains("alpha: making a temporary folder failed"), "{}", run.context());
    assert!(run.stderr.contains("Host key verification failed"), "{}", run.context());
    assert_eq!(server.total(), 0);
}

#[test]
fn ctrl_c_while_a_host_hangs_in_preparation_cancels_the_run() {
    // Only the ssh client is needed: the host's connection is a ProxyCommand that never answers (it ends when ssh
    // does: its input closes).
    if let Err(why) = tools() {
        if std::env::var("NEST_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{why}");
        }
        return eprintln!("skipping ctrl_c_while_a_host_hangs_in_preparation_cancels_the_run: {why}");
    }
    let sandbox = sandbox();
    let marker = format!("nest-hang-{}", std::process::id());
    let config = sandbox.root().join("ssh_config");
    let proxy = format!("Host hang\n  ProxyCommand sh -c 'cat >/dev/null' {marker}\n  BatchMode yes\n");
    std::fs::write(&config, proxy).unwrap();
    let config = config.display().to_string();
    let args = [
        "launch",
        "ssh",
        "--listen",
        "127.0.0.1:0",
        "--ssh-config",
        &config,
        "hang",
        "-H",
        "http://127.0.0.1:9",
        "-t",
        "1s",
    ];
    let running = sandbox.spawn_nest(&args, &[]);
    // The ssh step is running once its proxy is.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy_running(&marker) {
        assert!(Instant::now() < deadline, "ssh's proxy did not start within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = running.pid().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    // The first interrupt waits for the steps (to remove their folders); the second gives up on them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() || Instant::now() > deadline {
            break;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
    }
    let run = running.wait(Duration::from_secs(30), &sandbox);
    run.assert_code(4);
    assert!(run.stderr.contains("interrupted: removing the folders made on the hosts"), "{}", run.context());
    assert!(run.stderr.contains("interrupted twice: nothing was sent"), "{}", run.context());
}

/// Whether a process's command line holds `marker`.
fn proxy_running(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker)))
}

#[test]
fn listening_on_every_address_needs_the_advertised_one_before_any_host_is_called() {
    // No ssh is started: the host would not even resolve.
    let sandbox = sandbox();
    let args = ["launch", "ssh", "--listen", "0.0.0.0:0", "nohost.invalid", "-H", "http://127.0.0.1:9", "-t", "1s"];
    let run = sandbox.nest(&args, &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("give --advertise"), "{}", run.context());
    assert!(!run.stderr.contains("nohost.invalid"), "no host was called\n{}", run.context());
}
