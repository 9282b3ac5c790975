#!/usr/bin/env bash
# nest load-model benchmark (issue 4, "Benchmark and proof"): figures, not tests.
#
#   A. closed model, 200 users, against a fixed 50 ms latency: nest's p50 must lie in [50, 52] ms
#   B. open model, --rate 500 --max-users 10 for 20 s, against a target that stalls completely for 1 s at 10 s:
#      corrected p99 shows the stall (>= 500 ms), raw p99 does not, the server's count matches R x duration (1%)
#   C. open model, --rate 2000 --max-users 200 for 20 s, against a 1 ms target: achieved rate within 1%, no drops
#
# Each configuration runs RUNS times (interleaved A, B, C, A, B, C, ...); the summary gives medians and each run.
# Target: `nest demo-server --hello [--latency D] [--stall AT:FOR]` on 127.0.0.1, a fresh one per run, stopped with
# SIGINT (it then prints "served N requests") and killed on exit. Runs without `just`: bash bench/models.sh.
# See bench/README.md for the options and how to read the output.
set -euo pipefail

RUNS=${RUNS:-3}              # runs of each configuration
DURATION=${DURATION:-20}     # seconds per run (B's stall is placed at DURATION/2)
A_USERS=${A_USERS:-200}      # A: users
A_LATENCY=${A_LATENCY:-50}   # A: target latency, ms
A_WAIT=${A_WAIT:-0.1}        # A: constant think time, s
B_RATE=${B_RATE:-500}        # B: tasks per second
B_MAX_USERS=${B_MAX_USERS:-10}
B_STALL=${B_STALL:-1}        # B: stall length, s
C_RATE=${C_RATE:-2000}       # C: tasks per second
C_MAX_USERS=${C_MAX_USERS:-200}
C_LATENCY=${C_LATENCY:-1}    # C: target latency, ms
SKIP=${SKIP:-}               # letters of configurations to skip, e.g. SKIP=AC
NO_BUILD=${NO_BUILD:-0}      # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}       # a nest binary to measure instead of building target/release/nest

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-models.XXXXXX")
B_AT=$((DURATION / 2))

log() { printf '[models %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
calc() { if [[ $2 == *\?* ]]; then echo "?"; else awk "BEGIN { printf \"$1\", $2 }"; fi; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# CPU pressure: microseconds some runnable task waited for a CPU (PSI "some" total), and the clock in microseconds.
psi_cpu() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || true; }
now_us() { date +%s%6N; }
median() { tr ' ' '\n' <<<"$*" | grep -E '^-?[0-9.]+([eE][-+]?[0-9]+)?$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# "ok" if awk condition $1 holds, else "MISS".
verdict() { if [[ $1 == *\?* ]]; then echo "no data"; elif awk "BEGIN { exit !($1) }"; then echo ok; else echo MISS; fi; }

# ---------------------------------------------------------------- processes (one server, one nest at a time)
# shellcheck source=bench/lib/hello.sh
source "$ROOT/bench/lib/hello.sh"
SRV_PID="" NEST_PID="" URL="" SERVED=""
start_server() { # args: demo-server flags; sets URL
    hello_launch "$TMP/server.out" "$@" || die "the demo server did not start"
    SRV_PID=$HELLO_PID URL=$HELLO_URL
}
stop_server() { # SIGINT, then read "served N requests"; sets SERVED ("" if the server did not say)
    SERVED=""
    [[ -n $SRV_PID ]] || return 0
    kill -INT "$SRV_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        log "  the demo server ignored SIGINT for 10 s: killing it"
        kill -KILL "$SRV_PID" 2>/dev/null || true
    fi
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
    SERVED=$(sed -n 's/^served \([0-9]*\) requests.*/\1/p' "$TMP/server.out" | tail -1)
}
cleanup() {
    local rc=$?
    [[ -n $NEST_PID ]] && kill -TERM "$NEST_PID" 2>/dev/null
    [[ -n $SRV_PID ]] && { kill -TERM "$SRV_PID" 2>/dev/null; sleep 0.5; kill -KILL "$SRV_PID" 2>/dev/null; }
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs `nest run` against $URL, bounded in time. Args: tag, taskset dir, nest run flags. Sets N_RC N_JSON N_LOG N_PSI.
run_nest() {
    local tag=$1 dir=$2
    shift 2
    N_JSON="$OUT/models-$tag.json" N_LOG="$OUT/models-$tag.log"
    rm -f "$N_JSON"
    local psi0 t0
    psi0=$(psi_cpu) t0=$(now_us)
    # From $TMP, so that the repository's nest.yaml (its tasksets and settings) is not picked up.
    (cd "$TMP" && exec timeout -k 5 $((DURATION + 60)) "$NEST" run --taskset-dir "$dir" -H "$URL" -t "${DURATION}s" \
        --json "$N_JSON" -y "$@") >"$N_LOG" 2>&1 &
    NEST_PID=$!
    set +e
    wait "$NEST_PID"
    N_RC=$?
    set -e
    NEST_PID=""
    # % of the run's wall time during which some task waited for a CPU ("?" without /proc/pressure).
    local psi1
    psi1=$(psi_cpu)
    if [[ -n $psi0 && -n $psi1 ]]; then N_PSI=$(calc '%.0f' "($psi1 - $psi0) * 100 / ($(now_us) - $t0)"); else N_PSI="?"; fi
    if [[ $N_RC != 0 || ! -s $N_JSON ]]; then
        log "  nest exited $N_RC$([[ -s $N_JSON ]] || echo ', no JSON report'); last lines of $N_LOG:"
        tail -5 "$N_LOG" >&2
        FAULTS+=("$tag: nest run $* exited $N_RC$([[ -s $N_JSON ]] || echo ' without a JSON report'): $(grep -v '^\s*$' "$N_LOG" | tail -1 | cut -c1-200)")
    fi
}
# jq on the last report, "?" when there is none.
j() { if [[ -s $N_JSON ]]; then jq -r "$1" "$N_JSON"; else echo "?"; fi; }

# ---------------------------------------------------------------- setup
command -v jq >/dev/null || {
    log "installing jq"
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq jq >/dev/null || die "could not install jq"
}
if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release"
    cargo build --release --quiet || die "cargo build --release failed"
fi
[[ -x $NEST ]] || die "$NEST not found"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# Only the flags below shape the runs: no NEST_* settings from the environment (nest.yaml is avoided in run_nest).
while read -r v; do [[ $v == NEST_BIN ]] || unset "$v"; done < <(compgen -e NEST_ || true)

# Tasksets: one GET / per task; A adds a constant think time.
mkdir -p "$TMP/a" "$TMP/one"
printf '// models.sh A: closed model with think time.\nwait_time(constant(%s));\ntask(1, hit);\n\nfn hit() { client.get("/"); }\n' \
    "$A_WAIT" >"$TMP/a/latency.rhai"
printf '// models.sh B and C: one request per task.\ntask(1, hit);\n\nfn hit() { client.get("/"); }\n' >"$TMP/one/one.rhai"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
GIT_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
{
    echo "nest:    $("$NEST" --version), $([[ -n $NEST_BIN ]] && echo "binary $NEST_BIN (workspace at $GIT_REV)" || echo "built from $GIT_REV")"
    echo "machine: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM"
    echo "runs:    $RUNS x ${DURATION}s per configuration, interleaved; target: nest demo-server --hello (1 thread), fresh per run"
} | tee "$TMP/env.txt" >&2

FAULTS=()
A_P50="" A_P90="" A_P99="" A_RPS="" A_LOAD="" A_PSI=""
B_CP99="" B_P99="" B_P999="" B_MAX="" B_SERVED="" B_REQ="" B_DROP="" B_PEAK="" B_LOAD="" B_PSI=""
C_RATE_TOT="" C_RATE_SS="" C_DROP="" C_SERVED="" C_REQ="" C_P50="" C_LOAD="" C_PSI=""

# ---------------------------------------------------------------- A. closed model, fixed latency
run_a() { # $1 = run number
    local load
    load=$(load1)
    start_server --latency "${A_LATENCY}ms"
    run_nest "a-$1" "$TMP/a" -u "$A_USERS"
    stop_server
    A_P50+=" $(j '.totals.latency_ms.p50')" A_P90+=" $(j '.totals.latency_ms.p90')" A_P99+=" $(j '.totals.latency_ms.p99')"
    A_RPS+=" $(j '.totals.rps')" A_LOAD+=" $load" A_PSI+=" $N_PSI"
    log "A run $1: p50 $(j '.totals.latency_ms.p50') p90 $(j '.totals.latency_ms.p90') p99 $(j '.totals.latency_ms.p99') ms," \
        "$(j '.totals.requests') requests ($(j '.totals.failures') failed), server served ${SERVED:-?}, load $load, cpu pressure $N_PSI%"
}

# ---------------------------------------------------------------- B. open model, stall
run_b() {
    local load
    load=$(load1)
    start_server --stall "${B_AT}s:${B_STALL}s"
    run_nest "b-$1" "$TMP/one" --rate "$B_RATE" --max-users "$B_MAX_USERS"
    stop_server
    B_CP99+=" $(j '.totals.corrected_latency_ms.p99')" B_P99+=" $(j '.totals.latency_ms.p99')"
    B_P999+=" $(j '.totals.latency_ms.p999')" B_MAX+=" $(j '.totals.latency_ms.max')"
    B_SERVED+=" ${SERVED:-?}" B_REQ+=" $(j '.totals.requests')" B_DROP+=" $(j '.dropped_iterations')" B_LOAD+=" $load" B_PSI+=" $N_PSI"
    # The second whose corrected p99 is highest: where the stall hit, as seen by nest.
    B_PEAK+=" $(j '[.timeline[] | {t, c: ([.requests[].corrected_p99] | max // 0)}] | max_by(.c) | "t=\(.t)s:\(.c|floor)ms"')"
    log "B run $1: corrected p99 $(j '.totals.corrected_latency_ms.p99') ms, raw p99 $(j '.totals.latency_ms.p99') ms" \
        "(p99.9 $(j '.totals.latency_ms.p999'), max $(j '.totals.latency_ms.max')), server served ${SERVED:-?}," \
        "nest $(j '.totals.requests') requests ($(j '.totals.failures') failed), dropped $(j '.dropped_iterations'), load $load, cpu pressure $N_PSI%"
}

# ---------------------------------------------------------------- C. open model, high rate
run_c() {
    local load
    load=$(load1)
    start_server --latency "${C_LATENCY}ms"
    run_nest "c-$1" "$TMP/one" --rate "$C_RATE" --max-users "$C_MAX_USERS"
    stop_server
    local tot ss
    tot=$(j '.totals.requests / .duration_s')
    ss=$(j "[.timeline[] | select(.t >= 2 and .t <= $((DURATION - 2))) | [.requests[].count] | add // 0] | if length > 0 then add / length else \"?\" end")
    C_RATE_TOT+=" $tot" C_RATE_SS+=" $ss" C_DROP+=" $(j '.dropped_iterations')" C_SERVED+=" ${SERVED:-?}"
    C_REQ+=" $(j '.totals.requests')" C_P50+=" $(j '.totals.latency_ms.p50')" C_LOAD+=" $load" C_PSI+=" $N_PSI"
    log "C run $1: $(calc '%.1f' "$tot")/s overall, $(calc '%.1f' "$ss")/s steady (t=2..$((DURATION - 2))), dropped $(j '.dropped_iterations')," \
        "nest $(j '.totals.requests') requests ($(j '.totals.failures') failed), server served ${SERVED:-?}, raw p50 $(j '.totals.latency_ms.p50') ms, load $load, cpu pressure $N_PSI%"
}

for r in $(seq "$RUNS"); do
    [[ $SKIP == *A* ]] || { log "A run $r/$RUNS: -u $A_USERS, constant($A_WAIT), target latency ${A_LATENCY}ms, ${DURATION}s"; run_a "$r"; }
    [[ $SKIP == *B* ]] || { log "B run $r/$RUNS: --rate $B_RATE --max-users $B_MAX_USERS, target stall ${B_AT}s:${B_STALL}s, ${DURATION}s"; run_b "$r"; }
    [[ $SKIP == *C* ]] || { log "C run $r/$RUNS: --rate $C_RATE --max-users $C_MAX_USERS, target latency ${C_LATENCY}ms, ${DURATION}s"; run_c "$r"; }
done

# ---------------------------------------------------------------- summary
fmt_list() { # printf format, values...
    local f=$1 v out=""
    shift
    for v in "$@"; do
        if [[ $v == "?" ]]; then out+=" ?"; else out+=" $(calc "$f" "$v")"; fi
    done
    echo "[$out ]"
}
{
    echo "== nest load-model benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) =="
    cat "$TMP/env.txt"
    echo "load:    $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end (1/5/15 min; client and server share the cores);" \
        "per run: 1-min load at its start, cpu pressure = % of its time some task waited for a CPU"
    if [[ $SKIP != *A* ]]; then
        p50=$(median "$A_P50")
        echo "A. closed, $A_USERS users, constant($A_WAIT), target latency ${A_LATENCY} ms: p50 $(calc '%.2f' "$p50") ms" \
            "(need [$A_LATENCY, $((A_LATENCY + 2))]: $(verdict "$p50 >= $A_LATENCY && $p50 <= $A_LATENCY + 2")), p90 $(calc '%.2f' "$(median "$A_P90")")," \
            "p99 $(calc '%.2f' "$(median "$A_P99")") ms, $(calc '%.0f' "$(median "$A_RPS")") req/s (medians)"
        # shellcheck disable=SC2086
        echo "  runs: p50 $(fmt_list '%.2f' $A_P50), p90 $(fmt_list '%.2f' $A_P90), p99 $(fmt_list '%.2f' $A_P99), load $(fmt_list '%.2f' $A_LOAD), cpu pressure [$A_PSI ]%"
    fi
    if [[ $SKIP != *B* ]]; then
        sched=$((B_RATE * DURATION))
        cp99=$(median "$B_CP99") p99=$(median "$B_P99") served=$(median "${B_SERVED//\?/}") req=$(median "$B_REQ")
        echo "B. open, --rate $B_RATE --max-users $B_MAX_USERS, target stalls ${B_STALL}s at ${B_AT}s: corrected p99 $(calc '%.0f' "$cp99") ms" \
            "(need >= 500: $(verdict "$cp99 >= 500")), raw p99 $(calc '%.2f' "$p99") ms (p99.9 $(calc '%.0f' "$(median "$B_P999")"), max $(calc '%.0f' "$(median "$B_MAX")") ms)," \
            "server served $(commas "$served") vs schedule $(commas "$sched") ($(calc '%+.2f' "($served - $sched) * 100 / $sched")%, need within 1%:" \
            "$(verdict "($served - $sched) ^ 2 <= ($sched / 100) ^ 2")), nest counted $(commas "$req"), dropped_iterations $(median "$B_DROP") (medians)"
        # shellcheck disable=SC2086
        echo "  runs: corrected p99 $(fmt_list '%.0f' $B_CP99), raw p99 $(fmt_list '%.2f' $B_P99), raw p99.9 $(fmt_list '%.0f' $B_P999)," \
            "served [$B_SERVED ], nest [$B_REQ ], dropped [$B_DROP ], worst second (corrected p99) [$B_PEAK ], load $(fmt_list '%.2f' $B_LOAD), cpu pressure [$B_PSI ]%"
        echo "  (requests caught at the server in the stall are at most --max-users = $B_MAX_USERS per run, $(calc '%.2f' "$B_MAX_USERS * 100 / $sched")% of the schedule)"
    fi
    if [[ $SKIP != *C* ]]; then
        ss=$(median "$C_RATE_SS") tot=$(median "$C_RATE_TOT") drop=$(median "$C_DROP")
        echo "C. open, --rate $C_RATE --max-users $C_MAX_USERS, target latency ${C_LATENCY} ms: steady rate $(calc '%.1f' "$ss")/s" \
            "($(calc '%+.2f' "($ss - $C_RATE) * 100 / $C_RATE")%, need within 1%: $(verdict "($ss - $C_RATE) ^ 2 <= ($C_RATE / 100) ^ 2"))," \
            "overall $(calc '%.1f' "$tot")/s ($(calc '%+.2f' "($tot - $C_RATE) * 100 / $C_RATE")%), dropped_iterations $drop" \
            "(need 0: $(verdict "$drop == 0")) (medians)"
        # shellcheck disable=SC2086
        echo "  runs: steady $(fmt_list '%.1f' $C_RATE_SS), overall $(fmt_list '%.1f' $C_RATE_TOT), dropped [$C_DROP ], nest [$C_REQ ]," \
            "served [$C_SERVED ], raw p50 $(fmt_list '%.2f' $C_P50) ms, load $(fmt_list '%.2f' $C_LOAD), cpu pressure [$C_PSI ]%"
    fi
    if ((${#FAULTS[@]})); then
        echo "nest runs that failed:"
        printf '  %s\n' "${FAULTS[@]}"
    fi
} >"$OUT/models.txt"
echo
cat "$OUT/models.txt"
echo "(logs and JSON reports in $OUT/models-*)"
