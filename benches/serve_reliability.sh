#!/usr/bin/env bash
# Soak and overload of `lepton-serve` on loopback (issue 25), with the durations the issue
# asks for, each against a fresh server over a fresh registry (examples/serve_reliability.rs):
#
# 1. soak: saturation measured (64 closed loops, 10 s), then half that rate for SOAK_SECONDS
#    (600) of mixed requests, 20 % of them bad in four ways, a hot swap every 60 s;
# 2. overload: saturation measured again, then twice it for OVERLOAD_SECONDS (60), /healthz
#    every second, and the p99 of a light loop for 10 s after, against the same loop before.
#
#   bash benches/serve_reliability.sh [SOAK_SECONDS] [OVERLOAD_SECONDS]
#
# About 12 minutes with the defaults. The client runs on the same cores as the server. Prints
# each run's summary, then a table; exits non-zero if a run's check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK=${1:-600}
OVERLOAD=${2:-60}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release --bin lepton-serve --example serve_reliability >&2
TOOL="$TARGET/release/examples/serve_reliability"
status=0
"$TOOL" soak --seconds "$SOAK" --json | tee "$WORK/soak.txt" || status=1
"$TOOL" overload --seconds "$OVERLOAD" --json | tee "$WORK/overload.txt" || status=1

python3 - "$WORK/soak.txt" "$WORK/overload.txt" <<'PYEOF'
import json, sys

def last_json(path):
    lines = [l for l in open(path) if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None

def ms(v):
    return "-" if v is None else f"{v:.2f}"

soak, over = (last_json(p) for p in sys.argv[1:3])
print()
first = soak or over or {}
print(f"{first.get('cores', '?')} cores, shared by the client and the server; 1-minute load "
      f"average at the start {first.get('load_average_at_start')}.")
print()
print("| scenario | load | valid: sent / 200 / failed | bad: sent / other status than expected "
      "| p50 / p99 ms | swaps | server RSS start → end MiB (peak) |")
print("|---|---|---:|---:|---:|---:|---:|")
if soak:
    s, sat = soak["soak"], soak["saturation"]
    print(f"| soak | {s['seconds']:.0f} s at {s['rate']:,.0f}/s (half of {sat['rate']:,.0f}/s) "
          f"| {s['valid_sent']:,} / {s['valid_ok']:,} / {s['valid_failed']:,} "
          f"| {s['bad_sent']:,} / {s['bad_unexpected']:,} "
          f"| {ms(s['p50_ms'])} / {ms(s['p99_ms'])} | {s['swaps']} "
          f"| {s['rss_start_mib']:.1f} → {s['rss_end_mib']:.1f} ({s['hwm_mib']:.1f}) |")
print()
print("| scenario | load | sent (per s) | 200 | 503 (shed) | other | 200s p99 from sent ms "
      "| /healthz failed | light-load p99 before ms | p99 back within 2x |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
if over:
    o, sat = over["overload"], over["saturation"]
    rec = o["recovered_after_s"]
    print(f"| overload | {o['seconds']:.0f} s aimed at {o['rate']:,.0f}/s (twice {sat['rate']:,.0f}/s) "
          f"| {o['sent']:,} ({o['sent_per_s']:,.0f}) | {o['ok']:,} | {o['shed_503']:,} "
          f"| {o['other']:,} | {ms(o['ok_service_p99_ms'])} "
          f"| {o['healthz_failed']} of {o['healthz_ok'] + o['healthz_failed']} "
          f"| {o['baseline_p99_ms']:.2f} "
          f"| {'never' if rec is None else f'in second {rec + 1} after (from 1)'} |")
for run in (soak, over):
    if run:
        failed = [c for c, ok in run["checks"].items() if not ok]
        print(f"\n{run['scenario']}: " + ("every check passed" if not failed
              else "FAILED: " + "; ".join(failed)))
PYEOF
exit $status
