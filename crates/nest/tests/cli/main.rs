//! End-to-end tests of the `nest` binary: each runs `nest run` against its own loopback server and asserts what
//! the server saw, as well as nest's JSON report.

mod server; // the counting loopback HTTP(S) server
mod support; // temp taskset folders, running `nest` with bounded waits, reading its JSON report

mod careless; // memory bombs, huge durations, undefined names (--no-strict), built-in names, repeated keys
mod checks; // check(), custom metrics, r.find/find_all/css, rate thresholds, the default gate
mod checks_spelling; // `GET /a: checks > 99%` is that request's passing responses; bare `checks` with no check()
mod config; // nest.yaml: bad input refused with its place, disabled tasksets, weights, precedence, nest list
mod confine; // --confine: dotted and absolute imports outside the project are refused (more in nest-rhai/tests)
mod coordinated; // nest launch local, nest coordinate + nest run --coordinator: totals, globals once, thresholds, lost, refused
mod discovery; // nested tasksets are found, `_`/`.`-prefixed and non-`.rhai` files are skipped
mod errors; // script errors before load (exit 2), runtime and runaway errors, connection refused
mod files; // report paths and data files: folders, FIFOs and devices refused before load, links written through
mod http; // hostile servers: body caps, discarded and compressed bodies, URL credentials, base paths, nginx keep-alive
mod https; // HTTPS with --insecure against a self-signed certificate, and without it
mod launch_k8s; // nest launch k8s: the manifests validated strictly (kubernetes-validate), then their meaning
mod launch_ssh; // nest launch ssh across two real sshd on 127.0.0.2/3: the server's count equals the merged report
mod lifecycle; // on_start/on_stop per taskset entry, interrupt(), cookies per VU
mod live; // the live view on a pseudo-terminal: users shown from the first second
mod load; // exact totals, task mix by weight, request options on the wire
mod locust_examples; // docs/examples/locust: each Locust translation loads, and runs against --demo
mod metrics; // --prometheus: scrapes during and after a run, the token, a real Prometheus scraping and receiving
mod models; // --iterations, open model, drops, sequential(), tags, stages, shapes, setup/teardown, pacing, thresholds
mod nested; // nested tasksets, interrupt(false), wait_time closures, the exact split of users over tasksets
mod scale; // nest scale against the USL demo target: the fit, Capacity@SLO, the gate in a git repository, history
mod segments; // --segment I/N processes with --start-at, then nest merge: exact totals, data, late, incomplete, mixed
mod signals; // SIGINT mid-run: graceful stop, JSON report still written
mod slack; // nest slack serve: signed commands only, presets, one result per run, busy, stop; --notify retries
mod source_addr;
mod web; // nest run --web: refusals before load, --autostart -y, and a real Chromium through chromedriver (WebDriver) // --source-addr: connections from 127.0.0.2/3 round-robin by VU, bad addresses refused before load
