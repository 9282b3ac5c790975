#!/usr/bin/env bash
# nest scale-out benchmark (issue 12, "Figures for the closing note"): figures, not tests.
#
#   A. N = 1, 2, 4 local segments (`nest launch local`) on bench/tasksets/hello: the merged total against the
#      server's count, and the start skew (p50 and max over the segments' run.segments[].start_skew_ms)
#   B. 8 segments at the highest rate this machine gives: the coordinator's CPU and peak RSS (the launcher process,
#      which hosts it; the segments are its children)
#   C. C_USERS VUs (default 60,000) through `nest launch local --segments 4`, each at one request per second
#      (bench/tasksets/paced): the achieved rate against the ideal. One source and target address pair has about
#      28,000 ephemeral ports, so the VUs connect from C_SOURCE_ADDRS (127.0.0.2-127.0.0.5 by default, round-robin
#      by VU; C_SOURCE_ADDRS= turns it off, and then failed connections past the port limit are counted). The target
#      is C_TARGETS demo servers sharing one port (SO_REUSEPORT), since one process holds only as many connections as
#      its open-file limit (20,000 here, and root cannot raise it in this container).
#
# Target: `nest demo-server --hello` on 127.0.0.1, a fresh one per run, stopped with SIGINT (it then prints "served
# N requests"). Every run is bounded with `timeout`. Quick check that the script works:
#   NO_BUILD=1 NEST_BIN=target/debug/nest DURATION=2 C_USERS=200 C_DURATION=3 bash bench/scale_out.sh
set -euo pipefail

DURATION=${DURATION:-20}      # seconds per run of A and B
A_USERS=${A_USERS:-48}        # A: users in all (split over the segments)
B_USERS=${B_USERS:-64}        # B: users in all, over 8 segments
C_USERS=${C_USERS:-60000}     # C: users in all, over 4 segments
C_DURATION=${C_DURATION:-60}  # C: seconds (the ramp-up takes C_USERS / C_SPAWN of them)
C_SPAWN=${C_SPAWN:-5000}      # C: users started per second
C_SOURCE_ADDRS=${C_SOURCE_ADDRS-127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5}  # C: --source-addr ("" for none)
C_WAIT=${C_WAIT:-1}           # C: think time after each request, s (bench/tasksets/paced is constant(1))
C_TARGETS=${C_TARGETS:-4}     # C: demo servers sharing the target port (each holds at most its open-file limit)
SKIP=${SKIP:-}                # letters of parts to skip, e.g. SKIP=C
NO_BUILD=${NO_BUILD:-0}       # 1: use the existing binary
NEST_BIN=${NEST_BIN:-}        # a nest binary to measure instead of building target/release/nest

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
[[ $NEST = /* ]] || NEST="$ROOT/$NEST"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-scale.XXXXXX")
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

SRV_PIDS=() URL="" SERVED=""
# Starts $1 demo servers (default 1) on one port: with more than one they share it with SO_REUSEPORT, so that the
# connections can pass one process's open-file limit (the kernel spreads them over the servers).
start_server() {
    local n=${1:-1} reuse=() i
    ((n > 1)) && reuse=(--reuse-port)
    for ((i = 0; i < n; i++)); do
        : >"$TMP/server.$i.out"
        local port=0
        ((i > 0)) && port=${URL##*:}
        "$NEST" demo-server --hello --port "$port" --threads 2 "${reuse[@]}" >"$TMP/server.$i.out" 2>&1 &
        SRV_PIDS+=($!)
        ((i == 0)) || { wait_listening "$i" >/dev/null; continue; }
        URL=$(wait_listening 0)
    done
}
wait_listening() { # prints the URL server $1 listens on, once it does
    local url
    for _ in $(seq 200); do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$TMP/server.$1.out" | head -1 || true)
        [[ -n $url ]] && { echo "$url"; return 0; }
        sleep 0.05
    done
    die "demo server $1 did not start: $(cat "$TMP/server.$1.out")"
}
stop_server() { # stops every server; SERVED is the sum of what they served
    local pid i
    for pid in "${SRV_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${SRV_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SERVED=0
    for ((i = 0; i < ${#SRV_PIDS[@]}; i++)); do
        SERVED=$((SERVED + $(sed -n 's/^served \([0-9]*\) requests.*/\1/p' "$TMP/server.$i.out" | tail -1)))
    done
    SRV_PIDS=()
}
cleanup() {
    local rc=$?
    for pid in "${SRV_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs `nest launch local` bounded in time, sampling the launcher's CPU ticks and peak RSS. Args: tag, seconds,
# launch flags. Sets L_RC L_JSON L_CPU_S L_RSS_KB L_WALL_S.
launch() {
    local tag=$1 secs=$2
    shift 2
    L_JSON="$OUT/scale-$tag.json"
    rm -f "$L_JSON"
    local t0 pid stat
    t0=$(date +%s.%N)
    (cd "$TMP" && exec timeout -k 5 $((secs + 90)) "$NEST" launch local --json "$L_JSON" "$@") \
        >"$OUT/scale-$tag.log" 2>&1 &
    pid=$!
    L_CPU_S=0 L_RSS_KB=0
    while kill -0 "$pid" 2>/dev/null; do
        # The subshell execs timeout, which forks nest: sample timeout's child (the launcher, hosting the coordinator).
        local nest_pid
        nest_pid=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}')
        if [[ -n $nest_pid ]] && stat=$(cat "/proc/$nest_pid/stat" 2>/dev/null); then
            L_CPU_S=$(awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' <<<"$stat")
            L_RSS_KB=$(awk '/VmHWM/ { print $2 }' "/proc/$nest_pid/status" 2>/dev/null || echo "$L_RSS_KB")
        fi
        sleep 0.5
    done
    set +e
    wait "$pid"
    L_RC=$?
    set -e
    L_WALL_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

skews() { # p50 and max of the segments' start skews, ms
    json "$1" "' '.join(str(s['start_skew_ms']) for s in r['run']['segments'])" | tr ' ' '\n' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "? ?"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f\n", m, v[NR] }'
}

if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release -p nest"
    cargo build --release -p nest >&2
fi
[[ -x $NEST ]] || die "no nest binary at $NEST"
command -v python3 >/dev/null || die "python3 is needed to read the JSON reports"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "nest: $("$NEST" --version); $(nproc) cores; open files $(ulimit -n); ports $(cat /proc/sys/net/ipv4/ip_local_port_range | tr '\t' '-')"

if [[ $SKIP != *A* ]]; then
    printf '\nA. merged total against the server, and start skew (%s users, %s s)\n' "$A_USERS" "$DURATION"
    printf '%-4s %12s %12s %8s %12s %12s\n' N merged served equal "skew p50 ms" "skew max ms"
    for n in 1 2 4; do
        start_server
        launch "a$n" "$DURATION" --segments "$n" -f "$ROOT/bench/tasksets/hello" -H "$URL" -u "$A_USERS" \
            -t "${DURATION}s" --workers 1
        stop_server
        merged=$(json "$L_JSON" "r['totals']['requests']" 2>/dev/null || echo "?")
        read -r p50 max < <(skews "$L_JSON" 2>/dev/null || echo "? ?")
        equal=$([[ $merged == "$SERVED" ]] && echo yes || echo NO)
        printf '%-4s %12s %12s %8s %12s %12s   (exit %s)\n' "$n" "$merged" "$SERVED" "$equal" "$p50" "$max" "$L_RC"
    done
fi

if [[ $SKIP != *B* ]]; then
    printf '\nB. the coordinator with 8 segments (%s users in all, %s s)\n' "$B_USERS" "$DURATION"
    start_server
    launch b "$DURATION" --segments 8 -f "$ROOT/bench/tasksets/hello" -H "$URL" -u "$B_USERS" -t "${DURATION}s" \
        --workers 1
    stop_server
    rps=$(json "$L_JSON" "round(r['totals']['rps'])" 2>/dev/null || echo "?")
    cpu_pct=$(awk -v c="$L_CPU_S" -v w="$L_WALL_S" 'BEGIN { printf "%.1f", c * 100 / w }')
    printf 'merged rate %s req/s; coordinator (launcher process): %s s CPU in %s s (%s%% of one core), peak RSS %s MiB (exit %s)\n' \
        "$rps" "$L_CPU_S" "$L_WALL_S" "$cpu_pct" "$(awk -v k="$L_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')" "$L_RC"
fi

if [[ $SKIP != *C* ]]; then
    printf '\nC. %s VUs, each one request then %s s of think time, through 4 segments (%s s, %s started per second)\n' "$C_USERS" "$C_WAIT" "$C_DURATION" "$C_SPAWN"
    start_server "$C_TARGETS"
    mkdir -p "$TMP/paced"
    sed "s/constant(1)/constant($C_WAIT)/" "$ROOT/bench/tasksets/paced/paced.rhai" >"$TMP/paced/paced.rhai"
    launch c "$C_DURATION" --segments 4 -f "$TMP/paced" -H "$URL" -u "$C_USERS" -r "$C_SPAWN" \
        -t "${C_DURATION}s" --no-default-gate ${C_SOURCE_ADDRS:+--source-addr "$C_SOURCE_ADDRS"}
    stop_server
    ramp=$(awk -v u="$C_USERS" -v r="$C_SPAWN" 'BEGIN { printf "%.3f", u / r }')
    # Ideal: VU i starts at i / rate and sends one request at once, then one per C_WAIT seconds: over the L seconds
    # it is active, L / C_WAIT + 1/2 requests on average; in all, users x ((duration - ramp / 2) / C_WAIT + 1/2) once
    # the ramp is over.
    ideal=$(awk -v u="$C_USERS" -v d="$C_DURATION" -v ramp="$ramp" -v w="$C_WAIT" 'BEGIN { t = (d > ramp) ? u * ((d - ramp / 2) / w + 0.5) : u * d / ramp * (d / 2 / w + 0.5); printf "%.0f", t }')
    merged=$(json "$L_JSON" "r['totals']['requests']" 2>/dev/null || echo "?")
    failed=$(json "$L_JSON" "r['totals']['failures']" 2>/dev/null || echo "?")
    ratio=$(awk -v m="$merged" -v i="$ideal" 'BEGIN { if (m + 0 == 0 || i == 0) print "?"; else printf "%.3f", m / i }')
    printf 'requests %s of an ideal %s (%s), %s failed (source addresses: %s), server served %s (exit %s)\n' \
        "$merged" "$ideal" "$ratio" "$failed" "${C_SOURCE_ADDRS:-none, so connections past the ~28,000 ports of one address pair fail}" \
        "$SERVED" "$L_RC"
fi
log "reports and logs in $OUT/scale-*"
