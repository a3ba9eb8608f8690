"""Writes the mixed-type CSV of the preprocessing benchmark: N rows (default 1,000,000) x 20
columns (12 numeric, 5 categorical, 2 boolean, a 3-class target), 5% of feature values missing
(empty fields). Deterministic for a seed, so Lepton and pandas read the same bytes.

    python3 benches/gen_mixed_csv.py OUT.csv [ROWS]
"""
import random
import sys

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
rng = random.Random(7)
cities = ["paris", "lyon", "nice", "lille", "nantes", "rennes", "brest", "metz", "dijon", "tours"]
colours = ["red", "green", "blue", "black", "white", "grey"]
header = [f"n{i}" for i in range(12)] + [f"c{i}" for i in range(5)] + ["b0", "b1", "target"]
with open(out, "w") as f:
    f.write(",".join(header) + "\n")
    for _ in range(rows):
        fields = []
        for i in range(12):
            fields.append("" if rng.random() < 0.05 else f"{rng.gauss(i, 1 + i):.4f}")
        for i in range(5):
            pool = cities if i % 2 == 0 else colours
            fields.append("" if rng.random() < 0.05 else rng.choice(pool))
        for _ in range(2):
            fields.append("" if rng.random() < 0.05 else rng.choice(["true", "false"]))
        fields.append(rng.choice(["low", "mid", "high"]))
        f.write(",".join(fields) + "\n")
