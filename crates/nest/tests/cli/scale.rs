//! `nest scale` against the demo target's USL mode, whose σ, κ and service time are known: the fit runs over every
//! step, Capacity@SLO lands where the SLO truly breaks, every request nest counted is one the server served (how
//! close the fit comes to the known σ and κ is a timing figure: `bench/scale_index.sh`); and the gate in a temporary
//! git repository, with the history file read back.

use std::path::Path;
use std::process::Command;

use nest_demo::{DemoConfig, DemoServer, Mode, UslModel};
use serde_json::Value;

use crate::support::Sandbox;

const TASKSET: &str = "fn hit() {\n    client.get(\"/\");\n}\ntask(1, hit);\n";

/// The USL target with contention `sigma`, κ = 0.001 and 10 ms alone.
fn usl_target(sigma: f64) -> DemoServer {
    let usl = UslModel { sigma, kappa: 0.001, service: std::time::Duration::from_millis(10) };
    DemoServer::start(DemoConfig { mode: Mode::Hello, threads: 2, usl: Some(usl), ..DemoConfig::default() }).unwrap()
}

fn scale(sandbox: &Sandbox, host: &str, args: &[&str]) -> crate::support::Run {
    let dir = sandbox.dir().display().to_string();
    let mut all = vec!["scale", "--taskset-dir", &dir, "-H", host, "--workers", "2", "--history", "out/history.jsonl"];
    all.extend_from_slice(args);
    sandbox.nest(&all, &[])
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

fn within(got: f64, want: f64, rel: f64) -> bool {
    ((got - want) / want).abs() <= rel
}

#[test]
fn scale_recovers_a_known_usl_and_finds_capacity_where_the_slo_breaks() {
    let server = usl_target(0.05);
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    // Ten steps from one user to twice N* ≈ 31, dense below the knee and past it: the knee and the downturn make σ
    // and κ identifiable (fewer or shorter steps leave σ's error near 20% on a busy machine). The SLO truly
    // holds at 16 users (R = 19.9 ms) and breaks at 32 (R = 35.4 ms); the median, not a tail a busy machine
    // stretches, decides it.
    let steps = ["--steps", "1,2,4,8,12,16,32,40,48,64", "--step-time", "3s", "--settle", "1s", "--slo", "p50 < 28ms"];
    let steps = [&steps[..], &["--stop-on-breach", "false"]].concat();
    let run = scale(
        &sandbox,
        &server.url(),
        &[&steps[..], &["--json", "out/scale.json", "--html", "out/scale.html"]].concat(),
    );
    run.assert_code(0);
    let doc: Value = serde_json::from_slice(&std::fs::read(sandbox.root().join("out/scale.json")).unwrap()).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10, "{}", run.context());

    // Every request of every step (settle included) is one the server served.
    let counted: u64 = steps.iter().map(|s| s["report"]["totals"]["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, server.stats().total, "{}", run.context());

    // The fit ran over the ten steps and its figures are sane. How close they come to the target's σ, κ and N* is a
    // measurement of timing (a busy machine adds its own delay to every request and noise to every step), so it is
    // a benchmark, `bench/scale_index.sh`, not an assertion here.
    let usl = &doc["scalability"];
    let status = usl["status"].as_str().unwrap_or_default();
    assert!(matches!(status, "ok" | "peak_not_determinable"), "status {status}: {}", run.context());
    let (sigma, kappa, lambda) = (
        usl["fit"]["sigma"].as_f64().unwrap(),
        usl["fit"]["kappa"].as_f64().unwrap(),
        usl["fit"]["lambda"].as_f64().unwrap(),
    );
    println!("recovered: σ = {sigma}, κ = {kappa}, λ = {lambda}, N* = {}", usl["n_star"]);
    assert!((0.0..1.0).contains(&sigma) && kappa >= 0.0 && lambda > 0.0, "{}", run.context());
    // One user is served in about 10 ms (plus the machine's delay): λ is some tens of requests per second.
    assert!((20.0..=110.0).contains(&lambda), "λ = {lambda}: {}", run.context());

    // Where the SLO breaks. The target's own median is 14.0 ms at 8 users, 19.9 ms at 16 and 35.4 ms at 32: from
    // 32 users on no machine can meet p50 < 28ms, and up to 8 users only a machine adding 14 ms to the median
    // could break it. Between them (12 and 16 users) a busy machine may move the limit, or make 12 users serve as
    // much as 16 (CI once saw 627.0 and 626.3 req/s), so there the test asks only what Capacity@SLO means: the
    // met step with the highest throughput, and the first failing step above it.
    let met: Vec<bool> = steps.iter().map(|s| s["meets_slos"].as_bool().unwrap()).collect();
    assert!(met[..4].iter().all(|m| *m) && !met[6..].iter().any(|m| *m), "{met:?}: {}", run.context());
    let throughput = |i: usize| steps[i]["throughput_rps"].as_f64().unwrap();
    let best = (0..steps.len()).filter(|i| met[*i]).max_by(|a, b| throughput(*a).total_cmp(&throughput(*b))).unwrap();
    let next = (best + 1..steps.len()).find(|i| !met[*i]).unwrap();
    let capacity = &doc["capacity"];
    let got = (capacity["step"].as_u64(), capacity["next_step"].as_u64());
    assert_eq!(got, (Some(best as u64 + 1), Some(next as u64 + 1)), "{}", run.context());
    assert_eq!(capacity["throughput_rps"].as_f64(), Some(throughput(best)));
    assert!((4..=6).contains(&next), "the limit lies below 32 users: {}", run.context());
    assert!(
        run.stdout.contains("scalability index: ") && run.stdout.contains(" req/s at p50 < 28ms"),
        "{}",
        run.context()
    );

    // The document and each step's embedded report match their schemas.
    let errors: Vec<String> =
        schema("scale.schema.json").iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let report_schema = schema("report.schema.json");
    for step in steps {
        assert!(report_schema.is_valid(&step["report"]), "{}", step["report"]);
    }
    let html = std::fs::read_to_string(sandbox.root().join("out/scale.html")).unwrap();
    for hook in [
        r#"data-chart="throughput""#,
        r#"data-chart="latency""#,
        r#"data-series="USL fit""#,
        r#"data-mark="SLO boundary""#,
    ] {
        assert!(html.contains(hook), "{hook}");
    }
    let history = std::fs::read_to_string(sandbox.root().join("out/history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 1);
}

/// A git repository in the sandbox root, with an identity of its own.
fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=nest", "-c", "user.email=nest@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(root)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether git can run; without it the gate test is skipped with a reason, unless `NEST_REQUIRE_TOOLS=1` (CI).
fn have_git() -> bool {
    if Command::new("git").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var("NEST_REQUIRE_TOOLS").as_deref() != Ok("1"), "NEST_REQUIRE_TOOLS=1 but git cannot run");
    println!("skipped: git cannot run (install git, or set NEST_REQUIRE_TOOLS=1 to make this a failure)");
    false
}

#[test]
fn the_gate_fails_when_sigma_grows_names_both_commits_and_passes_at_the_original_sigma() {
    if !have_git() {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    sandbox.write_root(".gitignore", "out/\n");
    let root = sandbox.root();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "A"]);
    let a = git(root, &["rev-parse", "--short=7", "HEAD"]);
    // Margins no busy machine crosses: at σ = 0.05 the target's median is 19.9 ms at 16 users (the SLO holds by 20 ms)
    // and 56 ms at 48 (it fails by 16 ms), so Capacity@SLO is 16 users' throughput; at σ = 0.3 (below) 16 users take
    // 57 ms, and it falls to 4 users' (19 ms), about a quarter. The tolerance is wide because two runs at the same σ
    // on a busy machine differ by more than the default 10% (CI once saw 705 and 623 req/s at 16 users).
    let steps = ["--steps", "4,16,48", "--step-time", "1s", "--settle", "1s", "--slo", "p50 < 40ms", "--gate"];
    let steps = [&steps[..], &["--tolerance", "40%"]].concat();

    let baseline = usl_target(0.05);
    let first = scale(&sandbox, &baseline.url(), &steps);
    first.assert_code(0);
    assert!(first.stdout.contains("gate: no baseline yet"), "{}", first.context());
    drop(baseline);

    // Commit B, and a target with six times the contention: 16 users now take 10 ms × (1 + 0.3·15 + 0.24) = 57 ms.
    git(root, &["commit", "-q", "--allow-empty", "-m", "B"]);
    let b = git(root, &["rev-parse", "--short=7", "HEAD"]);
    let worse = usl_target(0.3);
    let regressed = scale(&sandbox, &worse.url(), &steps);
    regressed.assert_code(6);
    println!("{}", regressed.stdout);
    assert!(
        regressed.stdout.contains(&format!("scalability regressed: {b} is worse than the baseline at {a}")),
        "{}",
        regressed.context()
    );
    assert!(regressed.stdout.contains("REGRESSED"), "{}", regressed.context());
    drop(worse);

    // The original σ at B passes: B's own regressed entry is not its baseline.
    let restored = usl_target(0.05);
    let passed = scale(&sandbox, &restored.url(), &steps);
    passed.assert_code(0);
    assert!(passed.stdout.contains(&format!("gate passed: {b} holds the baseline of {a}")), "{}", passed.context());

    // The history: three lines, one corrupt line added by hand is skipped with its line number.
    let history = root.join("out/history.jsonl");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&history)
        .map(|mut f| std::io::Write::write_all(&mut f, b"{oops\n"))
        .unwrap()
        .unwrap();
    let shown =
        sandbox.nest(&["scale", "history", "--history", "out/history.jsonl", "--html", "out/history.html"], &[]);
    shown.assert_code(0);
    assert!(shown.stderr.contains("history.jsonl:4: skipped a corrupt history line"), "{}", shown.context());
    assert_eq!(shown.stdout.lines().filter(|l| l.contains(&a) || l.contains(&b)).count(), 3, "{}", shown.context());
    let page = std::fs::read_to_string(root.join("out/history.html")).unwrap();
    assert!(page.contains(r#"data-chart="capacity""#) && page.contains(&format!(">{b}<")), "history page");
}

#[test]
fn bad_steps_are_refused_before_any_load() {
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let server = crate::server::Server::start();
    let host = server.url();
    for (args, says) in [
        (vec!["--steps", "8,4"], "steps must increase"),
        (vec!["--steps", "1,2", "--users", "3"], "nest scale does not take --users"),
        (vec!["--steps", "1,2", "--slo", "p95 <"], "--slo: threshold `p95 <`"),
        (vec!["--steps", "1,2", "--step-time", "1500ms"], "whole seconds"),
        (vec![], "no steps"),
    ] {
        let run = scale(&sandbox, &host, &args);
        run.assert_code(2);
        assert!(run.stderr.contains(says), "{says}: {}", run.context());
    }
    assert_eq!(server.total(), 0, "nothing was sent");
}

#[test]
fn rate_steps_run_the_open_model_and_take_concurrency_from_littles_law() {
    let server = usl_target(0.05);
    let sandbox = Sandbox::new();
    sandbox.write("hit.rhai", TASKSET);
    let args = [
        "--rate-steps",
        "50,100,200",
        "--max-users",
        "100",
        "--step-time",
        "1s",
        "--settle",
        "1s",
        "--json",
        "out/s.json",
    ];
    let run = scale(&sandbox, &server.url(), &args);
    run.assert_code(0);
    let doc: Value = serde_json::from_slice(&std::fs::read(sandbox.root().join("out/s.json")).unwrap()).unwrap();
    assert_eq!(doc["model"], "open");
    let steps = doc["steps"].as_array().unwrap();
    let counted: u64 = steps.iter().map(|s| s["report"]["totals"]["requests"].as_u64().unwrap()).sum();
    assert_eq!(counted, server.stats().total, "{}", run.context());
    for (step, rate) in steps.iter().zip([50.0, 100.0, 200.0]) {
        assert_eq!(step["load"], serde_json::json!({ "rate": rate }));
        // The target keeps up: about the offered rate completes, and X·R is the requests in flight.
        let x = step["throughput_rps"].as_f64().unwrap();
        assert!(within(x, rate, 0.2), "{step}");
        let r = step["latency_ms"]["mean"].as_f64().unwrap() / 1000.0;
        assert!((step["concurrency"].as_f64().unwrap() - x * r).abs() < 1e-9, "{step}");
        assert!(step["corrected_latency_ms"]["p99"].as_f64().unwrap() >= step["latency_ms"]["p50"].as_f64().unwrap());
    }
    // Three steps are too few for a fit, and it says so.
    assert_eq!(doc["scalability"]["status"], "too_few_steps");
    assert!(run.stdout.contains("no USL fit: 3 usable steps, at least 4 are needed"), "{}", run.context());
}
