#!/usr/bin/env bash
# nest benchmark (issue 2, section 9): figures, not tests.
#
#   A. throughput of nest (50 users, no wait) against wrk (50 connections), alternating, medians, ratio
#   B. 10,000 users with constant(1) think time for 20 s: achieved rate and peak RSS per VU
#   C. largest VU count one nest process holds at the ideal rate, and why the next step fails
#
# Target: `nest demo-server --hello` on 127.0.0.1 (a fresh one per measurement, on a free port), killed on exit.
# Runs without `just`: bash bench/bench.sh. See bench/README.md for the options and how to read the output.
set -euo pipefail

ROUNDS=${ROUNDS:-3}              # A: alternating wrk/nest rounds
DURATION=${DURATION:-10}         # A: seconds per wrk or nest run
USERS_10K=${USERS_10K:-10000}    # B: users
B_DURATION=${B_DURATION:-20}     # B: seconds
BASE_DURATION=${BASE_DURATION:-5} # B: seconds of the 1-user baseline run
MAX_USERS=${MAX_USERS:-60000}    # C: cap on the user count
C_START=${C_START:-10000}        # C: first step
C_STEP=${C_STEP:-10000}          # C: step size
C_DURATION=${C_DURATION:-20}     # C: seconds per step
ONLY_C=${ONLY_C:-0}              # 1: run part C alone
SKIP_C=${SKIP_C:-0}              # 1: skip part C
NO_BUILD=${NO_BUILD:-0}          # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}           # a nest binary to measure instead of building target/release/nest
TOLERANCE=${TOLERANCE:-2}        # B/C: % below the ideal rate that still counts as "at the ideal rate"
SOURCE_ADDRS=${SOURCE_ADDRS:-}    # C: --source-addr list (e.g. 127.0.0.2,127.0.0.3) to go past one address's ~28,000 ports
C_IDEAL=${C_IDEAL:-latency}      # C: ideal rate = users/(1 s + mean latency) ("latency") or users/1 s ("flat")

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
HELLO="$ROOT/bench/tasksets/hello"
PACED="$ROOT/bench/tasksets/paced"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-bench.XXXXXX")
GRACE=10 # nest's default --stop-timeout

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
int() { printf '%.0f' "$1"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# The kernel's count of connections dropped because a listener's accept queue was full (all listeners).
listen_overflows() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; h = 1 } else print $c + 0 }' /proc/net/netstat 2>/dev/null || echo 0; }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- server (one at a time)
# shellcheck source=bench/lib/hello.sh
source "$ROOT/bench/lib/hello.sh"
SRV_PID=""
URL=""
SERVED=""
start_server() { # $1 = threads; sets URL
    hello_launch "$TMP/server.out" --threads "$1" || die "the demo server did not start"
    SRV_PID=$HELLO_PID URL=$HELLO_URL
}
stop_server() { # sets SERVED (requests the server counted, or "" if unknown)
    SERVED=""
    [[ -n $SRV_PID ]] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SRV_PID" 2>/dev/null; then kill -KILL "$SRV_PID" 2>/dev/null || true; fi
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=""
    SERVED=$(sed -n 's/^served \([0-9]*\) requests.*/\1/p' "$TMP/server.out" | tail -1)
}
cleanup() {
    local rc=$?
    [[ -n $SRV_PID ]] && { kill -TERM "$SRV_PID" 2>/dev/null || true; sleep 0.5; kill -KILL "$SRV_PID" 2>/dev/null || true; }
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v jq >/dev/null || need_pkgs+=(jq)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null ||
        die "could not install ${need_pkgs[*]}"
fi

if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release"
    cargo build --release --quiet || die "cargo build --release failed"
fi
[[ -x $NEST ]] || die "$NEST not found"
# Run nest away from the repository: its nest.yaml (the demo mix) must not apply to the benchmark tasksets.
cd "$TMP"

# Open files: one per VU connection in nest, one per connection in the server. Raise the soft limit as far as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ $(id -u) == 0 ]]; then ulimit -n 1048576 2>/dev/null || true; fi
NOFILE=$(ulimit -n)
PORTS=$(tr -s '\t ' ' ' </proc/sys/net/ipv4/ip_local_port_range)
MAXMAP=$(cat /proc/sys/vm/max_map_count)
CORES=$(nproc)
NEST_VERSION=$("$NEST" --version)
GIT_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
WRK_VERSION=$( (wrk --version 2>&1 || true) | head -1 | awk '{print $1, $2}')
{
    echo "nest:    $NEST_VERSION, $([[ -n $NEST_BIN ]] && echo "binary $NEST_BIN (workspace at $GIT_REV)" || echo "built from $GIT_REV")"
    echo "wrk:     $WRK_VERSION"
    echo "time:    $(/usr/bin/time --version 2>&1 | head -1)"
    echo "rustc:   $(rustc --version 2>/dev/null || echo '?')"
    echo "machine: $(uname -srm), $CORES cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "limits:  open files $NOFILE (hard $(ulimit -Hn)), local ports $PORTS, vm.max_map_count $MAXMAP"
    start_server 1
    echo "target:  nest demo-server --hello, accept backlog $(ss -Hlnt "sport = :${URL##*:}" 2>/dev/null | awk '{print $3}' | head -1) (net.core.somaxconn $(cat /proc/sys/net/core/somaxconn))"
    stop_server
} | tee "$TMP/env.txt" >&2

# Runs nest under GNU time, bounded. Args: users, seconds, taskset dir, tag, threads of the server.
# Sets: N_RC N_RPS N_REQ N_FAIL N_OK_RPS N_MEAN N_P99 N_RSS N_CPU N_SERVED N_OVF N_LOG N_JSON
run_nest() {
    local users=$1 secs=$2 dir=$3 tag=$4 threads=$5
    N_JSON="$TMP/$tag.json" N_LOG="$OUT/$tag.log"
    rm -f "$N_JSON"
    start_server "$threads"
    local ovf0
    ovf0=$(listen_overflows)
    set +e
    timeout -k 5 $((secs + GRACE + 60 + users / 1000)) \
        /usr/bin/time -o "$TMP/$tag.time" -f '%M %P' \
        "$NEST" run --taskset-dir "$dir" -H "$URL" -u "$users" -t "${secs}s" --json "$N_JSON" -y ${NEST_EXTRA:-} >"$N_LOG" 2>&1
    N_RC=$?
    set -e
    N_OVF=$(($(listen_overflows) - ovf0))
    stop_server
    N_SERVED=$SERVED
    read -r N_RSS N_CPU < <(grep -E '^[0-9]+ ' "$TMP/$tag.time" | tail -1 || echo "0 0%")
    N_RSS=${N_RSS:-0} N_CPU=${N_CPU:-?}
    if [[ -s $N_JSON ]]; then
        cp "$N_JSON" "$OUT/$tag.json"
        read -r N_RPS N_REQ N_FAIL N_MEAN N_P99 N_DUR < <(jq -r '[.totals.rps, .totals.requests, .totals.failures,
            .totals.latency_ms.mean, .totals.latency_ms.p99, .duration_s] | map(tostring) | join(" ")' "$N_JSON")
        N_OK_RPS=$(calc '%.1f' "($N_REQ - $N_FAIL) / $N_DUR")
        # Steady state: the mean requests per second over the timeline, without the first 3 and the last 2 seconds.
        N_STEADY=$(jq -r --argjson d "$N_DUR" --argjson from "${STEADY_FROM:-3}" '[.timeline[] | select(.t >= $from and .t < ($d | floor) - 2) | (.total.count // 0)]
            | if length > 0 then (add / length) else 0 end' "$N_JSON")
        N_MEAN=$(calc '%.1f' "$N_MEAN") N_P99=$(calc '%.1f' "$N_P99")
    else
        N_RPS=0 N_REQ=0 N_FAIL=0 N_MEAN=0 N_P99=0 N_DUR=0 N_OK_RPS=0 N_STEADY=0
    fi
}
# Top failure reasons of the last run, "reason ×count; ...".
failure_reasons() {
    [[ -s $N_JSON ]] || return 0
    jq -r '[.failures | sort_by(-.count) | .[:3][] | "\(.reason) x\(.count)"] | join("; ")' "$N_JSON"
}
COUNT_NOTES=()
check_count() { # compare nest's total with what the server counted (the server counts requests as they are routed)
    local tag=$1
    [[ -n $N_SERVED && $N_REQ != 0 ]] || return 0
    if [[ $N_SERVED != "$N_REQ" ]]; then
        COUNT_NOTES+=("$tag: nest counted $N_REQ, server served $N_SERVED (diff $((N_SERVED - N_REQ)))")
        log "  count: nest $N_REQ vs server $N_SERVED (diff $((N_SERVED - N_REQ)))"
    fi
}

# ---------------------------------------------------------------- A. throughput vs wrk
run_wrk() { # threads tag; sets W_RPS
    start_server "$1"
    set +e
    timeout -k 5 $((DURATION + 30)) wrk -t2 -c50 -d"${DURATION}s" "$URL/" >"$OUT/$2.log" 2>&1
    set -e
    stop_server
    W_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/$2.log")
    W_RPS=${W_RPS:-0}
}

if [[ $ONLY_C != 1 ]]; then
# Client and target share the 2 cores, so the ratio depends on how much CPU the target takes: a 2-thread target
# can use the CPU wrk leaves free, which rewards the leaner client. Measure both target sizes, alternating A/B.
A_LINES=() A_DETAIL=()
for THREADS_A in 1 2; do
    WRK_ALL="" NEST_ALL="" CPU_ALL=""
    for r in $(seq "$ROUNDS"); do
        run_wrk "$THREADS_A" "a-t$THREADS_A-wrk-$r"
        WRK_ALL+=" $W_RPS"
        run_nest 50 "$DURATION" "$HELLO" "a-t$THREADS_A-nest-$r" "$THREADS_A"
        [[ $N_RC == 0 ]] || log "  nest exited $N_RC (see $N_LOG)"
        NEST_ALL+=" $N_RPS" CPU_ALL+=" ${N_CPU%\%}"
        check_count "A (target --threads $THREADS_A) round $r"
        log "A target --threads $THREADS_A, round $r/$ROUNDS: wrk $(commas "$(int "$W_RPS")") req/s," \
            "nest $(commas "$(int "$N_RPS")") req/s (nest failures $N_FAIL, p99 ${N_P99} ms, cpu $N_CPU)"
    done
    WRK_MED=$(median "$WRK_ALL")
    NEST_MED=$(median "$NEST_ALL")
    CPU_MED=$(median "$CPU_ALL")
    RATIO=$(calc '%.2f' "$NEST_MED / ($WRK_MED > 0 ? $WRK_MED : 1)")
    US_REQ=$(calc '%.1f' "$CPU_MED / 100 * 1000000 / ($NEST_MED > 0 ? $NEST_MED : 1)")
    A_LINES+=("throughput, target --threads $THREADS_A: nest $(commas "$(int "$NEST_MED")") req/s, wrk -t2 $(commas "$(int "$WRK_MED")") req/s (medians of $ROUNDS x ${DURATION}s, 50 users/connections), ratio $RATIO (need >= 0.75); nest cpu $CPU_MED% = $US_REQ us per request")
    A_DETAIL+=("  rounds: wrk [$(for v in $WRK_ALL; do printf ' %s' "$(int "$v")"; done) ], nest [$(for v in $NEST_ALL; do printf ' %s' "$(int "$v")"; done) ]")
    log "${A_LINES[-1]}"
done
THREADS=1
LINE_A="${A_LINES[0]}"
LINE_A2="${A_DETAIL[0]}
${A_LINES[1]}
${A_DETAIL[1]}"

# ---------------------------------------------------------------- B. 10k users, constant(1)
log "B. baseline: 1 user, constant(1), ${BASE_DURATION}s"
run_nest 1 "$BASE_DURATION" "$PACED" b-baseline "$THREADS"
BASE_RSS=$N_RSS
log "  baseline peak RSS $(commas "$BASE_RSS") KiB"

log "B. $USERS_10K users, constant(1), ${B_DURATION}s, started at $USERS_10K/s (1 s ramp)"
NEST_EXTRA="-r $USERS_10K" run_nest "$USERS_10K" "$B_DURATION" "$PACED" b-users "$THREADS"
B_STEADY_DEV=$(calc '%+.2f' "($N_STEADY - $USERS_10K) * 100 / $USERS_10K")
check_count "B"
B_DEV=$(calc '%+.2f' "($N_RPS - $USERS_10K) * 100 / $USERS_10K")
B_IDEAL_LAT=$(calc '%.0f' "$USERS_10K / (1 + $N_MEAN / 1000)")
B_RAW=$(calc '%.1f' "$N_RSS / $USERS_10K")
B_NET=$(calc '%.1f' "($N_RSS - $BASE_RSS) / $USERS_10K")
B_FAILS=$(failure_reasons)
B_OVF=$N_OVF
LINE_B="$(commas "$USERS_10K") users: steady-state rate $(commas "$(int "$N_STEADY")")/s ($B_STEADY_DEV% vs $(commas "$USERS_10K")/s; need within ${TOLERANCE}%), whole-run $(commas "$(int "$N_RPS")")/s ($B_DEV%), peak RSS $(calc '%.0f' "$N_RSS / 1024") MiB, $B_NET KiB/VU net of baseline (need <= 32), $B_RAW KiB/VU raw"
LINE_B2="  baseline (1 user) $(calc '%.1f' "$BASE_RSS / 1024") MiB; latency mean $N_MEAN ms, p99 $N_P99 ms (ideal with latency $(commas "$B_IDEAL_LAT")/s); failures $N_FAIL${B_FAILS:+ ($B_FAILS)}; nest cpu $N_CPU; exit $N_RC; target accept-queue overflows during the run: $B_OVF"
log "$LINE_B"
log "$LINE_B2"
else
    THREADS=1 LINE_A="throughput: skipped (ONLY_C=1)" LINE_A2="" LINE_B="10k users: skipped (ONLY_C=1)" LINE_B2=""
fi

# ---------------------------------------------------------------- C. largest VU count at the ideal rate
if [[ $SKIP_C == 1 ]]; then
    LINE_C="largest VU count at ideal rate: skipped (SKIP_C=1)" LINE_C2=""
else
    # nest refuses a run that needs more open files than its hard limit allows (users + 256 spare).
    FD_CAP=$(( ($(ulimit -Hn) - 256) / 500 * 500 ))
    PASS=0 PASS_INFO="" REFUSED="" FAIL_AT="" WHY="" TRIED_CAP=0
    users=$C_START
    while ((users <= MAX_USERS)); do
        log "C. $users users, constant(1), ${C_DURATION}s"
        # Thousands of connects in one second overflow the kernel's SYN queue (clients retry after 1 s and 3 s): ramp
        # over 5 s and judge from second 8.
        NEST_EXTRA="-r $((users / 5))${SOURCE_ADDRS:+ --source-addr $SOURCE_ADDRS}" STEADY_FROM=8 run_nest "$users" "$C_DURATION" "$PACED" "c-$users" "$THREADS"
        check_count "C $users"
        # Judged on the steady state (timeline seconds 3 .. end-2), as in B; the whole-run rate includes the ramp.
        flat_pct=$(calc '%.2f' "$N_STEADY * 100 / $users")
        lat_pct=$(calc '%.2f' "$N_STEADY * 100 * (1 + $N_MEAN / 1000) / $users")
        if [[ $C_IDEAL == flat ]]; then ok_pct=$flat_pct; else ok_pct=$lat_pct; fi
        log "  exit $N_RC, rate $(commas "$(int "$N_RPS")")/s, successful $(commas "$(int "$N_OK_RPS")")/s" \
            "($flat_pct% of users/1s, $lat_pct% of users/(1s+mean latency)), failures $N_FAIL, mean $N_MEAN ms, p99 $N_P99 ms," \
            "peak RSS $(calc '%.0f' "$N_RSS / 1024") MiB, nest cpu $N_CPU, accept-queue overflows $N_OVF"
        if [[ $N_RC == 0 ]] && awk "BEGIN { exit !($ok_pct >= 100 - $TOLERANCE) }"; then
            PASS=$users PASS_INFO="$flat_pct% of users/1s, $lat_pct% of users/(1s+mean latency), peak RSS $(calc '%.0f' "$N_RSS / 1024") MiB"
            if ((TRIED_CAP)); then FAIL_AT=""; break; fi # the step right under the open-file limit passed
        else
            FAIL_AT=$users
            if [[ $N_RC != 0 && ! -s $N_JSON ]]; then
                WHY="nest exit $N_RC: $(grep -v '^\s*$' "$N_LOG" | tail -1 | sed 's/^error: //; s/\. Raise it.*//' | cut -c1-200)"
            elif ((N_FAIL > 0)); then
                WHY="successful rate $ok_pct% of ideal, $N_FAIL failed requests: $(failure_reasons)"
            else
                WHY="rate $ok_pct% of ideal, no failures; mean $N_MEAN ms, p99 $N_P99 ms, $N_OVF accept-queue overflows, nest cpu $N_CPU of $((CORES * 100))% (client and server share $CORES cores)"
            fi
            log "  -> failed: $WHY"
            # Refused for open files: try once more right under the limit, if that is above the last pass.
            if [[ $N_RC == 2 ]] && grep -q 'open files' "$N_LOG" && ((TRIED_CAP == 0 && FD_CAP > PASS && FD_CAP < users)); then
                TRIED_CAP=1
                REFUSED="$(commas "$users") refused: $WHY; "
                users=$FD_CAP
                continue
            fi
            break
        fi
        users=$((users + C_STEP))
    done
    if [[ -z $FAIL_AT && -z $REFUSED ]]; then
        LINE_C="largest VU count at ideal rate: $(commas "$PASS") (reached MAX_USERS=$(commas "$MAX_USERS") without failing)"
    else
        LINE_C="largest VU count at ideal rate: $(commas "$PASS") (${REFUSED}${FAIL_AT:+$(commas "$FAIL_AT") failed: $WHY})"
        LINE_C=${LINE_C/%; )/)}
    fi
    LINE_C2="  ideal = $([[ $C_IDEAL == flat ]] && echo 'users/1 s' || echo 'users/(1 s + mean latency)'), pass = successful rate within ${TOLERANCE}% and exit 0; steps $(commas "$C_START")+$(commas "$C_STEP")..$(commas "$MAX_USERS") x ${C_DURATION}s${PASS_INFO:+; at $(commas "$PASS"): $PASS_INFO}"
    log "$LINE_C"
fi

# ---------------------------------------------------------------- summary
{
    echo "== nest benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ) =="
    cat "$TMP/env.txt"
    echo "$LINE_A"
    echo "$LINE_A2"
    echo "$LINE_B"
    echo "$LINE_B2"
    echo "$LINE_C"
    [[ -z $LINE_C2 ]] || echo "$LINE_C2"
    if ((${#COUNT_NOTES[@]})); then
        echo "count check (nest totals.requests vs the server's count):"
        printf '  %s\n' "${COUNT_NOTES[@]}"
    else
        echo "count check: nest totals.requests equals the server's count in every nest run"
    fi
} >"$OUT/summary.txt"
echo
cat "$OUT/summary.txt"
echo "(logs and JSON reports in $OUT/)"
