#!/usr/bin/env bash
# Training throughput on the CPU, burn's flex backend (Lepton's `Cpu`) against PyTorch, one run:
# the same two networks (MLP 784-256-10 at batch 128; CNN conv32-pool-conv64-pool-fc128-fc10 at
# batch 64), Adam, cross-entropy, batches of the MNIST training digits, 2 threads each.
#
#   LEPTON_DATA_DIR=../shared/data PY=/path/to/python-with-torch bash benches/train_throughput.sh
#
# With FEATURES=tch the bench also times burn's libtorch backend (PyTorch's kernels under burn);
# that build needs libtorch 2.9 (LIBTORCH_USE_PYTORCH=1, VIRTUAL_ENV and PATH pointing at a
# virtualenv with torch==2.9.0, LD_LIBRARY_PATH at its torch/lib). See docs/backends.md.
#
# burn's side is the criterion bench `backend_step` (median time per step); PyTorch's is
# benches/train_step_torch.py (median over rounds). Prints samples/s and the ratio burn/PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
: "${LEPTON_DATA_DIR:?set LEPTON_DATA_DIR to the folder holding mnist/ (../shared/data)}"
LEPTON_DATA_DIR=$(cd "$LEPTON_DATA_DIR" && pwd)
export LEPTON_DATA_DIR
TARGET=${CARGO_TARGET_DIR:-target}

cargo bench --bench backend_step ${FEATURES:+--features "$FEATURES"} -- --warm-up-time 2 --measurement-time 8 >&2
TORCH=$("$PY" benches/train_step_torch.py)
echo "$TORCH" >&2

TARGET="$TARGET" TORCH="$TORCH" "$PY" - <<'PYEOF'
import json, os
torch = {r["bench"]: r for r in map(json.loads, os.environ["TORCH"].splitlines())}
print("| net | batch | burn backend | burn samples/s | PyTorch samples/s | burn / PyTorch |")
print("|---|---|---|---|---|---|")
for bench, batch in [("mlp_784_256_10_batch128", 128), ("cnn_32_64_128_batch64", 64)]:
    t = torch[bench]["samples_per_s"]
    for backend in ["flex", "flex-im2col", "libtorch"]:
        path = os.path.join(os.environ["TARGET"], "criterion", bench, backend, "new", "estimates.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            ns = json.load(f)["median"]["point_estimate"]
        burn = batch / (ns * 1e-9)
        print(f"| {bench} | {batch} | {backend} | {burn:,.0f} | {t:,.0f} (torch {torch[bench]['torch']}) | {burn / t:.2f} |")
PYEOF
