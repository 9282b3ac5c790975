//! End-to-end tests of the `nest` binary: each runs `nest run` against its own loopback server and asserts what
//! the server saw, as well as nest's JSON report.

mod server; // the counting loopback HTTP(S) server
mod support; // temp taskset folders, running `nest` with bounded waits, reading its JSON report

mod checks; // check(), custom metrics, r.find/find_all/css, rate thresholds, the default gate
mod config; // nest.yaml: bad input refused with its place, disabled tasksets, weights, precedence, nest list
mod discovery; // nested tasksets are found, `_`/`.`-prefixed and non-`.rhai` files are skipped
mod errors; // script errors before load (exit 2), runtime and runaway errors, connection refused
mod https; // HTTPS with --insecure against a self-signed certificate, and without it
mod lifecycle; // on_start/on_stop per taskset entry, interrupt(), cookies per VU
mod load; // exact totals, task mix by weight, request options on the wire
mod models; // --iterations, open model, drops, sequential(), tags, stages, shapes, setup/teardown, pacing, thresholds
mod signals; // SIGINT mid-run: graceful stop, JSON report still written
