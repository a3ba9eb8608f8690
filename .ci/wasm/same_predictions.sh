#!/usr/bin/env bash
# WebAssembly: models saved on Linux predict the same under wasm32-wasip1.
#
#     bash .ci/wasm/same_predictions.sh LEPTON_BIN
#
# LEPTON_BIN (a Linux build of the `lepton` command) fits a model of each family on the shared
# wine table (a classification), one of all families together on it, and one on diabetes (a
# regression), and saves them; the `predict_only` example, built for Linux and for
# wasm32-wasip1 (there the inference-only build: no default feature), loads each artifact and
# prints its predictions in full (the label and every probability, or the value, as the shortest
# decimals that read back as the same bits); the WebAssembly build runs under Node.js's WASI
# (run_wasi.mjs), and compare.mjs compares the two. Trees must predict the same bits. Networks
# (burn's kernels) must predict the same labels, their numbers within 1e-6 (of the value, or
# absolute below 1): burn's CPU kernels sum in another order and fuse multiply-adds on
# x86-64, not on WebAssembly. Needs LEPTON_DATA_DIR (the shared data), `node` (Node.js 20 or
# later) and the wasm32-wasip1 target.
set -euo pipefail
cd "$(dirname "$0")/../.."
lepton="$1"
data="$LEPTON_DATA_DIR/tabular"
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build -q --example predict_only
cargo build -q --example predict_only --no-default-features --target wasm32-wasip1
native="$target_dir/debug/examples/predict_only"
wasm="$target_dir/wasm32-wasip1/debug/examples/predict_only.wasm"

work="$(mktemp -d)"
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
cp "$data/wine.csv" "$data/diabetes.csv" "$work/"
fit() { # NAME CSV TOLERANCE [lepton fit options]
    local name="$1" csv="$2" tolerance="$3"
    shift 3
    # `set -e` does not reach into a function called before `||`: each step says if it failed.
    "$lepton" fit "$work/$csv" --target target --seed 7 --artifact "$work/$name" "$@" \
        >"$work/$name.log" 2>&1 || { echo "$name: lepton fit failed"; cat "$work/$name.log"; return 1; }
    "$native" "$work/$name" "$work/$csv" --probabilities >"$work/$name.linux" \
        || { echo "$name: the Linux build could not predict"; return 1; }
    node --no-warnings .ci/wasm/run_wasi.mjs "$wasm" "$work" "$work/$name" "$work/$csv" \
        --probabilities >"$work/$name.wasm" \
        || { echo "$name: the WebAssembly build could not predict"; return 1; }
    echo -n "$name: "
    node .ci/wasm/compare.mjs "$work/$name.linux" "$work/$name.wasm" "$tolerance"
}
failed=0
fit wine-boosted wine.csv 0 --families boosted --budget-seconds 6 || failed=1
fit wine-forest wine.csv 0 --families forest --budget-seconds 6 || failed=1
fit wine-linear wine.csv 1e-6 --families linear --budget-seconds 6 || failed=1
fit wine-mlp wine.csv 1e-6 --families mlp --budget-seconds 6 || failed=1
fit wine-any wine.csv 1e-6 --families boosted,linear,mlp,forest --budget-seconds 10 || failed=1
fit diabetes-any diabetes.csv 1e-6 --budget-seconds 10 || failed=1
exit "$failed"
