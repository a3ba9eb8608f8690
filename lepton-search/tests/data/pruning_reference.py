#!/usr/bin/env python3
"""Writes pruning_reference.json: Optuna 5.0.0's pruning decisions on fixed learning curves.

80 configurations (x0, x1, speed) drawn with numpy's default_rng(2026) run, in order, through
Optuna studies whose trials are enqueued (so the sampler plays no part), with each pruner at its
defaults. The curves are Lepton's Problem::Curves (see lepton-search/src/problems.rs), reported
at steps 1..100; the pruner is asked after every step but the last. For every trial the file
records the step it was pruned at, or null. `tests/pruning_matches_optuna.rs` replays the same
configurations through Lepton's pruners and expects the same decisions.

    /tmp/optvenv/bin/python lepton-search/tests/data/pruning_reference.py
"""

import json
import math
import os

import numpy as np
import optuna

STEPS = 100


def curve(x0, x1, speed, step):
    final = 0.05 + (x0 - 0.3) ** 2 + (x1 - 0.7) ** 2
    tau = 2 + 20 * (1 - speed)
    return final + math.exp(-step / tau)


def run(pruner, configs):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
    for x0, x1, speed in configs:
        study.enqueue_trial({"x0": x0, "x1": x1, "speed": speed})

    def objective(trial):
        x0, x1 = trial.suggest_float("x0", 0, 1), trial.suggest_float("x1", 0, 1)
        speed = trial.suggest_float("speed", 0, 1)
        for step in range(1, STEPS + 1):
            trial.report(curve(x0, x1, speed, step), step)
            if step < STEPS and trial.should_prune():
                raise optuna.TrialPruned()
        return curve(x0, x1, speed, STEPS)

    study.optimize(objective, n_trials=len(configs))
    return [
        max(t.intermediate_values) if t.state == optuna.trial.TrialState.PRUNED else None
        for t in study.trials
    ]


def main():
    rng = np.random.default_rng(2026)
    configs = [[float(v) for v in rng.random(3)] for _ in range(80)]
    reference = {
        "optuna": optuna.__version__,
        "configs": configs,
        "asha": run(optuna.pruners.SuccessiveHalvingPruner(), configs),
        "median": run(optuna.pruners.MedianPruner(), configs),
        "percentile_25_warmup_5": run(
            optuna.pruners.PercentilePruner(25.0, n_warmup_steps=5), configs
        ),
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pruning_reference.json")
    with open(out, "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    for name in ("asha", "median", "percentile_25_warmup_5"):
        pruned = sum(s is not None for s in reference[name])
        print(f"{name}: {pruned} of {len(configs)} pruned")


if __name__ == "__main__":
    main()
