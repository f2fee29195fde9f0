#!/usr/bin/env python3
"""Makes the ESFs of the tabular example from scikit-learn's bundled copy of the Wisconsin diagnostic breast cancer data.

Usage (Python 3 standard library only; the data/ folder it writes ships with the project, so running this is optional):

    cd /tmp && apt-get download python3-sklearn && dpkg-deb -x python3-sklearn_1.2.1+dfsg-1_all.deb sklearn-deb
    python3 examples/tabular/make-data.py /tmp/sklearn-deb/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv

The source file's first line holds counts and class names (569,30,malignant,benign), not column names; every other line
is 30 features and the target (0 = malignant, 1 = benign). This writes, next to this script:

- data/train.csv, data/validation.csv, data/test.csv: a 60/20/20 split, stratified by class, seeded (the same every
  time). Columns: id (the row's 1-based number in the source file), diagnosis (M or B, as the UCI original writes it),
  then the 30 features with snake_case names, each value copied as the source writes it.
- data/misc/feature_stats.csv: the mean and standard deviation (population) of each feature over the train split only,
  which the spec reads in InitializeRun to standardize the features.
"""

import csv
import hashlib
import os
import random
import statistics
import sys

SOURCE_SHA256 = "fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed"  # python3-sklearn 1.2.1+dfsg-1
SEED = 17
FRACTIONS = (0.6, 0.2)  # train, validation; test takes the rest

KINDS = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave_points",
         "symmetry", "fractal_dimension"]
# sklearn's order: the 10 means, the 10 standard errors, the 10 worst values.
FEATURES = [f"mean_{k}" for k in KINDS] + [f"{k}_error" for k in KINDS] + [f"worst_{k}" for k in KINDS]


def main(source):
    with open(source, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"warning: {source} has SHA-256 {digest}, not that of python3-sklearn 1.2.1+dfsg-1's copy; "
              "the split may differ from the one that ships", file=sys.stderr)
    lines = raw.decode("ascii").splitlines()
    counts = lines[0].split(",")
    n_rows, n_features = int(counts[0]), int(counts[1])
    class_names = counts[2:]
    assert n_features == len(FEATURES) and class_names == ["malignant", "benign"], lines[0]

    rows = []
    for number, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        cells = line.split(",")
        assert len(cells) == n_features + 1, f"line {number + 1} has {len(cells)} fields"
        for cell in cells[:-1]:
            float(cell)  # every feature is a number
        target = int(cells[-1])
        rows.append({"id": number, "diagnosis": "M" if target == 0 else "B", "values": cells[:-1]})
    assert len(rows) == n_rows, f"{len(rows)} rows, the header says {n_rows}"

    # Stratified split: shuffle each class with one seeded generator, cut it 60/20/20, then keep file order.
    rng = random.Random(SEED)
    splits = {"train": [], "validation": [], "test": []}
    for diagnosis in ("M", "B"):
        members = [r for r in rows if r["diagnosis"] == diagnosis]
        rng.shuffle(members)
        n_train = round(FRACTIONS[0] * len(members))
        n_val = round(FRACTIONS[1] * len(members))
        splits["train"] += members[:n_train]
        splits["validation"] += members[n_train:n_train + n_val]
        splits["test"] += members[n_train + n_val:]

    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "data")
    os.makedirs(os.path.join(data, "misc"), exist_ok=True)
    for name, members in splits.items():
        members.sort(key=lambda r: r["id"])
        with open(os.path.join(data, f"{name}.csv"), "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["id", "diagnosis"] + FEATURES)
            for r in members:
                writer.writerow([r["id"], r["diagnosis"]] + r["values"])
        malignant = sum(r["diagnosis"] == "M" for r in members)
        print(f"data/{name}.csv: {len(members)} rows ({malignant} malignant, {len(members) - malignant} benign)")

    with open(os.path.join(data, "misc", "feature_stats.csv"), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["feature", "mean", "std"])
        for i, feature in enumerate(FEATURES):
            values = [float(r["values"][i]) for r in splits["train"]]
            writer.writerow([feature, repr(statistics.fmean(values)), repr(statistics.pstdev(values))])
    print(f"data/misc/feature_stats.csv: mean and std of {len(FEATURES)} features over the {len(splits['train'])} train rows")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
