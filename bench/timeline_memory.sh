#!/usr/bin/env bash
# What a long run's statistics cost (docs/reports.md, "Long runs and memory"): the heap the aggregator holds and
# the report JSON's size after 1, 6 and 24 hours of simulated run (no clock, no network, no target), for 10
# request names. Figures, not a test. Runs without `just`: bash bench/timeline_memory.sh (`just bench-timeline`).
#
#   NAMES=10 RATE=20 MAX_MS=50 HOURS=1,6,24 bash bench/timeline_memory.sh
#
# RATE is requests per name per second (20 by default; RATE=200 fills about every histogram bucket from 1 to
# 50 ms in each point of a long run: the worst case for the JSON). It builds the example in release mode (a debug
# build takes many times longer) and prints one line per checkpoint.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --quiet -p nest-core --example timeline_memory
exec "$ROOT/target/release/examples/timeline_memory"
