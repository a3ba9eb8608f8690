#!/usr/bin/env bash
# Load test of the prediction server on loopback, one run, everything on this machine:
#
# 1. `serve_and_query` trains the MNIST MLP (784-256-256-10) into a fresh registry;
# 2. the in-process rate (criterion bench `serve_predict`: encode + predict, 1 and 64 rows per
#    call), the upper bound;
# 3. `lepton-serve` without batching, `lepton-serve` with dynamic batching, and the same
#    network served by FastAPI + PyTorch under uvicorn (benches/serve_fastapi.py, one worker
#    per core), each in turn alone on the machine: single-row requests (a real test digit) from
#    oha at concurrency 1, 16 and 64 for SECONDS each (requests/s, p50, p99, share of 200s),
#    then at half the highest rate (open loop, 64 connections) for the p99 there.
#
#   python3 -m venv /tmp/servevenv && /tmp/servevenv/bin/pip install torch fastapi uvicorn gunicorn
#   PY=/tmp/servevenv/bin/python OHA=/path/to/oha \
#   LEPTON_DATA_DIR=../shared/data bash benches/serve_load.sh [SECONDS]
#
# oha: `cargo install oha`. The load generator shares the cores with the server it loads.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OHA=${OHA:-oha}
SECS=${1:-10}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
REG="$WORK/registry"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --bin lepton-serve --example serve_and_query >&2
"$TARGET/release/examples/serve_and_query" --registry "$REG" >&2
MODEL="$REG/mnist-mlp/v1"

# One test digit, as a single-row request.
"$PY" - "${LEPTON_DATA_DIR:-$HOME/.cache/lepton}/mnist/t10k-images-idx3-ubyte.gz" > "$WORK/body.json" <<'PYEOF'
import gzip, json, sys
with gzip.open(sys.argv[1]) as f:
    pixels = f.read(16 + 784)[16:]
print(json.dumps({"rows": [[p / 255 for p in pixels]]}))
PYEOF

LEPTON_SERVE_ARTIFACT="$MODEL" cargo bench --bench serve_predict -- \
    --warm-up-time 2 --measurement-time 5 --noplot >&2
INPROC=$("$PY" - "$TARGET/criterion/serve_predict" <<'PYEOF'
import json, sys
out = {}
for rows in (1, 64):
    e = json.load(open(f"{sys.argv[1]}/{rows}_rows/new/estimates.json"))
    out[rows] = rows / (e["median"]["point_estimate"] * 1e-9)
print(json.dumps(out))
PYEOF
)

for port in 8101 8102 8103; do
    if curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1; then
        echo "port $port is taken: stop what listens there first" >&2
        exit 1
    fi
done

wait_up() {
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "server on port $1 did not come up" >&2
    exit 1
}

load() { # PORT CONCURRENCY [RATE] -> oha's JSON summary
    local extra=()
    [ -n "${3:-}" ] && extra=(-q "$3" --latency-correction)
    "$OHA" -z "${SECS}s" -c "$2" "${extra[@]}" -m POST -T application/json -D "$WORK/body.json" \
        --no-tui --output-format json "http://127.0.0.1:$1/v1/models/mnist-mlp/predict"
}

summarize() { # NAME CONCURRENCY MODE: oha's JSON ($WORK/oha.json) to one result line
    "$PY" - "$1" "$2" "$3" "$WORK/oha.json" >> "$WORK/results.jsonl" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[4]))
codes = d.get("statusCodeDistribution", {})
total = sum(codes.values()) or 1
print(json.dumps({"server": sys.argv[1], "c": int(sys.argv[2]), "mode": sys.argv[3],
    "rps": d["summary"]["requestsPerSec"], "p50": d["latencyPercentiles"]["p50"],
    "p99": d["latencyPercentiles"]["p99"], "ok": codes.get("200", 0) / total}))
PYEOF
}

measure() { # NAME PORT: closed loops at c = 1, 16, 64, then an open loop at half the best rate
    load "$2" 16 > /dev/null # warm-up
    local best=0
    for c in 1 16 64; do
        load "$2" "$c" > "$WORK/oha.json"
        summarize "$1" "$c" closed
        best=$("$PY" -c "import json; print(max(json.loads(l)['rps'] for l in open('$WORK/results.jsonl') if json.loads(l)['server'] == '$1'))")
    done
    local half
    half=$("$PY" -c "print(max(1, int($best / 2)))")
    load "$2" 64 "$half" > "$WORK/oha.json"
    summarize "$1" 64 "half=$half"
}

serve_lepton() { # NAME PORT BATCH_WINDOW_US
    RUST_LOG=warn "$TARGET/release/lepton-serve" --registry "$REG" --addr "127.0.0.1:$2" \
        --batch-window-us "$3" > /dev/null &
    SERVER_PID=$!
    wait_up "$2" /readyz
    measure "$1" "$2"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

serve_lepton "lepton" 8101 0
serve_lepton "lepton+batching" 8102 500
CORES=$(nproc)
# gunicorn with uvicorn workers, FastAPI's advice for several worker processes (uvicorn's own
# --workers answered single requests in 44 ms here: its responses met delayed ACKs).
LEPTON_MANIFEST="$MODEL/manifest.json" WEB_CONCURRENCY=$CORES "$PY" -m gunicorn \
    --chdir benches -k uvicorn.workers.UvicornWorker -w "$CORES" -b 127.0.0.1:8103 \
    --log-level warning serve_fastapi:app &
SERVER_PID=$!
wait_up 8103 /healthz
measure "fastapi+pytorch" 8103
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

INPROC="$INPROC" "$PY" - "$WORK/results.jsonl" "$CORES" <<'PYEOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
inproc = json.loads(os.environ["INPROC"])
print(f"in-process (encode + predict): {inproc['1']:,.0f} rows/s one row per call, "
      f"{inproc['64']:,.0f} rows/s 64 rows per call")
print()
print("| server | load | requests/s | p50 ms | p99 ms | 200s |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    load = f"c={r['c']}" if r["mode"] == "closed" else f"{r['mode'].split('=')[1]}/s open, c=64"
    print(f"| {r['server']} | {load} | {r['rps']:,.0f} | {r['p50'] * 1e3:.2f} | "
          f"{r['p99'] * 1e3:.2f} | {r['ok']:.1%} |")
by = {(r["server"], r["c"], r["mode"]): r for r in rows}
py = by[("fastapi+pytorch", 64, "closed")]["rps"]
print()
for s in ("lepton", "lepton+batching"):
    print(f"{s} / fastapi+pytorch at c=64: {by[(s, 64, 'closed')]['rps'] / py:.1f}x")
PYEOF
