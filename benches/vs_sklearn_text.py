#!/usr/bin/env python3
"""scikit-learn's TF-IDF + linear SVM and `lepton fit --task text` side by side: the same corpus,
the same stratified split.

The corpus (a folder per class, or a .tar.gz of one; default: the shared SpamAssassin archive) is
decoded as Lepton decodes it (UTF-8 where valid, else Latin-1) and split once per seed with
scikit-learn's `train_test_split` (20 % test, stratified, `random_state` = the seed) into a
train and a test folder. Then scikit-learn fits word 1-2 and char_wb 3-5 gram TF-IDF (sublinear
counts, n-grams of two documents or more) under `LinearSVC()` on the train documents and scores
the test ones, and `lepton fit TRAIN --task text --test TEST --budget-seconds B` does the same,
one after the other. Prints accuracy, macro F1 and whole-process wall seconds of each; appends
JSON lines to OUT.

    python3 benches/vs_sklearn_text.py [--budget 300] [--seeds 42,1] [--lepton BIN]
        [--out target/vs_sklearn_text.jsonl] [CORPUS]

Run it on an otherwise idle machine.
"""

import argparse
import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from lepton_bin import lepton_binary

ROOT = Path(__file__).resolve().parent.parent


def decode(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_corpus(path, work):
    """(texts, labels) of a folder per class or a .tar.gz of one (unpacked under work)."""
    path = Path(path)
    if path.is_file():
        with tarfile.open(path) as archive:
            archive.extractall(work / "unpacked", filter="data")
        roots = [p for p in (work / "unpacked").iterdir() if p.is_dir()]
        path = roots[0] if len(roots) == 1 else work / "unpacked"
    texts, labels = [], []
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(class_dir.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                texts.append(decode(f.read_bytes()))
                labels.append(class_dir.name)
    return texts, labels


def write_folder(root, texts, labels):
    for i, (text, label) in enumerate(zip(texts, labels)):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i:06}.txt").write_text(text, encoding="utf-8")


def run_sklearn(train, y_train, test, y_test):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    started = time.monotonic()
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2),
        ),
        LinearSVC(),
    )
    model.fit(train, y_train)
    predicted = model.predict(test)
    wall = time.monotonic() - started
    return accuracy_score(y_test, predicted), f1_score(y_test, predicted, average="macro"), wall


def run_lepton(binary, train_dir, test_dir, budget, seed, work):
    command = [
        str(binary), "fit", str(train_dir), "--task", "text", "--test", str(test_dir),
        "--budget-seconds", str(budget), "--seed", str(seed),
        "--artifact", str(work / "model"), "--json",
    ]
    started = time.monotonic()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.monotonic() - started
    summary = json.loads(out.strip().splitlines()[-1])
    return summary["test_accuracy"], summary["test_macro_f1"], wall, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300)
    parser.add_argument("--seeds", default="42,1")
    parser.add_argument("--out", default=str(ROOT / "target" / "vs_sklearn_text.jsonl"))
    parser.add_argument("--lepton", help="the lepton binary (default: $LEPTON_BIN, else a release build)")
    parser.add_argument(
        "corpus", nargs="?",
        default=str(ROOT.parent / "shared" / "data" / "text" / "spamassassin.tar.gz"),
    )
    args = parser.parse_args()
    binary = lepton_binary(args.lepton)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, open(args.out, "a") as log:
        work = Path(tmp)
        texts, labels = read_corpus(args.corpus, work)
        for seed in [int(s) for s in args.seeds.split(",")]:
            train, test, y_train, y_test = train_test_split(
                texts, labels, test_size=0.2, random_state=seed, stratify=labels
            )
            split = work / f"seed{seed}"
            write_folder(split / "train", train, y_train)
            write_folder(split / "test", test, y_test)
            sk = run_sklearn(train, y_train, test, y_test)
            lp = run_lepton(binary, split / "train", split / "test", args.budget, seed, split)
            row = {
                "corpus": Path(args.corpus).name, "documents": len(texts), "seed": seed,
                "budget": args.budget, "test_documents": len(test),
                "sklearn_accuracy": sk[0], "sklearn_macro_f1": sk[1], "sklearn_seconds": sk[2],
                "lepton_accuracy": lp[0], "lepton_macro_f1": lp[1], "lepton_seconds": lp[2],
                "lepton_trials": lp[3]["trials"], "lepton_params": lp[3]["params"],
                "lepton_family_seconds": lp[3]["family_seconds"],
                "lepton_on_all_documents": lp[3]["on_all_documents"],
            }
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(
                f"seed {seed}: scikit-learn accuracy {sk[0]:.4f} macro F1 {sk[1]:.4f} "
                f"({sk[2]:.0f} s)  Lepton accuracy {lp[0]:.4f} macro F1 {lp[1]:.4f} "
                f"({lp[2]:.0f} s, {lp[3]['trials']} trials)",
                flush=True,
            )


if __name__ == "__main__":
    main()
