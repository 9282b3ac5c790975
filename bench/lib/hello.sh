# shellcheck shell=bash disable=SC2034
# Sourced by bench/perf.sh, bench/bench.sh and bench/models.sh: nest's own `demo-server --hello` (a plain 200
# `hello\n`) on a free loopback port, the second target of issue 15's table. Needs: $TMP (a scratch directory) and
# $NEST (the binary that serves it). hello_launch starts one with any demo-server flags and its output in a file
# the caller names (bench.sh and models.sh read its "served N requests" line when they stop it); hello_start is
# perf.sh's form (HELLO_THREADS threads). Both set HELLO_PID and HELLO_URL. hello_stop stops it (call it from a
# trap too).

HELLO_PID=""
HELLO_URL=""

hello_launch() { # $1 = output file, then demo-server flags (--threads N, --latency D, ...)
    local out="$1"
    shift
    : >"$out"
    "$NEST" demo-server --hello --port 0 "$@" >"$out" 2>&1 &
    HELLO_PID=$!
    for _ in $(seq 200); do
        HELLO_URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -1 || true)
        [[ -n $HELLO_URL ]] && return 0
        kill -0 "$HELLO_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$out" >&2
    echo "the demo server did not start" >&2
    return 1
}

hello_start() { # $1 = threads
    hello_launch "$TMP/hello-server.out" --threads "$1"
}

hello_stop() {
    [[ -n $HELLO_PID ]] || return 0
    kill -TERM "$HELLO_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$HELLO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HELLO_PID" 2>/dev/null || true
    wait "$HELLO_PID" 2>/dev/null || true
    HELLO_PID=""
}
