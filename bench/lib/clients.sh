# shellcheck shell=bash disable=SC2034
# Sourced by bench/perf.sh and bench/instr.sh: finds the other clients of issue 15's side-by-side table, oha and
# the Goose load test of bench/goose/, and builds them into a cache directory on request (never during tests).
# Needs: $ROOT (the repository) and a `log` function. Uses OHA_INSTALL / OHA_ROOT and GOOSE_INSTALL / GOOSE_ROOT.
# Sets OHA and GOOSE to the binaries, or to "" with OHA_NOTE / GOOSE_NOTE saying why.

BENCH_CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nest-bench}
OHA_INSTALL=${OHA_INSTALL:-0}   # 1: cargo install oha into $OHA_ROOT when it is not on PATH
OHA_ROOT=${OHA_ROOT:-$BENCH_CACHE/oha}
GOOSE_INSTALL=${GOOSE_INSTALL:-0} # 1: build bench/goose (release) into $GOOSE_ROOT when it is missing or stale
GOOSE_ROOT=${GOOSE_ROOT:-$BENCH_CACHE/goose}

OHA=""
OHA_NOTE=""
GOOSE=""
GOOSE_NOTE=""

find_oha() {
    OHA=$(command -v oha || true)
    [[ -z $OHA && -x $OHA_ROOT/bin/oha ]] && OHA=$OHA_ROOT/bin/oha
    if [[ -z $OHA && $OHA_INSTALL == 1 ]]; then
        log "cargo install oha --root $OHA_ROOT"
        if nice -n 19 cargo install --quiet --locked oha --root "$OHA_ROOT"; then
            OHA=$OHA_ROOT/bin/oha
        else
            log "oha did not install; going on without it"
        fi
    fi
    [[ -n $OHA ]] || OHA_NOTE="not found (OHA_INSTALL=1 installs it)"
}

# A hash of the Goose package's sources: the cached binary is rebuilt when they change.
goose_source_hash() {
    (cd "$ROOT/bench/goose" && cat Cargo.toml Cargo.lock src/*.rs | sha256sum | cut -d' ' -f1)
}

find_goose() {
    local bin=$GOOSE_ROOT/bin/nest-bench-goose want have="" build
    want=$(goose_source_hash)
    [[ -f $GOOSE_ROOT/source.sha256 ]] && have=$(cat "$GOOSE_ROOT/source.sha256")
    if [[ $GOOSE_INSTALL == 1 && (! -x $bin || $have != "$want") ]]; then
        log "building bench/goose (release) into $GOOSE_ROOT: a few minutes the first time"
        build=$(mktemp -d "${TMPDIR:-/tmp}/nest-goose-build.XXXXXX")
        if nice -n 19 cargo install --quiet --locked --force --path "$ROOT/bench/goose" --root "$GOOSE_ROOT" \
            --target-dir "$build"; then
            echo "$want" >"$GOOSE_ROOT/source.sha256"
            have=$want
        else
            log "bench/goose did not build; going on without it"
        fi
        rm -rf "$build"
    fi
    if [[ -x $bin ]]; then
        GOOSE=$bin
        [[ $have == "$want" ]] || log "warning: $bin was built from other sources than bench/goose (GOOSE_INSTALL=1 rebuilds it)"
    else
        GOOSE_NOTE="not built (GOOSE_INSTALL=1 builds it)"
    fi
}

# The requests a Goose run sent, from its JSON report (--report-file x.json): the Aggregated row of the request
# metrics. Failures are in it too; a warning says when there were any.
goose_requests() { # $1 = the report
    local row req failed
    row=$(jq -r '.raw_request_metrics[] | select(.name == "Aggregated") | "\(.number_of_requests) \(.number_of_failures)"' \
        "$1") || return 1
    read -r req failed <<<"$row"
    [[ $failed == 0 ]] || log "warning: Goose: $failed of $req requests failed ($1)"
    echo "$req"
}
