#!/usr/bin/env python3
"""Pruning on synthetic learning curves, Lepton against Optuna 5 in the same run.

The curves are Lepton's `Problem::Curves` (lepton-search/src/problems.rs): parameters x0, x1,
speed in [0, 1]; final loss 0.05 + (x0 - 0.3)^2 + (x1 - 0.7)^2; loss at step t (1..100) is
final + exp(-t / tau) with tau = 2 + 20 (1 - speed); the optimum is 0.05 + exp(-50).

Both sides use TPE and report the loss at every step. For each pruner pair (Lepton's
`asha` / Optuna's SuccessiveHalvingPruner, Lepton's `hyperband` / Optuna's HyperbandPruner,
both with Optuna's defaults; no pruning; and Lepton's BOHB, Hyperband's pruning with its
model on the largest budget, against Optuna's TPE + Hyperband, Optuna having no BOHB), over
seeds: the budget spent (steps reported,
summed over trials) and the regret of the best complete trial. Medians over seeds.

    python benches/pruning_curves.py --lepton target/debug/lepton --trials 100 --seeds 0-9

Needs optuna==5.0.0.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile

STEPS = 100
OPTIMUM = 0.05 + math.exp(-STEPS / 2)


def curve(x0, x1, speed, step):
    final = 0.05 + (x0 - 0.3) ** 2 + (x1 - 0.7) ** 2
    tau = 2 + 20 * (1 - speed)
    return final + math.exp(-step / tau)


def lepton_run(args, pruner, seed, tmp):
    url = f"sqlite://{os.path.join(tmp, f'{pruner}-{seed}.db')}"
    subprocess.run([args.lepton, "worker", "--storage", url, "--study", "curves", "--objective",
                    "curves", "--sampler", "tpe", "--pruner", pruner, "--trials",
                    str(args.trials), "--seed", str(seed), "--quiet"],
                   check=True, stderr=subprocess.DEVNULL)
    out = subprocess.run([args.lepton, "study", "export", "--storage", url, "--study", "curves"],
                         check=True, capture_output=True, text=True).stdout
    trials = json.loads(out)
    budget = sum(len(t["intermediate_values"]) for t in trials)
    best = min(t["value"] for t in trials if t["state"] == "complete")
    return budget, best - OPTIMUM


def optuna_run(pruner, seed, n_trials):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruners = {
        "none": optuna.pruners.NopPruner(),
        "asha": optuna.pruners.SuccessiveHalvingPruner(),
        "hyperband": optuna.pruners.HyperbandPruner(),
    }
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=pruners[pruner])

    def objective(trial):
        x0, x1 = trial.suggest_float("x0", 0, 1), trial.suggest_float("x1", 0, 1)
        speed = trial.suggest_float("speed", 0, 1)
        for step in range(1, STEPS + 1):
            trial.report(curve(x0, x1, speed, step), step)
            if step < STEPS and trial.should_prune():
                raise optuna.TrialPruned()
        return curve(x0, x1, speed, STEPS)

    study.optimize(objective, n_trials=n_trials)
    budget = sum(len(t.intermediate_values) for t in study.trials)
    return budget, study.best_value - OPTIMUM


def seeds(text):
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lepton", required=True)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seeds", default="0-9")
    args = p.parse_args()
    import optuna

    print(f"# {args.trials} trials x {STEPS} steps, TPE, seeds {args.seeds}, optuna "
          f"{optuna.__version__}; medians over seeds")
    print("| pruner | Lepton budget (steps) | Optuna budget | Lepton regret | Optuna regret |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ["none", "asha", "hyperband", "bohb"]:
            lep = [lepton_run(args, pruner, s, tmp) for s in seeds(args.seeds)]
            # Optuna has no BOHB: its row compares with Optuna's TPE + Hyperband.
            opt_pruner = "hyperband" if pruner == "bohb" else pruner
            opt = [optuna_run(opt_pruner, s, args.trials) for s in seeds(args.seeds)]
            med = lambda rows, i: statistics.median(r[i] for r in rows)  # noqa: E731
            print(f"| {pruner} | {med(lep, 0):,.0f} | {med(opt, 0):,.0f} | "
                  f"{med(lep, 1):.4g} | {med(opt, 1):.4g} |", flush=True)


if __name__ == "__main__":
    main()
