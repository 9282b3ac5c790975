#!/usr/bin/env bash
# nest benchmark (issue 15): the whole side-by-side table in one command. It runs bench/perf.sh (CPU per request and
# req/s of wrk -t1, oha, nest --workers 1 and 2, and Goose, against nginx with 1 worker and the 2-thread hello
# target, alternating rounds) and then bench/instr.sh (callgrind instructions per request of nest, wrk, oha and
# Goose against nginx), and prints one markdown table from their results. It prints figures and checks nothing.
#
#   GOOSE_INSTALL=1 OHA_INSTALL=1 bash bench/table.sh   # ROUNDS=3 x DURATION=10 s: about 8 minutes, then the table
#   ROUNDS=1 DURATION=2 LOW=200 HIGH=2000 NO_BUILD=1 bash bench/table.sh   # a quick check that the script works
#
# Every variable of perf.sh and instr.sh passes through (ROUNDS, DURATION, CONNS, LOW, HIGH, USERS, NEST_BIN, ...).
# The table goes to stdout and bench-results/table.md; the two scripts' own summaries are in bench-results/ too.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/bench-results"
mkdir -p "$OUT"
export ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-50} USERS=${USERS:-10} LOW=${LOW:-2000} HIGH=${HIGH:-20000}

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
# A ratio cell: the ratio, with the absolute figure for wrk; "–" when the client has no figures.
cell() { # $1 = target, $2 = client, $3 = ratio column, $4 = absolute column, $5 = unit
    local r
    r=$(pf "$1" "$2" "$3")
    if [[ -z $r || $r == - ]]; then echo "–"
    elif [[ $2 == wrk ]]; then echo "1.00 ($(commas "$(pf "$1" "$2" "$4")")$5)"
    else echo "$r"; fi
}
instr_cell() { # $1 = client
    local v
    v=$(inf "$1" 2)
    if [[ -z $v || $v == - ]]; then echo "–"; else commas "$v"; fi
}

{
    sed -n 's/^nest: *\(.*\)/nest: \1/p' "$OUT/perf-summary.txt"
    sed -n 's/^machine: *\(.*\)/machine: \1/p' "$OUT/perf-summary.txt"
    echo
    echo "- CPU per request (user + sys) and req/s: medians of $ROUNDS alternating rounds of ${DURATION} s, $CONNS connections" \
        "or users, GET / with no think time; each ratio is to wrk -t1's median against the same target in the same run," \
        "and wrk's row gives its absolute figures."
    # shellcheck disable=SC2016 # the backquotes are markdown
    echo "- Targets: $(sed -n 's/^target: \(nginx[^,]*, 1 worker\).*/\1/p' "$OUT/perf-summary.txt" | head -1) (first columns);" \
        "$(sed -n 's/^target: \(nest demo-server[^,]*\),.*/`\1`/p' "$OUT/perf-summary.txt" | head -1) (hello columns)."
    echo "- Instructions: callgrind, user space, all threads, against the same nginx with $USERS connections or users: the" \
        "slope between a short and a long run (nest --workers 1 and oha: $(commas "$LOW") and $(commas "$HIGH") requests;" \
        "Goose: as many iterations; wrk: ${WRK_LOW:-1} s and ${WRK_HIGH:-4} s)."
    echo
    echo "| client | CPU per request ÷ wrk | req/s ÷ wrk | user-space instructions per request (callgrind) | req/s ÷ wrk, hello | CPU per request ÷ wrk, hello |"
    echo "|---|---|---|---|---|---|"
    for c in wrk oha nest nest2 goose; do
        label=$(pf nginx "$c" 3)
        [[ -n $label ]] || continue
        note=$(pf nginx "$c" 8)
        [[ -n $note ]] && label="$label: $note"
        instr="–" # instructions are measured with nest --workers 1 only
        [[ $c == nest2 ]] || instr=$(instr_cell "$c")
        [[ $c == nest ]] && label="**$label**"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(cell nginx "$c" 5 4 ' µs')" "$(cell nginx "$c" 7 6 '/s')" \
            "$instr" "$(cell hello "$c" 7 6 '/s')" "$(cell hello "$c" 5 4 ' µs')"
    done
    echo
    sed -n 's/^check /- Issue targets /p' "$OUT/perf-summary.txt"
} | tee "$OUT/table.md"
