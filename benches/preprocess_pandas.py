"""The pandas + scikit-learn side of the preprocessing benchmark: read_csv, then the
ColumnTransformer equivalent of Lepton's default pipeline (median imputation with missing
indicators and standard scaling for numbers; most-frequent imputation and one-hot encoding for
categories and booleans), fit_transform on every row. Prints the median of ROUNDS runs.

    python3 benches/preprocess_pandas.py DATA.csv [ROUNDS]
"""
import statistics
import sys
import time

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

path = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
load, prep = [], []
for _ in range(rounds):
    t0 = time.perf_counter()
    df = pd.read_csv(path)
    t1 = time.perf_counter()
    features = df.drop(columns=["target"])
    numeric = [c for c in features.columns if c.startswith("n")]
    categorical = [c for c in features.columns if not c.startswith("n")]
    features[categorical] = features[categorical].astype(object)
    transformer = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                categorical,
            ),
            ("cat_missing", MissingIndicator(), categorical),
        ]
    )
    x = transformer.fit_transform(features)
    t2 = time.perf_counter()
    load.append(t1 - t0)
    prep.append(t2 - t1)
print(f"pandas read_csv: median {statistics.median(load):.3f} s over {rounds} runs")
print(f"sklearn ColumnTransformer fit_transform: median {statistics.median(prep):.3f} s ({x.shape[0]} x {x.shape[1]})")
print(f"total: median {statistics.median([a + b for a, b in zip(load, prep)]):.3f} s")
