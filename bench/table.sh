#!/usr/bin/env bash
# nest benchmark (issue 15): the whole side-by-side table in one command. It runs bench/perf.sh (CPU per request and
# req/s of wrk -t1, oha, nest --workers 1 and 2, and Goose, against nginx with 1 worker and the 2-thread hello
# target, alternating rounds) and then bench/instr.sh (callgrind instructions per request of nest, wrk, oha and
# Goose against nginx), and prints one markdown table from their results. It prints figures and checks nothing.
#
#   GOOSE_INSTALL=1 OHA_INSTALL=1 bash bench/table.sh   # ROUNDS=3 x DURATION=10 s: about 11 minutes, then the table
#   ROUNDS=1 DURATION=2 LOW=200 HIGH=1000 NO_BUILD=1 bash bench/table.sh   # a quick check that the script works
#
# Every variable of perf.sh and instr.sh passes through (ROUNDS, DURATION, CONNS, LOW, HIGH, USERS, NEST_BIN, ...).
# The table goes to stdout and bench-results/table.md; the two scripts' own summaries are in bench-results/ too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
export ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10}

log() { printf '[table %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
T0=$(date +%s)
log "bench/perf.sh: ROUNDS=$ROUNDS DURATION=$DURATION, targets nginx and hello"
TARGETS=nginx,hello CLIENTS=wrk,oha,nest,nest2,goose bash "$ROOT/bench/perf.sh" >/dev/null
# perf.sh built the release binary (unless NO_BUILD or NEST_BIN said otherwise): instr.sh need not.
log "bench/instr.sh: nest, wrk, oha and Goose under callgrind"
NO_BUILD=1 CLIENTS=nest,wrk,oha,goose bash "$ROOT/bench/instr.sh" >/dev/null
log "done in $(($(date +%s) - T0)) s"

PERF="$OUT/perf-results.tsv"
INSTR="$OUT/instr-results.tsv"
pf() { # $1 = target, $2 = client, $3 = the column wanted of perf-results.tsv
    awk -F'\t' -v t="$1" -v k="$2" -v c="$3" '$1 == t && $2 == k { print $c; exit }' "$PERF"
}
inf() { # $1 = client, $2 = the column wanted of instr-results.tsv
    awk -F'\t' -v k="$1" -v c="$2" '$1 == k { print $c; exit }' "$INSTR"
}
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
# A ratio cell: the ratio, with the absolute figure for wrk; the note when the client has no figures.
cell() { # $1 = target, $2 = client, $3 = ratio column, $4 = absolute column, $5 = unit
    local r a note
    r=$(pf "$1" "$2" "$3")
    note=$(pf "$1" "$2" 8)
    if [[ -z $r ]]; then echo "–"
    elif [[ $r == - ]]; then echo "$note"
    elif [[ $2 == wrk ]]; then a=$(pf "$1" "$2" "$4"); echo "1.00 ($(commas "$a")$5)"
    else echo "$r"; fi
}
instr_cell() { # $1 = client
    local v note
    v=$(inf "$1" 2)
    note=$(inf "$1" 4)
    if [[ -z $v ]]; then echo "–"; elif [[ $v == - ]]; then echo "$note"; else commas "$v"; fi
}

{
    sed -n '1,3p' "$OUT/perf-summary.txt"
    sed -n '/^target: nginx/p' "$OUT/perf-summary.txt" | head -1
    sed -n '/^target: nest demo-server/p' "$OUT/perf-summary.txt" | head -1
    echo "callgrind: $(sed -n '1p' "$OUT/instr-summary.txt")"
    echo
    echo "| client | CPU per request ÷ wrk | req/s ÷ wrk | req/s ÷ wrk, hello target | CPU per request ÷ wrk, hello target | user-space instructions per request (callgrind) |"
    echo "|---|---|---|---|---|---|"
    for c in wrk oha nest nest2 goose; do
        label=$(pf nginx "$c" 3)
        [[ -n $label ]] || continue
        instr="–" # instructions are measured with nest --workers 1 only
        [[ $c == nest2 ]] || instr=$(instr_cell "$c")
        [[ $c == nest ]] && label="**$label**"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(cell nginx "$c" 5 4 ' µs')" "$(cell nginx "$c" 7 6 '/s')" \
            "$(cell hello "$c" 7 6 '/s')" "$(cell hello "$c" 5 4 ' µs')" "$instr"
    done
    echo
    sed -n 's/^check /issue targets /p' "$OUT/perf-summary.txt"
} | tee "$OUT/table.md"
