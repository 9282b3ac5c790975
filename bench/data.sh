#!/usr/bin/env bash
# nest benchmark (issue 6): loading a 1,000,000-row CSV data set. A figure, not a test.
#
# Generates users.csv (1,000,000 rows: name,password,email, about 52 MB), declares it in a nest.yaml next to a
# one-line taskset that uses it, and measures `nest list` (which loads and checks the data exactly as `nest run`
# does, and sends nothing) under GNU time: wall seconds and peak RSS. A run without the data gives the baseline.
# Targets: under 2 s and under 200 MB. Runs without `just`: bash bench/data.sh (ROWS=... to change the size).
set -euo pipefail

ROWS=${ROWS:-1000000}
NO_BUILD=${NO_BUILD:-0}          # 1: use the existing target/release/nest
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-data-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

[[ -x /usr/bin/time ]] || { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }
if [[ $NO_BUILD != 1 && -z ${NEST_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --quiet -p nest)
fi

mkdir -p "$TMP/with/tasksets" "$TMP/without/tasksets"
awk -v n="$ROWS" 'BEGIN {
    print "name,password,email"
    for (i = 0; i < n; i++) printf "user%07d,pw-%x,user%07d@example.com\n", i, i * 7919, i
}' >"$TMP/with/users.csv"
printf 'data:\n  users: users.csv\n' >"$TMP/with/nest.yaml"
for dir in with without; do
    printf 'task(1, t);\nfn t() { client.get("/"); }\n' >"$TMP/$dir/tasksets/t.rhai"
done
printf 'task(1, t);\nfn t() { let u = data.claim("users"); data.release("users", u); }\n' >"$TMP/with/tasksets/t.rhai"

measure() { # $1 = folder; prints "seconds KiB"
    if ! (cd "$1" && /usr/bin/time -f '%e %M' -o "$TMP/time" "$NEST" list >/dev/null); then
        echo "nest list failed in $1" >&2
        exit 1
    fi
    cat "$TMP/time"
}
echo "data file: $(wc -l <"$TMP/with/users.csv") lines, $(du -m "$TMP/with/users.csv" | cut -f1) MB"
read -r base_s base_kib < <(measure "$TMP/without")
best_s=""; best_kib=""
for _ in 1 2 3; do
    read -r s kib < <(measure "$TMP/with")
    if [[ -z $best_s ]] || awk "BEGIN { exit !($s < $best_s) }"; then best_s=$s; best_kib=$kib; fi
done
echo "nest list without data: ${base_s} s, peak RSS $((base_kib / 1024)) MiB"
echo "nest list with $ROWS rows: ${best_s} s (best of 3), peak RSS $((best_kib / 1024)) MiB (targets: < 2 s, < 200 MB)"
