#!/usr/bin/env bash
# nest benchmark (issue 15): user-space instructions per request, counted by valgrind's callgrind, so the figure
# does not depend on how busy the machine is. It prints figures and checks nothing.
#
# Against nginx (1 worker, loopback, keep-alive), each client of CLIENTS runs twice under callgrind with USERS
# connections, a short run (about LOW requests) and a long one (about HIGH): nest runs bench/tasksets/hello (one task:
# `client.get("/")`) with `--workers 1` for LOW and HIGH iterations; oha sends `-n LOW` and `-n HIGH` requests; the
# Goose load test of bench/goose/ runs LOW/USERS and HIGH/USERS iterations per user; wrk has only a duration, so it
# runs WRK_LOW and WRK_HIGH seconds (1 and 4; it serves 10,000-20,000 requests a second under callgrind). The
# figure is the slope: (instructions of the long run - of the short one) / (requests of the long run - of the short
# one), which leaves out start-up and shutdown. All threads of the process count. Kernel time is not in it.
#
#   bash bench/instr.sh                          # nest only; builds release, then about 1-2 minutes
#   CLIENTS=nest,wrk,oha,goose bash bench/instr.sh   # one line per client (oha and Goose: see bench/lib/clients.sh)
#   PROFILE=1 bash bench/instr.sh                # also prints callgrind_annotate of each long run's busiest thread
#   NEST_BIN=path NO_BUILD=1 ...                 # measure another binary
set -euo pipefail

CLIENTS=${CLIENTS:-nest}  # any of nest,wrk,oha,goose
LOW=${LOW:-2000}          # requests (iterations) of the short run
HIGH=${HIGH:-20000}       # requests (iterations) of the long run
WRK_LOW=${WRK_LOW:-1}     # seconds of wrk's short run (wrk -d takes whole seconds)
WRK_HIGH=${WRK_HIGH:-4}   # seconds of wrk's long run
USERS=${USERS:-10}        # users (= keep-alive connections)
WORKERS=${WORKERS:-1}     # nest --workers
PROFILE=${PROFILE:-0}     # 1: print the long runs' profiles
TOP=${TOP:-40}            # lines of each profile
NO_BUILD=${NO_BUILD:-0}   # 1: use the existing target/release/nest
NEST_BIN=${NEST_BIN:-}    # a nest binary to measure instead of target/release/nest
KEEP=${KEEP:-}            # a directory to keep the callgrind output files in

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
HELLO="$ROOT/bench/tasksets/hello"
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-instr.XXXXXX")
# shellcheck source=bench/lib/nginx.sh
source "$ROOT/bench/lib/nginx.sh"
# shellcheck source=bench/lib/clients.sh
source "$ROOT/bench/lib/clients.sh"

log() { printf '[instr %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
cleanup() { local rc=$?; nginx_stop; rm -rf "$TMP"; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

IFS=, read -r -a ROWS <<<"$CLIENTS"
for c in "${ROWS[@]}"; do
    case $c in nest | wrk | oha | goose) ;; *) die "unknown client '$c' (CLIENTS: nest,wrk,oha,goose)" ;; esac
done
((LOW > 0 && HIGH > LOW)) || die "need 0 < LOW < HIGH"
((WRK_LOW > 0 && WRK_HIGH > WRK_LOW)) || die "need 0 < WRK_LOW < WRK_HIGH"

apt_install_missing valgrind:valgrind /usr/sbin/nginx:nginx jq:jq || die "could not install the tools"
declare -A NOTE # client -> why it has no figure
for c in "${ROWS[@]}"; do
    case $c in
    wrk) apt_install_missing wrk:wrk || NOTE[wrk]="wrk did not install" ;;
    oha) find_oha; [[ -n $OHA ]] || NOTE[oha]=$OHA_NOTE ;;
    goose) find_goose; [[ -n $GOOSE ]] || NOTE[goose]=$GOOSE_NOTE ;;
    nest)
        if [[ $NO_BUILD != 1 && -z $NEST_BIN ]]; then
            log "cargo build --release -p nest"
            (cd "$ROOT" && cargo build --release --quiet -p nest) || die "cargo build --release failed"
        fi
        [[ -x $NEST ]] || die "$NEST not found"
        ;;
    esac
done
cd "$TMP" # away from the repository's nest.yaml

nginx_start || die "nginx did not start"
log "nginx at $NGINX_URL"

# The client commands: $1 = the run's size (requests, or seconds for wrk), $2 = its tag. Each prints the requests
# it completed, read from its own output.
cmd_nest() {
    grind "$2" "$NEST" run --taskset-dir "$HELLO" -H "$NGINX_URL" -u "$USERS" --workers "$WORKERS" --iterations "$1" \
        --json "$TMP/$2.json" -y
    jq -r '.totals.requests' "$TMP/$2.json"
    local failed
    failed=$(jq -r '.totals.failures // 0' "$TMP/$2.json")
    [[ $failed == 0 ]] || log "warning: nest: $failed requests failed ($2)"
}
cmd_wrk() {
    grind "$2" wrk -t1 -c"$USERS" -d"${1}s" "$NGINX_URL/"
    sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$TMP/$2.log"
}
cmd_oha() {
    grind "$2" "$OHA" -n "$1" -c "$USERS" --no-tui --output-format json "$NGINX_URL/"
    jq -r '[.statusCodeDistribution[]] | add' "$TMP/$2.log"
}
cmd_goose() {
    local per=$(($1 / USERS))
    grind "$2" "$GOOSE" -H "$NGINX_URL" -u "$USERS" -r 1000 --iterations "$per" --report-file "$TMP/$2.json"
    local req
    req=$(goose_requests "$TMP/$2.json")
    [[ $req == $((per * USERS)) ]] || log "warning: Goose counted $req requests, not $((per * USERS)) ($2)"
    echo "$req"
}

# Runs a command under callgrind, one output file per thread; its output goes to $TMP/$1.log, valgrind's to
# $TMP/$1.valgrind.
grind() { # $1 = tag, then the command
    local tag=$1
    shift
    timeout -k 5 1200 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$TMP/callgrind.$tag" \
        --log-file="$TMP/$tag.valgrind" "$@" >"$TMP/$tag.log" 2>&1 ||
        { tail -20 "$TMP/$tag.log" "$TMP/$tag.valgrind" >&2; die "$tag failed under callgrind"; }
}

# Measures client $1 at size $2 under the tag $1-$3. Prints: instructions of all threads, of the busiest thread,
# requests, seconds.
measure() {
    local tag=$1-$3 out="$TMP/callgrind.$1-$3" ir busiest req t0 secs
    t0=$(date +%s.%N)
    req=$("cmd_$1" "$2" "$tag")
    secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
    [[ $req =~ ^[0-9]+$ && $req -gt 0 ]] || die "$tag: no requests counted (log: $(tail -3 "$TMP/$tag.log"))"
    read -r ir busiest < <(cat "$out"-* | sed -n 's/^summary: *\([0-9]*\).*/\1/p' |
        awk '{ s += $1; if ($1 > m) m = $1 } END { print s, m }')
    [[ -n $ir && $ir != 0 ]] || die "no callgrind summary in $out-*"
    # The busiest thread's file, for callgrind_annotate.
    cp "$(grep -l "^summary: $busiest\$" "$out"-* | head -1)" "$out"
    if [[ -n $KEEP ]]; then mkdir -p "$KEEP"; cp "$out" "$KEEP/"; fi
    echo "$ir $busiest $req $secs"
}

version() {
    case $1 in
    nest) echo "$("$NEST" --version), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), --workers $WORKERS" ;;
    wrk) wrk -v 2>&1 | head -1 | cut -d' ' -f1-2 ;;
    oha) "$OHA" --version 2>&1 | head -1 ;;
    goose) echo "goose $(sed -n 's/^goose = "=\(.*\)"/\1/p' "$ROOT/bench/goose/Cargo.toml") (bench/goose)" ;;
    esac
}

RESULTS="$OUT/instr-results.tsv" # for bench/table.sh: client all-threads busiest-thread note
: >"$RESULTS"
LINES=()
for c in "${ROWS[@]}"; do
    if [[ -n ${NOTE[$c]:-} ]]; then
        LINES+=("$(printf '%-6s %s' "$c:" "${NOTE[$c]}")")
        printf '%s\t-\t-\t%s\n' "$c" "${NOTE[$c]}" >>"$RESULTS"
        continue
    fi
    if [[ $c == wrk ]]; then
        log "callgrind, wrk for ${WRK_LOW}s"
        read -r IR_LOW W_LOW REQ_LOW S_LOW < <(measure wrk "$WRK_LOW" low)
        log "callgrind, wrk for ${WRK_HIGH}s"
        read -r IR_HIGH W_HIGH REQ_HIGH S_HIGH < <(measure wrk "$WRK_HIGH" high)
    else
        log "callgrind, $c, $LOW requests"
        read -r IR_LOW W_LOW REQ_LOW S_LOW < <(measure "$c" "$LOW" low)
        log "callgrind, $c, $HIGH requests"
        read -r IR_HIGH W_HIGH REQ_HIGH S_HIGH < <(measure "$c" "$HIGH" high)
    fi
    ((REQ_HIGH > REQ_LOW)) || die "$c: the long run counted no more requests than the short one"
    PER=$(((IR_HIGH - IR_LOW) / (REQ_HIGH - REQ_LOW)))
    PER_W=$(((W_HIGH - W_LOW) / (REQ_HIGH - REQ_LOW)))
    # The busiest thread is nest's worker; the other clients spread requests over threads (wrk -t1 has one), so
    # their busiest thread is only named where it is the one that sends.
    worker=""
    case $c in
    nest) worker=", worker thread $(commas "$PER_W")" ;;
    wrk) worker=", its thread $(commas "$PER_W")" ;;
    *) PER_W=- ;;
    esac
    printf '%s\t%s\t%s\t\n' "$c" "$PER" "$PER_W" >>"$RESULTS"
    LINES+=("$(printf '%-6s %s instructions per request (all threads)%s; %s' "$c:" "$(commas "$PER")" "$worker" \
        "$(version "$c")")")
    LINES+=("$(printf '       runs: %s requests, %s instructions in %ss; %s requests, %s in %ss' "$(commas "$REQ_LOW")" \
        "$(commas "$IR_LOW")" "$S_LOW" "$(commas "$REQ_HIGH")" "$(commas "$IR_HIGH")" "$S_HIGH")")
done

{
    echo "target: nginx $($(nginx_bin) -v 2>&1 | sed 's/.*nginx\///'), 1 worker, $NGINX_URL; $USERS connections/users;" \
        "slope between the two runs, user space"
    printf '%s\n' "${LINES[@]}"
    if [[ " ${ROWS[*]} " == *" nest "* ]]; then
        echo "nest's busiest thread is its worker; the rest is once-a-second work, which grows with the run's length" \
            "under valgrind"
    fi
} | tee "$OUT/instr-summary.txt"

if [[ $PROFILE == 1 ]]; then
    for c in "${ROWS[@]}"; do
        [[ -z ${NOTE[$c]:-} ]] || continue
        echo
        echo "== $c: inclusive (long run, busiest thread) =="
        callgrind_annotate --inclusive=yes "$TMP/callgrind.$c-high" 2>/dev/null | sed -n "1,$((TOP + 25))p" | tail -n +20
        echo
        echo "== $c: self (long run, busiest thread) =="
        callgrind_annotate "$TMP/callgrind.$c-high" 2>/dev/null | sed -n "1,$((TOP + 25))p" | tail -n +20
    done
fi
