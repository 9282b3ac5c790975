#!/usr/bin/env bash
# nest benchmark (issue 15): user-space instructions per request, counted by valgrind's callgrind, so the figure
# does not depend on how busy the machine is. It prints figures and checks nothing.
#
# Against nginx (1 worker, loopback, keep-alive), nest runs bench/tasksets/hello (one task: `client.get("/")`)
# with `--workers 1` and USERS users for LOW and then HIGH iterations, each under callgrind. The figure is the
# slope: (instructions at HIGH - instructions at LOW) / (requests at HIGH - requests at LOW), which leaves out
# start-up and shutdown. All threads of the process count. Kernel time is not in it.
#
#   bash bench/instr.sh                  # builds release, then about 1-2 minutes
#   PROFILE=1 bash bench/instr.sh        # also prints callgrind_annotate of the HIGH run's worker thread
#   NEST_BIN=path NO_BUILD=1 ...         # measure another binary
set -euo pipefail

LOW=${LOW:-2000}          # iterations of the first run
HIGH=${HIGH:-20000}       # iterations of the second run
USERS=${USERS:-10}        # users (= keep-alive connections)
WORKERS=${WORKERS:-1}     # nest --workers
PROFILE=${PROFILE:-0}     # 1: print the HIGH run's profile
TOP=${TOP:-40}            # lines of each profile
NO_BUILD=${NO_BUILD:-0}   # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}    # a nest binary to measure instead of target/release/nest
KEEP=${KEEP:-}            # a directory to keep the callgrind output files in

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
HELLO="$ROOT/bench/tasksets/hello"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-instr.XXXXXX")
# shellcheck source=bench/lib/nginx.sh
source "$ROOT/bench/lib/nginx.sh"

log() { printf '[instr %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
cleanup() { local rc=$?; nginx_stop; rm -rf "$TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

apt_install_missing valgrind:valgrind /usr/sbin/nginx:nginx jq:jq || die "could not install the tools"
if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release -p nest"
    (cd "$ROOT" && cargo build --release --quiet -p nest) || die "cargo build --release failed"
fi
[[ -x $NEST ]] || die "$NEST not found"
cd "$TMP" # away from the repository's nest.yaml

nginx_start || die "nginx did not start"
log "nginx at $NGINX_URL"

# Runs nest under callgrind for $1 iterations, one output file per thread. Prints: instructions of all threads,
# of the busiest thread (the worker), requests, seconds.
measure() {
    local n=$1 out="$TMP/callgrind.$1" ir busiest req t0 secs
    t0=$(date +%s.%N)
    timeout -k 5 1200 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
        "$NEST" run --taskset-dir "$HELLO" -H "$NGINX_URL" -u "$USERS" --workers "$WORKERS" --iterations "$n" \
        --json "$TMP/$n.json" -y >"$TMP/$n.log" 2>&1 || { tail -20 "$TMP/$n.log" >&2; die "nest failed ($n iterations)"; }
    secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
    read -r ir busiest < <(cat "$out"-* | sed -n 's/^summary: *\([0-9]*\).*/\1/p' |
        awk '{ s += $1; if ($1 > m) m = $1 } END { print s, m }')
    [[ -n $ir && $ir != 0 ]] || die "no callgrind summary in $out-*"
    req=$(jq -r '.totals.requests' "$TMP/$n.json")
    local failed
    failed=$(jq -r '.totals.failures // 0' "$TMP/$n.json")
    [[ $failed == 0 ]] || log "warning: $failed of $req requests failed at $n iterations"
    # The busiest thread's file, for callgrind_annotate.
    cp "$(grep -l "^summary: $busiest\$" "$out"-* | head -1)" "$out"
    if [[ -n $KEEP ]]; then mkdir -p "$KEEP"; cp "$out" "$KEEP/"; fi
    echo "$ir $busiest $req $secs"
}

log "callgrind, $LOW iterations"
read -r IR_LOW W_LOW REQ_LOW S_LOW < <(measure "$LOW")
log "callgrind, $HIGH iterations"
read -r IR_HIGH W_HIGH REQ_HIGH S_HIGH < <(measure "$HIGH")

PER=$(( (IR_HIGH - IR_LOW) / (REQ_HIGH - REQ_LOW) ))
PER_W=$(( (W_HIGH - W_LOW) / (REQ_HIGH - REQ_LOW) ))
echo "nest:   $("$NEST" --version), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
echo "target: nginx $($(nginx_bin) -v 2>&1 | sed 's/.*nginx\///'), 1 worker, $NGINX_URL; $USERS users, --workers $WORKERS"
echo "runs:   $(commas "$REQ_LOW") requests: $(commas "$IR_LOW") instructions in ${S_LOW}s; $(commas "$REQ_HIGH") requests: $(commas "$IR_HIGH") in ${S_HIGH}s"
echo "instructions per request: $(commas "$PER") (slope between the two runs, user space, all threads)"
echo "  of which the worker thread: $(commas "$PER_W") (the rest is once-a-second work, which grows with the run's length under valgrind)"

if [[ $PROFILE == 1 ]]; then
    echo
    echo "== inclusive (HIGH run, worker thread) =="
    callgrind_annotate --inclusive=yes "$TMP/callgrind.$HIGH" 2>/dev/null | sed -n "1,$((TOP + 25))p" | tail -n +20
    echo
    echo "== self (HIGH run, worker thread) =="
    callgrind_annotate "$TMP/callgrind.$HIGH" 2>/dev/null | sed -n "1,$((TOP + 25))p" | tail -n +20
fi
