#!/usr/bin/env bash
# nest scale against a target of known scalability (issue 14's figure): figures, not tests.
#
# Starts `nest demo-server --usl SIGMA,KAPPA,SERVICE_MS` on 127.0.0.1 (a fresh one, stopped at the end), runs
# `nest scale` over STEPS, and prints the recovered σ, κ, λ and N* against the target's, with their relative errors,
# and Capacity@SLO. A busy machine adds its own delay to every request, which scales σ, κ and λ down together: the
# ratios σ/λ and κ/λ (the serial and coherency times) are printed too, since they do not move with that delay.
#   NO_BUILD=1 NEST_BIN=target/debug/nest STEP_TIME=3s bash bench/scale_index.sh     # quick check
set -euo pipefail

SIGMA=${SIGMA:-0.05}
KAPPA=${KAPPA:-0.001}
SERVICE_MS=${SERVICE_MS:-10}
STEPS=${STEPS:-1,2,4,8,12,16,24,32,40,48,64}
STEP_TIME=${STEP_TIME:-10s}
SETTLE=${SETTLE:-2s}
SLO=${SLO:-p50 < 28ms}
NO_BUILD=${NO_BUILD:-0}
NEST_BIN=${NEST_BIN:-}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NEST="${NEST_BIN:-$ROOT/target/release/nest}"
[[ $NEST = /* ]] || NEST="$ROOT/$NEST"
[[ $NO_BUILD = 1 ]] || cargo build --release -p nest >&2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nest-scale-index.XXXXXX")
SRV_PID=""
cleanup() {
    [[ -n $SRV_PID ]] && kill -INT "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

"$NEST" demo-server --hello --port 0 --threads 2 --usl "$SIGMA,$KAPPA,$SERVICE_MS" >"$TMP/server.out" 2>&1 &
SRV_PID=$!
URL=""
for _ in $(seq 200); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$TMP/server.out" | head -1 || true)
    [[ -n $URL ]] && break
    sleep 0.05
done
[[ -n $URL ]] || { echo "the demo server did not start" >&2; exit 1; }

mkdir -p "$TMP/tasksets"
printf 'fn hit() {\n    client.get("/");\n}\ntask(1, hit);\n' >"$TMP/tasksets/hit.rhai"
timeout 900 "$NEST" scale --taskset-dir "$TMP/tasksets" -H "$URL" --workers 2 --history "$TMP/history.jsonl" \
    --steps "$STEPS" --step-time "$STEP_TIME" --settle "$SETTLE" --slo "$SLO" --stop-on-breach false \
    --json "$TMP/scale.json" >"$TMP/scale.out" 2>"$TMP/scale.err" || true
cat "$TMP/scale.out"

python3 - "$TMP/scale.json" "$SIGMA" "$KAPPA" "$SERVICE_MS" <<'PY'
import json, math, sys
doc = json.load(open(sys.argv[1]))
sigma, kappa, service = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]) / 1000
usl = doc["scalability"]
fit = usl.get("fit") or {}
s, k, l = fit.get("sigma"), fit.get("kappa"), fit.get("lambda")
n_true = math.sqrt((1 - sigma) / kappa)
def err(got, want):
    return "n/a" if got is None else f"{got:.4g} ({(got - want) / want:+.0%})"
print(f"status: {usl.get('status')}")
print(f"sigma  true {sigma:.4g}  fitted {err(s, sigma)}")
print(f"kappa  true {kappa:.4g}  fitted {err(k, kappa)}")
print(f"lambda ideal {1 / service:.4g}  fitted {err(l, 1 / service)}")
if s is not None and l:
    print(f"sigma/lambda (serial s)    true {sigma * service:.4g}  fitted {err(s / l, sigma * service)}")
    print(f"kappa/lambda (coherency s) true {kappa * service:.4g}  fitted {err(k / l, kappa * service)}")
print(f"N*     true {n_true:.4g}  fitted {err(usl.get('n_star'), n_true)}")
cap = doc.get("capacity") or {}
print(f"Capacity@SLO: step {cap.get('step')} ({cap.get('load')}), next step {cap.get('next_step')}")
PY
