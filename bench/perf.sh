#!/usr/bin/env bash
# nest benchmark (issue 15): CPU per request and requests/s of every client of the side-by-side table, in one run:
# wrk -t1, oha, nest `--workers 1` and `--workers 2` on bench/tasksets/hello (one task, `client.get("/")`), and the
# Goose load test of bench/goose/. 50 connections or users, GET / with no think time, against two targets: nginx
# with 1 worker, and nest's own `demo-server --hello --threads 2`. It prints figures and checks nothing.
#
# CPU per request = (user + sys CPU of the client, from GNU time) / requests the client completed. Rounds alternate
# the targets and the clients (nginx: wrk, oha, nest, nest2, goose; hello: the same; then round 2 ...), and the
# summary gives, per target, each client's medians and their ratios to wrk's medians of the same run. Run it on a
# quiet machine: the clients and the targets share the cores, so other load changes every figure.
#
#   bash bench/perf.sh                                  # builds release; ROUNDS=3 x DURATION=10 s: about 6 min
#   ROUNDS=1 DURATION=2 NO_BUILD=1 bash bench/perf.sh   # a quick check that the script works
#   OHA_INSTALL=1 GOOSE_INSTALL=1 bash bench/perf.sh    # first builds oha and bench/goose into ~/.cache/nest-bench
#   TARGETS=nginx CLIENTS=wrk,nest bash bench/perf.sh   # a subset (wrk is always measured: the ratios are to it)
set -euo pipefail

ROUNDS=${ROUNDS:-3}              # alternating rounds (use at least 3)
DURATION=${DURATION:-10}         # seconds per client run
CONNS=${CONNS:-50}               # connections (wrk, oha) = users (nest, Goose)
WORKERS=${WORKERS:-1}            # nest --workers of the `nest` row (the `nest2` row has 2)
TARGETS=${TARGETS:-nginx,hello}  # nginx (1 worker) and/or hello (nest demo-server --hello)
CLIENTS=${CLIENTS:-wrk,oha,nest,nest2,goose}
HELLO_THREADS=${HELLO_THREADS:-2} # threads of the hello target
GOOSE_RATE=${GOOSE_RATE:-1000}   # Goose users started per second (--increase-rate)
NO_BUILD=${NO_BUILD:-0}          # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}           # a nest binary to measure instead of target/release/nest

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
HELLO="$ROOT/bench/tasksets/hello"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-perf.XXXXXX")
# shellcheck source=bench/lib/nginx.sh
source "$ROOT/bench/lib/nginx.sh"
# shellcheck source=bench/lib/hello.sh
source "$ROOT/bench/lib/hello.sh"
# shellcheck source=bench/lib/clients.sh
source "$ROOT/bench/lib/clients.sh"

log() { printf '[perf %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { tr ' ' '\n' <<<"$*" | grep -v '^$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Microseconds during which some task waited for a CPU, since boot (0 where the kernel has no PSI).
cpu_wait_us() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null || echo 0; }
cleanup() { local rc=$?; hello_stop; nginx_stop; rm -rf "$TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

IFS=, read -r -a WANT_TARGETS <<<"$TARGETS"
IFS=, read -r -a WANT_CLIENTS <<<"$CLIENTS"
for t in "${WANT_TARGETS[@]}"; do [[ $t == nginx || $t == hello ]] || die "unknown target '$t' (TARGETS: nginx,hello)"; done
ROWS=(wrk) # the clients of the table, in order; wrk first
for c in "${WANT_CLIENTS[@]}"; do
    case $c in
    wrk) ;;
    oha | nest | nest2 | goose) ROWS+=("$c") ;;
    *) die "unknown client '$c' (CLIENTS: wrk,oha,nest,nest2,goose)" ;;
    esac
done

apt_install_missing wrk:wrk /usr/bin/time:time jq:jq /usr/sbin/nginx:nginx || die "could not install the tools"
declare -A NOTE # client -> why it has no figures
for c in "${ROWS[@]}"; do
    case $c in
    oha) find_oha; [[ -n $OHA ]] || NOTE[oha]=$OHA_NOTE ;;
    goose) find_goose; [[ -n $GOOSE ]] || NOTE[goose]=$GOOSE_NOTE ;;
    esac
done
if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
    log "cargo build --release -p nest"
    (cd "$ROOT" && cargo build --release --quiet -p nest) || die "cargo build --release failed"
fi
[[ -x $NEST ]] || die "$NEST not found"
cd "$TMP" # away from the repository's nest.yaml
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

declare -A URL TARGET_DESC
for t in "${WANT_TARGETS[@]}"; do
    case $t in
    nginx)
        nginx_start || die "nginx did not start"
        URL[nginx]=$NGINX_URL
        TARGET_DESC[nginx]="nginx $($(nginx_bin) -v 2>&1 | sed 's/.*nginx\///'), 1 worker, $NGINX_URL"
        ;;
    hello)
        hello_start "$HELLO_THREADS" || die "the hello target did not start"
        URL[hello]=$HELLO_URL
        TARGET_DESC[hello]="nest demo-server --hello --threads $HELLO_THREADS, $HELLO_URL"
        ;;
    esac
    log "$t at ${URL[$t]}"
done

# Each run sets: REQ (requests completed), RPS, CPU_US (client CPU per request, µs).
timed() { # $1 = tag, then the command
    local tag=$1
    shift
    timeout -k 5 $((DURATION + 60)) /usr/bin/time -o "$TMP/$tag.time" -f '%U %S' "$@" >"$OUT/perf-$tag.log" 2>&1 ||
        { tail -5 "$OUT/perf-$tag.log" >&2; die "$tag failed"; }
    read -r U S < <(tail -1 "$TMP/$tag.time")
}
finish() { # uses REQ, U, S
    [[ $REQ =~ ^[0-9]+$ && $REQ -gt 0 ]] || die "no requests counted (see the logs in $OUT)"
    RPS=$(calc '%.0f' "$REQ / $DURATION")
    CPU_US=$(calc '%.3f' "($U + $S) * 1000000 / $REQ")
}
run_wrk() { # $1 = url, $2 = tag
    timed "$2" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1/"
    REQ=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$OUT/perf-$2.log")
    finish
    RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$OUT/perf-$2.log")
}
nest_workers() { # $1 = url, $2 = tag, $3 = workers
    timed "$2" "$NEST" run --taskset-dir "$HELLO" -H "$1" -u "$CONNS" --workers "$3" -t "${DURATION}s" \
        --json "$TMP/$2.json" -y
    REQ=$(jq -r '.totals.requests' "$TMP/$2.json")
    finish
    RPS=$(jq -r '.totals.rps | floor' "$TMP/$2.json")
}
run_nest() { nest_workers "$1" "$2" "$WORKERS"; }
run_nest2() { nest_workers "$1" "$2" 2; }
run_oha() {
    timed "$2" "$OHA" -z "${DURATION}s" -c "$CONNS" --no-tui --output-format json "$1/"
    REQ=$(jq -r '[.statusCodeDistribution[]] | add' "$OUT/perf-$2.log")
    finish
}
run_goose() {
    timed "$2" "$GOOSE" -H "$1" -u "$CONNS" -r "$GOOSE_RATE" -t "${DURATION}s" --no-reset-metrics \
        --report-file "$TMP/$2.json"
    REQ=$(goose_requests "$TMP/$2.json")
    finish
}

declare -A CPU RATE
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
WAIT0=$(cpu_wait_us)
T0=$(date +%s.%N)
for r in $(seq "$ROUNDS"); do
    for t in "${WANT_TARGETS[@]}"; do
        for c in "${ROWS[@]}"; do
            [[ -z ${NOTE[$c]:-} ]] || continue
            "run_$c" "${URL[$t]}" "$t-$c-$r"
            CPU[$t/$c]+="$CPU_US "
            RATE[$t/$c]+="$RPS "
            log "round $r, $t: $c $REQ requests, $RPS req/s, $CPU_US µs CPU per request"
        done
    done
done
PRESSURE=$(calc '%.0f' "($(cpu_wait_us) - $WAIT0) / 10000 / ($(date +%s.%N) - $T0)")

label() {
    case $1 in
    wrk) echo "wrk -t1" ;;
    oha) echo "oha" ;;
    nest) echo "nest --workers $WORKERS" ;;
    nest2) echo "nest --workers 2" ;;
    goose) echo "Goose" ;;
    esac
}
# The issue's targets for nest --workers 1: req/s ≥ 0.85 x wrk's on nginx and ≥ 0.75 on hello; CPU per request
# ≤ 1.3 x wrk's (on nginx, where the issue measured it).
check() { # $1 = target, $2 = nest's req/s ratio, $3 = its CPU ratio
    local min=0.85 cpu=""
    [[ $1 == hello ]] && min=0.75
    [[ $1 == nginx ]] && cpu=$(printf ', CPU per request %s x wrk (target <= 1.3: %s)' "$3" \
        "$(calc '%s' "($3 <= 1.3 ? \"ok\" : \"MISS\")")")
    printf 'check (%s): nest --workers %s: req/s %s x wrk (target >= %s: %s)%s\n' "$1" "$WORKERS" "$2" "$min" \
        "$(calc '%s' "($2 >= $min ? \"ok\" : \"MISS\")")" "$cpu"
}

RESULTS="$OUT/perf-results.tsv" # for bench/table.sh: target client label cpu_us cpu_ratio rps rps_ratio note
: >"$RESULTS"
{
    echo "nest:    $("$NEST" --version), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "clients: $CONNS connections/users, GET /, no think time; ${DURATION}s x $ROUNDS alternating rounds"
    echo "machine: $(nproc) cores; load $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end;" \
        "cpu pressure $PRESSURE% (share of the time some task waited for a CPU)"
    for t in "${WANT_TARGETS[@]}"; do
        echo
        echo "target: ${TARGET_DESC[$t]}"
        W_CPU=$(median "${CPU[$t/wrk]}")
        W_RPS=$(median "${RATE[$t/wrk]}")
        printf '%-18s %14s %8s %10s %8s\n' client "CPU/req (µs)" "÷ wrk" "req/s" "÷ wrk"
        for c in "${ROWS[@]}"; do
            if [[ -n ${NOTE[$c]:-} ]]; then
                printf '%-18s %s\n' "$(label "$c")" "${NOTE[$c]}"
                printf '%s\t%s\t%s\t-\t-\t-\t-\t%s\n' "$t" "$c" "$(label "$c")" "${NOTE[$c]}" >>"$RESULTS"
                continue
            fi
            m_cpu=$(median "${CPU[$t/$c]}")
            m_rps=$(median "${RATE[$t/$c]}")
            r_cpu=$(calc '%.2f' "$m_cpu / $W_CPU")
            r_rps=$(calc '%.2f' "$m_rps / $W_RPS")
            printf '%-18s %14s %8s %10s %8s\n' "$(label "$c")" "$m_cpu" "$r_cpu" "$(calc '%.0f' "$m_rps")" "$r_rps"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$t" "$c" "$(label "$c")" "$m_cpu" "$r_cpu" \
                "$(calc '%.0f' "$m_rps")" "$r_rps" >>"$RESULTS"
            [[ $c == nest ]] && NEST_RATIOS="$r_rps $r_cpu"
        done
        echo "rounds (CPU µs/req): $(for c in "${ROWS[@]}"; do [[ -n ${NOTE[$c]:-} ]] || printf '%s [ %s] ' "$c" "${CPU[$t/$c]}"; done)"
        echo "rounds (req/s): $(for c in "${ROWS[@]}"; do [[ -n ${NOTE[$c]:-} ]] || printf '%s [ %s] ' "$c" "${RATE[$t/$c]}"; done)"
        if [[ -n ${NEST_RATIOS:-} ]]; then
            # shellcheck disable=SC2086
            check "$t" $NEST_RATIOS
        fi
        NEST_RATIOS=""
    done
} | tee "$OUT/perf-summary.txt"
