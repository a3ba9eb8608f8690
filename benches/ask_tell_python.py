#!/usr/bin/env python
"""Per-trial sampler overhead (ask + tell, in process) of Optuna and Rustuna.

This is the Python half of the comparison with the criterion bench `ask_tell`
(`cargo bench --bench ask_tell`), which measures the same thing for Lepton's samplers. Both
halves must use the same problem and the same prefilled history, so that the numbers can be
put side by side:

* space: 10 parameters x0..x9, float, uniform (linear) in [-5, 5];
* objective (minimized): sum_i (x_i - 1)^2;
* history: a study is prefilled with N COMPLETE trials whose x are drawn, row by row,
  from `numpy.random.default_rng(0).uniform(-5, 5, size=(N, 10))` (x0..x9 of trial k =
  row k) and whose value is the objective of x. The prefill does NOT run the sampler:
  Optuna uses `optuna.trial.create_trial` + `Study.add_trials`, Rustuna uses
  `rustuna.create_trial` + `Study.add_trial` (one call per trial), so the sampler of the
  study sees exactly those N trials as its history;
* one timed cycle = `study.ask()` (define-by-run) + `trial.suggest_float` for all ten
  parameters + `study.tell(...)` with the objective of the suggested point; the objective
  itself (ten subtractions) is inside the timed region for both libraries and negligible;
* after `--warmup` untimed cycles (default 1: first-call imports, caches), `--repeats` K
  timed cycles are run on the same study (so the history grows from N to N+warmup+K-1);
  each cycle is timed with `time.perf_counter` (wall) and `time.process_time` (CPU of the
  process) and the medians over the K cycles are reported, in ms.

Methods (sampler seed 0, library defaults otherwise):

  optuna-tpe      optuna.samplers.TPESampler(seed=0)   (Optuna 5: multivariate by default)
  optuna-gp       optuna.samplers.GPSampler(seed=0)    (needs torch + scipy)
  optuna-random   optuna.samplers.RandomSampler(seed=0)
  rustuna-tpe     rustuna.samplers.TPESampler(seed=0)  (multivariate=None: multivariate here)
  rustuna-random  rustuna.samplers.RandomSampler(seed=0)

History sizes: `--sizes` (default 100,1000,10000) for TPE and random, `--gp-sizes`
(default 100,500) for GP; GP runs at N >= 500 use at most `--gp-large-repeats` (default 10)
timed cycles. All BLAS/OpenMP pools and torch are limited to one thread.

Usage (versions used for the first comparison: optuna 5.0.0, rustuna 0.2.0, numpy 2.4.6,
scipy 1.17.1, torch 2.15.0, cmaes 0.13.1, Python 3.11):

  python3.11 -m venv /tmp/hpovenv-lite
  /tmp/hpovenv-lite/bin/pip install numpy==2.4.6 optuna==5.0.0 rustuna==0.2.0 \\
      cmaes==0.13.1 scipy==1.17.1 torch==2.15.0
  /tmp/hpovenv-lite/bin/python benches/ask_tell_python.py --out /tmp/ask_tell_python.jsonl
  /tmp/hpovenv-lite/bin/python benches/ask_tell_python.py \\
      --methods optuna-tpe,rustuna-tpe --sizes 100,1000 --repeats 50 --out /tmp/x.jsonl

Output: a markdown table (method, N, K, median ms wall, median ms CPU) on stdout, and one
JSON object per (method, N) appended to `--out` (all per-cycle times included). On a shared
machine compare the CPU column: wall time is inflated by other processes.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
           "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one thread, like the bench-hpo harness

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

DIM = 10
LOW, HIGH = -5.0, 5.0
NAMES = [f"x{i}" for i in range(DIM)]
ALL_METHODS = ["optuna-tpe", "rustuna-tpe", "optuna-gp", "optuna-random", "rustuna-random"]


def objective(xs) -> float:
    return float(sum((x - 1.0) ** 2 for x in xs))


def prefill_data(n: int):
    """N rows of x (uniform in [-5, 5], default_rng(0)) and their objective values."""
    x = np.random.default_rng(0).uniform(LOW, HIGH, size=(n, DIM))
    values = ((x - 1.0) ** 2).sum(axis=1)
    return x.tolist(), values.tolist()


# ------------------------------------------------------------------ Optuna
class OptunaBench:
    def __init__(self, kind: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        s = optuna.samplers
        if kind == "tpe":
            sampler = s.TPESampler(seed=0)
        elif kind == "gp":
            import torch

            torch.set_num_threads(1)
            sampler = s.GPSampler(seed=0)
        elif kind == "random":
            sampler = s.RandomSampler(seed=0)
        else:
            raise ValueError(kind)
        self.optuna = optuna
        self.study = optuna.create_study(direction="minimize", sampler=sampler)  # in memory

    def prefill(self, xs, values):
        from optuna.distributions import FloatDistribution
        from optuna.trial import create_trial

        dists = {n: FloatDistribution(LOW, HIGH) for n in NAMES}
        self.study.add_trials([
            create_trial(params=dict(zip(NAMES, row)), distributions=dists, value=v)
            for row, v in zip(xs, values)
        ])

    def n_trials(self) -> int:
        return len(self.study.get_trials(deepcopy=False))

    def cycle(self) -> int:
        trial = self.study.ask()
        xs = [trial.suggest_float(n, LOW, HIGH) for n in NAMES]
        self.study.tell(trial, objective(xs))
        return trial.number


# ----------------------------------------------------------------- Rustuna
class RustunaBench:
    def __init__(self, kind: str):
        import rustuna
        import rustuna.samplers as s

        if kind == "tpe":
            sampler = s.TPESampler(seed=0)
        elif kind == "random":
            sampler = s.RandomSampler(seed=0)
        else:
            raise ValueError(kind)
        self.rustuna = rustuna
        self.study = rustuna.create_study(direction="minimize", sampler=sampler)  # in memory

    def prefill(self, xs, values):
        from rustuna.distributions import FloatDistribution

        dists = {n: FloatDistribution(LOW, HIGH) for n in NAMES}
        create_trial, add_trial = self.rustuna.create_trial, self.study.add_trial
        for row, v in zip(xs, values):
            add_trial(create_trial(params=dict(zip(NAMES, row)), distributions=dists, value=v))

    def n_trials(self) -> int:
        return len(self.study.trials)

    def cycle(self) -> int:
        trial = self.study.ask()  # Rustuna's ask() takes no distributions: define-by-run
        xs = [trial.suggest_float(n, LOW, HIGH) for n in NAMES]
        self.study.tell(trial.number, objective(xs))
        return trial.number


def make_bench(method: str):
    lib, _, kind = method.partition("-")
    return (OptunaBench if lib == "optuna" else RustunaBench)(kind)


def run_one(method: str, n: int, repeats: int, warmup: int) -> dict:
    xs, values = prefill_data(n)
    t0 = time.perf_counter()
    bench = make_bench(method)
    bench.prefill(xs, values)
    prefill_s = time.perf_counter() - t0
    have = bench.n_trials()
    if have != n:
        raise RuntimeError(f"{method}: prefill left {have} trials, expected {n}")
    for _ in range(warmup):
        bench.cycle()
    wall, cpu = [], []
    for i in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        number = bench.cycle()
        wall.append((time.perf_counter() - w) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
        if number != n + warmup + i:
            raise RuntimeError(f"{method}: trial number {number}, expected {n + warmup + i}")
    return {
        "method": method, "n_history": n, "repeats": repeats, "warmup": warmup,
        "median_wall_ms": round(statistics.median(wall), 4),
        "median_cpu_ms": round(statistics.median(cpu), 4),
        "min_wall_ms": round(min(wall), 4), "min_cpu_ms": round(min(cpu), 4),
        "wall_ms": [round(x, 4) for x in wall], "cpu_ms": [round(x, 4) for x in cpu],
        "prefill_s": round(prefill_s, 3),
    }


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("optuna", "rustuna", "numpy", "scipy", "torch", "cmaes"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=",".join(ALL_METHODS),
                    help=f"comma-separated subset of {','.join(ALL_METHODS)}")
    ap.add_argument("--sizes", default="100,1000,10000", help="history sizes N (TPE, random)")
    ap.add_argument("--gp-sizes", default="100,500", help="history sizes N for optuna-gp")
    ap.add_argument("--repeats", type=int, default=30, help="timed ask+tell cycles K per (method, N)")
    ap.add_argument("--gp-large-repeats", type=int, default=10,
                    help="at most this many timed cycles for optuna-gp at N >= 500")
    ap.add_argument("--warmup", type=int, default=1, help="untimed cycles before the timed ones")
    ap.add_argument("--out", required=True, help="JSON-lines file to append the results to")
    args = ap.parse_args(argv)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; known: {ALL_METHODS}")
    warnings.simplefilter("ignore")  # ExperimentalWarning etc.
    vers = versions()
    print(f"# versions: {json.dumps(vers)}", file=sys.stderr)

    rows, failed = [], []
    with open(args.out, "a") as out:
        for method in methods:
            is_gp = method == "optuna-gp"
            for n in int_list(args.gp_sizes if is_gp else args.sizes):
                k = min(args.repeats, args.gp_large_repeats) if is_gp and n >= 500 else args.repeats
                t = time.perf_counter()
                try:
                    rec = run_one(method, n, k, args.warmup)
                except Exception as e:  # noqa: BLE001 - reported, the other runs go on
                    rec = {"method": method, "n_history": n, "repeats": k,
                           "error": f"{type(e).__name__}: {e}"}
                    failed.append(rec)
                else:
                    rows.append(rec)
                rec.update(versions=vers, machine=platform.machine(), nproc=os.cpu_count(),
                           time=time.strftime("%Y-%m-%dT%H:%M:%S"))
                out.write(json.dumps(rec) + "\n")
                out.flush()
                msg = rec.get("error") or f"median cpu {rec['median_cpu_ms']:.3f} ms"
                print(f"# {method} N={n} K={k}: {msg} ({time.perf_counter() - t:.1f} s)",
                      file=sys.stderr, flush=True)

    print("| method | N | K | median ms wall | median ms CPU |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['n_history']} | {r['repeats']} | "
              f"{r['median_wall_ms']:.3f} | {r['median_cpu_ms']:.3f} |")
    for r in failed:
        print(f"| {r['method']} | {r['n_history']} | {r['repeats']} | failed: {r['error']} | |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
