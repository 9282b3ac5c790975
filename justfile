# Every recipe mirrors a CI step exactly: `just ci` is what .ci/run does.
# (Install just with `cargo install just`; every recipe is a plain command you can also run directly.)

default: ci

# The full CI: format check, lints, tests.
ci:
    bash .ci/run

fmt-check:
    cargo fmt --all --check

clippy:
    cargo clippy --workspace --all-targets -- -D warnings

test:
    cargo test --workspace

# Run the examples against the built-in demo shop.
demo:
    cargo run --release -- run --demo

# Throughput against wrk, 10k users at 1 req/s each, and the largest VU count at the ideal rate.
bench:
    bash bench/bench.sh

# The heap and report JSON of a long run's statistics, for 10 request names at 1, 6 and 24 simulated hours.
bench-timeline:
    bash bench/timeline_memory.sh

# nest scale against a target of known scalability: recovered sigma, kappa, N* against the true ones.
bench-scale-index:
    bash bench/scale_index.sh

# User-space instructions per request (valgrind callgrind, nginx 1 worker): the noise-free figure of issue 15.
bench-instr:
    bash bench/instr.sh

# CPU per request and req/s of nest (--workers 1 and 2) against wrk -t1, oha and Goose when present; nginx 1 worker and the hello target.
bench-perf:
    bash bench/perf.sh

# Issue 15's whole table: wrk, oha, nest --workers 1 and 2, Goose; CPU/req, req/s, instructions per request (about 8 min).
bench-table:
    GOOSE_INSTALL=1 OHA_INSTALL=1 bash bench/table.sh
