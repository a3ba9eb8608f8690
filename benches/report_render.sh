#!/usr/bin/env bash
# How long a 10,000-trial study report takes to make and to render in a browser.
#
#   benches/report_render.sh [TRIALS]      (default 10000; needs chromium)
#   STUDIES="curves:none" benches/report_render.sh     (only some of the studies)
#
# Runs TRIALS random trials of each study in $STUDIES (PROBLEM:PRUNER; by default the mixed
# six-parameter problem, the learning curves under ASHA, and the learning curves unpruned: a
# hundred reports each) into SQLite with `lepton worker` (10,000 trials take minutes each),
# writes each study's report with `lepton study report` (which prints its generation time),
# then opens each page in headless Chromium 3 times:
# `data-layout-ms` is the page's own measure (milliseconds from navigation to parsed and laid
# out), and the whole-process time of a screenshot is compared with an empty page's (Chromium's
# start-up), so the difference is the page's load, layout and paint. Medians of the 3 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-10000}"
chromium="${CHROMIUM:-chromium}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release -q --bin lepton
lepton="${CARGO_TARGET_DIR:-target}/release/lepton"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
seconds() { # whole-process seconds of a screenshot of $1
    local start end
    start=$(date +%s.%N)
    "$chromium" "${flags[@]}" --window-size=1300,4000 --screenshot="$work/shot.png" "file://$1" \
        >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

echo '<!DOCTYPE html><html><body>empty</body></html>' >"$work/empty.html"
empty=$(for _ in 1 2 3; do seconds "$work/empty.html"; done | median)
echo "empty page screenshot: ${empty} s (median of 3)"

for study in ${STUDIES:-mixed6:none curves:asha curves:none}; do
    problem="${study%%:*}"
    pruner="${study##*:}"
    "$lepton" worker --storage "sqlite://$work/$problem-$pruner.db" --study "$problem" \
        --objective "$problem" --sampler random --pruner "$pruner" --trials "$trials" \
        --seed 1 >/dev/null
    "$lepton" study report --storage "sqlite://$work/$problem-$pruner.db" --study "$problem" \
        --out "$work/$problem-$pruner.html"
    layout=$(for _ in 1 2 3; do
        "$chromium" "${flags[@]}" --virtual-time-budget=30000 --dump-dom \
            "file://$work/$problem-$pruner.html" 2>/dev/null |
            grep -o 'data-layout-ms="[0-9]*"' | grep -o '[0-9]*'
    done | median)
    shot=$(for _ in 1 2 3; do seconds "$work/$problem-$pruner.html"; done | median)
    echo "$problem ($pruner): laid out after ${layout} ms; screenshot ${shot} s," \
        "$(echo "$shot - $empty" | bc) s more than an empty page (medians of 3)"
done
