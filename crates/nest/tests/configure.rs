//! `nest configure` as a person and as a script use it: a real terminal session through a pseudo-terminal, the
//! non-interactive `--set` path, and the refusal to wait for input without a terminal.

use std::path::Path;
use std::process::{Command, Stdio};

const NEST: &str = env!("CARGO_BIN_EXE_nest");

fn tasksets(dir: &Path) {
    let ts = dir.join("tasksets");
    std::fs::create_dir_all(ts.join("shop")).unwrap();
    std::fs::write(ts.join("shop/browse.rhai"), "weight(3);\ntask(5, a);\ntask(1, b);\nfn a() {}\nfn b() {}\n")
        .unwrap();
    std::fs::write(ts.join("admin.rhai"), "task(1, c);\nfn c() {}\n").unwrap();
}

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn an_interactive_session_writes_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    tasksets(dir.path());
    let config = dir.path().join("nest.yaml");
    std::fs::write(&config, "users: 3\nstop_timeout: 2s\n").unwrap();

    let mut cmd = Command::new(NEST);
    cmd.args(["configure", "--config"]).arg(&config).arg("--taskset-dir").arg(dir.path().join("tasksets"));
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut p = rexpect::session::spawn_with_options(
        cmd,
        rexpect::reader::Options::new().timeout_ms(Some(30_000)).strip_ansi_escape_codes(true),
    )
    .unwrap();
    // The tasksets are listed with their tasks before any question.
    p.exp_string("shop/browse").unwrap();
    p.exp_string("Weight of admin").unwrap();
    // A negative weight is refused as typed; erase it and answer again.
    p.send_line("-1").unwrap();
    p.exp_string("a weight is a whole number >= 0").unwrap();
    p.send("\x7f\x7f").unwrap();
    p.send_line("0").unwrap();
    p.exp_string("Weight of shop/browse").unwrap();
    p.send_line("").unwrap(); // keep the script's weight (3): not written
    p.exp_string("Also set the host").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("Host").unwrap();
    p.send_line("http://127.0.0.1:9").unwrap();
    p.exp_string("Users").unwrap();
    p.send_line("7").unwrap();
    p.exp_string("Spawn rate").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Run time").unwrap();
    p.send_line("45s").unwrap();
    p.exp_string("The resulting mix").unwrap();
    p.exp_string("100.0%").unwrap();
    p.exp_string("Save?").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("saved").unwrap();
    p.exp_eof().unwrap();

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# nest load mix"), "{text}");
    let v = yaml(&config);
    assert_eq!(v["tasksets"]["admin"], serde_yaml_ng::Value::from(0));
    assert!(v["tasksets"].get("shop/browse").is_none(), "an unchanged script weight is not pinned: {text}");
    assert_eq!(v["host"], serde_yaml_ng::Value::from("http://127.0.0.1:9"));
    assert_eq!(v["users"], serde_yaml_ng::Value::from(7));
    assert_eq!(v["run_time"], serde_yaml_ng::Value::from("45s"));
    assert_eq!(v["stop_timeout"], serde_yaml_ng::Value::from("2s"), "keys it did not ask about are kept");
}

#[test]
fn cancelling_a_question_with_esc_exits_1_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tasksets(dir.path());
    let config = dir.path().join("nest.yaml");
    std::fs::write(&config, "users: 3\n").unwrap();
    let mut cmd = Command::new(NEST);
    cmd.args(["configure", "--config"]).arg(&config).arg("--taskset-dir").arg(dir.path().join("tasksets"));
    cmd.env("TERM", "xterm").env("NO_COLOR", "1");
    let mut p = rexpect::session::spawn_with_options(
        cmd,
        rexpect::reader::Options::new().timeout_ms(Some(30_000)).strip_ansi_escape_codes(true),
    )
    .unwrap();
    p.exp_string("Weight of admin").unwrap();
    p.send("\x1b").unwrap();
    p.flush().unwrap();
    p.exp_string("cancelled: nothing saved").unwrap();
    p.exp_eof().unwrap();
    match p.process().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 1, "the docs say 1"),
        other => panic!("nest configure did not exit normally: {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "users: 3\n");
}

#[test]
fn set_updates_the_file_without_prompting() {
    let dir = tempfile::tempdir().unwrap();
    tasksets(dir.path());
    let config = dir.path().join("nest.yaml");
    let out = Command::new(NEST)
        .current_dir(dir.path())
        .args(["configure", "--set", "shop/browse=6", "--set", "admin=0", "--users", "9"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = yaml(&config);
    assert_eq!(v["tasksets"]["shop/browse"], serde_yaml_ng::Value::from(6));
    assert_eq!(v["tasksets"]["admin"], serde_yaml_ng::Value::from(0));
    assert_eq!(v["users"], serde_yaml_ng::Value::from(9));

    // `nest list` reads it back: the mix and the sources.
    let list = Command::new(NEST).current_dir(dir.path()).args(["list", "--json"]).output().unwrap();
    assert!(list.status.success());
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let rows = json["tasksets"].as_array().unwrap();
    assert_eq!(rows[0]["name"], "admin");
    assert_eq!(rows[0]["weight"], 0);
    assert_eq!(rows[1]["weight"], 6);
    assert_eq!(rows[1]["source"], "config");
    assert_eq!(rows[1]["share_pct"], 100.0);
    assert!((rows[1]["tasks"][0]["share_pct"].as_f64().unwrap() - 500.0 / 6.0).abs() < 1e-9);

    // A typo is refused with a suggestion, and the file is untouched.
    let before = std::fs::read_to_string(&config).unwrap();
    let out = Command::new(NEST)
        .current_dir(dir.path())
        .args(["configure", "--set", "shop/brows=1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `shop/browse`?"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);

    // Disabling everything is refused.
    let out = Command::new(NEST)
        .current_dir(dir.path())
        .args(["configure", "--set", "shop/browse=0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("every taskset would have weight 0"));
}

#[test]
fn without_a_terminal_and_without_set_it_refuses_at_once() {
    let dir = tempfile::tempdir().unwrap();
    tasksets(dir.path());
    let out = Command::new(NEST).current_dir(dir.path()).arg("configure").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--set NAME=WEIGHT"));
    assert!(!dir.path().join("nest.yaml").exists());
}
