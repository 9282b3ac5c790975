#!/usr/bin/env bash
# nest benchmark (issue 15): CPU per request and requests/s of nest against wrk -t1 (and oha, when present), all
# against nginx with 1 worker on loopback, 50 connections or users, GET / with no think time. It prints figures and
# checks nothing.
#
# CPU per request = (user + sys CPU of the client, from GNU time) / requests the client completed. Rounds alternate
# the clients (wrk, nest, oha, wrk, nest, oha, ...), and the summary gives each one's medians and its ratios to wrk.
# Run it on a quiet machine: the client and nginx share the cores, so other load changes every figure.
#
#   bash bench/perf.sh                            # builds release; ROUNDS=5 x DURATION=10 s per client: about 3 min
#   ROUNDS=1 DURATION=2 bash bench/perf.sh        # a quick check that the script works
#   OHA_INSTALL=1 bash bench/perf.sh              # also `cargo install oha` into a cache directory first
set -euo pipefail

ROUNDS=${ROUNDS:-5}            # alternating rounds (use at least 3)
DURATION=${DURATION:-10}       # seconds per client run
CONNS=${CONNS:-50}             # connections (wrk, oha) = users (nest)
WORKERS=${WORKERS:-1}          # nest --workers
NO_BUILD=${NO_BUILD:-0}        # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}         # a nest binary to measure instead of target/release/nest
OHA_INSTALL=${OHA_INSTALL:-0}  # 1: cargo install oha into $OHA_ROOT when it is not on PATH
OHA_ROOT=${OHA_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/nest-bench/oha}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
HELLO="$ROOT/bench/tasksets/hello"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-perf.XXXXXX")
# shellcheck source=bench/lib/nginx.sh
source "$ROOT/bench/lib/nginx.sh"

log() { printf '[perf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cleanup() { local rc=$?; nginx_stop; rm -rf "$TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install_missing wrk:wrk /usr/bin/time:time jq:jq /usr/sbin/nginx:nginx || die "could not install the tools"
OHA=$(command -v oha || true)
[[ -z $OHA && -x $OHA_ROOT/bin/oha ]] && OHA=$OHA_ROOT/bin/oha
if [[ -z $OHA && $OHA_INSTALL == 1 ]]; then
    log "cargo install oha --root $OHA_ROOT"
    cargo install --quiet --locked oha --root "$OHA_ROOT" && OHA=$OHA_ROOT/bin/oha || log "oha did not install; going on without it"
fi
if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release -p nest"
    (cd "$ROOT" && cargo build --release --quiet -p nest) || die "cargo build --release failed"
fi
[[ -x $NEST ]] || die "$NEST not found"
cd "$TMP" # away from the repository's nest.yaml
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

nginx_start || die "nginx did not start"
log "nginx at $NGINX_URL"

# Each run sets: REQ (requests completed), RPS, CPU_US (client CPU per request, µs).
timed() { # $1 = tag, then the command
    local tag=$1
    shift
    timeout -k 5 $((DURATION + 60)) /usr/bin/time -o "$TMP/$tag.time" -f '%U %S' "$@" >"$OUT/perf-$tag.log" 2>&1 ||
        { tail -5 "$OUT/perf-$tag.log" >&2; die "$tag failed"; }
    read -r U S < <(tail -1 "$TMP/$tag.time")
}
finish() { # uses REQ, U, S
    RPS=$(calc '%.0f' "$REQ / $DURATION")
    CPU_US=$(calc '%.3f' "($U + $S) * 1000000 / $REQ")
}
run_wrk() {
    timed "$1" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$NGINX_URL/"
    REQ=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$OUT/perf-$1.log")
    RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$OUT/perf-$1.log")
    finish
}
run_nest() {
    timed "$1" "$NEST" run --taskset-dir "$HELLO" -H "$NGINX_URL" -u "$CONNS" --workers "$WORKERS" -t "${DURATION}s" \
        --json "$TMP/$1.json" -y
    REQ=$(jq -r '.totals.requests' "$TMP/$1.json")
    finish
    RPS=$(jq -r '.totals.rps | floor' "$TMP/$1.json")
}
run_oha() {
    timed "$1" "$OHA" -z "${DURATION}s" -c "$CONNS" --no-tui --output-format json "$NGINX_URL/"
    REQ=$(jq -r '[.statusCodeDistribution[]] | add' "$OUT/perf-$1.log")
    finish
}

CLIENTS=(wrk nest)
[[ -n $OHA ]] && CLIENTS+=(oha)
declare -A CPU RATE
for r in $(seq "$ROUNDS"); do
    for c in "${CLIENTS[@]}"; do
        "run_$c" "$c-$r"
        CPU[$c]+="$CPU_US "
        RATE[$c]+="$RPS "
        log "round $r: $c $REQ requests, $RPS req/s, $CPU_US µs CPU per request"
    done
done

{
    echo "nest:   $("$NEST" --version), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), --workers $WORKERS"
    echo "target: nginx 1 worker on $NGINX_URL, $CONNS connections/users, GET /, ${DURATION}s x $ROUNDS alternating rounds"
    echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    W_CPU=$(median "${CPU[wrk]}")
    W_RPS=$(median "${RATE[wrk]}")
    printf '%-6s %14s %12s %12s %12s\n' client "CPU/req (µs)" "÷ wrk" "req/s" "÷ wrk"
    for c in "${CLIENTS[@]}"; do
        m_cpu=$(median "${CPU[$c]}")
        m_rps=$(median "${RATE[$c]}")
        printf '%-6s %14s %12s %12s %12s\n' "$c" "$m_cpu" "$(calc '%.2f' "$m_cpu / $W_CPU")" "$(calc '%.0f' "$m_rps")" \
            "$(calc '%.2f' "$m_rps / $W_RPS")"
    done
    echo "rounds (CPU µs/req): $(for c in "${CLIENTS[@]}"; do printf '%s [ %s] ' "$c" "${CPU[$c]}"; done)"
    [[ -n $OHA ]] || echo "oha: not found (OHA_INSTALL=1 installs it)"
} | tee "$OUT/perf-summary.txt"
