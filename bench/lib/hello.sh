# shellcheck shell=bash disable=SC2034
# Sourced by bench/perf.sh: nest's own `demo-server --hello` (a plain 200 `hello\n`) with HELLO_THREADS threads on
# a free loopback port, the second target of issue 15's table. Needs: $TMP (a scratch directory) and $NEST (the
# binary that serves it). Sets HELLO_PID and HELLO_URL. hello_stop stops it (call it from a trap too).

HELLO_PID=""
HELLO_URL=""

hello_start() { # $1 = threads
    local out="$TMP/hello-server.out"
    : >"$out"
    "$NEST" demo-server --hello --port 0 --threads "$1" >"$out" 2>&1 &
    HELLO_PID=$!
    for _ in $(seq 100); do
        HELLO_URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -1 || true)
        [[ -n $HELLO_URL ]] && return 0
        kill -0 "$HELLO_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$out" >&2
    echo "the demo server did not start" >&2
    return 1
}

hello_stop() {
    [[ -n $HELLO_PID ]] || return 0
    kill -TERM "$HELLO_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$HELLO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HELLO_PID" 2>/dev/null || true
    wait "$HELLO_PID" 2>/dev/null || true
    HELLO_PID=""
}
