//! The live view as a person sees it: `nest run` on a pseudo-terminal (util-linux `script`), its redrawn header read
//! back from what the terminal received.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Server;
use crate::support::{RUN_LIMIT, Sandbox};

/// `script`, or `None` (with the reason printed) when it is absent; absent with `NEST_REQUIRE_TOOLS=1` fails.
fn script() -> Option<&'static str> {
    let found = Command::new("script").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if found.is_ok_and(|s| s.success()) {
        return Some("script");
    }
    let why = "the live view test needs `script` from util-linux (Debian: bsdutils) to run nest on a terminal";
    assert!(std::env::var_os("NEST_REQUIRE_TOOLS").is_none_or(|v| v != "1"), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Single-quotes a word for `sh -c`.
fn sh(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The header lines the live view drew, as (elapsed seconds, users).
fn headers(screen: &str) -> Vec<(u64, u64)> {
    let number_before = |text: &str, suffix: &str| -> Option<u64> {
        let end = text.find(suffix)?;
        let digits: String = text[..end].chars().rev().take_while(char::is_ascii_digit).collect();
        digits.chars().rev().collect::<String>().parse().ok()
    };
    screen
        .split(['\n', '\r'])
        .filter_map(|line| line.find("nest  ").map(|at| &line[at..]))
        .filter_map(|line| Some((number_before(line, "s elapsed")?, number_before(line, " users")?)))
        .collect()
}

#[test]
fn the_live_view_shows_the_users_from_the_first_second() {
    let Some(script) = script() else { return };
    let server = Server::start();
    let sandbox = Sandbox::new();
    sandbox.write("ping.rhai", "wait_time(constant(0.05));\ntask(1, ping);\n\nfn ping() { client.get(\"/\"); }\n");
    let nest = env!("CARGO_BIN_EXE_nest");
    let dir = sandbox.dir().display().to_string();
    let url = server.url();
    let args = [nest, "run", "-f", &dir, "-H", &url, "-u", "4", "-t", "4s", "--workers", "2", "-y"];
    let line = args.iter().map(|a| sh(a)).collect::<Vec<_>>().join(" ");
    let mut command = Command::new(script);
    command.args(["-qfec", &line, "/dev/null"]).current_dir(sandbox.root()).env("TERM", "xterm").env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEST_") {
            command.env_remove(key);
        }
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nest on a terminal did not exit within {RUN_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}\n{}", String::from_utf8_lossy(&out.stderr));
    let drawn = headers(&screen);
    // All four users start at once: the headers of the first seconds already count them (they used to show 0 until
    // the first second was complete on every worker, about 2 s in). Any header of the first two seconds will do, so a
    // redraw that a busy machine delays past its slot does not fail the test.
    assert!(drawn.iter().any(|&(t, _)| t <= 1), "no header in the first two seconds: {drawn:?}\n{screen}");
    assert!(drawn.iter().filter(|&&(t, _)| t < 3).all(|&(_, users)| users > 0), "{drawn:?}\n{screen}");
    assert!(drawn.contains(&(1, 4)) || drawn.contains(&(2, 4)), "all four within 2 s: {drawn:?}\n{screen}");
    assert!(server.total() > 0);
}
