//! An nginx child process on a loopback port, for tests against a real server no one here wrote. Shared by
//! nest-http's tests and the `nest` binary's CLI tests (which include this file by path). Tests skip, saying why,
//! when nginx is absent, and fail instead under `NEST_REQUIRE_TOOLS=1` (CI installs `nginx-light`).

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// nginx on PATH (or in /usr/sbin), or `None` after printing why the test is skipped. With `NEST_REQUIRE_TOOLS=1`
/// (CI) a missing nginx fails the test instead.
pub fn nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file());
    if found.is_none() {
        let why = "nginx is not installed (`apt-get install -y nginx-light`)";
        assert!(std::env::var("NEST_REQUIRE_TOOLS").as_deref() != Ok("1"), "NEST_REQUIRE_TOOLS=1 but {why}");
        eprintln!("skipped: {why}");
    }
    found
}

/// An nginx child process serving on a loopback port; killed when dropped. It runs as one process
/// (`master_process off`), so killing the child leaves no worker behind. Its document root is `www/` in its
/// folder ([`Nginx::root`]); its access log has one line per request: `$connection $status $request`.
pub struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Nginx {
    /// nginx answering `ok` to everything, closing keep-alive connections idle for `keepalive_timeout`.
    pub fn start(binary: &Path, keepalive_timeout: &str) -> Nginx {
        Nginx::start_with(
            binary,
            &format!("keepalive_timeout {keepalive_timeout};"),
            "location / { return 200 \"ok\\n\"; }",
        )
    }

    /// nginx with these `http { }` directives and this `server { }` body (locations).
    pub fn start_with(binary: &Path, http: &str, server: &str) -> Nginx {
        let dir = tempfile::Builder::new().prefix("nest-nginx-").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        // A free port: bound and released just before nginx takes it.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  log_format conn '$connection $status $request';\n  access_log {d}/access.log conn;\n\
             \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             \x20 {http}\n\
             \x20 server {{ listen 127.0.0.1:{port}; root {d}/www; {server} }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        let child = std::process::Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx { child, dir, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "nginx did not start listening on {port}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// The document root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// Requests nginx logged (one access-log line each).
    pub fn logged(&self) -> u64 {
        self.log().len() as u64
    }

    /// The access log: (connection serial number, status, request line) per request.
    pub fn log(&self) -> Vec<(u64, u16, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let mut parts = line.splitn(3, ' ');
                let conn = parts.next().unwrap().parse().unwrap();
                let status = parts.next().unwrap().parse().unwrap();
                (conn, status, parts.next().unwrap_or("").to_owned())
            })
            .collect()
    }

    /// The access log once it has `n` lines (nginx writes a line just after its response, so a client can be
    /// faster than the log): waits at most 10 s, then returns what there is.
    pub fn log_of(&self, n: usize) -> Vec<(u64, u16, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.len() >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The distinct connections nginx served requests on.
    pub fn connections(&self) -> usize {
        let mut conns: Vec<u64> = self.log().iter().map(|l| l.0).collect();
        conns.sort_unstable();
        conns.dedup();
        conns.len()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
